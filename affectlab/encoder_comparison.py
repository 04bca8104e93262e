"""The Gemma encoder comparison: bidirectional vs causal, LoRA vs DoRA, mean vs last-token pooling, MiniLM baseline.

    python scripts/compare_gemma_encoder.py --dataset redsm5 --max_steps 12 --max_length 128

Every variant is one ordinary family run (`affectlab.run.run_task`: `nli` on ReDSM5 pairs, `classifier` on
SST-2) from the same base recipe with a few overrides (`VARIANTS`), on the same data, steps, batch size and
seed; only what the variant names changes. Two small subclasses add what the families do not expose:
`bidirectional=False` for the causal control (the encoder's `set_causal(True)`: same weights, pooler and
head, causal masks) and, for SST-2, the Gemma encoder in the classifier family. Each run records its
training step times (wall and process CPU seconds, `StepTimer`) and its predictions; the table gives, per
evaluated split, n (and positives), macro-F1 and accuracy with 95% percentile bootstrap CIs
(`affectlab.stats`), and the paired-bootstrap difference in macro-F1 against the first variant.

Written to `<out_dir>/<dataset>/`: `comparison.md` (the table and the command), `comparison.json` (every
number), and each variant's run folder.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from transformers import TrainerCallback

from affectlab.errors import ArgumentError

REPO = Path(__file__).resolve().parent.parent
N_BOOT = 2000


@dataclass(frozen=True)
class Variant:
    """One row of the comparison: the encoder options that differ from the base recipe."""

    key: str
    label: str
    model: str = "gemma"              # "gemma" (the compared decoder) or "baseline" (MiniLM)
    bidirectional: bool = True
    adapter: str = "lora"             # "lora" | "dora" | "full"
    pooling: str = "mean"
    learning_rate: float | None = None  # None: the base recipe's
    weight_decay: float | None = None


VARIANTS = (
    Variant("a", "bidirectional + LoRA + mean pooling"),
    Variant("b", "causal + LoRA + mean pooling", bidirectional=False),
    Variant("c", "bidirectional + DoRA + mean pooling", adapter="dora"),
    Variant("d", "bidirectional + LoRA + last-token pooling", pooling="last"),
    Variant("e", "baseline, full fine-tune (lr 5e-5, weight decay 0.01: the MiniLM NLI recipe's)", model="baseline",
            bidirectional=True, adapter="full", pooling="mean", learning_rate=5.0e-5, weight_decay=0.01),
)


@dataclass(frozen=True)
class DatasetSetup:
    """Which family runs a dataset, from which base recipe, and which splits it evaluates."""

    family: str
    recipe: str
    description: str


DATASETS = {
    "redsm5": DatasetSetup("nli", "recipes/redsm5_nli_gemma3_270m_cpu_lora.yaml",
                           "ReDSM5-format NLI pairs (post x DSM-5 criterion, binary), family `nli`"),
    "sst2": DatasetSetup("classifier", "recipes/gemma_encoder_sst2_cpu.yaml",
                         "SST-2 (binary sentiment; evaluated on `heldout_sentences`: full sentences of the local "
                         "GLUE-train files, none of their phrases trained on), family `classifier`"),
}


@dataclass
class ComparisonConfig:
    dataset: str = "redsm5"
    variants: str = "a,b,c,d,e"
    max_steps: int = 12
    max_length: int = 128
    batch_size: int = 8
    seed: int = 1337
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    gemma_model: str = "gemma-3-270m"
    baseline_model: str = "default"
    data_dir: str | None = None
    out_dir: str = "outputs/gemma_encoder_comparison"
    threads: int | None = None


# ---- the runs ------------------------------------------------------------------------------------------
class StepTimer(TrainerCallback):
    """Records each optimizer step's wall and process-CPU seconds (forward, backward, optimizer; no evaluation)."""

    def __init__(self):
        self.wall, self.cpu = [], []
        self._t = None

    def on_step_begin(self, args, state, control, **kwargs):
        self._t = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        if self._t is not None:
            self.wall.append(time.perf_counter() - self._t[0])
            self.cpu.append(time.process_time() - self._t[1])
            self._t = None


def _comparison_task(base_cls, variant: Variant):
    """A subclass of the family's task that applies the encoder options the family does not expose and
    keeps what the table needs (evaluations, step times, trainable parameters)."""

    class ComparedTask(base_cls):
        compared_variant = variant
        captured: dict = {}

        def build_model(self, data):
            gemma = self.compared_variant.model == "gemma"
            if gemma and base_cls.name == "classifier":
                model, tokenizer = build_gemma_encoder_classifier(self, data, self.compared_variant.pooling)
            else:
                model, tokenizer = super().build_model(data)
            if gemma:
                if getattr(model.config, "model_type", None) != "gemma_encoder":
                    raise ArgumentError("gemma_model", f"{self.model_args.model_name_or_path} did not load as the "
                                                       f"Gemma encoder (model_type {model.config.model_type!r})")
                model.set_causal(not self.compared_variant.bidirectional)
            return model, tokenizer

        def build_trainer(self, model, tokenizer, *args, **kwargs):
            trainer = super().build_trainer(model, tokenizer, *args, **kwargs)
            timer = StepTimer()
            trainer.add_callback(timer)
            type(self).captured.update(
                timer=timer, trainable=int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
                total=int(sum(p.numel() for p in model.parameters())))
            return trainer

        def evaluate(self, fit, data):
            out = super().evaluate(fit, data)
            type(self).captured.update(evaluations=out, train_metrics=dict(fit.train_metrics),
                                       global_step=int(fit.trainer.state.global_step), train_rows=fit.train_rows)
            return out

    ComparedTask.__name__ = f"Compared{base_cls.__name__}_{variant.key}"
    return ComparedTask


def build_gemma_encoder_classifier(task, data, pooling: str):
    """The classifier family's model as the Gemma encoder (as the nli family builds it): backbone weights from
    the Gemma checkpoint, a new pooler and head."""
    from transformers import AutoConfig, AutoTokenizer

    from affectlab.models import model_init_kwargs, resolve_model_name
    from affectlab.tasks.nli import GEMMA_TYPES, gemma_encoder_classes

    model_args = task.model_args
    names, multi = data.extra["label_names"], data.extra["multi_label"]
    name = resolve_model_name(model_args.model_name_or_path)
    base_config = AutoConfig.from_pretrained(name, revision=model_args.model_revision)
    if base_config.model_type not in GEMMA_TYPES:
        raise ArgumentError("gemma_model", f"{model_args.model_name_or_path} is a {base_config.model_type!r} model, "
                                           f"not a Gemma checkpoint ({', '.join(GEMMA_TYPES)})")
    config_cls, model_cls = gemma_encoder_classes()
    config = config_cls(text_config=base_config, pooling=pooling, num_labels=len(names),
                        id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
                        problem_type="multi_label_classification" if multi else "single_label_classification")
    kwargs = model_init_kwargs(model_args, task.head_modules)
    kwargs.pop("trust_remote_code", None)
    model = model_cls.from_pretrained(name, config=config, **kwargs)
    task.gemma_encoder = True
    return model, AutoTokenizer.from_pretrained(name, revision=model_args.model_revision)


def variant_argv(cfg: ComparisonConfig, variant: Variant, recipe: Path, output_dir: Path) -> list[str]:
    """The family's command-line arguments for one variant: the base recipe + the shared and variant overrides."""
    setup = DATASETS[cfg.dataset]
    argv = ["--config", str(recipe), "--output_dir", str(output_dir), "--overwrite_output_dir", "true",
            "--max_steps", str(cfg.max_steps), "--max_length", str(cfg.max_length),
            "--per_device_train_batch_size", str(cfg.batch_size), "--seed", str(cfg.seed),
            "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
            "--save_results", "false", "--print_report", "false", "--use_cpu", "true"]
    for name in ("max_train_samples", "max_eval_samples"):
        if getattr(cfg, name) is not None:
            argv += [f"--{name}", str(getattr(cfg, name))]
    if cfg.data_dir:
        argv += ["--dataset_data_dir", cfg.data_dir]
    if variant.model == "gemma":
        argv += ["--model_name_or_path", cfg.gemma_model, "--use_peft", "true",
                 "--use_dora", "true" if variant.adapter == "dora" else "false"]
        if setup.family == "nli":
            argv += ["--encoder", "bidirectional", "--pooling", variant.pooling]
    else:
        argv += ["--model_name_or_path", cfg.baseline_model, "--use_peft", str(variant.adapter != "full").lower()]
        if setup.family == "nli":
            argv += ["--encoder", "none"]
    if variant.learning_rate is not None:
        argv += ["--learning_rate", str(variant.learning_rate)]
    if variant.weight_decay is not None:
        argv += ["--weight_decay", str(variant.weight_decay)]
    return argv


def run_variant(cfg: ComparisonConfig, variant: Variant, out: Path) -> dict:
    """Train and evaluate one variant; returns its row (metrics with CIs, timings, predictions)."""
    import gc

    from affectlab.run import parse_task_args, run_task
    from affectlab.stats import bootstrap_ci

    setup = DATASETS[cfg.dataset]
    recipe = Path(setup.recipe)
    if not recipe.is_absolute() and not recipe.exists():
        recipe = REPO / recipe
    base_cls = task_class(setup.family)
    task_cls = _comparison_task(base_cls, variant)
    task_cls.captured = {}
    run_dir = out / f"{variant.key}"
    argv = variant_argv(cfg, variant, recipe, run_dir)
    script_args, training_args, model_args = parse_task_args(task_cls, argv)
    if variant.adapter == "full":  # the base recipe's adapter targets do not apply to a full fine-tune
        model_args.lora_target_modules, model_args.use_dora = None, False
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    run_task(task_cls, script_args, training_args, model_args)
    elapsed = time.perf_counter() - t0
    cap = task_cls.captured
    timer = cap["timer"]
    splits = {}
    for split, ev in cap["evaluations"].items():
        y_true, y_pred = np.asarray(ev.y_true).astype(int), np.asarray(ev.y_pred).astype(int)
        ci = bootstrap_ci(y_true, y_pred, metrics=("macro_f1", "accuracy"), n_boot=N_BOOT, seed=0, labels=[0, 1])
        splits[split] = {"n": int(len(y_true)), "positives": int(y_true.sum()), "macro_f1": ci["macro_f1"],
                         "accuracy": ci["accuracy"], "y_true": y_true.tolist(), "y_pred": y_pred.tolist()}
    row = {"variant": asdict(variant), "model": model_display(cfg, variant), "argv": argv, "output_dir": str(run_dir), "steps": cap["global_step"],
           "train_rows": cap["train_rows"], "trainable_params": cap["trainable"], "total_params": cap["total"],
           "step_wall_s": [float(x) for x in timer.wall], "step_cpu_s": [float(x) for x in timer.cpu],
           "train_runtime_s": float(cap["train_metrics"].get("train_runtime", float("nan"))),
           "run_wall_s": float(elapsed), "loadavg_1min_before": float(load_before),
           "loadavg_1min_after": float(os.getloadavg()[0]), "splits": splits}
    task_cls.captured = {}
    gc.collect()
    return row


def model_display(cfg: ComparisonConfig, variant: Variant) -> str:
    if variant.model == "gemma":
        return "Gemma 3 270M" if cfg.gemma_model == "gemma-3-270m" else str(cfg.gemma_model)
    return "MiniLM-L6" if cfg.baseline_model in ("default", "minilm") else str(cfg.baseline_model)


def task_class(family: str):
    from affectlab.tasks.classification import ClassifierTask
    from affectlab.tasks.nli import NLITask

    return {"nli": NLITask, "classifier": ClassifierTask}[family]


def paired_deltas(rows: list[dict], reference: int = 0, n_boot: int = N_BOOT) -> None:
    """Adds to every row but the reference, per split, the paired-bootstrap difference of macro-F1 (row - reference)
    on the same examples (`delta_macro_f1`: diff, ci_low, ci_high, p_value = share of resamples where the row is
    not better)."""
    from affectlab.stats import bootstrap_diff_ci

    ref = rows[reference]
    for i, row in enumerate(rows):
        for split, s in row["splits"].items():
            r = ref["splits"].get(split)
            if i == reference or r is None:
                continue
            if r["y_true"] != s["y_true"]:
                raise ValueError(f"variant {row['variant']['key']} was evaluated on other {split} rows than "
                                 f"{ref['variant']['key']}: no paired comparison")
            s["delta_macro_f1"] = bootstrap_diff_ci(np.asarray(s["y_true"]), np.asarray(s["y_pred"]),
                                                    np.asarray(r["y_pred"]), metric="macro_f1", n_boot=n_boot, seed=0,
                                                    labels=[0, 1])


# ---- the table -----------------------------------------------------------------------------------------
def _ci(m: dict) -> str:
    if not (np.isfinite(m["ci_low"]) and np.isfinite(m["ci_high"])):
        return f"{m['value']:.3f}"
    return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def step_stats(values: list[float]) -> tuple[float, float]:
    """(median, sd with ddof=1; 0 for one value) of per-step seconds, the first step excluded when there are
    more than two (it carries one-off warm-up work)."""
    v = np.asarray(values[1:] if len(values) > 2 else values, dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(np.median(v)), float(v.std(ddof=1)) if v.size > 1 else 0.0


def format_table(rows: list[dict], splits: list[str] | None = None) -> str:
    """The markdown table: one row per variant; timings, then per split n, macro-F1 and accuracy [95% CI] and
    the paired difference in macro-F1 against the first row."""
    if not rows:
        raise ValueError("no rows")
    splits = splits or list(rows[0]["splits"])
    ref = rows[0]["variant"]["key"]
    head = ["variant", "model", "attention", "adapter", "pooling", "trainable params", "steps", "s/step wall (median ± sd)",
            "CPU s/step (median)"]
    for split in splits:
        head += [f"{split} n (pos)", f"{split} macro-F1 [95% CI]", f"{split} accuracy [95% CI]",
                 f"{split} Δ macro-F1 vs ({ref}) [95% CI]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        v = row["variant"]
        wall, wall_sd = step_stats(row["step_wall_s"])
        cpu, _ = step_stats(row["step_cpu_s"])
        cells = [f"({v['key']}) {v['label']}", row.get("model", ""), "bidirectional" if v["bidirectional"] else "causal",
                 {"lora": "LoRA", "dora": "DoRA", "full": "full"}[v["adapter"]],
                 v["pooling"] if v["model"] == "gemma" else "model's own (mean)",
                 f"{row['trainable_params']:,}", str(row["steps"]), f"{wall:.2f} ± {wall_sd:.2f}", f"{cpu:.2f}"]
        for split in splits:
            s = row["splits"].get(split)
            if s is None:
                cells += ["—"] * 4
                continue
            d = s.get("delta_macro_f1")
            delta = "—" if d is None else (f"{d['diff']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
                                           if np.isfinite(d["ci_low"]) else f"{d['diff']:+.3f}")
            cells += [f"{s['n']} ({s['positives']})", _ci(s["macro_f1"]), _ci(s["accuracy"]), delta]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def command_line(cfg: ComparisonConfig) -> str:
    """The command that reproduces a comparison (only the options that differ from the defaults)."""
    default = ComparisonConfig()
    parts = ["python scripts/compare_gemma_encoder.py"]
    for key, value in asdict(cfg).items():
        if value != getattr(default, key) or key in ("dataset", "max_steps", "max_length"):
            parts.append(f"--{key} {shlex.quote(str(value))}")
    return " ".join(parts)


def write_report(cfg: ComparisonConfig, rows: list[dict], out: Path, started: str) -> Path:
    setup = DATASETS[cfg.dataset]
    first = rows[0]
    lines = [f"# Gemma encoder comparison: {cfg.dataset}", "",
             f"Reproduce: `{command_line(cfg)}`", "",
             f"Data: {setup.description}; {first['train_rows']} training rows, batch {cfg.batch_size}, "
             f"{cfg.max_steps} optimizer steps, max_length {cfg.max_length}, seed {cfg.seed}, fp32, base recipe "
             f"`{setup.recipe}` (every variant: the same rows, steps and seed). Started {started}; "
             f"{os.cpu_count()} CPU cores visible, torch threads {cfg.threads or 'default'}.", "",
             format_table(rows),
             "CIs: 95% percentile bootstrap over the evaluated rows (2,000 resamples); Δ: paired bootstrap on the "
             "same rows. s/step: one optimizer step of training (no evaluation), the first step left out; wall "
             "seconds depend on what else ran on the machine (1-min load average before / after each run: "
             + ", ".join(f"({r['variant']['key']}) {r['loadavg_1min_before']:.1f}/{r['loadavg_1min_after']:.1f}"
                         for r in rows) + ").", ""]
    path = out / "comparison.md"
    path.write_text("\n".join(lines))
    return path


def run_comparison(cfg: ComparisonConfig) -> dict:
    """Run the chosen variants in order, then write comparison.json and comparison.md under out_dir/dataset."""
    import torch

    if cfg.dataset not in DATASETS:
        raise ArgumentError("dataset", f"must be one of {sorted(DATASETS)}, got {cfg.dataset!r}")
    known = {v.key: v for v in VARIANTS}
    keys = [k.strip() for k in cfg.variants.split(",") if k.strip()]
    unknown = [k for k in keys if k not in known]
    if not keys or unknown:
        raise ArgumentError("variants", f"comma-separated keys among {sorted(known)}, got {cfg.variants!r}")
    if cfg.max_steps < 1:
        raise ArgumentError("max_steps", f"must be >= 1, got {cfg.max_steps}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir) / cfg.dataset
    out.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for key in keys:
        print(f"== variant ({key}): {known[key].label}", flush=True)
        rows.append(run_variant(cfg, known[key], out))
        wall, _ = step_stats(rows[-1]["step_wall_s"])
        print(f"== variant ({key}) done: {rows[-1]['steps']} steps, {wall:.2f} s/step, run {rows[-1]['run_wall_s']:.0f} s",
              flush=True)
    paired_deltas(rows)
    payload = {"config": asdict(cfg), "command": command_line(cfg), "started": started, "rows": rows}
    (out / "comparison.json").write_text(json.dumps(payload, indent=1) + "\n")
    report = write_report(cfg, rows, out, started)
    print(report.read_text(), flush=True)
    print(f"wrote {report}", file=sys.stderr, flush=True)
    return payload


def parse_args(argv=None) -> ComparisonConfig:
    import argparse

    d = ComparisonConfig()
    p = argparse.ArgumentParser(description="Gemma encoder variants vs MiniLM on the same data, steps and seed.")
    p.add_argument("--dataset", default=d.dataset, choices=sorted(DATASETS))
    p.add_argument("--variants", default=d.variants, help="comma-separated among " +
                   "; ".join(f"{v.key}: {v.label}" for v in VARIANTS))
    for name in ("max_steps", "max_length", "batch_size", "seed"):
        p.add_argument(f"--{name}", type=int, default=getattr(d, name))
    for name in ("max_train_samples", "max_eval_samples", "threads"):
        p.add_argument(f"--{name}", type=int, default=None)
    p.add_argument("--gemma_model", default=d.gemma_model, help="registry name or folder of the Gemma checkpoint")
    p.add_argument("--baseline_model", default=d.baseline_model, help="the baseline ('default': packaged MiniLM)")
    p.add_argument("--data_dir", default=None, help="the dataset's local folder (default: $AFFECTLAB_DATA/<name>)")
    p.add_argument("--out_dir", default=d.out_dir)
    return ComparisonConfig(**vars(p.parse_args(argv)))


def main(argv=None) -> dict:
    return run_comparison(parse_args(argv))


__all__ = ["VARIANTS", "DATASETS", "Variant", "ComparisonConfig", "StepTimer", "variant_argv", "run_variant",
           "paired_deltas", "format_table", "step_stats", "command_line", "run_comparison", "parse_args", "main"]

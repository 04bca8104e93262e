"""Persona-conditioned emotion regression: an encoder + `custom_models/regression_head`, trained with
`transformers.Trainer`, in one of the persona modes and split protocols of `affectlab.personas`.

    accelerate launch --config_file accelerate_configs/cpu.yaml scripts/train_regression.py \
        --config recipes/emobank_minilm.yaml [--persona_mode persona_token --split_strategy lopo --held_out reader]

Data: a registered builder whose module exposes `LABEL_SET` and `PERSONAS` (`emobank`), the
SYNTHETIC medical preset (`synthetic_medical`), or a JSON Lines file of contract records
(`--dataset_name my.jsonl --personas_file personas.json --label_set_file labels.json`).
Persona modes: `non_personalized`, `persona_token` (one special token per persona, embeddings
resized, tokenizer saved with them), `personalized_desc` (persona description + text as a pair).
Splits: `predefined` (the dataset's own), `random` (grouped by text), `lolo`, `lopo` (`--held_out`).

Writes to `output_dir`: the model (trust_remote_code; `AutoModel.from_pretrained(out, trust_remote_code=True)`),
the tokenizer, `personas.json`, `label_set.json`, `eval_results.json` (the full regression report per
evaluated split, incl. per-persona / per-language breakdowns), `reliability_<split>.png`,
`predictions_<split>.jsonl`, `report.md` and a model card. Every file lands by rename.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ENCODER_MODES = ("non_personalized", "persona_token", "personalized_desc")
SPLITS = ("predefined", "random", "lolo", "lopo")


@dataclass
class RegressionScriptArguments:
    """Data, persona mode, split, head and evaluation options of `scripts/train_regression.py`."""

    dataset_name: str = field(default="emobank", metadata={"help": "registered builder, 'synthetic_medical', or a .jsonl of contract records"})
    dataset_config: Optional[str] = field(default=None, metadata={"help": "builder config (emobank: aggregated | individual | combined)"})
    dataset_data_dir: Optional[str] = None
    personas_file: Optional[str] = field(default=None, metadata={"help": "persona registry JSON (for a .jsonl dataset)"})
    label_set_file: Optional[str] = field(default=None, metadata={"help": "label set JSON {name, dimensions, low, high} (for a .jsonl dataset)"})
    keep_personas: Optional[str] = field(default=None, metadata={"help": "comma-separated persona ids to keep (default: all)"})
    persona_mode: str = field(default="non_personalized", metadata={"help": f"one of {ENCODER_MODES}"})
    split_strategy: str = field(default="predefined", metadata={"help": f"one of {SPLITS}"})
    held_out: Optional[str] = field(default=None, metadata={"help": "language (lolo) or persona id (lopo) held out as test"})
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    synthetic_texts: int = field(default=400, metadata={"help": "texts of the synthetic medical set (x personas_per_text records)"})
    synthetic_personas_per_text: int = 4
    max_length: int = 128
    max_train_samples: Optional[int] = None
    max_eval_samples: Optional[int] = None
    pooling: str = "mean"
    output_scaling: bool = field(default=True, metadata={"help": "squash outputs into the label range (sigmoid)"})
    loss: str = field(default="mse", metadata={"help": "mse or huber"})
    huber_delta: float = 1.0
    head_dropout: float = 0.1
    n_bins: int = 10
    card_template: str = "model_cards/regression.md"
    print_report: bool = True

    def __post_init__(self):
        if self.persona_mode not in ENCODER_MODES:
            hint = " (personalized_instruction is for LLMs: scripts/sft_emotions.py)" if self.persona_mode == "personalized_instruction" else ""
            raise ValueError(f"persona_mode must be one of {ENCODER_MODES}, got {self.persona_mode!r}{hint}")
        if self.split_strategy not in SPLITS:
            raise ValueError(f"split_strategy must be one of {SPLITS}, got {self.split_strategy!r}")
        if self.split_strategy in ("lolo", "lopo") and not self.held_out:
            raise ValueError(f"split_strategy={self.split_strategy} needs --held_out")


def load_records(args, seed: int):
    """(DatasetDict of contract records, LabelSet, PersonaRegistry)."""
    import datasets

    from affectlab.personas import (MEDICAL_LABEL_SET, MEDICAL_PERSONAS, LabelSet, PersonaRegistry, read_jsonl,
                                    records_to_dataset, synthetic_medical_records)
    from dataset_builders import REGISTRY, build_dataset

    name = args.dataset_name
    if name == "synthetic_medical":
        records = synthetic_medical_records(args.synthetic_texts, args.synthetic_personas_per_text, seed=seed)
        ds = records_to_dataset(records, MEDICAL_LABEL_SET, MEDICAL_PERSONAS, source="synthetic_medical")
        return datasets.DatasetDict({"all": ds}), MEDICAL_LABEL_SET, MEDICAL_PERSONAS
    if name in REGISTRY:
        module = __import__(REGISTRY[name].builder.split(":")[0], fromlist=["LABEL_SET", "PERSONAS"])
        if not hasattr(module, "LABEL_SET") or not hasattr(module, "PERSONAS"):
            raise ValueError(f"dataset {name!r} is not a persona regression dataset (its builder has no LABEL_SET/PERSONAS)")
        return build_dataset(name, data_dir=args.dataset_data_dir, config=args.dataset_config), module.LABEL_SET, module.PERSONAS
    path = Path(name)
    if path.suffix == ".jsonl" and path.is_file():
        if not (args.personas_file and args.label_set_file):
            raise ValueError("a .jsonl dataset needs --personas_file and --label_set_file")
        import json

        label_set = LabelSet.from_dict(json.loads(Path(args.label_set_file).read_text(encoding="utf-8")))
        personas = PersonaRegistry.load(args.personas_file)
        ds = records_to_dataset(read_jsonl(path, label_set, personas), label_set, personas, source=str(path))
        return datasets.DatasetDict({"all": ds}), label_set, personas
    raise KeyError(f"unknown dataset {name!r}: not registered ({sorted(REGISTRY)}), not 'synthetic_medical', not a .jsonl file")


def prepare_splits(raw, args, seed: int):
    """Apply persona filtering and the split protocol; returns DatasetDict(train, validation[, test])."""
    import datasets

    from affectlab.personas import make_splits

    if args.keep_personas:
        keep = {p.strip() for p in args.keep_personas.split(",") if p.strip()}
        raw = datasets.DatasetDict({k: v.filter(lambda r: r["persona_id"] in keep) for k, v in raw.items()})
    if args.split_strategy == "predefined":
        if "train" not in raw or "validation" not in raw:
            raise ValueError(f"split_strategy=predefined needs train and validation splits; dataset has {list(raw)}")
        return raw
    everything = datasets.concatenate_datasets(list(raw.values()))
    return make_splits(everything, args.split_strategy, args.held_out, args.validation_fraction,
                       args.test_fraction if args.split_strategy == "random" else 0.0, seed)


def main(script_args, training_args, model_args):
    import json
    import logging
    import os
    import shutil

    import transformers
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, set_seed

    from affectlab.callbacks import GradientHealthCallback
    from affectlab.hub import claim_push, publish_finished_run
    from affectlab.io import atomic_write_json
    from affectlab.metrics import metric_module
    from affectlab.paths import resolve_model_name
    from affectlab.personas import PersonaRegistry, add_persona_tokens, persona_view
    from custom_models.regression_head import RegressionHeadModel

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logger = logging.getLogger("train_regression")
    transformers.utils.logging.set_verbosity_warning()
    set_seed(training_args.seed)
    report_fn = metric_module("regression_report").regression_report

    # ---- data -----------------------------------------------------------------------------------
    raw, label_set, registry = load_records(script_args, training_args.seed)
    splits = prepare_splits(raw, script_args, training_args.seed)
    used = sorted(set().union(*(set(d["persona_id"]) for d in splits.values())))
    personas = PersonaRegistry([p for p in registry if p.id in used], source=registry.source)
    if script_args.max_train_samples:
        n = min(script_args.max_train_samples, len(splits["train"]))
        splits["train"] = splits["train"].shuffle(seed=training_args.seed).select(range(n))
    if script_args.max_eval_samples:
        for s in [s for s in splits if s != "train"]:
            splits[s] = splits[s].shuffle(seed=training_args.seed).select(range(min(script_args.max_eval_samples, len(splits[s]))))
    logger.info("splits: %s; personas: %s; mode: %s", {k: len(v) for k, v in splits.items()}, personas.ids,
                script_args.persona_mode)
    views = {s: persona_view(d, script_args.persona_mode, personas, label_set) for s, d in splits.items()}

    # ---- model ----------------------------------------------------------------------------------
    model_name = resolve_model_name(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(model_name, revision=model_args.model_revision,
                                              trust_remote_code=model_args.trust_remote_code)
    model = RegressionHeadModel.from_encoder(
        model_name, list(label_set.dimensions), revision=model_args.model_revision,
        trust_remote_code=model_args.trust_remote_code, attn_implementation=model_args.attn_implementation,
        pooling=script_args.pooling, output_scaling=script_args.output_scaling, label_min=label_set.low,
        label_max=label_set.high, loss=script_args.loss, huber_delta=script_args.huber_delta,
        head_dropout=script_args.head_dropout,
    )
    if script_args.persona_mode == "persona_token":
        add_persona_tokens(tokenizer, personas, model)
    model.config.persona_mode = script_args.persona_mode
    model.config.label_set = label_set.to_dict()

    pair = script_args.persona_mode == "personalized_desc"

    def encode(batch):
        enc = tokenizer(batch["input_text"], batch["input_pair"] if pair else None,
                        truncation="only_second" if pair else True, max_length=script_args.max_length)
        enc["labels"] = batch["label_values"]
        enc["length"] = [len(x) for x in enc["input_ids"]]
        return enc

    with training_args.main_process_first(desc="tokenizing"):
        tok = {s: v.map(encode, batched=True, remove_columns=v.column_names, desc=f"Tokenizing {s}") for s, v in views.items()}

    dims = list(label_set.dimensions)

    def compute_metrics(eval_pred):
        preds = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        rep = report_fn(preds, eval_pred.label_ids, label_names=dims, value_range=(label_set.low, label_set.high),
                        n_bins=script_args.n_bins)
        out = {k: rep[k] for k in ("macro_pearson", "macro_spearman", "macro_r2", "macro_mae", "macro_rmse", "macro_ece")}
        out.update({f"pearson_{row['label']}": row["pearson"] for row in rep["per_dimension"]})
        return out

    push_wanted = claim_push(training_args)
    trainer = Trainer(model=model, args=training_args, train_dataset=tok["train"], eval_dataset=tok["validation"],
                      processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
                      compute_metrics=compute_metrics, callbacks=[GradientHealthCallback()])
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)

    # ---- evaluation -----------------------------------------------------------------------------
    output_dir = Path(training_args.output_dir)
    staging = output_dir / ".final-staging"
    if trainer.is_world_process_zero() and staging.exists():
        shutil.rmtree(staging)
    trainer.accelerator.wait_for_everyone()
    results, reports, predictions = {}, {}, {}
    for split in [s for s in ("validation", "test") if s in tok]:
        pred = trainer.predict(tok[split], metric_key_prefix=split)
        values = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        predictions[split] = values
        reports[split] = report_fn(values, pred.label_ids, label_names=dims, personas=splits[split]["persona_id"],
                                   langs=splits[split]["lang"], value_range=(label_set.low, label_set.high),
                                   n_bins=script_args.n_bins)
        results[split] = {k: v for k, v in reports[split].items() if k.startswith("macro_") or k == "num_examples"}
        results[split].update({f"{m}_{row['label']}": row[m] for row in reports[split]["per_dimension"]
                               for m in ("pearson", "r2", "mae")})

    trainer.save_model(str(staging))
    if trainer.is_world_process_zero():
        personas.save(staging / "personas.json")
        atomic_write_json(staging / "label_set.json", label_set.to_dict())
        metric_mod = metric_module("regression_report")
        for split, rep in reports.items():
            metric_mod.reliability_plot(rep["calibration"], staging / f"reliability_{split}.png",
                                        (label_set.low, label_set.high), title=f"Reliability ({split})")
            lines = []
            for row, values in zip(splits[split], predictions[split]):
                lines.append(json.dumps({"id": row["id"], "persona_id": row["persona_id"], "lang": row["lang"],
                                         "labels": row["labels"],
                                         "predicted": {d: float(v) for d, v in zip(dims, values)}}, ensure_ascii=False))
            (staging / f"predictions_{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        text = format_report(reports, script_args, dims)
        (staging / "report.md").write_text(text, encoding="utf-8")
        write_card(staging, script_args, training_args, model_args, results, reports, dims, len(tok["train"]))
        with open(staging / "train_results.json", "w", encoding="utf-8") as fh:
            json.dump({**train_result.metrics, "train_rows": len(tok["train"]), "log_history": trainer.state.log_history}, fh, indent=2)
        output_dir.mkdir(parents=True, exist_ok=True)
        for item in staging.iterdir():
            os.replace(item, output_dir / item.name)
        staging.rmdir()
        atomic_write_json(output_dir / "eval_results.json", {
            "results": results, "reports": {s: {k: v for k, v in r.items() if k != "calibration"} for s, r in reports.items()},
            "persona_mode": script_args.persona_mode, "split_strategy": script_args.split_strategy,
            "held_out": script_args.held_out, "dataset": script_args.dataset_name, "dataset_config": script_args.dataset_config,
            "base_model": model_args.model_name_or_path, "seed": training_args.seed,
            "split_sizes": {k: len(v) for k, v in splits.items()}})
        if script_args.print_report:
            print(text, flush=True)
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        publish_finished_run(output_dir, training_args, push_wanted)
    return results


def format_report(reports: dict, args, dims: list[str]) -> str:
    lines = [f"# Regression report — persona mode `{args.persona_mode}`, split `{args.split_strategy}`"
             + (f" (held out: `{args.held_out}`)" if args.held_out else ""), ""]
    for split, rep in reports.items():
        lines += [f"## {split} ({rep['num_examples']} rows)", "",
                  "| dimension | Pearson r | Spearman ρ | R² | MAE | RMSE | ECE |", "|---|---|---|---|---|---|---|"]
        for row in rep["per_dimension"]:
            lines.append(f"| {row['label']} | {row['pearson']:.4f} | {row['spearman']:.4f} | {row['r2']:.4f} | "
                         f"{row['mae']:.4f} | {row['rmse']:.4f} | {row['ece']:.4f} |")
        lines.append(f"| **macro** | {rep['macro_pearson']:.4f} | {rep['macro_spearman']:.4f} | {rep['macro_r2']:.4f} | "
                     f"{rep['macro_mae']:.4f} | {rep['macro_rmse']:.4f} | {rep['macro_ece']:.4f} |")
        for key, title in (("by_persona", "persona"), ("by_lang", "language")):
            groups = rep.get(key) or {}
            if len(groups) > 1:
                lines += ["", f"By {title}: " + "; ".join(
                    f"`{g}` (n={v['n']}) r={v['macro_pearson']:.3f} MAE={v['macro_mae']:.3f}" for g, v in groups.items())]
        lines += ["", f"![reliability](reliability_{split}.png)", ""]
    return "\n".join(lines) + "\n"


def write_card(folder, args, training_args, model_args, results, reports, dims, train_rows):
    from huggingface_hub import EvalResult

    from affectlab.cards import render_model_card

    evals = []
    for split, m in results.items():
        for key, (mtype, display) in {"macro_pearson": ("pearsonr", "Macro Pearson r"), "macro_spearman": ("spearmanr", "Macro Spearman"),
                                      "macro_r2": ("r_squared", "Macro R2"), "macro_mae": ("mae", "Macro MAE")}.items():
            evals.append(EvalResult(task_type="text-classification", task_name="Emotion regression", dataset_type=args.dataset_name,
                                    dataset_name=args.dataset_name, dataset_config=args.dataset_config, dataset_split=split,
                                    metric_type=mtype, metric_name=f"{display} ({split})", metric_value=round(float(m[key]), 4),
                                    metric_config=key))
    card = render_model_card(
        args.card_template, model_name=Path(training_args.output_dir).name, base_model=model_args.model_name_or_path,
        datasets=[args.dataset_name] if args.dataset_name != "synthetic_medical" else [], eval_results=evals,
        pipeline_tag="text-classification", tags=["emotion", "regression", "persona"],
        base_model_display=model_args.model_name_or_path or "default (all-MiniLM-L6-v2)", dataset=args.dataset_name,
        persona_mode=args.persona_mode, split_strategy=args.split_strategy, held_out=args.held_out, dims=dims,
        reports=reports, loss=args.loss, pooling=args.pooling, max_length=args.max_length,
        learning_rate=training_args.learning_rate, epochs=training_args.num_train_epochs, seed=training_args.seed,
        train_rows=train_rows, synthetic=args.dataset_name == "synthetic_medical",
    )
    card.save(str(Path(folder) / "README.md"))


if __name__ == "__main__":
    from transformers import TrainingArguments
    from trl import TrlParser

    from affectlab.configs import ModelArguments

    parser = TrlParser((RegressionScriptArguments, TrainingArguments, ModelArguments))
    main(*parser.parse_args_and_config())

"""Sentiment benchmark across many models: fine-tune, measure quality and speed, rank, test significance, report.

    affectlab benchmark --config recipes/sentiment_benchmark_cpu.yaml [--models minilm,tiny-bert]
        [--output_dir outputs/bench] [--max_train_samples 2000] [--device auto] [--dtype float32]
    (or `python scripts/benchmark_models.py ...`, the same `main`)

Models come from the registry (`recipes/models.yaml`: Hub id or a local source, family, LoRA targets, default
method); a recipe entry may name another method and learning rate for one run (`name:full`, or `{model: name,
method: full, learning_rate: 5e-5}`, run as `name-full`: `model_entries`); datasets from the dataset builders (`sst2`, ...) with an optional class-balanced subsample. For every
(model, dataset) pair: fine-tune (full / LoRA; QLoRA only on CUDA), predict the evaluation split, compute
accuracy / macro F1 / precision / recall with 95% bootstrap CIs (`affectlab.stats`), measure speed
(`affectlab.benchmark`: warm-up, then >= N iterations and >= T seconds; p50/p90/p99 latency at batch 1, repeated;
throughput at a chosen batch; time to first token of decoders used generatively; peak memory) and write one
leaderboard result record (`affectlab.results.save_result`, model `local/<name>` since the fine-tuned model is
not pushed, base model the Hub id, with per-example predictions, provenance and a `benchmark` section) plus
`<output_dir>/pairs/<model>__<dataset>/pair.json`. A pair whose `pair.json` exists with the same settings is
skipped, so an interrupted sweep resumes. A dataset entry is a registered builder (`{name: sst2}`) or, with
`source`, a Hub repo / Parquet folder whose columns are renamed to `text` / `labels`, e.g. `{name: imdb, source:
stanfordnlp/imdb, label_column: label, eval_split: test}` (online only); `balanced: true` subsamples per class.
Then, per dataset: a ranked table, by quality by default (`rank_by: quality`: accuracy; models whose 95% CIs
overlap are tied and then ordered by p50 latency), with the min-max normalised weighted composite beside it
(`rank_by: composite` makes it the ranking; directions from `affectlab.registry`), McNemar tests and paired bootstrap CIs of accuracy differences between every two models evaluated on the same
rows, the Pareto front of accuracy vs p50 latency, `report_<dataset>.md` and PNG plots.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

from affectlab import benchmark as B
from affectlab import stats
from affectlab.errors import ArgumentError, UserError
from affectlab.io import atomic_write_json, atomic_write_text
from affectlab.paths import resource_path

logger = logging.getLogger("affectlab.sentiment_benchmark")
STABLE_SPREAD = 0.10  # repeated p50 latencies must agree within 10%

DEFAULTS = {
    "models": ["minilm", "tiny-bert", "tiny-gpt2"],
    "model_registry": "recipes/models.yaml",
    "datasets": [{"name": "sst2"}],
    "output_dir": "outputs/bench_sentiment",
    "results_location": None,        # default: <output_dir>/results
    "device": "auto",
    "dtype": "float32",
    "method": None,                  # override every model's default method
    "seed": 1337,
    "n_boot": 1000,
    "max_train_samples": None,       # overrides the datasets' own settings when given
    "max_eval_samples": None,
    "training": {"num_train_epochs": 1, "per_device_train_batch_size": 32, "per_device_eval_batch_size": 128,
                 "max_length": 64, "weight_decay": 0.01, "warmup_steps": 0.06, "lora_r": 16, "lora_alpha": 32,
                 "lora_dropout": 0.05},
    "speed": {},
    "weights": dict(B.DEFAULT_WEIGHTS),
    "rank_by": "quality",            # headline ranking: quality (CI-overlap ties, then speed) or composite
    "speed_texts": 256,
}


# ---------------------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------------------
def load_config(argv=None) -> dict:
    import yaml

    p = argparse.ArgumentParser(prog="affectlab benchmark", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="benchmark recipe (YAML)")
    p.add_argument("--models", help="comma-separated registry names, each optionally with :METHOD "
                                    "(e.g. minilm,smollm2-135m-instruct:full; overrides the recipe)")
    p.add_argument("--datasets", help="comma-separated dataset names (overrides the recipe)")
    for key in ("output_dir", "results_location", "device", "dtype", "method", "model_registry", "rank_by"):
        p.add_argument(f"--{key}")
    for key in ("seed", "n_boot", "max_train_samples", "max_eval_samples"):
        p.add_argument(f"--{key}", type=int)
    args = p.parse_args(argv)
    cfg = json.loads(json.dumps(DEFAULTS))
    if args.config:
        recipe = yaml.safe_load(resource_path("recipes", args.config).read_text(encoding="utf-8")) or {}
        unknown = sorted(set(recipe) - set(DEFAULTS))
        if unknown:
            raise UserError(f"{args.config}: unknown key(s) {unknown}; known: {sorted(DEFAULTS)}")
        for key, value in recipe.items():
            cfg[key] = {**cfg[key], **value} if isinstance(cfg[key], dict) and isinstance(value, dict) else value
    for key, value in vars(args).items():
        if key == "config" or value is None:
            continue
        if key == "models":
            value = [m.strip() for m in value.split(",") if m.strip()]
        if key == "datasets":
            value = [{"name": d.strip()} for d in value.split(",") if d.strip()]
        cfg[key] = value
    cfg["datasets"] = [{"name": d} if isinstance(d, str) else dict(d) for d in cfg["datasets"]]
    if cfg["rank_by"] not in B.RANK_BY:
        raise ArgumentError("rank_by", f"must be one of {list(B.RANK_BY)}, got {cfg['rank_by']!r}")
    return cfg


def load_registry(path: str | Path) -> dict[str, dict]:
    import yaml

    path = resource_path("recipes", path)  # a file from here, else recipes/ of the checkout or the package
    models = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models") or {}
    for name, spec in models.items():
        if spec.get("family") not in ("encoder", "decoder"):
            raise UserError(f"{path}: model {name!r} needs family encoder or decoder")
        if spec.get("method") not in ("full", "lora", "qlora"):
            raise UserError(f"{path}: model {name!r} needs method full, lora or qlora")
        if "params" in spec and not isinstance(spec["params"], (int, float)):
            raise UserError(f"{path}: model {name!r}: params must be a number, got {spec['params']!r}")
        if not spec.get("hub_id") and spec.get("source") not in ("packaged", "config", "pretrained"):
            raise UserError(f"{path}: model {name!r} needs a hub_id or source packaged/config/pretrained")
    return models


ENTRY_KEYS = ("model", "method", "learning_rate")


def model_entries(models: list, registry: dict[str, dict], method_override: str | None = None) -> list[tuple[str, dict]]:
    """(run name, spec) per entry of the recipe's `models`: a registry name (`smollm2-135m-instruct`), a name with
    a method (`smollm2-135m-instruct:full`), or a mapping `{model: NAME, method: full, learning_rate: 3e-5}` that
    overrides the registry's default method / learning rate for that run. A run whose method differs from the
    registry's default is named `<name>-<method>`, so the same model can be benchmarked both ways. `--method`
    overrides every entry's method."""
    out = []
    for entry in models:
        if isinstance(entry, str):
            name, _, method = entry.partition(":")
            entry = {"model": name.strip(), **({"method": method.strip()} if method.strip() else {})}
        if not isinstance(entry, dict) or not entry.get("model"):
            raise ArgumentError("models", f"an entry must be a registry name or {{model: NAME, method: ..., "
                                          f"learning_rate: ...}}, got {entry!r}")
        unknown = sorted(set(entry) - set(ENTRY_KEYS))
        if unknown:
            raise ArgumentError("models", f"entry {entry['model']!r}: unknown key(s) {unknown}; known: {list(ENTRY_KEYS)}")
        name = entry["model"]
        if name not in registry:
            raise ArgumentError("models", f"model {name!r} not in the registry; registered: {sorted(registry)}")
        spec = dict(registry[name])
        method = method_override or entry.get("method") or spec["method"]
        if method not in ("full", "lora", "qlora"):
            raise ArgumentError("models", f"entry {name!r}: method must be full, lora or qlora, got {method!r}")
        run = name if method == spec["method"] else f"{name}-{method}"
        if method != spec["method"]:
            spec.update(method=method, registry_method=spec["method"])
        if entry.get("learning_rate") is not None:  # wins over the recipe's training.learning_rate
            spec["entry_learning_rate"] = float(entry["learning_rate"])
        spec["registry_name"] = name
        if run in [r for r, _ in out]:
            raise ArgumentError("models", f"{run!r} is listed twice")
        out.append((run, spec))
    return out


def stable_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------
# models and data
# ---------------------------------------------------------------------------------------------------------
def resolve_model(name: str, spec: dict, cache_dir: Path, seed: int) -> tuple[str, str]:
    """(local path or Hub id to load, the base model's id for the result record)."""
    from affectlab.paths import default_base_model

    source = spec.get("source")
    if source == "packaged":
        return default_base_model(), "sentence-transformers/all-MiniLM-L6-v2"
    name = spec.get("registry_name", name)
    if source == "config":
        return str(build_local_model(name, spec, cache_dir / name, seed)), f"local/{name}"
    if source == "pretrained":  # a real decoder shipped as GGUF on PyPI, converted once (affectlab.pretrained)
        from affectlab.pretrained import get_spec, pretrained_model_path

        key = spec.get("pretrained", name)
        return str(pretrained_model_path(key)), get_spec(key).hub_id
    return spec["hub_id"], spec["hub_id"]


def build_local_model(name: str, spec: dict, folder: Path, seed: int) -> Path:
    """A randomly initialised model from `spec['config']` (seeded) with the packaged MiniLM tokenizer; decoders
    are saved with their LM head so they load both as classifiers and as causal LMs. Built once per folder."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    from affectlab.io import atomic_dir
    from affectlab.paths import default_base_model

    if (folder / "config.json").is_file():
        return folder
    tok = AutoTokenizer.from_pretrained(default_base_model())
    cfg = dict(spec["config"])
    model_type = cfg.pop("model_type")
    if spec["family"] == "decoder":  # the MiniLM vocabulary has no EOS: [SEP] ends a sequence
        cfg.update(bos_token_id=tok.sep_token_id, eos_token_id=tok.sep_token_id)
    config = AutoConfig.for_model(model_type, vocab_size=len(tok), pad_token_id=tok.pad_token_id, **cfg)
    torch.manual_seed(seed)
    model = (AutoModelForCausalLM if spec["family"] == "decoder" else AutoModel).from_config(config)
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    logger.info("built local model %s (%s, %d parameters) in %s", name, model_type,
                sum(p.numel() for p in model.parameters()), folder)
    return folder


def subsample(ds, n: int | None, balanced: bool, seed: int, label_column: str = "labels"):
    """`n` rows (all when None): shuffled, or class-balanced (n // classes per class; refused if a class is short)."""
    import numpy as np

    if not n or (n >= len(ds) and not balanced):
        return ds
    rng = np.random.default_rng(seed)
    if not balanced:
        return ds.select(sorted(rng.permutation(len(ds))[:n].tolist()))
    labels = np.asarray(ds[label_column])
    classes = np.unique(labels)
    per = min(n, len(ds)) // len(classes)
    picked = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if len(idx) < per:
            raise UserError(f"balanced subsample of {n} rows needs {per} rows of class {c}, the split has {len(idx)}")
        picked.extend(rng.permutation(idx)[:per].tolist())
    return ds.select(sorted(picked))


def load_pair_data(ds_cfg: dict, cfg: dict):
    from affectlab.data import label_names_of, load_named_dataset

    raw = load_named_dataset(ds_cfg.get("source", ds_cfg["name"]), ds_cfg.get("config"), ds_cfg.get("data_dir"))
    # Hub / Parquet datasets (imdb, yelp_polarity, amazon_polarity, ...) name their columns differently
    renames = {ds_cfg.get("text_column", "text"): "text", ds_cfg.get("label_column", "labels"): "labels"}
    renames = {k: v for k, v in renames.items() if k != v}
    if renames:
        raw = raw.rename_columns(renames)
    train_split = ds_cfg.get("train_split", "train")
    held_out = [s for s in raw if s not in (train_split, "test")]
    eval_split = ds_cfg.get("eval_split") or ("validation" if "validation" in raw else held_out[0] if len(held_out) == 1 else None)
    if eval_split not in raw:
        from affectlab.errors import ArgumentError

        raise ArgumentError("datasets", f"{ds_cfg['name']}: no evaluation split {eval_split!r} (splits: {list(raw)}); "
                                        "set eval_split")
    n_train = cfg["max_train_samples"] or ds_cfg.get("max_train_samples")
    n_eval = cfg["max_eval_samples"] or ds_cfg.get("max_eval_samples")
    balanced = bool(ds_cfg.get("balanced", False))
    train = subsample(raw[train_split], n_train, balanced, cfg["seed"])
    evaluation = subsample(raw[eval_split], n_eval, balanced, cfg["seed"] + 1)
    return train, evaluation, label_names_of(raw[train_split]), eval_split


# ---------------------------------------------------------------------------------------------------------
# one (model, dataset) pair
# ---------------------------------------------------------------------------------------------------------
def run_pair(name: str, spec: dict, ds_cfg: dict, cfg: dict, device: str, pair_dir: Path, pair_hash: str) -> dict:
    import numpy as np
    import torch
    from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer,
                              DataCollatorWithPadding, TrainingArguments, set_seed)

    from affectlab.data import tokenize_for_classification
    from affectlab.results import result_record, save_result
    from affectlab.losses import ClassificationLoss, LossConfig
    from affectlab.trainer import ClassificationTrainer, softmax

    method = spec["method"]
    B.check_device_options(device, cfg["dtype"], method)
    set_seed(cfg["seed"])
    tr = cfg["training"]
    path, base_id = resolve_model(name, spec, Path(cfg["output_dir"]) / "_local_models", cfg["seed"])
    train, evaluation, label_names, eval_split = load_pair_data(ds_cfg, cfg)
    num_labels = len(label_names)

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:  # GPT-2-style tokenizers: pad with EOS (the classifier reads the last real token)
        tokenizer.pad_token = tokenizer.eos_token
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg["dtype"]]
    load_kwargs = dict(num_labels=num_labels, id2label=dict(enumerate(label_names)),
                       label2id={n: i for i, n in enumerate(label_names)}, pad_token_id=tokenizer.pad_token_id)
    if method == "qlora":
        from affectlab.peft_utils import quantization_config_4bit

        load_kwargs.update(quantization_config=quantization_config_4bit(compute_dtype=dtype), device_map=device)
    # full / LoRA train float32 weights (bf16 / fp16 only as Trainer autocast); QLoRA computes in `dtype`
    model = AutoModelForSequenceClassification.from_pretrained(
        path, dtype=dtype if method == "qlora" else torch.float32, **load_kwargs)
    total_params = sum(p.numel() for p in model.parameters())
    if method in ("lora", "qlora"):
        from peft import LoraConfig

        from affectlab.peft_utils import add_adapter

        lora = LoraConfig(r=tr["lora_r"], lora_alpha=tr["lora_alpha"], lora_dropout=tr["lora_dropout"],
                          target_modules=list(spec["lora_targets"]), task_type="SEQ_CLS",
                          fan_in_fan_out=any(t.startswith("c_") for t in spec["lora_targets"]))
        model = add_adapter(model, lora, quantized=method == "qlora")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    tok = dict(tokenizer=tokenizer, text_column="text", label_column="labels", num_labels=num_labels,
               multi_label=False, max_length=tr["max_length"])
    train_tok = tokenize_for_classification(train, desc="Tokenizing train", **tok)
    eval_tok = tokenize_for_classification(evaluation, desc="Tokenizing eval", **tok)
    args = TrainingArguments(
        output_dir=str(pair_dir / "trainer"), num_train_epochs=tr["num_train_epochs"],
        max_steps=tr.get("max_steps", -1), learning_rate=float(spec.get("entry_learning_rate") or tr.get("learning_rate")
                                                                     or spec["learning_rate"]),
        per_device_train_batch_size=tr["per_device_train_batch_size"],
        per_device_eval_batch_size=tr["per_device_eval_batch_size"], weight_decay=tr["weight_decay"],
        warmup_steps=tr["warmup_steps"], lr_scheduler_type="linear", eval_strategy="no", save_strategy="no",
        logging_steps=50, report_to="none", seed=cfg["seed"], use_cpu=device == "cpu",
        bf16=cfg["dtype"] == "bfloat16", fp16=cfg["dtype"] == "float16", dataloader_num_workers=0,
        train_sampling_strategy="group_by_length", disable_tqdm=True,
    )
    trainer = ClassificationTrainer(model=model, args=args, train_dataset=train_tok, processing_class=tokenizer,
                                    data_collator=DataCollatorWithPadding(tokenizer), loss_fn=ClassificationLoss(LossConfig("ce")))
    start = time.perf_counter()
    train_out = trainer.train()
    train_time = time.perf_counter() - start

    pred = trainer.predict(eval_tok)
    logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    y_pred = softmax(logits).argmax(-1)
    y_true = np.asarray(pred.label_ids).astype(int)
    labels = range(num_labels)
    quality = stats.classification_metrics(y_true, y_pred, labels=labels)
    ci = stats.bootstrap_ci(y_true, y_pred, n_boot=cfg["n_boot"], seed=cfg["seed"], labels=labels)

    # ---- speed: the fine-tuned classifier (LoRA folded in), then TTFT of decoders used generatively --------
    model = trainer.model
    if method == "lora":
        model = model.merge_and_unload()
    if method != "qlora" and dtype != torch.float32:
        model = model.to(dtype)  # measured in the requested precision
    model.eval()
    speed_cfg = B.SpeedConfig(**{"max_length": tr["max_length"], **cfg["speed"]})
    texts = list(evaluation["text"][: cfg["speed_texts"]])
    speed: dict = {"settings": vars(speed_cfg), "torch_threads": torch.get_num_threads()}
    with B.MemoryTracker(device) as mem:
        runs, samples = [], []
        for _ in range(speed_cfg.repeats):
            lat_stats, times = B.measure_latency(model, tokenizer, texts, speed_cfg, device, mem)
            runs.append(lat_stats)
            samples.append((times * 1000).round(4).tolist())
        speed["latency_runs"] = runs
        speed["throughput"] = B.measure_throughput(model, tokenizer, texts, speed_cfg, device, mem)
    speed["memory"] = mem.result()
    p50s = [r["p50_ms"] for r in runs]
    speed["latency_p50_spread"] = B.relative_spread(p50s) if len(p50s) > 1 else 0.0
    if spec["family"] == "decoder":
        del model, trainer
        lm_kwargs = {"device_map": device, "quantization_config": load_kwargs["quantization_config"]} if method == "qlora" else {}
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **lm_kwargs).eval()
        if method != "qlora":
            lm.to(device)
        speed["ttft"] = B.measure_ttft(lm, tokenizer, texts, speed_cfg, device)
        speed["ttft"]["note"] = "base decoder (not the fine-tuned head) generating 1 token after the review text, batch 1"

    lat = runs[0]
    record = result_record(  # the fine-tuned model is not pushed: `local/<name>`, never a Hub link
        model_repo=f"local/{name}", revision=None, task="sentiment", dataset=ds_cfg["name"],
        dataset_config=ds_cfg.get("config"), split=eval_split, metrics=quality, y_true=y_true, y_pred=y_pred,
        dataset_rows=evaluation["text"], base_model=base_id, method=method, family="classifier", seed=cfg["seed"],
        config={"pair": pair_hash, "model": spec, "dataset": ds_cfg, "training": tr, "method": method,
                "dtype": cfg["dtype"]}, primary_metric="accuracy", label_names=label_names)
    record["benchmark"] = {
        "model": name, "family": spec["family"], "method": method, "device": device, "dtype": cfg["dtype"],
        "params": total_params, "params_registry": spec.get("params"), "trainable_params": trainable,
        "train_rows": len(train_tok), "train_time_s": train_time, "train_loss": train_out.training_loss,
        "ci": ci, "speed": speed,
    }
    result_path = save_result(record, cfg["results_location"] or str(Path(cfg["output_dir"]) / "results"))
    summary = {
        "model": name, "dataset": ds_cfg["name"], "pair_hash": pair_hash, "result_path": result_path,
        "family": spec["family"], "method": method, "params": total_params, "trainable_params": trainable,
        **quality, "ci": ci, "latency_p50_ms": lat["p50_ms"], "latency_p90_ms": lat["p90_ms"],
        "latency_p99_ms": lat["p99_ms"], "latency_p50_runs_ms": p50s, "latency_p50_spread": speed["latency_p50_spread"],
        "throughput": speed["throughput"]["samples_s"], "tokens_s": speed["throughput"]["tokens_s"],
        "ttft_p50_ms": speed.get("ttft", {}).get("p50_ms"), "peak_memory_mb": speed["memory"]["peak_rss_mb"],
        "memory": speed["memory"], "train_time_s": train_time, "train_rows": len(train_tok),
        "eval_fingerprint": record["dataset"]["fingerprint"], "y_true": y_true.tolist(), "y_pred": y_pred.tolist(),
        "latency_samples_ms": samples[0],
    }
    atomic_write_json(pair_dir / "pair.json", summary)  # written last: its presence marks the pair finished
    return summary


# ---------------------------------------------------------------------------------------------------------
# comparison and report
# ---------------------------------------------------------------------------------------------------------
def compare(summaries: list[dict], weights: dict, n_boot: int, seed: int,
            rank_by: str = "quality") -> tuple[list[dict], list[dict], list[int]]:
    """Ranked rows (headline `rank_by`: quality with CI-overlap ties ordered by latency, or composite), pairwise
    McNemar + bootstrap accuracy-difference CIs, Pareto front (indices into summaries)."""
    import itertools

    ranked = B.rank_table(summaries, weights, by=rank_by, quality="accuracy", speed="latency_p50_ms")
    tests = []
    for a, b in itertools.combinations(ranked, 2):
        if a["eval_fingerprint"] != b["eval_fingerprint"]:
            continue  # not evaluated on the same rows: no paired test
        m = stats.mcnemar(a["y_true"], a["y_pred"], b["y_pred"])
        d = stats.bootstrap_diff_ci(a["y_true"], a["y_pred"], b["y_pred"], "accuracy", n_boot=n_boot, seed=seed)
        tests.append({"model_a": a["model"], "model_b": b["model"], **m, "acc_diff": d["diff"],
                      "acc_diff_ci_low": d["ci_low"], "acc_diff_ci_high": d["ci_high"]})
    front = B.pareto_front([s["accuracy"] for s in summaries], [s["latency_p50_ms"] for s in summaries])
    return ranked, tests, front


def ranking_markdown(ranked: list[dict]) -> str:
    head = ("| rank | model | method | params | accuracy [95% CI] | macro-F1 [95% CI] | p50 / p90 / p99 ms (batch 1) "
            "| p50 repeat runs ms | samples/s | tokens/s | TTFT p50 ms | peak RSS MB | train s | composite (rank) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in ranked:
        ci = r["ci"]
        ttft = f"{r['ttft_p50_ms']:.2f}" if r.get("ttft_p50_ms") is not None else "–"
        lines.append(
            f"| {r['rank']} | {r['model']} | {r['method']} | {r['params'] / 1e6:.1f}M | {r['accuracy']:.4f} "
            f"[{ci['accuracy']['ci_low']:.4f}, {ci['accuracy']['ci_high']:.4f}] | {r['macro_f1']:.4f} "
            f"[{ci['macro_f1']['ci_low']:.4f}, {ci['macro_f1']['ci_high']:.4f}] | {r['latency_p50_ms']:.2f} / "
            f"{r['latency_p90_ms']:.2f} / {r['latency_p99_ms']:.2f} | "
            f"{', '.join(f'{x:.2f}' for x in r['latency_p50_runs_ms'])} ({100 * r['latency_p50_spread']:.1f}% apart) | "
            f"{r['throughput']:.1f} | {r['tokens_s']:.0f} | {ttft} | {r['peak_memory_mb']:.0f} | {r['train_time_s']:.1f} "
            f"| {r['composite']:.3f} ({r['composite_rank']}) |")
    return "\n".join(lines)


def tests_markdown(tests: list[dict]) -> str:
    if not tests:
        return "No paired tests (fewer than two models evaluated on the same rows)."
    lines = ["| model A | model B | b (A right, B wrong) | c (A wrong, B right) | McNemar | p | accuracy A − B [95% CI] |",
             "|---|---|---|---|---|---|---|"]
    for t in tests:
        lines.append(f"| {t['model_a']} | {t['model_b']} | {t['b']} | {t['c']} | {t['method']} {t['statistic']:.3f} | "
                     f"{t['p_value']:.3g} | {t['acc_diff']:+.4f} [{t['acc_diff_ci_low']:+.4f}, {t['acc_diff_ci_high']:+.4f}] |")
    return "\n".join(lines)


def write_plots(out_dir: Path, dataset: str, summaries: list[dict], front: list[int]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    lat = [s["latency_p50_ms"] for s in summaries]
    acc = [s["accuracy"] for s in summaries]
    ax.scatter(lat, acc, c=["tab:red" if i in front else "tab:blue" for i in range(len(summaries))])
    for s in summaries:
        ax.annotate(s["model"], (s["latency_p50_ms"], s["accuracy"]), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.step([lat[i] for i in front], [acc[i] for i in front], where="post", color="tab:red", label="Pareto front")
    ax.set_xscale("log")
    ax.set(xlabel="p50 latency, batch 1 (ms, log)", ylabel="accuracy", title=f"{dataset}: accuracy vs latency")
    ax.legend()
    fig.tight_layout()
    paths.append(out_dir / f"{dataset}_accuracy_vs_latency.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    f1 = [s["ci"]["macro_f1"] for s in summaries]
    ax.bar(range(len(summaries)), [c["value"] for c in f1],
           yerr=[[c["value"] - c["ci_low"] for c in f1], [c["ci_high"] - c["value"] for c in f1]], capsize=4)
    ax.set_xticks(range(len(summaries)), [s["model"] for s in summaries], rotation=30, ha="right")
    ax.set(ylabel="macro-F1 (95% bootstrap CI)", title=f"{dataset}: macro-F1")
    fig.tight_layout()
    paths.append(out_dir / f"{dataset}_f1_ci.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.boxplot([s["latency_samples_ms"] for s in summaries], showfliers=True)
    ax.set_xticks(range(1, len(summaries) + 1), [s["model"] for s in summaries], rotation=30, ha="right")
    ax.set_yscale("log")
    ax.set(ylabel="latency per call, batch 1 (ms, log)", title=f"{dataset}: latency distributions")
    fig.tight_layout()
    paths.append(out_dir / f"{dataset}_latency.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def write_report(out_dir: Path, dataset: str, ranked, tests, front, summaries, weights, device,
                 rank_by: str = "quality") -> Path:
    plots = write_plots(out_dir, dataset, summaries, front)
    front_names = [summaries[i]["model"] for i in front]
    unstable = [f"{r['model']} ({100 * r['latency_p50_spread']:.1f}%)" for r in ranked
                if r["latency_p50_spread"] > STABLE_SPREAD]
    stability = (f"The repeated p50 latencies of every model agree within {100 * STABLE_SPREAD:.0f}%." if not unstable else
                 f"UNSTABLE: the repeated p50 latencies differ by more than {100 * STABLE_SPREAD:.0f}% for "
                 f"{', '.join(unstable)}; the machine was probably busy: rerun the speed part on a quiet machine.")
    text = "\n\n".join([
        f"# Sentiment benchmark: {dataset}",
        f"Device: {device}. " + (
            "Ranked by accuracy: models whose 95% CIs overlap share a rank (tied) and are then ordered by p50 "
            "latency (faster first); " if rank_by == "quality" else "Ranked by the composite; ") +
        f"composite = min-max normalised weighted sum, weights {weights} (shown with its own rank). Accuracy/F1 CIs: "
        "95% percentile bootstrap over evaluation examples. Latency: batch 1, after warm-up, >= N iterations and "
        ">= T seconds; the speed measurement was repeated and each run's p50 is listed.",
        "## Ranking", ranking_markdown(ranked), f"Latency stability: {stability}",
        "## Paired significance (McNemar; bootstrap CI of the accuracy difference)", tests_markdown(tests),
        f"## Pareto front (accuracy vs p50 latency)\n\n{', '.join(front_names)}",
        "## Plots", "\n".join(f"![{p.stem}]({p.name})" for p in plots),
    ]) + "\n"
    path = out_dir / f"report_{dataset}.md"
    atomic_write_text(path, text)
    atomic_write_json(out_dir / f"summary_{dataset}.json", {
        "rank_by": rank_by,
        "ranking": [{k: v for k, v in r.items() if k not in ("y_true", "y_pred", "latency_samples_ms")} for r in ranked],
        "tests": tests, "pareto_front": front_names, "latency_unstable": unstable})
    return path


# ---------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    """Run (or resume) the sweep of `argv` (the command-line flags); returns what ran, was skipped, the reports
    and the rankings per dataset."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    cfg = load_config(argv)
    registry = load_registry(cfg["model_registry"])
    unknown = [m for m in cfg["models"] if isinstance(m, str) and m.partition(":")[0] not in registry]
    if unknown:
        raise ArgumentError("models", f"model(s) {unknown} not in {cfg['model_registry']}; registered: {sorted(registry)}")
    entries = model_entries(cfg["models"], registry, cfg["method"])
    device = B.detect_device(cfg["device"])
    for _, spec in entries:  # refuse impossible options before anything runs
        B.check_device_options(device, cfg["dtype"], spec["method"])
    out_dir = Path(cfg["output_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    ran, skipped, reports, rankings = [], [], [], {}
    for ds_cfg in cfg["datasets"]:
        summaries = []
        for name, spec in entries:
            pair_hash = stable_hash({"model": {k: v for k, v in spec.items() if k != "registry_name"}, "dataset": ds_cfg, "training": cfg["training"], "speed": cfg["speed"],
                                     "seed": cfg["seed"], "method": cfg["method"], "dtype": cfg["dtype"], "device": device,
                                     "max_train": cfg["max_train_samples"], "max_eval": cfg["max_eval_samples"],
                                     "speed_texts": cfg["speed_texts"]})
            pair_dir = out_dir / "pairs" / f"{name}__{ds_cfg['name']}"
            done = pair_dir / "pair.json"
            if done.is_file():
                summary = json.loads(done.read_text(encoding="utf-8"))
                if summary.get("pair_hash") == pair_hash:
                    logger.info("skipping %s on %s: finished (%s)", name, ds_cfg["name"], done)
                    skipped.append((name, ds_cfg["name"]))
                    summaries.append(summary)
                    continue
                logger.info("%s on %s: settings changed since the finished run; running again", name, ds_cfg["name"])
            logger.info("running %s on %s (%s)", name, ds_cfg["name"], device)
            summaries.append(run_pair(name, spec, ds_cfg, cfg, device, pair_dir, pair_hash))
            ran.append((name, ds_cfg["name"]))
        ranked, tests, front = compare(summaries, cfg["weights"], cfg["n_boot"], cfg["seed"], cfg["rank_by"])
        reports.append(write_report(out_dir, ds_cfg["name"], ranked, tests, front, summaries, cfg["weights"], device,
                                    cfg["rank_by"]))
        rankings[ds_cfg["name"]] = ranked
        print(f"\n## {ds_cfg['name']}\n\n{ranking_markdown(ranked)}\n\n{tests_markdown(tests)}\n", flush=True)
    return {"ran": ran, "skipped": skipped, "reports": [str(p) for p in reports], "rankings": rankings}


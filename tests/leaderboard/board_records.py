"""Result records of every task family for the leaderboard app's tests, built with
`affectlab.results.result_record` (classification, multi-label with label names, regression, per-example
scores) plus the `benchmark` speed section the sentiment benchmark writes (`affectlab.sentiment_benchmark`).

Predictions are drawn so that the rankings are known: within each table the models differ by clear margins
except where a tie is meant (`org/minilm-goemotions-lora` vs `org/roberta-goemotions` is close)."""

from __future__ import annotations

import datetime as dt

import numpy as np

SHA = {name: f"{i:x}".rjust(2, "0") * 20 for i, name in enumerate(
    ["roberta", "minilm", "smoke", "deberta", "gemma", "spanbert", "minilm-span", "reg-a", "reg-b", "qwen",
     "gemma-sft", "new", "semeval"], start=17)}
H100 = {"platform": "Linux-x86_64", "machine": "x86_64", "cpu_count": 16, "cuda": True, "gpus": ["NVIDIA H100 80GB HBM3"]}
CPU = {"platform": "Linux-x86_64", "machine": "x86_64", "cpu_count": 2, "cuda": False}
EMOTIONS = ["admiration", "amusement", "anger", "gratitude", "joy", "sadness"]
WHEN = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)


def _flip(rng, y, rate):
    """Multi-label rows with `rate` of the cells flipped."""
    y = np.array(y)
    mask = rng.random(y.shape) < rate
    return np.where(mask, 1 - y, y)


def _wrong(rng, y, rate, k):
    p = np.array(y)
    idx = rng.random(len(p)) < rate
    p[idx] = (p[idx] + 1 + rng.integers(0, k - 1, idx.sum())) % k
    return p


def _finish(rec, params=None, hardware=None, days=0):
    from affectlab.stats import record_metric

    rec["metrics"][rec["task"]["primary_metric"]] = record_metric(rec).value
    if params:
        rec["model"]["params"] = params
    if hardware:
        rec["hardware"] = hardware
    return rec


def _record(model, rev, dataset, split, rows, *, metric, family, task, task_type="text-classification", days=0,
            **kw):
    from affectlab.results import result_record

    seed, extra = kw.pop("seed", 42), kw.pop("extra", {})
    return result_record(model_repo=model, revision=rev, task=task, dataset=dataset, split=split,
                         metrics={metric: 0.0, **extra}, dataset_rows=rows, family=family, primary_metric=metric,
                         task_type=task_type, seed=seed, config={"model": model, "seed": seed},
                         date=WHEN + dt.timedelta(days=days), **kw)


def sst2_rows(n=400):
    return [{"text": f"review {i}", "label": int(i % 2)} for i in range(n)]


def sentiment_benchmark_record(name, base, y, p, *, params, p50, thr, method="full", ttft=None, days=0):
    """A record as `affectlab.sentiment_benchmark.run_pair` writes it (local model, benchmark section)."""
    from affectlab.results import result_record
    from affectlab.stats import classification_metrics

    quality = classification_metrics(y, p, labels=range(2))
    rec = result_record(model_repo=f"local/{name}", revision=None, task="sentiment", dataset="sst2", split="train_heldout",
                        metrics=quality, y_true=y, y_pred=p, dataset_rows=[r["text"] for r in sst2_rows(len(y))],
                        base_model=base, method=method, family="classifier", seed=1337, config={"m": name},
                        primary_metric="accuracy", label_names=["negative", "positive"],
                        date=WHEN + dt.timedelta(days=days))
    rec["hardware"] = CPU
    speed = {"latency_runs": [{"p50_ms": p50, "p90_ms": p50 * 1.2, "p99_ms": p50 * 1.6, "n": 50},
                              {"p50_ms": p50 * 1.02, "p90_ms": p50 * 1.2, "p99_ms": p50 * 1.7, "n": 50}],
             "throughput": {"batch_size": 32, "samples_s": thr, "tokens_s": thr * 20.0},
             "memory": {"peak_rss_mb": 900.0}}
    if ttft:
        speed["ttft"] = {"p50_ms": ttft}
    rec["benchmark"] = {"model": name, "family": "decoder" if ttft else "encoder", "method": method, "device": "cpu",
                        "dtype": "float32", "params": params, "trainable_params": params, "speed": speed}
    return rec


def records() -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    # ---- emotions: multi-label GoEmotions validation (300 rows) + a 32-row smoke evaluation ---------------------
    ml = (rng.random((300, len(EMOTIONS))) < 0.25).astype(int)
    rows = [{"id": f"ge{i}"} for i in range(300)]
    tuned = {"extra": {"macro_f1_at_global_threshold": 0.5}}
    for name, rev, rate, base, method, params, hw, seed, days in (
            ("org/roberta-goemotions", SHA["roberta"], 0.06, "FacebookAI/roberta-base", "full", 124_650_000, H100, 1, 0),
            ("org/roberta-goemotions", SHA["roberta"], 0.06, "FacebookAI/roberta-base", "full", 124_650_000, H100, 2, 1),
            ("org/minilm-goemotions-lora", SHA["minilm"], 0.07, "sentence-transformers/all-MiniLM-L6-v2", "lora",
             22_700_000, CPU, 1, 0),
            ("local/minilm-demo", None, 0.2, "sentence-transformers/all-MiniLM-L6-v2", "full", 22_700_000, CPU, 1, 0)):
        out.append(_finish(_record(name, rev, "goemotions", "validation", rows, metric="macro_f1", family="classifier",
                                   task="emotion-multilabel", y_true=ml, y_pred=_flip(rng, ml, rate),
                                   base_model=base, method=method, label_names=EMOTIONS, dataset_config="simplified",
                                   seed=seed, days=days, **tuned), params, hw))
    out.append(_finish(_record("org/minilm-smoke", SHA["smoke"], "goemotions", "validation", rows[:32], metric="macro_f1",
                               family="classifier", task="emotion-multilabel", y_true=ml[:32],
                               y_pred=_flip(rng, ml[:32], 0.01), base_model="sentence-transformers/all-MiniLM-L6-v2",
                               method="full", label_names=EMOTIONS, dataset_config="simplified", **tuned), None, CPU))
    se = (rng.random((120, len(EMOTIONS))) < 0.3).astype(int)
    for name, rev, rate, base, method in (
            ("org/roberta-goemotions", SHA["roberta"], 0.12, "FacebookAI/roberta-base", "full"),
            ("org/minilm-goemotions-lora", SHA["minilm"], 0.2, "sentence-transformers/all-MiniLM-L6-v2", "lora")):
        out.append(_finish(_record(name, rev, "semeval2018_ec", "train", [{"id": f"se{i}"} for i in range(120)],
                                   metric="macro_f1", family="classifier", task="emotion-multilabel", y_true=se,
                                   y_pred=_flip(rng, se, rate), base_model=base, method=method, days=2,
                                   label_names=EMOTIONS, dataset_config="goemotions_taxonomy"), None, H100))
    # ---- sentiment: the benchmark's three models on SST-2 validation (400 rows) ----------------------------------
    y = np.array([r["label"] for r in sst2_rows()])
    for name, base, rate, params, p50, thr, method, ttft in (
            ("minilm", "sentence-transformers/all-MiniLM-L6-v2", 0.09, 22_713_216, 5.99, 198.5, "full", None),
            ("tiny-bert", "prajjwal1/bert-tiny", 0.22, 4_386_178, 0.48, 21138.8, "full", None),
            ("tiny-gpt2", "sshleifer/tiny-gpt2", 0.48, 103_874, 0.41, 24051.0, "lora", 0.9)):
        out.append(sentiment_benchmark_record(name, base, y, _wrong(rng, y, rate, 2), params=params, p50=p50, thr=thr,
                                              method=method, ttft=ttft))
    # ---- criterion matching: ReDSM5 NLI pairs, test posts (270 pairs) ---------------------------------------------
    yn = (rng.random(270) < 0.3).astype(int)
    for name, rev, rate, base, method, hw in (("org/deberta-redsm5-nli", SHA["deberta"], 0.12, "microsoft/deberta-v3-base", "full", H100),
                                              ("org/gemma-redsm5-nli", SHA["gemma"], 0.18, "google/gemma-2-2b", "qlora", H100)):
        out.append(_finish(_record(name, rev, "redsm5", "test", [{"pair": i} for i in range(270)], metric="macro_f1",
                                   family="nli", task="dsm5-criterion-matching", y_true=yn, y_pred=_wrong(rng, yn, rate, 2),
                                   base_model=base, method=method, label_names=["absent", "present"],
                                   dataset_config="nli"), None, hw))
    # ---- evidence spans: per-example SQuAD F1 / exact (150 questions) ---------------------------------------------
    for name, rev, mean in (("org/spanbert-redsm5-evidence", SHA["spanbert"], 72.0), ("org/minilm-redsm5-evidence", SHA["minilm-span"], 55.0)):
        f1 = np.clip(rng.normal(mean, 25, 150), 0, 100)
        out.append(_finish(_record(name, rev, "redsm5", "validation", [{"q": i} for i in range(150)], metric="f1",
                                   family="span-qa", task="evidence-span-extraction", task_type="question-answering",
                                   scores={"f1": f1, "exact": (f1 > 80).astype(float) * 100},
                                   base_model="SpanBERT/spanbert-base-cased", method="full", dataset_config="evidence",
                                   extra={"exact": 0.0}), 108_000_000, H100))
    for rec in out[-2:]:
        rec["metrics"]["exact"] = float(np.mean(rec["predictions"]["scores"]["exact"]))
    # ---- persona regression: EmoBank V/A/D (200 texts) -------------------------------------------------------------
    vad = rng.normal(3.0, 0.6, (200, 3))
    for name, rev, noise in (("org/roberta-emobank-persona", SHA["reg-a"], 0.35), ("org/minilm-emobank", SHA["reg-b"], 0.8)):
        out.append(_finish(_record(name, rev, "emobank", "validation", [{"t": i} for i in range(200)],
                                   metric="macro_pearson", family="regression", task="emotion-regression",
                                   y_true=vad, y_pred=vad + rng.normal(0, noise, vad.shape), label_names=["V", "A", "D"],
                                   base_model="FacebookAI/roberta-base", method="full"), None, H100))
    # ---- LLM SFT: usable answers (per-example 0/1) of 100 prompts ----------------------------------------------------
    for name, rev, rate, base, method in (("org/qwen-emotions-sft", SHA["qwen"], 0.93, "Qwen/Qwen2.5-0.5B-Instruct", "lora"),
                                          ("org/gemma-emotions-sft", SHA["gemma-sft"], 0.78, "google/gemma-2-2b-it", "qlora")):
        usable = (rng.random(100) < rate).astype(float)
        out.append(_finish(_record(name, rev, "emobank", "validation", [{"p": i} for i in range(100)],
                                   metric="usable_rate", family="sft", task="emotion-regression-llm",
                                   task_type="text-generation", scores={"usable_rate": usable, "parse_rate": usable},
                                   base_model=base, method=method, extra={"parse_rate": float(usable.mean())}),
                           None, H100))
    return out


def write(root) -> list[str]:
    """Save every record into a results folder; returns their paths."""
    from affectlab.results import save_result

    return [save_result(r, root) for r in records()]


def submission(valid: bool = True) -> dict:
    """A new model's SST-2 validation result: valid (pushed revision, the board's rows), or broken (a local
    model without revision, evaluated on 32 other rows, a stored accuracy its predictions do not give)."""
    from affectlab.results import result_record

    rng = np.random.default_rng(9)
    y = np.array([r["label"] for r in sst2_rows()])
    p = _wrong(rng, y, 0.07, 2)
    rec = result_record(model_repo="new-org/electra-sst2", revision=SHA["new"], task="sentiment", dataset="sst2",
                        split="train_heldout", metrics={"accuracy": float(np.mean(y == p))}, y_true=y, y_pred=p,
                        dataset_rows=[r["text"] for r in sst2_rows()], base_model="google/electra-base-discriminator",
                        method="full", family="classifier", seed=1, config={"lr": 3e-5}, primary_metric="accuracy",
                        label_names=["negative", "positive"])
    if valid:
        return rec
    y, p = y[:32], p[:32]
    return result_record(model_repo="local/electra-run", revision=None, task="sentiment", dataset="sst2",
                         split="train_heldout", metrics={"accuracy": 0.99}, y_true=y, y_pred=p,
                         dataset_rows=[f"other {i}" for i in range(32)], family="classifier", seed=1,
                         config={"lr": 3e-5}, primary_metric="accuracy")

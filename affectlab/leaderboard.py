"""Leaderboard tables from a results folder or a results dataset repo (`hf://datasets/<org>/<name>`).

    affectlab leaderboard --results results/ --out leaderboard_out [--n-boot 1000] [--hub-url URL]
    (or `python scripts/leaderboard.py ...`; `leaderboard/app.py` serves the same tables as a Space)

Records of every task family are accepted (`affectlab.results`): class ids or 0/1 rows (classification,
multi-label), values (regression: pearson, r2, mae, ...) or per-example `scores` (span QA, LLM answers: the
metric is their mean); see `affectlab.stats.record_metric`. For every (task, dataset, split) the latest result
of each (model, revision) on each set of evaluated rows is taken, and its primary metric recomputed from the
stored predictions (it must match the stored value). The records of one multi-seed run (`run_group`, written by
`--seeds`) make one row: the pushed seed's record (else the first seed's) is ranked, and the row carries the
spread over the seeds: `seeds` (n), `seed_mean`, `seed_sd` (sample sd) and `seed_values`, each seed's primary
metric recomputed from its latest record (for records without a run group: over the seeds of one model revision). Rows are ranked together only when they were evaluated
on the same rows (same dataset fingerprint): each such set is a `group` (1 = the set most models were
evaluated on), ranked on its own; the others are listed apart below it. The 95% confidence interval is a
percentile bootstrap over the examples (`affectlab.stats.bootstrap`); the group leader's margin over each
other row of its group is tested with a paired bootstrap on the same resamples: `p_vs_leader` is the share of
resamples where the leader is not better, `significant` when it is below 0.05. Whether higher is better comes
from `affectlab.registry`. Models named `local/<name>` (never pushed) are shown without a Hub link.

Every row also carries what a reader needs to cite it: the task family tab (`FAMILIES`: emotions, sentiment,
criterion matching, evidence spans, persona regression, LLM SFT), model metadata (base model, parameters
where known, method, hardware, date, revision), the protocol (split, threshold policy, number of seeds) and
speed where it was measured (the sentiment benchmark's `benchmark.speed` section, or a flat `speed` dict).
`per_label_scores` gives the per-label F1 (or per-dimension r) with CIs of one record; `validate_record` checks
a submitted record and `submit_record` opens a pull request with it on the results dataset.
Writes `leaderboard.csv` (all tasks), `leaderboard.md` and a static `leaderboard.html`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import html
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

COLUMNS = ["task", "dataset", "split", "group", "rank", "model", "revision", "metric", "value", "ci_low", "ci_high",
           "n", "margin_to_leader", "p_vs_leader", "significant", "family", "method", "base_model", "rows", "date",
           "path", "tab", "dataset_config", "revision_full", "fingerprint", "params", "hardware", "seed", "seeds",
           "seed_mean", "seed_sd", "seed_values", "threshold_policy", "multi_label", "latency_p50_ms", "latency_p99_ms", "throughput", "tokens_s",
           "ttft_p50_ms", "peak_memory_mb", "stored_value", "note"]
SPEED_COLUMNS = ["latency_p50_ms", "latency_p99_ms", "throughput", "tokens_s", "ttft_p50_ms", "peak_memory_mb"]
LOCAL_PREFIX = "local/"
ALPHA = 0.05


@dataclass(frozen=True)
class Family:
    """One leaderboard tab: which records it holds and what its protocol is."""

    key: str
    title: str
    families: tuple[str, ...]     # `task.family` values of the records it holds
    summary: str                  # one line under the tab's title
    protocol: str                 # the About tab's paragraph


FAMILIES: list[Family] = [
    Family("emotions", "Emotions", ("classifier",),
           "Multi-label emotion classification (GoEmotions, SemEval-2018 E-c in the GoEmotions taxonomy).",
           "Fine-tuned encoders, one sigmoid per label (BCE / ASL losses). Primary metric: **macro F1 over the "
           "labels**. Multi-label runs tune **one threshold per label**, and the Thresholds column says where: "
           "on train rows held out of training (`heldout_train`, the GoEmotions recipes), cross-fitted on halves "
           "of the scored split (`crossfit`), or on validation itself (`tuned_on_eval`, marked optimistic on "
           "validation; never fitted on test). Every multi-label record also carries `macro_f1_tuned` (tuned on "
           "the split itself, the optimistic reference) and `macro_f1_at_global_threshold`. Runs that select a "
           "checkpoint on validation say so in their card. Single-label runs predict the argmax."),
    Family("sentiment", "Sentiment", ("classifier",),
           "Single-label sentiment (SST-2) and the sentiment benchmark of many base models, with speed.",
           "Primary metric: accuracy (the benchmark) or macro F1 (classifier runs), argmax over the classes. "
           "The benchmark (`affectlab benchmark`) fine-tunes every model on the same training rows and "
           "measures batch-1 latency (warm-up, then at least N calls and T seconds, repeated; p50 / p99) and "
           "throughput at a fixed batch. Its headline ranking is by **quality**: models whose 95% CIs overlap "
           "are tied and ordered by speed; the weighted composite is an option, never the headline."),
    Family("criterion-matching", "Criterion matching", ("nli",),
           "DSM-5 criterion matching on ReDSM5: does a Reddit post show a depression criterion (NLI pairs)?",
           "Every post is paired with the nine criterion descriptions (binary: present / absent); splits are "
           "by post, so no post is in two splits. Primary metric: **macro F1** (argmax). With k-fold CV the "
           "validation record carries the pooled out-of-fold predictions (every non-test pair once); the test "
           "split is the fixed test posts."),
    Family("evidence-spans", "Evidence spans", ("span-qa",),
           "Evidence-span extraction on ReDSM5 as extractive QA (criterion description, post) -> sentences.",
           "SQuAD v2 conventions: per-example **F1** and exact match (percent), posts without evidence are "
           "no-answer examples; the metric is the mean of the per-example scores, and its CI resamples the "
           "examples. Sentence-level evidence precision / recall / F1 are reported beside it."),
    Family("persona-regression", "Persona regression", ("regression",),
           "Emotion-dimension regression (EmoBank valence / arousal / dominance), persona-conditioned.",
           "One output per dimension; persona modes `non_personalized`, `persona_token`, `personalized_desc`; "
           "split protocols `predefined`, `random` (grouped by text), `lolo`, `lopo`. Primary metric: **macro "
           "Pearson r** over the dimensions (recomputed from the stored predictions); MAE / RMSE / R2 / ECE "
           "beside it."),
    Family("llm-sft", "LLM SFT", ("sft",),
           "Causal LMs fine-tuned (TRL SFTTrainer) to answer emotion intensities as JSON.",
           "Greedy answers to the same prompts are parsed and scored. Primary metric: **usable rate**, the share "
           "of prompts whose answer gives a number for every dimension (defined for every model, so every run "
           "ranks); the regression metrics are computed on the usable answers only and read with it."),
]
FAMILY_BY_KEY = {f.key: f for f in FAMILIES}
OTHER = Family("other", "Other", (), "Results of task families without a tab of their own.", "")
_SENTIMENT = re.compile(r"sentiment|sst|polarity|imdb|yelp", re.I)


def is_local_model(model: str) -> bool:
    """`local/<name>`: a model that was not pushed (no Hub page to link to)."""
    return str(model).startswith(LOCAL_PREFIX)


def model_url(model: str, revision: str | None, hub_url: str = "https://huggingface.co") -> str | None:
    """The model's Hub page at `revision`, or None for a `local/` model."""
    if is_local_model(model):
        return None
    return f"{hub_url.rstrip('/')}/{model}" + (f"/tree/{revision}" if revision else "")


def hub_model_id(name: str | None) -> bool:
    """Whether `name` looks like a Hub model id (`org/name`), not a local path or a `local/` model."""
    return bool(name) and not is_local_model(name) and re.fullmatch(r"[\w.-]+/[\w.-]+", str(name)) is not None


def rows_label(fingerprint: str | None, n: int) -> str:
    """Short name of a set of evaluated rows: `sha256:<first 10 hex>… (<n> rows)`."""
    if not fingerprint:
        return f"unknown rows ({n})"
    algo, _, rest = fingerprint.partition(":")
    return f"{algo}:{rest.split(':')[0][:10]}… ({n} rows)"


# ---------------------------------------------------------------------------------------------------------
# what a row says beside its metric
# ---------------------------------------------------------------------------------------------------------
def family_tab(record: dict) -> str:
    """The `FAMILIES` key of a record's tab: by `task.family` (classifier: sentiment or emotions by the task /
    dataset name), else by the task's name and type."""
    task = record.get("task") or {}
    family, name, kind = task.get("family"), str(task.get("name") or "").lower(), str(task.get("type") or "")
    sentiment = bool(_SENTIMENT.search(f"{name} {(record.get('dataset') or {}).get('name', '')}"))
    if family == "classifier":
        return "sentiment" if sentiment else "emotions"
    for fam in FAMILIES:
        if family in fam.families:
            return fam.key
    if "criterion" in name or "nli" in name:
        return "criterion-matching"
    if kind == "question-answering" or "span" in name or "evidence" in name:
        return "evidence-spans"
    if kind == "text-generation" or "llm" in name:
        return "llm-sft"
    if "regression" in name or "regression" in kind:
        return "persona-regression"
    if kind == "text-classification":
        return "sentiment" if sentiment else "emotions"
    return OTHER.key


def _multi_label(record: dict) -> bool:
    y = (record.get("predictions") or {}).get("y_true")
    if not y or not isinstance(y[0], list):
        return False
    return all(v in (0, 1) for row in y[:50] for v in row)


THRESHOLD_POLICIES = {"heldout_train": "per-label, tuned on train rows held out of training",
                      "crossfit": "per-label, cross-fitted on halves of this split",
                      "tuned_on_eval": "per-label, tuned on validation",
                      "global": "global threshold", "argmax": "argmax"}


def threshold_policy(record: dict) -> str:
    """How predictions were made from scores: a record's `protocol.threshold_policy` (the classifier's policy
    names in words, `(optimistic on this split)` where the record says so), else what its family and metrics
    say (per-label thresholds tuned on validation, argmax, not applicable)."""
    protocol = record.get("protocol") or {}
    explicit = protocol.get("threshold_policy")
    if explicit:
        text = THRESHOLD_POLICIES.get(str(explicit), str(explicit))
        return text + (" (optimistic on this split)" if protocol.get("optimistic") else "")
    preds = record.get("predictions") or {}
    if preds.get("y_true") is None:
        return "n/a (scored answers)"
    if _multi_label(record):
        if "macro_f1_at_global_threshold" in (record.get("metrics") or {}):
            tuned = "per-label, tuned on validation"
            return tuned + (" (optimistic on this split)" if record["dataset"]["split"] == "validation" else "")
        return "global threshold"
    t = preds["y_true"]
    if t and isinstance(t[0], list) or any(isinstance(v, float) and not float(v).is_integer() for v in t[:50]):
        return "n/a (regression)"
    return "argmax"


def params_of(record: dict) -> int | None:
    """Parameter count where a record knows it (`model.params`, the benchmark's `params`)."""
    for value in ((record.get("model") or {}).get("params"), (record.get("model") or {}).get("num_parameters"),
                  (record.get("benchmark") or {}).get("params")):
        if isinstance(value, (int, float)) and value > 0:
            return int(value)
    return None


def hardware_label(record: dict) -> str:
    """`1× H100 80GB` (the first GPU's name, short) / `CPU ×16` (+ the benchmark's dtype when not float32)."""
    hw = record.get("hardware") or {}
    bench = record.get("benchmark") or {}
    gpus = hw.get("gpus") or []
    if gpus and bench.get("device", "cuda") == "cuda":
        name = re.sub(r"^(NVIDIA|AMD)\s+|GeForce\s+", "", str(gpus[0])).split()
        label = f"{len(gpus)}× {' '.join(name[:2])}"
    elif bench.get("device") == "mps":
        label = "Apple MPS"
    else:
        label = f"CPU ×{hw['cpu_count']}" if hw.get("cpu_count") else "CPU"
    if bench.get("dtype") and bench["dtype"] not in ("float32", "fp32"):
        label += f" ({bench['dtype']})"
    return label


def speed_of(record: dict) -> dict[str, float]:
    """Speed measured for a record: a flat `speed` dict with the `SPEED_COLUMNS` keys, or the sentiment
    benchmark's `benchmark.speed` (first latency run's p50/p99, throughput, TTFT, peak memory)."""
    out: dict[str, float] = {}
    flat = record.get("speed") or {}
    for key in SPEED_COLUMNS:
        if isinstance(flat.get(key), (int, float)):
            out[key] = float(flat[key])
    speed = (record.get("benchmark") or {}).get("speed") or {}
    runs = speed.get("latency_runs") or []
    if runs:
        out.setdefault("latency_p50_ms", float(runs[0]["p50_ms"]))
        if "p99_ms" in runs[0]:
            out.setdefault("latency_p99_ms", float(runs[0]["p99_ms"]))
    thr = speed.get("throughput") or {}
    if "samples_s" in thr:
        out.setdefault("throughput", float(thr["samples_s"]))
    if "tokens_s" in thr:
        out.setdefault("tokens_s", float(thr["tokens_s"]))
    if (speed.get("ttft") or {}).get("p50_ms") is not None:
        out.setdefault("ttft_p50_ms", float(speed["ttft"]["p50_ms"]))
    mem = speed.get("memory") or {}
    peak = mem.get("cuda_max_allocated_mb") or mem.get("peak_rss_mb")
    if peak:
        out.setdefault("peak_memory_mb", float(peak))
    return out


def _key(r: dict) -> tuple:
    return (r["task"]["name"], r["dataset"]["name"], r["dataset"]["split"], r["model"]["repo_id"],
            r["model"].get("revision"), r["dataset"].get("fingerprint"))


def _run_group_id(r: dict) -> str | None:
    return (r.get("run_group") or {}).get("id")


def _row_key(r: dict) -> tuple:
    """What one leaderboard row stands for: a (model, revision) on a set of rows, or, for records of a multi-seed
    run (`run_group`), the whole group on a set of rows (whichever seed was pushed)."""
    group = _run_group_id(r)
    if group:
        return (r["task"]["name"], r["dataset"]["name"], r["dataset"]["split"], "run_group", group,
                r["dataset"].get("fingerprint"))
    return _key(r)


def _latest(records: list[dict]) -> dict[tuple, dict]:
    latest: dict[tuple, dict] = {}
    for r in records:
        key = _key(r)
        if key not in latest or r["date"] > latest[key]["date"]:
            latest[key] = r
    return latest


def _rows(records: list[dict]) -> dict[tuple, tuple[dict, dict]]:
    """{row key: (the record shown, {seed: the latest record of that seed})}. The record shown is the latest of
    its (model, revision); for a run group, the pushed seed's (a Hub model), else its first seed's."""
    members: dict[tuple, list[dict]] = {}
    for r in records:
        members.setdefault(_row_key(r), []).append(r)
    out = {}
    for key, rs in members.items():
        latest = lambda xs: max(xs, key=lambda x: x["date"])  # noqa: E731
        per_seed: dict = {}
        for r in rs:
            if r.get("seed") is not None and (r["seed"] not in per_seed or r["date"] > per_seed[r["seed"]]["date"]):
                per_seed[r["seed"]] = r
        shown = latest(rs)
        group = rs[0].get("run_group")
        if group:
            pushed = [r for r in rs if not is_local_model(r["model"]["repo_id"])]
            first = [r for r in rs if (group.get("seeds") or [None])[0] == r.get("seed")]
            shown = latest(pushed) if pushed else latest(first) if first else shown
        out[key] = (shown, per_seed)
    return out


def seed_spread(per_seed: dict, metric: str) -> tuple[float | None, float | None, dict]:
    """(mean, sample sd, {seed: value}) of `metric` recomputed from each seed's predictions; sd needs 2 seeds."""
    values = {}
    for seed, r in sorted(per_seed.items(), key=lambda kv: str(kv[0]).zfill(20)):
        try:
            values[seed] = float(metric_of(r, metric).value)
        except (KeyError, ValueError):
            continue
    if not values:
        return None, None, {}
    arr = np.asarray(list(values.values()), dtype=float)
    return float(arr.mean()), (float(arr.std(ddof=1)) if len(arr) > 1 else None), values


def _rank_group(rows: list[dict], metrics: list, higher: bool, n_boot: int, seed: int, alpha: float) -> list[dict]:
    """Rank the rows of one set of evaluated rows; the leader's margin and paired-bootstrap p against each."""
    from affectlab.stats import paired_bootstrap

    order = sorted(range(len(rows)), key=lambda i: (-rows[i]["value"] if higher else rows[i]["value"], rows[i]["model"]))
    lead = order[0]
    out = []
    for rank, i in enumerate(order, 1):
        row = dict(rows[i], rank=rank, margin_to_leader=abs(rows[lead]["value"] - rows[i]["value"]))
        row["p_vs_leader"], row["significant"] = None, None
        if i != lead and rows[i]["_fp"] and metrics[i].n == metrics[lead].n:
            p = paired_bootstrap(metrics[lead], metrics[i], n_boot, seed, alpha, higher)["p_value"]
            row["p_vs_leader"], row["significant"] = p, bool(p < alpha)
        out.append(row)
    return out


def metric_of(record: dict, metric: str):
    """`affectlab.stats.record_metric`, also reading a rate from the per-example 0/1 scores of its stem
    (`usable_rate` as the mean of `scores["usable"]`)."""
    from affectlab.stats import from_values, record_metric

    try:
        return record_metric(record, metric)
    except KeyError:
        scores = (record.get("predictions") or {}).get("scores") or {}
        stem = metric[:-len("_rate")] if metric.endswith("_rate") else None
        if stem and stem in scores:
            return from_values(metric, scores[stem])
        raise


def build_tables(records: list[dict], n_boot: int = 1000, seed: int = 0, alpha: float = ALPHA, strict: bool = True,
                 skipped: list | None = None):
    """One pandas DataFrame per (task, dataset, split): group 1 ranked first, other sets of rows after it.

    The value ranked is always the one recomputed from the stored predictions. A record whose stored primary
    metric disagrees with it raises a ValueError when `strict`; otherwise its row carries the stored value
    and a `note` (e.g. the nli family stores the mean over CV folds beside the pooled out-of-fold predictions).
    A record whose metric cannot be recomputed (no per-example values for it) or whose primary metric differs
    from the others' raises when `strict`; otherwise it is left out and `(path, reason)` appended to `skipped`."""
    import pandas as pd

    from affectlab.registry import higher_is_better
    from affectlab.stats import bootstrap

    groups: dict[tuple, list[dict]] = {}
    for key, (r, per_seed) in _rows(records).items():
        groups.setdefault(key[:3], []).append((r, per_seed))
    tables = {}
    for (task, dataset, split), rs in sorted(groups.items()):
        metric = rs[0][0]["task"]["primary_metric"]
        higher = higher_is_better(metric)
        by_rows: dict[object, list[tuple[dict, object]]] = {}
        for r, per_seed in rs:
            try:
                if r["task"]["primary_metric"] != metric:
                    raise ValueError(f"{r.get('_path')}: primary metric {r['task']['primary_metric']!r} differs from "
                                     f"{metric!r} of the other {task} results on {dataset} ({split})")
                m = metric_of(r, metric)
            except (KeyError, ValueError) as exc:
                if strict:
                    raise
                if skipped is not None:
                    skipped.append((r.get("_path"), str(exc).strip("'\"")))
                continue
            stored = r["metrics"].get(metric)
            note = None
            if stored is not None and not abs(stored - m.value) <= 1e-6 * max(1.0, abs(m.value)):
                if strict:
                    raise ValueError(f"{r.get('_path')}: stored {metric}={stored} but predictions give {m.value}")
                note = (f"the record stores {metric} = {stored:.4g} but its per-example predictions give "
                        f"{m.value:.4g} (e.g. a mean over cross-validation folds beside pooled out-of-fold "
                        "predictions); the board ranks the recomputed value")
            ci = bootstrap(m, n_boot, seed, alpha)
            fp = r["dataset"].get("fingerprint")
            speed = speed_of(r)
            mean, sd, values = seed_spread(per_seed, metric) if len(per_seed) > 1 else (None, None, {})
            row = {"task": task, "dataset": dataset, "split": split, "model": r["model"]["repo_id"],
                   "revision": (r["model"].get("revision") or "")[:12], "metric": metric, "value": m.value,
                   "ci_low": ci.ci_low, "ci_high": ci.ci_high, "n": m.n, "family": r["task"].get("family"),
                   "method": r["model"].get("method"), "base_model": r["model"].get("base_model"),
                   "rows": rows_label(fp, m.n), "date": r["date"], "path": r.get("_path"), "_fp": fp,
                   "tab": family_tab(r), "dataset_config": r["dataset"].get("config"),
                   "revision_full": r["model"].get("revision") or "", "fingerprint": fp, "params": params_of(r),
                   "hardware": hardware_label(r), "seed": r.get("seed"),
                   "seeds": len(per_seed) or None, "seed_mean": mean, "seed_sd": sd,
                   "seed_values": "; ".join(f"{k}: {v:.4f}" for k, v in values.items()) or None,
                   "threshold_policy": threshold_policy(r), "multi_label": _multi_label(r),
                   **{k: speed.get(k) for k in SPEED_COLUMNS}, "stored_value": stored, "note": note}
            # rows without a fingerprint cannot be shown to be the same rows as any other: each stands alone
            by_rows.setdefault(fp or ("unknown", r.get("_path"), row["model"]), []).append((row, m))
        if not by_rows:
            continue
        best = (lambda vals: max(vals)) if higher else (lambda vals: -min(vals))
        ordered = sorted(by_rows.values(), key=lambda g: (-len(g), -best([row["value"] for row, _ in g])))
        out = []
        for number, members in enumerate(ordered, 1):
            ranked = _rank_group([row for row, _ in members], [m for _, m in members], higher, n_boot, seed, alpha)
            out += [dict(row, group=number) for row in ranked]
        frame = pd.DataFrame(out).drop(columns=["_fp"])[COLUMNS]
        frame["params"] = frame["params"].astype("object")
        frame["seeds"] = frame["seeds"].astype("object")
        tables[(task, dataset, split)] = frame
    return tables


def tables_by_tab(tables) -> dict[str, list[tuple]]:
    """Table keys per `FAMILIES` tab (in `FAMILIES` order; `other` last when present)."""
    out: dict[str, list[tuple]] = {f.key: [] for f in FAMILIES}
    for key, df in tables.items():
        tab = df["tab"].mode().iloc[0] if len(df) else OTHER.key
        out.setdefault(tab, []).append(key)
    return out


def pareto_indices(quality, cost, higher_quality: bool = True, lower_cost: bool = True) -> list[int]:
    """Indices of the rows no other row beats on both quality and cost (rows without a cost are left out),
    ordered by cost (`affectlab.benchmark.pareto_front`)."""
    from affectlab.benchmark import pareto_front

    keep = [i for i, c in enumerate(cost) if c is not None and not (isinstance(c, float) and np.isnan(c))]
    q = [quality[i] if higher_quality else -quality[i] for i in keep]
    c = [cost[i] if lower_cost else -cost[i] for i in keep]
    return [keep[j] for j in pareto_front(q, c)]


def per_label_scores(record: dict, n_boot: int = 1000, seed: int = 0, alpha: float = ALPHA):
    """Per-label scores of one record with 95% bootstrap CIs, best first (a DataFrame: label, metric, value,
    ci_low, ci_high, support), or None when the record has no labels to break down. Multi-label 0/1 rows:
    the F1 of each label's column; class ids: each class one-vs-rest F1; rows of regression values: the
    Pearson r of each dimension."""
    import pandas as pd

    from affectlab.stats import bootstrap, from_predictions

    preds = record.get("predictions") or {}
    if preds.get("y_true") is None:
        return None
    t, p = np.asarray(preds["y_true"]), np.asarray(preds["y_pred"])
    names = list((record.get("task") or {}).get("label_names") or [])
    if t.ndim == 2 and _multi_label(record):
        columns = [(j, "f1", t[:, j].astype(int), p[:, j].astype(int)) for j in range(t.shape[1])]
        metric = "f1_present"
    elif t.ndim == 2:
        columns = [(j, "pearson", t[:, j], p[:, j]) for j in range(t.shape[1])]
        metric = "pearson"
    elif names and np.issubdtype(t.dtype, np.integer):
        columns = [(j, "f1", (t == j).astype(int), (p == j).astype(int)) for j in range(len(names))]
        metric = "f1_present"
    else:
        return None
    rows = []
    for j, shown, tj, pj in columns:
        m = from_predictions(metric, tj, pj)
        ci = bootstrap(m, n_boot, seed, alpha)
        support = int(tj.sum()) if metric == "f1_present" else len(tj)
        rows.append({"label": names[j] if j < len(names) else str(j), "metric": shown, "value": m.value,
                     "ci_low": ci.ci_low, "ci_high": ci.ci_high, "support": support})
    return pd.DataFrame(rows).sort_values("value", ascending=False, kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------
# submissions
# ---------------------------------------------------------------------------------------------------------
_SHA = re.compile(r"^[0-9a-f]{40}$")
_FINGERPRINT = re.compile(r"^sha256:([0-9a-f]{64}):(\d+)$")
_TOKEN = re.compile(r"hf_[A-Za-z0-9]{20,}")
MAX_SUBMISSION_BYTES = 50 * 2**20


def known_fingerprints(records: list[dict]) -> dict[tuple[str, str, str], set[str]]:
    """The evaluated rows of each (task, dataset, split) on the board: {(task, dataset, split): {fingerprint}}."""
    out: dict[tuple[str, str, str], set[str]] = {}
    for r in records:
        fp = r["dataset"].get("fingerprint")
        if fp:
            out.setdefault((r["task"]["name"], r["dataset"]["name"], r["dataset"]["split"]), set()).add(fp)
    return out


def parse_submission(data: bytes | str) -> tuple[dict | None, list[str]]:
    """A submitted file's bytes -> (record, errors)."""
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_SUBMISSION_BYTES:
        return None, [f"the file is {len(data) / 2**20:.1f} MiB; at most {MAX_SUBMISSION_BYTES // 2**20} MiB"]
    if _TOKEN.search(data.decode("utf-8", "replace")):
        return None, ["the file contains something shaped like a Hugging Face token (hf_...): remove it, and "
                      "revoke the token"]
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [f"not a JSON document: {exc}"]
    if not isinstance(record, dict):
        return None, ["a result record is a JSON object (affectlab.results.result_record)"]
    return record, []


def validate_record(record: dict, known: dict[tuple[str, str, str], set[str]] | None = None,
                    existing: list[dict] | None = None) -> list[str]:
    """What is wrong with a submitted result record (empty: nothing). Checks the schema, the provenance (a Hub
    model at a commit sha, seed, config hash, library versions, hardware, date), the per-example
    predictions or scores (one per evaluated row, recomputing the stored primary metric), the row
    fingerprint (its form, its row count, and the rows that task, dataset and split has on the board when
    `known`: `known_fingerprints`),
    and that the same model revision is not already on the board for those rows (`existing`)."""
    from affectlab.registry import is_known_metric
    from affectlab.results import RESULT_SCHEMA

    errors: list[str] = []
    if record.get("schema") != RESULT_SCHEMA:
        return [f"schema: expected {RESULT_SCHEMA!r}, got {record.get('schema')!r} (write records with "
                "affectlab.results.result_record)"]
    sections = {"model": dict, "task": dict, "dataset": dict, "metrics": dict, "predictions": dict,
                "versions": dict, "hardware": dict}
    for name, kind in sections.items():
        if not isinstance(record.get(name), kind):
            errors.append(f"{name}: missing (an object)")
    if errors:
        return errors
    model, task, dataset = record["model"], record["task"], record["dataset"]
    repo = model.get("repo_id")
    if not isinstance(repo, str) or not repo:
        errors.append("model.repo_id: missing")
    elif is_local_model(repo) or not hub_model_id(repo):
        errors.append(f"model.repo_id: {repo!r} is not a model on the Hub (<org>/<name>): push the model and "
                      "submit the record of the pushed revision")
    if not isinstance(model.get("revision"), str) or not _SHA.match(model.get("revision") or ""):
        errors.append(f"model.revision: {model.get('revision')!r} is not a commit sha (40 hex digits): the "
                      "evaluated revision must be pinned")
    if model.get("method") not in (None, "full", "lora", "qlora", "dora", "prompt", "zero-shot"):
        errors.append(f"model.method: {model.get('method')!r} is not one of full, lora, qlora, dora")
    for field in ("name", "primary_metric"):
        if not isinstance(task.get(field), str) or not task.get(field):
            errors.append(f"task.{field}: missing")
    metric = task.get("primary_metric")
    if isinstance(metric, str) and metric and not is_known_metric(metric):
        errors.append(f"task.primary_metric: {metric!r} is not a known metric (affectlab.registry.METRICS)")
    for field in ("name", "split"):
        if not isinstance(dataset.get(field), str) or not dataset.get(field):
            errors.append(f"dataset.{field}: missing")
    n_rows = dataset.get("num_rows")
    if not isinstance(n_rows, int) or n_rows < 1:
        errors.append(f"dataset.num_rows: {n_rows!r} is not a positive number of rows")
    fp = dataset.get("fingerprint")
    match = _FINGERPRINT.match(fp) if isinstance(fp, str) else None
    if not match:
        errors.append(f"dataset.fingerprint: {fp!r} is not sha256:<64 hex>:<rows> "
                      "(affectlab.results.fingerprint_rows of the evaluated rows)")
    elif isinstance(n_rows, int) and int(match.group(2)) != n_rows:
        errors.append(f"dataset.fingerprint: hashes {match.group(2)} rows but dataset.num_rows is {n_rows}")
    if match and known and (task.get("name"), dataset.get("name"), dataset.get("split")) in known:
        board = sorted(known[(task["name"], dataset["name"], dataset["split"])])
        if fp not in board:
            errors.append(f"dataset.fingerprint: the evaluated rows ({rows_label(fp, int(match.group(2)))}) are not "
                          f"the rows of {dataset['name']} ({dataset['split']}) that {task['name']} results on this "
                          "leaderboard were evaluated on "
                          f"({', '.join(rows_label(b, int(b.rsplit(':', 1)[1])) for b in board)}): evaluate on "
                          "the leaderboard's split, unchanged and in its order")
    metrics = record["metrics"]
    if not metrics or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values()):
        errors.append("metrics: a non-empty object of numbers")
    elif isinstance(metric, str) and metric not in metrics:
        errors.append(f"metrics: the primary metric {metric!r} is missing")
    preds = record["predictions"]
    has_pairs = preds.get("y_true") is not None and preds.get("y_pred") is not None
    scores = preds.get("scores") or {}
    if not has_pairs and not scores:
        errors.append("predictions: no per-example predictions (y_true / y_pred) or scores: the leaderboard "
                      "recomputes the metric and its CI from them")
    elif isinstance(n_rows, int):
        if has_pairs and not (len(preds["y_true"]) == len(preds["y_pred"]) == n_rows):
            errors.append(f"predictions: y_true has {len(preds['y_true'])} and y_pred {len(preds['y_pred'])} "
                          f"values, but {n_rows} rows were evaluated")
        bad = [k for k, v in scores.items() if not isinstance(v, list) or len(v) != n_rows]
        if bad:
            errors.append(f"predictions.scores: {', '.join(bad)} must have one value per evaluated row ({n_rows})")
    if not errors and isinstance(metric, str):
        try:
            m = metric_of(record, metric)
            stored = float(metrics[metric])
            if not abs(stored - m.value) <= 1e-6 * max(1.0, abs(m.value)):
                errors.append(f"metrics.{metric}: the record says {stored:.6g} but its predictions give {m.value:.6g}")
        except (KeyError, ValueError, TypeError) as exc:
            errors.append(f"predictions: cannot recompute {metric} from them ({exc})")
    if record.get("seed") is not None and not isinstance(record.get("seed"), int):
        errors.append(f"seed: {record.get('seed')!r} is not an integer")
    if not isinstance(record.get("config_hash"), str) or not record["config_hash"].startswith("sha256:"):
        errors.append("config_hash: missing (sha256 of the run's configuration: affectlab.results.config_hash)")
    versions = record["versions"]
    missing = [k for k in ("python", "transformers") if not versions.get(k)]
    if missing:
        errors.append(f"versions: {', '.join(missing)} missing")
    if not record["hardware"]:
        errors.append("hardware: empty (affectlab.results.hardware())")
    try:
        when = _dt.datetime.fromisoformat(str(record.get("date")))
        if when.tzinfo is None:
            errors.append("date: needs a UTC offset (ISO 8601, e.g. 2026-01-02T03:04:05+00:00)")
        elif when > _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(days=1):
            errors.append(f"date: {record['date']} is in the future")
    except ValueError:
        errors.append(f"date: {record.get('date')!r} is not an ISO 8601 date")
    if not errors and existing:
        same = [r for r in existing if r["model"]["repo_id"] == repo and r["model"].get("revision") == model["revision"]
                and r["dataset"]["name"] == dataset["name"] and r["dataset"]["split"] == dataset["split"]
                and r["dataset"].get("fingerprint") == fp and r["task"]["name"] == task["name"]]
        if same:
            errors.append(f"{repo}@{model['revision'][:12]} on {dataset['name']} ({dataset['split']}) is already on "
                          f"the leaderboard ({same[0].get('_path')})")
    return errors


def submission_description(record: dict) -> str:
    m, t, d = record["model"], record["task"], record["dataset"]
    metric = t["primary_metric"]
    return (f"Result submitted through the leaderboard.\n\n* model: `{m['repo_id']}` at `{m['revision']}` "
            f"(base `{m.get('base_model')}`, method {m.get('method')})\n* task: {t['name']} ({t.get('family')})\n"
            f"* dataset: {d['name']} ({d.get('config')}) split `{d['split']}`, {d['num_rows']} rows, "
            f"`{d['fingerprint']}`\n* {metric}: {record['metrics'][metric]:.6g}\n\nThe record was validated "
            "(schema, provenance, per-example predictions recomputing the metric, row fingerprint).")


def submit_record(record: dict, repo_id: str, *, token: str | None = None, endpoint: str | None = None) -> dict:
    """Open a pull request on the results dataset `repo_id` adding the record as
    `<org>/<model>/results_<UTC timestamp>.json` (`affectlab.results.result_path`). Returns
    {pr_url, pr_num, pr_revision, path}. Validate it first (`validate_record`)."""
    from huggingface_hub import CommitOperationAdd, HfApi

    from affectlab.results import result_path

    record = {k: v for k, v in record.items() if not k.startswith("_")}
    path = result_path(record)
    api = HfApi(endpoint=endpoint, token=token)
    data = (json.dumps(record, indent=1, sort_keys=True) + "\n").encode()
    info = api.create_commit(repo_id, repo_type="dataset", create_pr=True,
                             operations=[CommitOperationAdd(path, data)],
                             commit_message=f"Submit {record['model']['repo_id']} on {record['dataset']['name']} "
                                            f"({record['dataset']['split']})",
                             commit_description=submission_description(record))
    return {"pr_url": info.pr_url, "pr_num": info.pr_num, "pr_revision": info.pr_revision, "path": path}


def list_submissions(repo_id: str, *, token: str | None = None, endpoint: str | None = None) -> list[dict]:
    """The pull requests of the results dataset, newest first: {num, title, author, status, created}."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    return [{"num": d.num, "title": d.title, "author": d.author, "status": d.status,
             "created": d.created_at.strftime("%Y-%m-%d %H:%M")}
            for d in api.get_repo_discussions(repo_id, repo_type="dataset", discussion_type="pull_request")]


def _fmt(v, digits=4):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _group_heading(df, group: int) -> str:
    rows = df[df["group"] == group]["rows"].iloc[0]
    if group == 1:
        return f"Ranked on {rows}"
    return f"Evaluated on other rows ({rows}): ranked apart, not comparable with group 1"


def to_markdown(tables) -> str:
    out = ["# affectlab leaderboard", ""]
    for (task, dataset, split), df in tables.items():
        metric = df["metric"].iloc[0]
        out += [f"## {task} — {dataset} ({split}), {metric}", ""]
        for group in sorted(df["group"].unique()):
            if df["group"].nunique() > 1:
                out += [f"{_group_heading(df, group)}", ""]
            out += ["| rank | model | revision | value | 95% CI | n | margin | p vs leader | significant |",
                    "|---:|---|---|---:|---|---:|---:|---:|---|"]
            for r in df[df["group"] == group].itertuples():
                out.append(f"| {r.rank} | {r.model} | `{r.revision}` | {_fmt(r.value)} | [{_fmt(r.ci_low)}, "
                           f"{_fmt(r.ci_high)}] | {r.n} | {_fmt(r.margin_to_leader)} | {_fmt(r.p_vs_leader, 3)} | "
                           f"{_fmt(r.significant)} |")
            out.append("")
    return "\n".join(out)


def _model_cell(model: str, revision: str, hub_url: str) -> str:
    url = model_url(model, revision, hub_url)
    if url is None:
        return f"<span class='local' title='not pushed to the Hub'>{html.escape(model)}</span>"
    return f"<a href='{html.escape(url)}'>{html.escape(model)}</a>"


def to_html(tables, hub_url: str = "https://huggingface.co") -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>affectlab leaderboard</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
             "td,th{border:1px solid #ccc;padding:4px 8px}th{background:#eee}</style></head><body>",
             "<h1>affectlab leaderboard</h1>"]
    for (task, dataset, split), df in tables.items():
        parts.append(f"<h2>{html.escape(task)} — {html.escape(dataset)} ({html.escape(split)}), "
                     f"{html.escape(df['metric'].iloc[0])}</h2>")
        for group in sorted(df["group"].unique()):
            if df["group"].nunique() > 1:
                parts.append(f"<h3>{html.escape(_group_heading(df, group))}</h3>")
            parts.append("<table><tr><th>rank</th><th>model</th><th>revision</th><th>value</th><th>95% CI</th>"
                         "<th>n</th><th>margin</th><th>p vs leader</th><th>significant</th></tr>")
            for r in df[df["group"] == group].itertuples():
                parts.append(f"<tr class='row' data-model='{html.escape(r.model)}' data-group='{r.group}'>"
                             f"<td>{r.rank}</td><td>{_model_cell(r.model, r.revision, hub_url)}</td>"
                             f"<td><code>{html.escape(r.revision)}</code></td><td>{_fmt(r.value)}</td>"
                             f"<td>[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]</td><td>{r.n}</td>"
                             f"<td>{_fmt(r.margin_to_leader)}</td><td>{_fmt(r.p_vs_leader, 3)}</td>"
                             f"<td>{_fmt(r.significant)}</td></tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_outputs(tables, out_dir: str | Path, hub_url: str = "https://huggingface.co") -> dict[str, Path]:
    import pandas as pd

    from affectlab.io import atomic_write_text

    out_dir = Path(out_dir)
    all_rows = pd.concat(list(tables.values()), ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)
    paths = {"csv": out_dir / "leaderboard.csv", "md": out_dir / "leaderboard.md", "html": out_dir / "leaderboard.html"}
    atomic_write_text(paths["csv"], all_rows.to_csv(index=False))
    atomic_write_text(paths["md"], to_markdown(tables))
    atomic_write_text(paths["html"], to_html(tables, hub_url))
    return paths


def main(argv: list[str] | None = None) -> int:
    from affectlab.results import default_results_location, load_results

    parser = argparse.ArgumentParser(prog="affectlab leaderboard", description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=None, help="results folder or hf://datasets/<org>/<name> "
                                                        "(default: $AFFECTLAB_RESULTS or results/)")
    parser.add_argument("--out", default="leaderboard_out")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hub-url", default=None, help="base URL of model links (default: $HF_ENDPOINT or huggingface.co)")
    parser.add_argument("--strict", action="store_true",
                        help="fail on a record whose stored primary metric differs from its predictions' or cannot "
                             "be recomputed (default: rank the recomputed value with a note; leave the other out)")
    args = parser.parse_args(argv)
    records = load_results(args.results or default_results_location())
    skipped: list = []
    tables = build_tables(records, n_boot=args.n_boot, seed=args.seed, strict=args.strict, skipped=skipped)
    for path, reason in skipped:
        print(f"left out: {path}: {reason}", file=sys.stderr)
    for df in tables.values():
        for r in df[df["note"].notna()].itertuples():
            print(f"note: {r.path}: {r.note}", file=sys.stderr)
    paths = write_outputs(tables, args.out, args.hub_url or os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    print(to_markdown(tables))
    print(f"{len(records)} results, {len(tables)} tables -> {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0

"""The one table of metric metadata, and the registry of task families.

Every place that needs to know what a metric is called on the Hub, how it is displayed, or whether
higher is better (model cards, `.eval_results/`, result records, the leaderboard, the benchmark's
ranking) reads it from `METRICS` here (lm-evaluation-harness keeps `higher_is_better` with the metric
in the same way). Per-dimension metrics such as `pearson_V` or `f1_admiration` inherit the metadata of
their stem (`pearson`, `f1`).

Task families register themselves by name in `TASKS` (`affectlab.tasks` holds one module per family);
`get_task("classifier")` imports and returns the family class.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    name: str
    hub_type: str            # the metric `type` in a model card's model-index (Hub / Papers with Code ids)
    display: str             # human name in cards, reports and the leaderboard
    higher_is_better: bool
    scale: float = 1.0       # 1.0: a fraction in [0, 1]; 100.0: a percentage (SQuAD EM/F1)


def _m(name, hub_type, display, higher=True, scale=1.0) -> MetricInfo:
    return MetricInfo(name, hub_type, display, higher, scale)


METRICS: dict[str, MetricInfo] = {m.name: m for m in [
    # classification
    _m("accuracy", "accuracy", "Accuracy"),
    _m("macro_f1", "f1", "Macro F1"),
    _m("micro_f1", "f1", "Micro F1"),
    _m("weighted_f1", "f1", "Weighted F1"),
    _m("macro_precision", "precision", "Macro precision"),
    _m("macro_recall", "recall", "Macro recall"),
    _m("micro_precision", "precision", "Micro precision"),
    _m("micro_recall", "recall", "Micro recall"),
    _m("weighted_precision", "precision", "Weighted precision"),
    _m("weighted_recall", "recall", "Weighted recall"),
    _m("precision", "precision", "Precision"),
    _m("recall", "recall", "Recall"),
    _m("f1", "f1", "F1"),
    _m("f1_present", "f1", "F1 (criterion present)"),
    _m("subset_accuracy", "accuracy", "Subset accuracy"),
    _m("hamming_loss", "hamming_loss", "Hamming loss", higher=False),
    _m("macro_f1_tuned", "f1", "Macro F1 (thresholds tuned on this split)"),
    _m("micro_f1_tuned", "f1", "Micro F1 (thresholds tuned on this split)"),
    _m("macro_f1_at_global_threshold", "f1", "Macro F1 at the global threshold"),
    # extractive QA (SQuAD v2 conventions: percentages)
    _m("exact", "exact_match", "Exact match", scale=100.0),
    _m("HasAns_exact", "exact_match", "Exact match (answerable)", scale=100.0),
    _m("HasAns_f1", "f1", "F1 (answerable)", scale=100.0),
    _m("NoAns_exact", "exact_match", "Exact match (no answer)", scale=100.0),
    _m("NoAns_f1", "f1", "F1 (no answer)", scale=100.0),
    _m("sentence_precision", "precision", "Evidence-sentence precision", scale=100.0),
    _m("sentence_recall", "recall", "Evidence-sentence recall", scale=100.0),
    _m("sentence_f1", "f1", "Evidence-sentence F1", scale=100.0),
    # extractive QA counts (evidence_squad reports them beside the scores)
    _m("total", "count", "Examples"),
    _m("HasAns_total", "count", "Examples with an answer"),
    _m("NoAns_total", "count", "Examples without an answer"),
    _m("sentence_tp", "count", "Evidence sentences found"),
    _m("sentence_fp", "count", "Evidence sentences predicted wrongly", higher=False),
    _m("sentence_fn", "count", "Evidence sentences missed", higher=False),
    # regression
    _m("macro_pearson", "pearsonr", "Macro Pearson r"),
    _m("macro_spearman", "spearmanr", "Macro Spearman rho"),
    _m("macro_r2", "r_squared", "Macro R2"),
    _m("macro_mae", "mae", "Macro MAE", higher=False),
    _m("macro_rmse", "rmse", "Macro RMSE", higher=False),
    _m("macro_ece", "ece", "Macro ECE", higher=False),
    _m("macro_ece_normalized", "ece", "Macro ECE (share of the label range)", higher=False),
    _m("pearson", "pearsonr", "Pearson r"),
    _m("spearman", "spearmanr", "Spearman rho"),
    _m("r2", "r_squared", "R2"),
    _m("mae", "mae", "MAE", higher=False),
    _m("rmse", "rmse", "RMSE", higher=False),
    _m("ece", "ece", "ECE", higher=False),
    # LLM answers
    _m("parse_rate", "accuracy", "Parse rate"),
    _m("schema_valid_rate", "accuracy", "Schema-valid rate"),
    _m("usable_rate", "accuracy", "Usable rate"),
    _m("out_of_range_rate", "accuracy", "Out-of-range rate", higher=False),
    # speed (benchmark)
    _m("throughput", "throughput", "Throughput (samples/s)"),
    _m("latency_p50_ms", "latency", "p50 latency (ms)", higher=False),
    _m("latency_p90_ms", "latency", "p90 latency (ms)", higher=False),
    _m("latency_p99_ms", "latency", "p99 latency (ms)", higher=False),
    _m("tokens_s", "throughput", "Throughput (tokens/s)"),
    _m("ttft_p50_ms", "latency", "p50 time to first token (ms)", higher=False),
    _m("ttft_ms", "latency", "Time to first token (ms)", higher=False),
    _m("peak_memory_mb", "memory", "Peak memory (MiB)", higher=False),
]}

# Stems of per-dimension / per-label metric names: `pearson_V` -> `pearson`, `f1_admiration` -> `f1`.
_STEMS = ("pearson", "spearman", "r2", "mae", "rmse", "ece", "f1", "precision", "recall")


def metric_info(name: str) -> MetricInfo:
    """Metadata of a metric key; per-dimension keys (`pearson_V`) take their stem's. Unknown -> KeyError."""
    if name in METRICS:
        return METRICS[name]
    for stem in _STEMS:
        if name.startswith(stem + "_"):
            base = METRICS[stem]
            return MetricInfo(name, base.hub_type, f"{base.display} ({name[len(stem) + 1:]})", base.higher_is_better,
                              base.scale)
    raise KeyError(f"unknown metric {name!r}: add it to affectlab.registry.METRICS")


def is_known_metric(name: str) -> bool:
    try:
        metric_info(name)
    except KeyError:
        return False
    return True


def higher_is_better(name: str) -> bool:
    return metric_info(name).higher_is_better


# ---------------------------------------------------------------------------------------------------
# task families
# ---------------------------------------------------------------------------------------------------
# name -> "module:Class"; the module is imported on first use (a family's heavy imports stay lazy).
TASKS: dict[str, str] = {
    "classifier": "affectlab.tasks.classification:ClassifierTask",
    "nli": "affectlab.tasks.nli:NLITask",
    "span-qa": "affectlab.tasks.span_qa:SpanQATask",
    "regression": "affectlab.tasks.regression:RegressionTask",
    "sft": "affectlab.tasks.sft:SFTTask",
}


def register_task(name: str, target: str) -> None:
    """Register a family (`"module:Class"`); a new family is one module + one card template + recipes."""
    TASKS[name] = target


def get_task(name: str):
    """The task-family class registered under `name`."""
    try:
        target = TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task family {name!r}; one of {sorted(TASKS)}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)

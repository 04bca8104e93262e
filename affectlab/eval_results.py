"""`eval_results.json`: one typed schema for every task family.

    {
      "schema": "affectlab.eval_results/1",
      "family": "classifier",                       # affectlab.registry.TASKS name
      "task": {"name", "type", "display", "primary_metric", "higher_is_better", "card_metrics"},
      "dataset": {"name", "config", "hub_id", "license", "languages", "split_notes", "absent_splits", "synthetic", ...},
      "splits": {split: {"num_examples", "fingerprint"}},
      "results": {split: {metric: number}},         # scalars only; every key is in affectlab.registry.METRICS
      "details": {split: {...}},                    # non-scalar results (per-label tables, ...)
      "model": {"base_model", "base_model_hub_id", "method"},
      "seed": 1337,
      ...                                           # family entries (thresholds, folds, persona_mode, ...)
    }

`validate_eval_results` checks a loaded file against it (used by the tests, the push and the leaderboard).
"""

from __future__ import annotations

import math
from typing import Any

EVAL_RESULTS_SCHEMA = "affectlab.eval_results/1"
CORE_KEYS = ("schema", "family", "task", "dataset", "splits", "results", "details", "model", "seed")


class EvalResultsError(ValueError):
    """An eval_results.json that does not follow the schema."""


def build_eval_results(task, data, evaluations: dict, *, base_model: str | None, base_model_hub_id: str | None,
                       method: str, seed: int, extra: dict | None = None) -> dict:
    """The eval_results.json payload of one run (see the module docstring)."""
    from affectlab.registry import higher_is_better

    payload: dict[str, Any] = {
        "schema": EVAL_RESULTS_SCHEMA,
        "family": task.name,
        "task": {"name": task.record_task, "type": task.task_type, "display": task.task_display,
                 "primary_metric": task.primary_metric, "higher_is_better": higher_is_better(task.primary_metric),
                 "card_metrics": list(task.card_metrics or (task.primary_metric,))},
        "dataset": data.info.to_dict(),
        "splits": {s: {"num_examples": int(ev.num_examples), "fingerprint": ev.fingerprint} for s, ev in evaluations.items()},
        "results": {s: {k: _number(v) for k, v in ev.metrics.items()} for s, ev in evaluations.items()},
        "details": {s: ev.details for s, ev in evaluations.items() if ev.details},
        "model": {"base_model": base_model, "base_model_hub_id": base_model_hub_id, "method": method},
        "seed": seed,
    }
    for split, metrics in payload["results"].items():
        metrics.setdefault("num_examples", int(evaluations[split].num_examples))
    for key, value in (extra or {}).items():
        if key in CORE_KEYS:
            raise KeyError(f"family entry {key!r} would overwrite a core key of {EVAL_RESULTS_SCHEMA}")
        payload[key] = value
    validate_eval_results(payload)
    return payload


def _number(value):
    if value is None or isinstance(value, (bool, int)):
        return value
    return float(value)


def validate_eval_results(payload: dict) -> dict:
    """Raise EvalResultsError unless `payload` follows the schema; returns it."""
    from affectlab.registry import is_known_metric

    if not isinstance(payload, dict) or payload.get("schema") != EVAL_RESULTS_SCHEMA:
        raise EvalResultsError(f"not an {EVAL_RESULTS_SCHEMA} payload (schema={payload.get('schema') if isinstance(payload, dict) else None!r})")
    missing = [k for k in CORE_KEYS if k not in payload]
    if missing:
        raise EvalResultsError(f"missing keys {missing}")
    task = payload["task"]
    for key in ("name", "type", "primary_metric", "higher_is_better"):
        if key not in task:
            raise EvalResultsError(f"task.{key} is missing")
    if not payload["results"]:
        raise EvalResultsError("no evaluated split")
    for split, metrics in payload["results"].items():
        if split not in payload["splits"]:
            raise EvalResultsError(f"results.{split} has no splits.{split} entry")
        for key, value in metrics.items():
            if key == "num_examples":
                continue
            if not is_known_metric(key):
                raise EvalResultsError(f"results.{split}.{key}: not a registered metric (affectlab.registry.METRICS)")
            if value is not None and not isinstance(value, (int, float)):
                raise EvalResultsError(f"results.{split}.{key}: not a number ({type(value).__name__})")
        primary = metrics.get(task["primary_metric"])
        if primary is None or (isinstance(primary, float) and math.isnan(primary)):
            raise EvalResultsError(f"results.{split}: primary metric {task['primary_metric']!r} is missing or NaN")
    for key in ("name",):
        if key not in payload["dataset"]:
            raise EvalResultsError(f"dataset.{key} is missing")
    return payload

"""LLM answers: robust parsing of the JSON an LLM gives for a label set, and scoring a batch of answers.

`parse_answer(text, label_set)` finds the first JSON object in an answer (code fences, text around the
object, single quotes, trailing commas, unquoted keys, a truncated object, duplicate keys, case-insensitive
keys, numeric strings, out-of-range values clipped) and says whether it was `parsed`, `schema_valid`
(exactly `answer_schema(label_set)`, no repairs) and `usable` (every dimension has a number).

`score_generations(answers, rows, label_set)` turns a batch of answers into rates (`parse_rate`,
`schema_valid_rate`, `usable_rate`, `out_of_range_rate`), the regression report
(`metrics/regression_report`) on the usable answers, per-row parses, and per-example scores for result
records (`answer_scores`: 0/1 flags and the absolute error of usable answers; never text).
"""

from __future__ import annotations

import json
import re

from affectlab.personas.contract import LabelSet

RATE_KEYS = ("parse_rate", "schema_valid_rate", "usable_rate", "out_of_range_rate")
REPORT_KEYS = ("macro_pearson", "macro_spearman", "macro_r2", "macro_mae", "macro_rmse", "macro_ece")

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.S)
_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


class _DupDict(dict):
    """A dict that remembers keys seen more than once (JSON allows them; the answer schema does not)."""

    def __init__(self, pairs):
        super().__init__(pairs)
        keys = [k for k, _ in pairs]
        self.duplicates = sorted({k for k in keys if keys.count(k) > 1})


def _candidates(text: str):
    """Texts to try, most specific first: fenced blocks, then the whole text."""
    for m in _FENCE.finditer(text):
        yield m.group(1)
    yield text


def _first_object(text: str):
    """The first `{...}` that decodes to a dict (strict JSON, then light repairs); None if there is none."""
    decoder = json.JSONDecoder(object_pairs_hook=_DupDict)
    starts = [m.start() for m in re.finditer(r"\{", text)]
    for start in starts:
        try:
            obj, _ = decoder.raw_decode(text[start:])
            if isinstance(obj, dict):
                return obj, "json"
        except json.JSONDecodeError:
            pass
    for start in starts:
        end = text.find("}", start)
        chunk = text[start:end + 1] if end >= 0 else text[start:].rstrip().rstrip(",") + "}"
        repaired = re.sub(r",\s*}", "}", chunk.replace("'", '"'))
        repaired = re.sub(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_ ]*)\s*:", r'\1"\2":', repaired)  # unquoted keys
        try:
            obj = json.loads(repaired, object_pairs_hook=_DupDict)
            if isinstance(obj, dict):
                return obj, "repaired"
        except json.JSONDecodeError:
            continue
    return None, None


def parse_answer(text: str, label_set) -> dict:
    """Parse a generated answer into the label set.

    Returns `{"parsed", "schema_valid", "usable", "values", "missing", "extra", "out_of_range",
    "non_numeric", "how"}`: `parsed` when a JSON object was found (possibly after repairs),
    `schema_valid` when it matches `answer_schema(label_set)` exactly (all keys, numbers, in range,
    nothing else, no duplicate keys, no repairs needed), `usable` when every dimension has a number — `values` then holds
    them clipped into the range (keys matched case-insensitively; numeric strings accepted).
    """
    label_set = LabelSet.coerce(label_set)
    out = {"parsed": False, "schema_valid": False, "usable": False, "values": None, "missing": list(label_set.dimensions),
           "extra": [], "out_of_range": [], "non_numeric": [], "duplicates": [], "how": None}
    obj, how = None, None
    for candidate in _candidates(text or ""):
        obj, how = _first_object(candidate)
        if obj is not None:
            break
    if obj is None:
        return out
    out["parsed"], out["how"] = True, how
    out["duplicates"] = list(getattr(obj, "duplicates", []))
    lookup = {str(k).strip().lower(): v for k, v in obj.items()}
    dims = {d.lower(): d for d in label_set.dimensions}
    out["extra"] = sorted(str(k) for k in obj if str(k).strip().lower() not in dims)
    values, missing, non_numeric, out_of_range = {}, [], [], []
    strict = how == "json"
    for key, dim in dims.items():
        if key not in lookup:
            missing.append(dim)
            continue
        v = lookup[key]
        if isinstance(v, bool) or v is None:
            non_numeric.append(dim)
            continue
        if isinstance(v, str):
            strict = False
            if not _NUMBER.match(v):
                non_numeric.append(dim)
                continue
            v = float(v)
        if not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
            non_numeric.append(dim)
            continue
        if not label_set.low <= v <= label_set.high:
            out_of_range.append(dim)
        values[dim] = min(max(float(v), label_set.low), label_set.high)
    if any(str(k) not in label_set.dimensions for k in obj if str(k).strip().lower() in dims):
        strict = False  # keys only matched case-insensitively / with spaces
    out.update(missing=missing, non_numeric=non_numeric, out_of_range=out_of_range)
    out["usable"] = not missing and not non_numeric
    out["values"] = values if out["usable"] else None
    out["schema_valid"] = out["usable"] and strict and not out_of_range and not out["extra"] and not out["duplicates"]
    return out


# ---------------------------------------------------------------------------------------------------
# Generation evaluation

def score_generations(answers: list[str], rows, label_set, n_bins: int = 10) -> tuple[dict, list[dict]]:
    """Parse answers and compute rates + the regression report on usable answers.

    Returns `({"scores": {num_prompts, *RATE_KEYS, macro_*, pearson_<dim>}, "report": report or None,
    "parses": [parse_answer(...) per answer]}, per-row records for generations_*.jsonl)`; the regression
    metrics need at least two usable answers.
    """
    import numpy as np

    from affectlab.metrics import metric_module

    label_set = LabelSet.coerce(label_set)
    dims = list(label_set.dimensions)
    parsed = [parse_answer(a, label_set) for a in answers]
    n = len(parsed)
    scores = {
        "num_prompts": n,
        "parse_rate": sum(p["parsed"] for p in parsed) / n,
        "schema_valid_rate": sum(p["schema_valid"] for p in parsed) / n,
        "usable_rate": sum(p["usable"] for p in parsed) / n,
        "out_of_range_rate": sum(bool(p["out_of_range"]) for p in parsed) / n,
    }
    usable = [i for i, p in enumerate(parsed) if p["usable"]]
    report = None
    if len(usable) >= 2:
        pred = np.array([[parsed[i]["values"][d] for d in dims] for i in usable])
        gold = np.array([[rows[i]["labels"][d] for d in dims] for i in usable])
        report = metric_module("regression_report").regression_report(
            pred, gold, label_names=dims, personas=[rows[i]["persona_id"] for i in usable],
            langs=[rows[i]["lang"] for i in usable], value_range=(label_set.low, label_set.high), n_bins=n_bins)
        scores.update({k: report[k] for k in REPORT_KEYS})
        scores.update({f"pearson_{row['label']}": row["pearson"] for row in report["per_dimension"]})
    records = [{"id": rows[i]["id"], "persona_id": rows[i]["persona_id"], "answer": answers[i],
                **{k: parsed[i][k] for k in ("parsed", "schema_valid", "usable", "values", "missing", "out_of_range", "how")},
                "labels": rows[i]["labels"]} for i in range(n)]
    return {"scores": scores, "report": report, "parses": parsed}, records


def answer_scores(parses: list[dict], rows, label_set) -> dict[str, list]:
    """Per-example scores of parsed answers for a result record (no text): `parsed`, `schema_valid`, `usable`
    (0/1; their means are the rates) and `abs_error`, the mean absolute error over the dimensions of a usable
    answer (None otherwise; the mean over usable answers is `macro_mae`)."""
    label_set = LabelSet.coerce(label_set)
    dims = list(label_set.dimensions)
    out: dict[str, list] = {"parsed": [], "schema_valid": [], "usable": [], "abs_error": []}
    for p, row in zip(parses, rows):
        for key in ("parsed", "schema_valid", "usable"):
            out[key].append(int(bool(p[key])))
        out["abs_error"].append(sum(abs(p["values"][d] - float(row["labels"][d])) for d in dims) / len(dims)
                                if p["usable"] else None)
    return out

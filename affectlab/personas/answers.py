"""LLM answers: robust parsing of the JSON an LLM gives for a label set, and scoring a batch of answers.

`parse_answer(text, label_set)` finds the answer's JSON object (code fences, text around the object; with
several objects the LAST complete one that fits the label set, so a repeated prompt example is not taken
for the answer; single quotes, trailing commas and unquoted keys are repaired; a truncated object loses
its cut last value; duplicate keys, case-insensitive keys, numeric strings, out-of-range values clipped)
and says whether it was `parsed`, `clean` (strict JSON, no repair), `schema_valid` (exactly
`answer_schema(label_set)`, one complete answer, no repairs), `ambiguous` (several complete answers) and
`usable` (every dimension has a number that was really in the answer).

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
    """A dict that remembers its key/value pairs in order and the keys seen more than once (JSON allows
    them; the answer schema does not)."""

    def __init__(self, pairs):
        super().__init__(pairs)
        self.pairs = list(pairs)
        keys = [k for k, _ in self.pairs]
        self.duplicates = sorted({k for k in keys if keys.count(k) > 1})


def _candidates(text: str):
    """Texts to try, most specific first: fenced blocks, then the whole text."""
    for m in _FENCE.finditer(text):
        yield m.group(1)
    yield text


def _strict_objects(text: str) -> list:
    """Every top-level `{...}` of `text` that decodes as strict JSON to a dict, in order."""
    decoder = json.JSONDecoder(object_pairs_hook=_DupDict)
    found, i = [], 0
    while True:
        start = text.find("{", i)
        if start < 0:
            return found
        try:
            obj, end = decoder.raw_decode(text[start:])
        except json.JSONDecodeError:
            i = start + 1
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = start + max(end, 1)


def _fits(obj: dict, label_set: LabelSet) -> bool:
    """Every dimension present (case-insensitively) with a number."""
    lookup = {str(k).strip().lower(): v for k, v in obj.items()}
    for dim in label_set.dimensions:
        v = lookup.get(dim.lower())
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            return False
        if isinstance(v, str) and not _NUMBER.match(v):
            return False
    return True


def _pick_object(text: str, label_set: LabelSet):
    """(object, how, n_fitting): the LAST strict JSON object that fits the label set (an answer that repeats
    the prompt's example before its own is read as its own); else the last strict object; else a repaired one.

    A repaired object that had to be closed (a truncated answer) loses its last value: that value may have
    been cut (`"D": 3` of `"D": 3.5`), and a value the parser had to invent is never used."""
    objects = _strict_objects(text)
    if objects:
        fitting = [o for o in objects if _fits(o, label_set)]
        return (fitting or objects)[-1], "json", len(fitting)
    for m in re.finditer(r"\{", text):
        start = m.start()
        end = text.find("}", start)
        truncated = end < 0
        chunk = text[start:end + 1] if not truncated else text[start:].rstrip().rstrip(",") + "}"
        repaired = re.sub(r",\s*}", "}", chunk.replace("'", '"'))
        repaired = re.sub(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_ ]*)\s*:", r'\1"\2":', repaired)  # unquoted keys
        try:
            obj = json.loads(repaired, object_pairs_hook=_DupDict)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            if truncated and obj and not text[start:].rstrip().endswith(","):  # cut inside the last value
                obj = _DupDict(obj.pairs[:-1])
            return obj, "truncated" if truncated else "repaired", int(_fits(obj, label_set))
    return None, None, 0


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
           "extra": [], "out_of_range": [], "non_numeric": [], "duplicates": [], "how": None, "clean": False,
           "ambiguous": False}
    obj, how, fitting = None, None, 0
    for candidate in _candidates(text or ""):
        obj, how, fitting = _pick_object(candidate, label_set)
        if obj is not None:
            break
    if obj is None:
        return out
    out["parsed"], out["how"] = True, how
    out["clean"] = how == "json"
    out["ambiguous"] = fitting > 1  # several complete answers: the last is used, none is schema-valid
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
    out["schema_valid"] = (out["usable"] and strict and not out_of_range and not out["extra"] and not out["duplicates"]
                           and not out["ambiguous"])
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

"""The persona regression data contract: records, label sets, personas, validation, JSON Lines, Features.

A **record** is `{"id", "text", "lang", "persona_id", "labels": {dimension: value}}` plus the optional
`text_id` (records that rate the same text from several personas share it; splits keep them together)
and `source`. `record_schema(label_set)` is the JSON Schema (draft 2020-12) of one record;
`validate_records` checks a whole collection against it and a `PersonaRegistry`, and its errors name
the source and the row.

A **persona** is `{"id", "name", "description", "instruction"}`; a **label set** is
`{"name", "dimensions", "low", "high", "descriptions"}`. Dataset builders describe theirs as plain data
(`dataset_builders/emobank`: `LABEL_SET` a dict, `PERSONAS` a list of dicts, so they never import
affectlab); `LabelSet.coerce` / `PersonaRegistry.coerce` turn that data into the objects here, and every
function of this module accepts either.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"
LANG_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"


class ContractError(ValueError):
    """A record or persona that breaks the data contract; the message names the source and the row."""

    def __init__(self, source: str, message: str, row: int | None = None, record_id: str | None = None):
        self.source = str(source)
        self.row = row
        self.record_id = record_id
        where = self.source
        if row is not None:
            where += f", row {row}"
        if record_id is not None:
            where += f" (id {record_id!r})"
        super().__init__(f"{where}: {message}")


# ---------------------------------------------------------------------------------------------------
# Label sets and personas
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LabelSet:
    """Named regression dimensions with one declared value range shared by all of them."""

    name: str
    dimensions: tuple[str, ...]
    low: float
    high: float
    descriptions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not self.dimensions or len(set(self.dimensions)) != len(self.dimensions):
            raise ValueError(f"label set {self.name!r}: dimensions must be non-empty and unique")
        if not self.low < self.high:
            raise ValueError(f"label set {self.name!r}: low ({self.low}) must be < high ({self.high})")

    def vector(self, labels: Mapping[str, float]) -> list[float]:
        return [float(labels[d]) for d in self.dimensions]

    def to_dict(self) -> dict:
        return {"name": self.name, "dimensions": list(self.dimensions), "low": self.low, "high": self.high,
                "descriptions": dict(self.descriptions)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "LabelSet":
        return cls(data["name"], tuple(data["dimensions"]), float(data["low"]), float(data["high"]),
                   dict(data.get("descriptions", {})))

    @classmethod
    def coerce(cls, value: "LabelSet | Mapping") -> "LabelSet":
        """A `LabelSet` from itself or from its plain-data form (`to_dict()`, e.g. a builder's `LABEL_SET`)."""
        return value if isinstance(value, LabelSet) else cls.from_dict(value)


@dataclass(frozen=True)
class Persona:
    id: str
    name: str
    description: str
    instruction: str


PERSONA_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "affectlab persona",
    "type": "object",
    "required": ["id", "name", "description", "instruction"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": ID_PATTERN},
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string", "minLength": 1},
        "instruction": {"type": "string", "minLength": 1},
    },
}


def record_schema(label_set: LabelSet, persona_ids: Sequence[str] | None = None) -> dict:
    """JSON Schema (draft 2020-12) of one record for `label_set` (and, if given, these persona ids)."""
    persona = {"type": "string", "pattern": ID_PATTERN}
    if persona_ids is not None:
        persona = {"enum": list(persona_ids)}
    value = {"type": "number", "minimum": label_set.low, "maximum": label_set.high}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"affectlab record ({label_set.name})",
        "type": "object",
        "required": ["id", "text", "lang", "persona_id", "labels"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": ID_PATTERN},
            "text_id": {"type": "string", "minLength": 1},
            "text": {"type": "string", "minLength": 1},
            "lang": {"type": "string", "pattern": LANG_PATTERN},
            "persona_id": persona,
            "labels": {
                "type": "object",
                "required": list(label_set.dimensions),
                "additionalProperties": False,
                "properties": {d: value for d in label_set.dimensions},
            },
            "source": {"type": "string"},
        },
    }


def answer_schema(label_set: LabelSet) -> dict:
    """JSON Schema of the LLM answer: an object with every dimension as a number in range."""
    return record_schema(label_set)["properties"]["labels"]


class PersonaRegistry:
    """Personas by id, in a fixed order (the order of persona tokens)."""

    def __init__(self, personas: Iterable[Persona | Mapping], source: str = "<personas>"):
        self.source = source
        self._personas: dict[str, Persona] = {}
        for row, item in enumerate(personas):
            if not isinstance(item, Persona):
                _check_persona(item, source, row)
                item = Persona(**{k: item[k] for k in ("id", "name", "description", "instruction")})
            if item.id in self._personas:
                raise ContractError(source, f"duplicate persona id {item.id!r}", row, item.id)
            self._personas[item.id] = item
        if not self._personas:
            raise ContractError(source, "no personas")

    def __contains__(self, persona_id: str) -> bool:
        return persona_id in self._personas

    def __getitem__(self, persona_id: str) -> Persona:
        try:
            return self._personas[persona_id]
        except KeyError:
            raise KeyError(f"unknown persona {persona_id!r}; registry {self.source} has {self.ids}") from None

    def __iter__(self):
        return iter(self._personas.values())

    def __len__(self) -> int:
        return len(self._personas)

    @property
    def ids(self) -> list[str]:
        return list(self._personas)

    def to_list(self) -> list[dict]:
        return [asdict(p) for p in self]

    def save(self, path: str | os.PathLike) -> None:
        from affectlab.io import atomic_write_json

        atomic_write_json(path, self.to_list())

    @classmethod
    def coerce(cls, value: "PersonaRegistry | Iterable[Mapping] | None", source: str = "<personas>"):
        """A registry from itself or from plain data (a list of persona dicts, e.g. a builder's `PERSONAS`)."""
        if value is None or isinstance(value, PersonaRegistry):
            return value
        return cls(value, source=source)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PersonaRegistry":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ContractError(path, f"not valid JSON ({err.msg})", err.lineno) from None
        if not isinstance(data, list):
            raise ContractError(path, "a persona registry is a JSON list of persona objects")
        return cls(data, source=str(path))


def _check_persona(item: Any, source: str, row: int) -> None:
    if not isinstance(item, Mapping):
        raise ContractError(source, f"a persona must be an object, got {type(item).__name__}", row)
    pid = item.get("id") if isinstance(item.get("id"), str) else None
    missing = [k for k in PERSONA_SCHEMA["required"] if k not in item]
    if missing:
        raise ContractError(source, f"persona misses field(s) {missing}", row, pid)
    extra = sorted(set(item) - set(PERSONA_SCHEMA["properties"]))
    if extra:
        raise ContractError(source, f"persona has unknown field(s) {extra}", row, pid)
    for key in PERSONA_SCHEMA["required"]:
        if not isinstance(item[key], str) or not item[key].strip():
            raise ContractError(source, f"persona field {key!r} must be a non-empty string", row, pid)
    if not re.match(ID_PATTERN, item["id"]):
        raise ContractError(source, f"persona id {item['id']!r} does not match {ID_PATTERN}", row, pid)


# ---------------------------------------------------------------------------------------------------
# Record validation
# ---------------------------------------------------------------------------------------------------

def check_record(record: Any, label_set: LabelSet, personas: PersonaRegistry | None = None,
                 source: str = "<records>", row: int | None = None) -> None:
    """Raise ContractError (naming source, row and id) if `record` breaks `record_schema(label_set)`."""
    label_set, personas = LabelSet.coerce(label_set), PersonaRegistry.coerce(personas)
    if not isinstance(record, Mapping):
        raise ContractError(source, f"a record must be an object, got {type(record).__name__}", row)
    rid = record.get("id") if isinstance(record.get("id"), str) else None
    schema = record_schema(label_set)
    missing = [k for k in schema["required"] if k not in record]
    if missing:
        raise ContractError(source, f"missing field(s) {missing}", row, rid)
    extra = sorted(set(record) - set(schema["properties"]))
    if extra:
        raise ContractError(source, f"unknown field(s) {extra}", row, rid)
    if rid is None or not re.match(ID_PATTERN, rid):
        raise ContractError(source, f"id must be a string matching {ID_PATTERN}, got {record['id']!r}", row)
    for key in ("text", "text_id"):
        if key in record and (not isinstance(record[key], str) or not record[key].strip()):
            raise ContractError(source, f"{key!r} must be a non-empty string", row, rid)
    if "source" in record and not isinstance(record["source"], str):
        raise ContractError(source, "'source' must be a string", row, rid)
    lang = record["lang"]
    if not isinstance(lang, str) or not re.match(LANG_PATTERN, lang):
        raise ContractError(source, f"lang must be a lower-case language code (e.g. 'en', 'pl'), got {lang!r}", row, rid)
    pid = record["persona_id"]
    if not isinstance(pid, str):
        raise ContractError(source, f"persona_id must be a string, got {pid!r}", row, rid)
    if personas is not None and pid not in personas:
        raise ContractError(source, f"unknown persona_id {pid!r} (registry: {personas.ids})", row, rid)
    labels = record["labels"]
    if not isinstance(labels, Mapping):
        raise ContractError(source, f"labels must be an object {{dimension: value}}, got {type(labels).__name__}", row, rid)
    missing = [d for d in label_set.dimensions if d not in labels]
    if missing:
        raise ContractError(source, f"labels miss dimension(s) {missing}", row, rid)
    extra = sorted(set(labels) - set(label_set.dimensions))
    if extra:
        raise ContractError(source, f"labels have unknown dimension(s) {extra} (label set {label_set.name!r})", row, rid)
    for dim in label_set.dimensions:
        value = labels[dim]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
            raise ContractError(source, f"label {dim!r} must be a finite number, got {value!r}", row, rid)
        if not label_set.low <= value <= label_set.high:
            raise ContractError(source, f"label {dim!r}={value} outside [{label_set.low}, {label_set.high}]", row, rid)


def validate_records(records: Iterable[Mapping], label_set: LabelSet, personas: PersonaRegistry | None = None,
                     source: str = "<records>") -> int:
    """Check every record and that ids are unique; returns the number of records."""
    label_set, personas = LabelSet.coerce(label_set), PersonaRegistry.coerce(personas)
    seen: dict[str, int] = {}
    n = 0
    for row, record in enumerate(records):
        check_record(record, label_set, personas, source, row)
        rid = record["id"]
        if rid in seen:
            raise ContractError(source, f"duplicate id (first at row {seen[rid]})", row, rid)
        seen[rid] = row
        n += 1
    return n


def read_jsonl(path: str | os.PathLike, label_set: LabelSet, personas: PersonaRegistry | None = None) -> list[dict]:
    """Read and validate a JSON Lines file of records; errors name the file and the line (1-based row)."""
    label_set, personas = LabelSet.coerce(label_set), PersonaRegistry.coerce(personas)
    path = Path(path)
    records = []
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ContractError(path, f"not valid JSON ({err.msg})", line_no) from None
            check_record(records[-1], label_set, personas, str(path), line_no)
    validate_records(records, label_set, personas, str(path))
    return records


def write_jsonl(path: str | os.PathLike, records: Iterable[Mapping]) -> None:
    from affectlab.io import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in records))




def records_features(label_set: LabelSet):
    """`datasets.Features` of contract records: `labels` is a struct with one float per dimension."""
    import datasets

    label_set = LabelSet.coerce(label_set)
    return datasets.Features({
        "id": datasets.Value("string"), "text_id": datasets.Value("string"), "text": datasets.Value("string"),
        "lang": datasets.Value("string"), "persona_id": datasets.Value("string"),
        "labels": {d: datasets.Value("float32") for d in label_set.dimensions},
        "source": datasets.Value("string"),
    })


def records_to_dataset(records: Sequence[Mapping], label_set: LabelSet, personas: PersonaRegistry | None = None,
                       source: str = "<records>"):
    """Validate records and return a `datasets.Dataset` (missing `text_id` defaults to the id, `source` to '')."""
    import datasets

    validate_records(records, label_set, personas, source)
    rows = [{"text_id": r.get("text_id", r["id"]), "source": r.get("source", ""), **r} for r in records]
    return datasets.Dataset.from_list(rows, features=records_features(label_set))

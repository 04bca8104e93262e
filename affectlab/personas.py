"""Persona-conditioned regression data: the record contract, persona registries, label sets, views, splits.

A **record** is `{"id", "text", "lang", "persona_id", "labels": {dimension: value}}` plus the optional
`text_id` (records that rate the same text from several personas share it; splits keep them together)
and `source`. `record_schema(label_set)` is the JSON Schema (draft 2020-12) of one record;
`validate_records` checks a whole collection against it and a `PersonaRegistry`, and its errors name
the source and the row.

A **persona** is `{"id", "name", "description", "instruction"}`. `MEDICAL_PERSONAS` holds 16 healthcare
personas (our own wording) and `MEDICAL_LABEL_SET` the 21 emotion dimensions of the medical preset
(intensities in [0, 1]). `synthetic_medical_records` generates a SYNTHETIC Polish/English set that
follows the contract, for tests and speed runs only (every record carries `source="synthetic"`).

**Persona modes** are views of the same records (`persona_view`): `non_personalized` (text only),
`persona_token` (a special token per persona in front of the text; `add_persona_tokens` adds them to
the tokenizer and resizes the embeddings), `personalized_desc` (persona description and text as a
pair) and `personalized_instruction` (a chat prompt whose answer is a JSON object with every dimension).

**Splits** (`make_splits`): `random` (grouped by `text_id`), `lolo` (leave one language out) and
`lopo` (leave one persona out); the held-out language / persona never appears in train or validation.
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

PERSONA_MODES = ("non_personalized", "persona_token", "personalized_desc", "personalized_instruction")
SPLIT_STRATEGIES = ("random", "lolo", "lopo")
SPLIT_NAMES = ("train", "validation", "test")
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


# ---------------------------------------------------------------------------------------------------
# The medical preset: 16 personas and 21 dimensions (our own wording)
# ---------------------------------------------------------------------------------------------------

def _persona(pid: str, name: str, description: str, focus: str) -> Persona:
    instruction = (f"You read the text as {name.lower()}: {focus} Rate how intensely each emotion is evoked in "
                   f"you by the text, from 0 (not at all) to 1 (extremely).")
    return Persona(pid, name, description, instruction)


MEDICAL_PERSONAS = PersonaRegistry([
    _persona("patient_chronic", "A patient with a chronic illness",
             "Lives with a long-term condition and deals with clinics, prescriptions and check-ups every month.",
             "continuity of care and long waits matter a lot to you."),
    _persona("patient_acute", "A patient after a sudden illness",
             "Recently went through an unexpected hospital stay and is still recovering.",
             "you remember the emergency department vividly and are sensitive to how staff treat people."),
    _persona("caregiver", "A family caregiver",
             "Looks after an ill or elderly relative at home and organises their appointments.",
             "you worry about your relative and about coordinating care."),
    _persona("parent", "A parent of a child in treatment",
             "Accompanies their child through paediatric visits and hospital stays.",
             "your child's safety and comfort come first."),
    _persona("gp", "A family physician",
             "Works in primary care and sees dozens of patients a day, often under time pressure.",
             "you know what the system can and cannot deliver."),
    _persona("specialist", "A hospital specialist",
             "A consultant in a hospital ward who handles complex cases and referrals.",
             "clinical quality and evidence matter to you most."),
    _persona("nurse", "A nurse",
             "Works shifts on a busy ward and is the person patients talk to most.",
             "you notice staffing, workload and how patients feel."),
    _persona("pharmacist", "A community pharmacist",
             "Dispenses medicines and advises patients about prescriptions and side effects.",
             "drug availability, prices and safety are your daily topics."),
    _persona("medical_student", "A medical student",
             "Studies medicine and does clinical rotations in teaching hospitals.",
             "you are idealistic but learning how care works in practice."),
    _persona("hospital_manager", "A hospital manager",
             "Runs a hospital department's budget, staffing and contracts.",
             "costs, reputation and operational risk are on your mind."),
    _persona("insurer", "A health insurance analyst",
             "Works for a payer and evaluates the cost and value of treatments.",
             "you think about reimbursement, fraud and value for money."),
    _persona("policy_maker", "A health policy official",
             "Prepares regulations and reforms at a ministry or regional authority.",
             "you read opinions as signals about how the system performs."),
    _persona("journalist", "A health journalist",
             "Reports on healthcare for a news outlet and looks for stories of public interest.",
             "you look for conflict, scandal and human stories."),
    _persona("researcher", "A clinical researcher",
             "Designs and runs clinical studies and reads medical literature.",
             "you care about evidence, innovation and patient outcomes."),
    _persona("patient_advocate", "A patient advocate",
             "Represents a patient organisation and defends patients' rights.",
             "you are alert to unfair treatment and barriers to access."),
    _persona("general_public", "A member of the general public",
             "A healthy adult who rarely uses healthcare and forms opinions from what others say.",
             "you react as an ordinary reader with no special stake."),
], source="affectlab.personas.MEDICAL_PERSONAS")

MEDICAL_LABEL_SET = LabelSet(
    "medical21",
    ("positive", "negative", "arousal", "joy", "trust", "anticipation", "surprise", "fear", "sadness", "disgust",
     "anger", "hope", "relief", "anxiety", "frustration", "gratitude", "compassion", "shame", "confusion",
     "helplessness", "distrust"),
    0.0, 1.0,
    {"positive": "overall positive valence", "negative": "overall negative valence", "arousal": "activation / excitement"},
)


# ---------------------------------------------------------------------------------------------------
# SYNTHETIC Polish/English generator (not real data)
# ---------------------------------------------------------------------------------------------------

# Each scenario: (English text, Polish text, the dimensions it evokes with a base intensity).
_SCENARIOS = [
    ("The doctor took time to explain my diagnosis and I left the clinic reassured.",
     "Lekarz poświęcił czas, żeby wyjaśnić diagnozę, i wyszedłem z przychodni uspokojony.",
     {"positive": .8, "trust": .8, "relief": .7, "gratitude": .6, "joy": .5, "hope": .5}),
    ("I waited eleven hours in the emergency room and nobody told us anything.",
     "Czekałem jedenaście godzin na SOR-ze i nikt nam niczego nie powiedział.",
     {"negative": .8, "anger": .7, "frustration": .9, "helplessness": .6, "distrust": .5, "arousal": .6}),
    ("The nurses on the night shift were kind even though they were clearly exhausted.",
     "Pielęgniarki na nocnej zmianie były życzliwe, choć widać było, że są wyczerpane.",
     {"positive": .6, "gratitude": .7, "compassion": .8, "sadness": .3, "trust": .5}),
    ("The new drug finally works and my results are better than they have been in years.",
     "Nowy lek w końcu działa i moje wyniki są najlepsze od lat.",
     {"positive": .9, "joy": .8, "hope": .8, "relief": .8, "surprise": .4, "arousal": .5}),
    ("They cancelled my surgery for the third time without giving any reason.",
     "Po raz trzeci odwołali mi operację bez podania przyczyny.",
     {"negative": .9, "anger": .8, "frustration": .9, "distrust": .7, "anxiety": .6, "helplessness": .7}),
    ("Nobody can tell me what is wrong and the tests keep coming back unclear.",
     "Nikt nie potrafi mi powiedzieć, co mi jest, a wyniki badań wciąż są niejasne.",
     {"negative": .7, "confusion": .9, "anxiety": .8, "fear": .6, "helplessness": .6}),
    ("The private clinic charged me a fortune for a five-minute visit.",
     "Prywatna klinika policzyła mi fortunę za pięciominutową wizytę.",
     {"negative": .7, "anger": .6, "disgust": .5, "distrust": .7, "frustration": .6}),
    ("My mother died on the ward and I keep wondering whether they did everything they could.",
     "Moja mama zmarła na oddziale i ciągle zastanawiam się, czy zrobili wszystko, co mogli.",
     {"negative": .9, "sadness": .95, "distrust": .5, "helplessness": .7, "compassion": .5}),
    ("The hospital opened a new oncology centre and the waiting lists are getting shorter.",
     "Szpital otworzył nowe centrum onkologiczne i kolejki się skracają.",
     {"positive": .7, "hope": .8, "anticipation": .7, "trust": .5, "joy": .4}),
    ("I was embarrassed when the receptionist discussed my condition in front of everyone.",
     "Było mi wstyd, kiedy rejestratorka omawiała moją chorobę przy wszystkich.",
     {"negative": .7, "shame": .9, "anger": .5, "distrust": .4, "arousal": .5}),
    ("The results of the biopsy come tomorrow and I cannot sleep.",
     "Wyniki biopsji będą jutro i nie mogę spać.",
     {"negative": .6, "fear": .8, "anxiety": .9, "anticipation": .8, "arousal": .8}),
    ("The pharmacy had none of my medicine again, so I drove to three towns to find it.",
     "W aptece znów nie było mojego leku, więc jeździłem do trzech miast, żeby go znaleźć.",
     {"negative": .6, "frustration": .8, "anger": .5, "helplessness": .5, "arousal": .4}),
]
_OPENERS = {"en": ["", "Honestly, ", "To be fair, ", "Well, "], "pl": ["", "Szczerze mówiąc, ", "Trzeba przyznać, że ", "Cóż, "]}


def _persona_profile(pid: str, dims: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """A fixed (seed-independent) sensitivity and offset per persona, derived from its id."""
    seed = int.from_bytes(pid.encode(), "little") % (2 ** 32)
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 1.3, len(dims)), rng.uniform(-0.1, 0.15, len(dims))


def synthetic_medical_records(n_texts: int = 60, personas_per_text: int = 4, langs: Sequence[str] = ("en", "pl"),
                              seed: int = 1337, personas: PersonaRegistry = MEDICAL_PERSONAS,
                              label_set: LabelSet = MEDICAL_LABEL_SET, noise: float = 0.05) -> list[dict]:
    """SYNTHETIC records in the contract: templated healthcare opinions (EN/PL) rated by several personas.

    Labels are scenario intensities scaled and shifted by a fixed per-persona profile plus Gaussian
    noise, clipped to the range, so persona information is learnable. Not real data: use it for tests
    and speed runs only. Every record has `source="synthetic"` and an id starting with `syn-`.
    """
    rng = np.random.default_rng(seed)
    dims = list(label_set.dimensions)
    span = label_set.high - label_set.low
    pids = personas.ids
    records = []
    for t in range(n_texts):
        lang = langs[t % len(langs)]
        scenario = _SCENARIOS[int(rng.integers(len(_SCENARIOS)))]
        opener = _OPENERS.get(lang, [""])[int(rng.integers(4))]
        text = scenario[0] if lang == "en" else scenario[1]
        if opener:
            text = opener + text[0].lower() + text[1:]
        base = np.array([scenario[2].get(d, 0.05) for d in dims])
        chosen = rng.choice(len(pids), size=min(personas_per_text, len(pids)), replace=False)
        for k in sorted(chosen):
            pid = pids[k]
            scale, offset = _persona_profile(pid, dims)
            values = np.clip(base * scale + offset + rng.normal(0, noise, len(dims)), 0.0, 1.0)
            values = label_set.low + values * span
            records.append({
                "id": f"syn-{t:05d}-{pid}", "text_id": f"syn-{t:05d}", "text": text, "lang": lang, "persona_id": pid,
                "labels": {d: round(float(v), 4) for d, v in zip(dims, values)}, "source": "synthetic",
            })
    return records


# ---------------------------------------------------------------------------------------------------
# Persona modes
# ---------------------------------------------------------------------------------------------------

def persona_token(persona_id: str) -> str:
    return f"[PERSONA:{persona_id}]"


def add_persona_tokens(tokenizer, personas: PersonaRegistry, model=None) -> list[str]:
    """Add one special token per persona to `tokenizer` (and resize `model`'s embeddings); returns the tokens.

    The tokens are additional special tokens, so they are never split and are saved with the tokenizer.
    """
    tokens = [persona_token(pid) for pid in personas.ids]
    tokenizer.add_special_tokens({"extra_special_tokens": tokens}, replace_extra_special_tokens=False)
    if model is not None:
        model.resize_token_embeddings(len(tokenizer))
    return tokens


def instruction_messages(text: str, persona: Persona, label_set: LabelSet, answer: Mapping[str, float] | None = None,
                         decimals: int = 2) -> list[dict]:
    """Chat messages for the LLM: system = persona instruction, user = task + text, assistant = JSON answer."""
    dims = ", ".join(label_set.dimensions)
    system = f"{persona.instruction}"
    user = (f"Text: {text}\n\nAnswer with one JSON object only, with exactly these keys: {dims}. "
            f"Each value is a number from {label_set.low:g} to {label_set.high:g}.")
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    if answer is not None:
        messages.append({"role": "assistant", "content": format_answer(answer, label_set, decimals)})
    return messages


def format_answer(labels: Mapping[str, float], label_set: LabelSet, decimals: int = 2) -> str:
    return json.dumps({d: round(float(labels[d]), decimals) for d in label_set.dimensions}, ensure_ascii=False)


def persona_view(dataset, mode: str, personas: PersonaRegistry, label_set: LabelSet, with_answer: bool = True):
    """A `datasets.Dataset` of contract records seen through one persona mode.

    Adds `label_values` (floats in `label_set` order) and, by mode: `input_text` (+ `input_pair` for
    `personalized_desc`), or `messages` (chat with the JSON answer when `with_answer`) and `prompt`
    (the chat without the answer) for `personalized_instruction`. The original columns are kept.
    """
    if mode not in PERSONA_MODES:
        raise ValueError(f"unknown persona mode {mode!r}; choose one of {PERSONA_MODES}")
    dims = list(label_set.dimensions)

    def convert(row):
        labels = row["labels"]
        out = {"label_values": [float(labels[d]) for d in dims]}
        persona = personas[row["persona_id"]]
        if mode == "non_personalized":
            out["input_text"] = row["text"]
        elif mode == "persona_token":
            out["input_text"] = f"{persona_token(persona.id)} {row['text']}"
        elif mode == "personalized_desc":
            out["input_text"] = f"{persona.name}. {persona.description}"
            out["input_pair"] = row["text"]
        else:
            prompt = instruction_messages(row["text"], persona, label_set)
            out["prompt"] = prompt
            out["messages"] = instruction_messages(row["text"], persona, label_set, labels) if with_answer else prompt
        return out

    return dataset.map(convert, desc=f"persona view {mode}")


# ---------------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------------

def split_indices(text_ids: Sequence[str], langs: Sequence[str], persona_ids: Sequence[str], strategy: str,
                  held_out: str | None = None, validation_fraction: float = 0.1, test_fraction: float = 0.1,
                  seed: int = 1337) -> dict[str, np.ndarray]:
    """Row indices of train / validation / test.

    - `random`: texts (`text_id` groups) are shuffled and cut into test / validation / train, so all
      ratings of one text land in the same split.
    - `lolo`: test = every row in language `held_out`; validation = a `validation_fraction` of the
      remaining texts; train = the rest.
    - `lopo`: test = every row of persona `held_out`; validation / train as for `lolo`. Texts that also
      appear in the test split (rated by the held-out persona) stay out of validation and train only
      under other personas, which is the point of the protocol: the persona is unseen, not the text.
    """
    if strategy not in SPLIT_STRATEGIES:
        raise ValueError(f"unknown split strategy {strategy!r}; choose one of {SPLIT_STRATEGIES}")
    n = len(text_ids)
    if not (len(langs) == len(persona_ids) == n):
        raise ValueError("text_ids, langs and persona_ids must have the same length")
    rng = np.random.default_rng(seed)
    text_ids = np.asarray(text_ids, dtype=object)
    all_rows = np.arange(n)
    if strategy == "random":
        test_mask = np.zeros(n, dtype=bool)
        pool = all_rows
        frac_test = test_fraction
    else:
        column = np.asarray(langs if strategy == "lolo" else persona_ids, dtype=object)
        values = sorted(set(column.tolist()))
        if held_out is None:
            raise ValueError(f"{strategy} needs held_out (one of {values})")
        if held_out not in values:
            raise ValueError(f"held_out={held_out!r} does not occur; values are {values}")
        test_mask = column == held_out
        pool = all_rows[~test_mask]
        frac_test = 0.0
    groups = sorted(set(text_ids[pool].tolist()))
    order = rng.permutation(len(groups))
    n_test = int(round(frac_test * len(groups)))
    n_val = max(1, int(round(validation_fraction * len(groups)))) if validation_fraction > 0 else 0
    if n_test + n_val >= len(groups):
        raise ValueError(f"too few texts ({len(groups)}) for the requested validation/test fractions")
    test_groups = {groups[i] for i in order[:n_test]}
    val_groups = {groups[i] for i in order[n_test:n_test + n_val]}
    in_pool = np.zeros(n, dtype=bool)
    in_pool[pool] = True
    pool_groups = text_ids
    is_test_group = np.array([g in test_groups for g in pool_groups])
    is_val_group = np.array([g in val_groups for g in pool_groups])
    test = all_rows[test_mask | (in_pool & is_test_group)]
    validation = all_rows[in_pool & is_val_group]
    train = all_rows[in_pool & ~is_val_group & ~is_test_group]
    return {"train": train, "validation": validation, "test": test}


def make_splits(dataset, strategy: str, held_out: str | None = None, validation_fraction: float = 0.1,
                test_fraction: float = 0.1, seed: int = 1337):
    """`DatasetDict(train, validation, test)` of a Dataset of contract records (see `split_indices`)."""
    import datasets

    text_ids = dataset["text_id"] if "text_id" in dataset.column_names else dataset["text"]
    idx = split_indices(text_ids, dataset["lang"], dataset["persona_id"], strategy, held_out,
                        validation_fraction, test_fraction, seed)
    return datasets.DatasetDict({name: dataset.select(rows.tolist()) for name, rows in idx.items() if len(rows)})


def records_features(label_set: LabelSet):
    """`datasets.Features` of contract records: `labels` is a struct with one float per dimension."""
    import datasets

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

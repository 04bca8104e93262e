"""Presets: the medical preset (16 healthcare personas, 21 emotion dimensions), its SYNTHETIC Polish/English
generator, and the contracts of the registered persona datasets.

`MEDICAL_PERSONAS` holds 16 healthcare personas (our own wording) and `MEDICAL_LABEL_SET` the 21 emotion
dimensions of the medical preset (intensities in [0, 1]). `synthetic_medical_records` generates a
SYNTHETIC Polish/English set that follows the contract from the scenario templates in
`medical_scenarios.json` (beside this file), for tests and speed runs only (every record carries
`source="synthetic"`).

`dataset_contract("emobank")` is the (LabelSet, PersonaRegistry) of a registered builder whose module
declares `LABEL_SET` and `PERSONAS` as plain data (the builders never import affectlab).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from affectlab.personas.contract import LabelSet, Persona, PersonaRegistry

SCENARIOS_FILE = Path(__file__).with_name("medical_scenarios.json")


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

@lru_cache(maxsize=1)
def medical_scenarios() -> tuple[list[tuple[str, str, dict[str, float]]], dict[str, list[str]]]:
    """(scenarios as (English text, Polish text, {dimension: base intensity}), openers per language)."""
    data = json.loads(SCENARIOS_FILE.read_text(encoding="utf-8"))
    scenarios = [(s["en"], s["pl"], dict(s["intensities"])) for s in data["scenarios"]]
    return scenarios, {lang: list(v) for lang, v in data["openers"].items()}


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
    scenarios, openers = medical_scenarios()
    rng = np.random.default_rng(seed)
    dims = list(label_set.dimensions)
    span = label_set.high - label_set.low
    pids = personas.ids
    records = []
    for t in range(n_texts):
        lang = langs[t % len(langs)]
        scenario = scenarios[int(rng.integers(len(scenarios)))]
        choices = openers.get(lang) or [""]
        opener = choices[int(rng.integers(4)) % len(choices)]
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
# Contracts of registered persona datasets
# ---------------------------------------------------------------------------------------------------

def builder_module(name: str):
    """The module of registered dataset `name` (`dataset_builders.REGISTRY`)."""
    import importlib

    from dataset_builders import get_spec

    return importlib.import_module(get_spec(name).builder.split(":")[0])


def is_persona_dataset(name: str) -> bool:
    """Whether registered dataset `name` is a persona regression dataset (its builder declares LABEL_SET and PERSONAS)."""
    module = builder_module(name)
    return hasattr(module, "LABEL_SET") and hasattr(module, "PERSONAS")


def dataset_contract(name: str) -> tuple[LabelSet, PersonaRegistry]:
    """(LabelSet, PersonaRegistry) of registered persona dataset `name`, from its builder's plain data."""
    module = builder_module(name)
    if not (hasattr(module, "LABEL_SET") and hasattr(module, "PERSONAS")):
        raise KeyError(f"dataset {name!r} is not a persona regression dataset (its builder has no LABEL_SET/PERSONAS)")
    return (LabelSet.coerce(module.LABEL_SET),
            PersonaRegistry.coerce(module.PERSONAS, source=f"{module.__name__}.PERSONAS"))

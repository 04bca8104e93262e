"""Loading persona regression data for a task family: the shared arguments, the sources, the split protocol.

`PersonaDataArguments` is the one dataclass of the data fields the persona families share (the
regression encoder and the LLM SFT family both subclass it, adding only their own fields).

Sources (`load_records`): a registered builder whose module declares `LABEL_SET` and `PERSONAS` (`emobank`,
built with `dataset_builders.build_dataset`), the SYNTHETIC medical preset (`synthetic_medical`), or a JSON
Lines file of contract records (`--dataset_name my.jsonl --personas_file personas.json --label_set_file
labels.json`). `prepare_splits` keeps the asked personas (`keep_personas`, checked against the registry)
and applies the split protocol: `predefined` (the dataset's own), `random` (grouped by text), `lolo`,
`lopo` (`--held_out`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from affectlab.configs import DataArguments
from affectlab.errors import ArgumentError
from affectlab.personas.contract import LabelSet, PersonaRegistry
from affectlab.personas.splits import SPLIT_STRATEGIES

SPLITS = ("predefined", *SPLIT_STRATEGIES)
SYNTHETIC_MEDICAL = "synthetic_medical"


@dataclass
class PersonaDataArguments(DataArguments):
    """Data fields shared by the persona families (`regression`, `sft`): source, personas, split protocol."""

    dataset_name: Optional[str] = field(default="emobank", metadata={"help": "registered persona dataset (emobank), 'synthetic_medical', or a .jsonl of contract records"})
    personas_file: Optional[str] = field(default=None, metadata={"help": "persona registry JSON (for a .jsonl dataset)"})
    label_set_file: Optional[str] = field(default=None, metadata={"help": "label set JSON {name, dimensions, low, high} (for a .jsonl dataset)"})
    keep_personas: Optional[str] = field(default=None, metadata={"help": "comma-separated persona ids to keep (default: all)"})
    split_strategy: str = field(default="predefined", metadata={"help": f"one of {SPLITS}"})
    held_out: Optional[str] = field(default=None, metadata={"help": "language (lolo) or persona id (lopo) held out as test"})
    validation_fraction: float = field(default=0.1, metadata={"help": "share of the texts used for validation (random / lolo / lopo)"})
    test_fraction: float = field(default=0.1, metadata={"help": "share of the texts used for test (random)"})
    synthetic_texts: int = field(default=400, metadata={"help": "texts of the synthetic medical set (x synthetic_personas_per_text records)"})
    synthetic_personas_per_text: int = 4

    def __post_init__(self):
        super().__post_init__()
        if self.split_strategy not in SPLITS:
            raise ArgumentError("split_strategy", f"must be one of {SPLITS}, got {self.split_strategy!r}")
        if self.split_strategy in ("lolo", "lopo") and not self.held_out:
            raise ArgumentError("held_out", f"split_strategy={self.split_strategy} needs --held_out "
                                            f"(a {'language' if self.split_strategy == 'lolo' else 'persona id'})")
        for name in ("validation_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ArgumentError(name, f"must be in [0, 1), got {getattr(self, name)}")

    @property
    def kept_personas(self) -> list[str] | None:
        """The persona ids of `keep_personas`, in the given order (None: all)."""
        if not self.keep_personas:
            return None
        return [p.strip() for p in self.keep_personas.split(",") if p.strip()]


def load_records(args, seed: int):
    """(DatasetDict of contract records, LabelSet, PersonaRegistry) of `args.dataset_name`."""
    import datasets

    from affectlab.personas.contract import read_jsonl, records_to_dataset
    from affectlab.personas.presets import (MEDICAL_LABEL_SET, MEDICAL_PERSONAS, dataset_contract,
                                            is_persona_dataset, synthetic_medical_records)
    from dataset_builders import REGISTRY, build_dataset

    name = args.dataset_name
    if name == SYNTHETIC_MEDICAL:
        records = synthetic_medical_records(args.synthetic_texts, args.synthetic_personas_per_text, seed=seed)
        ds = records_to_dataset(records, MEDICAL_LABEL_SET, MEDICAL_PERSONAS, source=SYNTHETIC_MEDICAL)
        return datasets.DatasetDict({"all": ds}), MEDICAL_LABEL_SET, MEDICAL_PERSONAS
    if name in REGISTRY:
        if not is_persona_dataset(name):
            raise ArgumentError("dataset_name", f"{name!r} is not a persona regression dataset (its builder declares no "
                                                "LABEL_SET/PERSONAS); use one of "
                                                f"{[n for n in REGISTRY if is_persona_dataset(n)]} or {SYNTHETIC_MEDICAL!r}")
        label_set, personas = dataset_contract(name)
        return build_dataset(name, data_dir=args.dataset_data_dir, config=args.dataset_config), label_set, personas
    path = Path(name)
    if path.suffix == ".jsonl" and path.is_file():
        if not (args.personas_file and args.label_set_file):
            raise ArgumentError("dataset_name", "a .jsonl dataset needs --personas_file and --label_set_file")
        label_set = LabelSet.from_dict(json.loads(Path(args.label_set_file).read_text(encoding="utf-8")))
        personas = PersonaRegistry.load(args.personas_file)
        ds = records_to_dataset(read_jsonl(path, label_set, personas), label_set, personas, source=str(path))
        return datasets.DatasetDict({"all": ds}), label_set, personas
    raise ArgumentError("dataset_name", f"unknown dataset {name!r}: not registered ({sorted(REGISTRY)}), not "
                                        f"{SYNTHETIC_MEDICAL!r}, not a .jsonl file")


def check_kept_personas(args, registry: PersonaRegistry) -> list[str] | None:
    """The ids of `keep_personas`, each checked against `registry` (an unknown id -> ArgumentError listing the valid ones)."""
    keep = args.kept_personas
    if keep is None:
        return None
    unknown = [p for p in keep if p not in registry]
    if unknown:
        raise ArgumentError("keep_personas", f"unknown persona id(s) {unknown}; the personas of "
                                             f"{args.dataset_name!r} are {registry.ids}")
    return keep


def prepare_splits(raw, args, seed: int, registry: PersonaRegistry | None = None):
    """Apply persona filtering and the split protocol; returns DatasetDict(train, validation[, test])."""
    import datasets

    from affectlab.personas.splits import make_splits

    keep = check_kept_personas(args, registry) if registry is not None else args.kept_personas
    if keep:
        wanted = set(keep)
        raw = datasets.DatasetDict({k: v.filter(lambda r: r["persona_id"] in wanted) for k, v in raw.items()})
    if args.split_strategy == "predefined":
        if "train" not in raw or "validation" not in raw:
            raise ArgumentError("split_strategy", f"predefined needs train and validation splits; {args.dataset_name!r} "
                                                  f"has {list(raw)} (use random, lolo or lopo)")
        return raw
    everything = datasets.concatenate_datasets(list(raw.values()))
    try:
        return make_splits(everything, args.split_strategy, args.held_out, args.validation_fraction,
                           args.test_fraction if args.split_strategy == "random" else 0.0, seed)
    except ValueError as err:  # an unknown held-out value, too few texts: the user's to fix
        raise ArgumentError("held_out" if "held_out" in str(err) else "split_strategy", str(err)) from None


def used_personas(splits, registry: PersonaRegistry) -> PersonaRegistry:
    """The personas of `registry` that occur in `splits` (registry order: the order of persona tokens)."""
    used = set().union(*(set(d["persona_id"]) for d in splits.values()))
    return PersonaRegistry([p for p in registry if p.id in used], source=registry.source)


def split_notes(args, splits) -> dict[str, str]:
    """What each split really is under the split protocol (for cards and eval_results.json)."""
    strategy, held = args.split_strategy, args.held_out
    if strategy == "predefined":
        return {"train": "the dataset's own train split", "validation": "the dataset's own validation split",
                **({"test": "the dataset's own test split"} if "test" in splits else {})}
    if strategy == "random":
        return {"train": "random texts (all ratings of a text stay in one split)",
                "validation": f"{args.validation_fraction:.0%} of the texts, disjoint from train",
                "test": f"{args.test_fraction:.0%} of the texts, disjoint from train and validation"}
    what = "language" if strategy == "lolo" else "persona"
    return {"train": f"every {what} except `{held}`", "validation": f"{args.validation_fraction:.0%} of the remaining "
            f"texts", "test": f"every row of the held-out {what} `{held}` (never seen in training)"}

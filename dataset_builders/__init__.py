"""Dataset builders and their registry: every dataset affectlab trains on, described as data.

`build_dataset("goemotions")` returns a `DatasetDict` from the local copy under `$AFFECTLAB_DATA`
(default `../shared/data`) or, when there is none, from the Hub. `export_dataset` (in `common`)
writes Parquet + a dataset card that `datasets.load_dataset(<folder>)` reads back.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path

from dataset_builders.common import DataFormatError, data_root, dataset_dir, export_dataset  # noqa: F401


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset: where its builder is, which local folder and config it reads."""

    name: str
    builder: str            # "module:Class"
    local_dir: str          # folder name under the data root
    config: str | None
    task: str               # "multi_label" | "single_label" | "regression" | ...
    description: str

    def builder_class(self):
        module, cls = self.builder.split(":")
        return getattr(importlib.import_module(module), cls)

    def module(self):
        return importlib.import_module(self.builder.split(":")[0])

    def card(self) -> str:
        """The dataset card body: the module's CARD, then what each local split is and which official
        splits are absent (so numbers computed on it are reported under their true names)."""
        module = self.module()
        body = getattr(module, "CARD", f"# {self.name}\n\n{self.description}\n").rstrip() + "\n"
        notes, absent = getattr(module, "SPLIT_NOTES", {}), getattr(module, "ABSENT_SPLITS", [])
        if notes or absent:
            body += "\n## Splits in this build\n\n"
            body += "".join(f"- `{split}`: {note}\n" for split, note in notes.items())
            body += "".join(f"- Not in this build: {split}.\n" for split in absent)
        mapping = getattr(module, "LABEL_MAPPING", None)
        if mapping:
            target = getattr(module, "NO_EMOTION_LABEL", None)
            body += "\n## Label mapping\n\n| source label | mapped to |\n|---|---|\n"
            body += "".join(f"| {src} | {dst} |\n" for src, dst in mapping.items())
            if target:
                body += f"| (no emotion) | {target} |\n"
        return body

    def card_metadata(self, dataset_dict=None) -> dict:
        """YAML metadata of the dataset card (licence, languages, task categories, size, source, name)."""
        module = self.module()
        meta = {"license": getattr(module, "LICENSE", "other"), "language": list(getattr(module, "LANGUAGES", ["en"])),
                "task_categories": list(getattr(module, "TASK_CATEGORIES", ["text-classification"])),
                "pretty_name": self.description}
        if getattr(module, "TASK_IDS", None):
            meta["task_ids"] = list(module.TASK_IDS)
        hub_id = getattr(module, "HUB_ID", None)
        meta["source_datasets"] = [f"extended|{hub_id}"] if hub_id else ["original"]
        if dataset_dict is not None:
            meta["size_categories"] = [size_category(sum(len(d) for d in dataset_dict.values()))]
        return meta


def size_category(n: int) -> str:
    """The Hub's `size_categories` bucket for n rows."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    REGISTRY[spec.name] = spec
    return spec


register(DatasetSpec("goemotions", "dataset_builders.goemotions.goemotions:GoEmotions", "goemotions", "simplified",
                     "multi_label", "GoEmotions (simplified), 28 labels, Reddit comments"))
register(DatasetSpec("semeval2018_ec", "dataset_builders.semeval2018_ec.semeval2018_ec:SemEval2018EC", "semeval2018_ec",
                     "goemotions_taxonomy", "multi_label", "SemEval-2018 E-c tweets mapped to the GoEmotions taxonomy"))
# Builders of the other task families (their modules live in their own folders).
register(DatasetSpec("redsm5", "dataset_builders.redsm5.redsm5:ReDSM5", "redsm5_sample", "nli",
                     "single_label", "ReDSM5: Reddit posts x DSM-5 depression criteria (nli / multilabel / evidence)"))
register(DatasetSpec("emobank", "dataset_builders.emobank.emobank:EmoBank", "emobank", None,
                     "regression", "EmoBank: valence/arousal/dominance from writer and reader perspectives"))
register(DatasetSpec("sst2", "dataset_builders.sst2.sst2:SST2", "sst2", None, "single_label", "SST-2: binary sentiment of movie-review phrases (GLUE)"))


def get_spec(name: str) -> DatasetSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; registered: {sorted(REGISTRY)}") from None


def _source_fingerprint(builder_cls, data_dir: Path | None) -> str:
    """Cache key: the builder's source code and the size/mtime of every file in the data folder."""
    h = hashlib.sha256(inspect.getsource(inspect.getmodule(builder_cls)).encode())
    if data_dir is not None:
        for path in sorted(Path(data_dir).iterdir()):
            if path.is_file():
                st = path.stat()
                h.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def build_dataset(name: str, data_dir: str | Path | None = None, config: str | None = None, cache_dir: str | None = None,
                  **builder_kwargs):
    """Build a registered dataset; local folder first (`data_dir`, else `$AFFECTLAB_DATA/<name>`), else the Hub.

    `builder_kwargs` go to the builder's config (e.g. ReDSM5's `num_folds=5, fold=0` for k-fold CV by post)."""
    import datasets

    spec = get_spec(name)
    if data_dir is None:
        data_dir = dataset_dir(spec.local_dir)
    cls = spec.builder_class()
    builder = cls(
        config_name=config or spec.config,
        data_dir=str(data_dir) if data_dir is not None else None,
        cache_dir=cache_dir,
        hash=_source_fingerprint(cls, Path(data_dir) if data_dir is not None else None),
        **builder_kwargs,
    )
    try:
        builder.download_and_prepare()
    except datasets.exceptions.DatasetGenerationError as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, DataFormatError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise
    return builder.as_dataset()

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

    def card(self) -> str:
        module = importlib.import_module(self.builder.split(":")[0])
        return getattr(module, "CARD", f"# {self.name}\n\n{self.description}\n")


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

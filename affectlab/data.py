"""Data preparation shared by the training scripts: load by name, mix, multi-hot, tokenize, lengths."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def load_named_dataset(name: str, config: str | None = None, data_dir: str | None = None):
    """A registered builder (`goemotions`, ...), else a local Parquet folder / Hub repo via `load_dataset`."""
    import datasets

    from dataset_builders import REGISTRY, build_dataset

    if name in REGISTRY:
        return build_dataset(name, data_dir=data_dir, config=config)
    if Path(name).is_dir() or "/" in name:
        return datasets.load_dataset(name, config)
    from affectlab.errors import ArgumentError

    raise ArgumentError("dataset_name", f"unknown dataset {name!r}: not registered ({sorted(REGISTRY)}) and not a folder or Hub repo")


def label_names_of(dataset, label_column: str = "labels") -> list[str]:
    feature = dataset.features[label_column]
    inner = getattr(feature, "feature", feature)
    names = getattr(inner, "names", None)
    if names is None:
        raise ValueError(f"column {label_column!r} is not a ClassLabel (or a list of them): {feature}")
    return list(names)


def is_multi_label(dataset, label_column: str = "labels") -> bool:
    return hasattr(dataset.features[label_column], "feature") or type(dataset.features[label_column]).__name__ in ("List", "Sequence", "LargeList")


def mix_train_splits(parts: dict, weights: dict[str, float], total: int, seed: int):
    """Weighted mixture of training sets: `round(w_i / sum(w) * total)` rows from each, then shuffled.

    A component smaller than its share is repeated (shuffled copies); a larger one is subsampled.
    Each row keeps a `source` column naming its dataset. Same seed -> same mixture.
    """
    import datasets

    rng = np.random.default_rng(seed)
    norm = sum(weights.values())
    pieces = []
    for name, w in weights.items():
        ds = parts[name]
        n = int(round(w / norm * total))
        if n == 0:
            continue
        reps = -(-n // len(ds))
        idx = np.concatenate([rng.permutation(len(ds)) for _ in range(reps)])[:n]
        piece = ds.select(idx.tolist())
        pieces.append(piece.add_column("source", [name] * len(piece)))
    mixed = datasets.concatenate_datasets(pieces)
    return mixed.shuffle(seed=seed).flatten_indices()


def multi_hot(label_lists, num_labels: int) -> np.ndarray:
    out = np.zeros((len(label_lists), num_labels), dtype=np.float32)
    for i, labels in enumerate(label_lists):
        out[i, list(labels)] = 1.0
    return out


def tokenize_for_classification(dataset, tokenizer, text_column: str, label_column: str, num_labels: int,
                                multi_label: bool, max_length: int, text_pair_column: str | None = None,
                                desc: str = "Tokenizing"):
    """Tokenize without padding (batches are padded dynamically), add `labels` and `length`."""

    def encode(batch):
        texts = batch[text_column]
        pairs = batch[text_pair_column] if text_pair_column else None
        enc = tokenizer(texts, pairs, truncation="only_first" if pairs is not None else True, max_length=max_length)
        if multi_label:
            enc["labels"] = multi_hot(batch[label_column], num_labels).tolist()
        else:
            enc["labels"] = list(batch[label_column])
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    keep = set()
    return dataset.map(encode, batched=True, remove_columns=[c for c in dataset.column_names if c not in keep], desc=desc)


def build_dataset_main(argv: list[str] | None = None) -> int:
    """`affectlab build-dataset NAME`: build a registered dataset into Parquet + a dataset card (optionally push it)."""
    import argparse

    from dataset_builders import REGISTRY, build_dataset, export_dataset, get_spec

    parser = argparse.ArgumentParser(prog="affectlab build-dataset",
                                     description="Build a registered dataset into Parquet + a dataset card.")
    parser.add_argument("name", choices=sorted(REGISTRY))
    parser.add_argument("--data_dir", default=None, help="local folder in the original layout (default: $AFFECTLAB_DATA/<name>)")
    parser.add_argument("--config", default=None)
    parser.add_argument("--output_dir", default=None, help="default: outputs/datasets/<name>")
    parser.add_argument("--push_to_hub", default=None, metavar="REPO_ID")
    args = parser.parse_args(argv)

    spec = get_spec(args.name)
    dsd = build_dataset(args.name, data_dir=args.data_dir, config=args.config)
    print(dsd)
    out = Path(args.output_dir or f"outputs/datasets/{args.name}")
    meta = spec.card_metadata(dsd)
    export_dataset(dsd, out, spec.card(), config_name=args.config or spec.config or "default",
                   pretty_name=meta.pop("pretty_name"), license=meta.pop("license"), extra_yaml=meta)
    print(f"wrote {out}")
    if args.push_to_hub:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(args.push_to_hub, repo_type="dataset", exist_ok=True)
        info = api.upload_folder(folder_path=str(out), repo_id=args.push_to_hub, repo_type="dataset",
                                 commit_message=f"affectlab: build {args.name}")
        print(f"pushed {args.push_to_hub} at {info.oid}")
    return 0

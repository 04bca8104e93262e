"""Access to affectlab's own `evaluate` modules (folders under `metrics/`), offline.

`load_metric("multilabel_f1")` is `evaluate.load("<repo>/metrics/multilabel_f1")`;
`metric_module("multilabel_f1")` imports the same file as a module so scripts call its functions
directly (one implementation for the metric and the training loop).
"""

from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache

from affectlab.paths import metric_dir


def load_metric(name: str, **kwargs):
    import evaluate

    return evaluate.load(str(metric_dir(name)), **kwargs)


@lru_cache(maxsize=None)
def metric_module(name: str):
    path = metric_dir(name) / f"{name}.py"
    mod_name = f"affectlab_metric_{name}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module

"""affectlab: Hugging Face-native toolkit for affective and mental-health NLP.

The core package holds what the training scripts share (data resolution, losses, the Trainer
subclass and callbacks, model cards, atomic outputs). Task-specific pieces live beside it in the
top-level folders: `dataset_builders/`, `custom_models/`, `metrics/`, `scripts/`, `recipes/`.
"""

__version__ = "0.1.0"
DEFAULT_SEED = 1337

import logging as _logging

# bitsandbytes logs a warning on every CPU import about an optional `kernels` package; it is noise here.
_logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(_logging.ERROR)

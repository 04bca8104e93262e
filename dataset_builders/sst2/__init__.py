"""SST-2 builder (see `sst2.py`)."""
from dataset_builders.sst2.sst2 import CARD, LABEL_NAMES, SST2  # noqa: F401

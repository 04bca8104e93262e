"""GoEmotions builder (see `goemotions.py`)."""
from dataset_builders.goemotions.goemotions import CARD, LABEL_NAMES, GoEmotions  # noqa: F401

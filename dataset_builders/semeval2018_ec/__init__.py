"""SemEval-2018 Task 1 E-c builder (see `semeval2018_ec.py`)."""
from dataset_builders.semeval2018_ec.semeval2018_ec import CARD, LABEL_MAPPING, SEMEVAL_LABELS, SemEval2018EC  # noqa: F401

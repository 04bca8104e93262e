"""Argument dataclasses of the training scripts (parsed with `trl.TrlParser`: YAML recipe + CLI overrides).

Scripts take three groups, as in TRL / alignment-handbook: `script_args` (data, loss, evaluation),
`training_args` (`transformers.TrainingArguments`) and `model_args` (`trl.ModelConfig`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Optional

from affectlab.losses import LOSSES


def parse_mixture(value) -> dict[str, float] | None:
    """`{"goemotions": 0.8, "semeval2018_ec": 0.2}` or `"goemotions:0.8,semeval2018_ec:0.2"` -> dict."""
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("{"):
            value = json.loads(value)
        else:
            pairs = [item.split(":") for item in value.split(",") if item.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ValueError(f"dataset_mixture must look like 'name:weight,name:weight', got {value!r}")
            value = {k.strip(): float(v) for k, v in pairs}
    mixture = {str(k): float(v) for k, v in dict(value).items()}
    if any(w < 0 for w in mixture.values()) or sum(mixture.values()) <= 0:
        raise ValueError(f"mixture weights must be >= 0 with a positive sum, got {mixture}")
    return mixture


@dataclass
class ClassificationScriptArguments:
    """Data, loss and evaluation options of `scripts/train_classifier.py`."""

    dataset_name: str = field(default="goemotions", metadata={"help": "registered dataset (see dataset_builders.REGISTRY) or a folder/Hub repo with Parquet"})
    dataset_config: Optional[str] = field(default=None, metadata={"help": "builder config (default: the registry's)"})
    dataset_data_dir: Optional[str] = field(default=None, metadata={"help": "local folder in the original layout (default: $AFFECTLAB_DATA/<name>)"})
    dataset_mixture: Optional[str] = field(default=None, metadata={"help": "weighted training mixture, e.g. 'goemotions:0.8,semeval2018_ec:0.2' (evaluation stays on dataset_name)"})
    text_column: str = "text"
    text_pair_column: Optional[str] = field(default=None, metadata={"help": "second text for pair inputs (NLI)"})
    label_column: str = "labels"
    max_length: int = field(default=128, metadata={"help": "truncation length (tokens); batches are padded dynamically"})
    max_train_samples: Optional[int] = None
    max_eval_samples: Optional[int] = None
    loss: str = field(default="bce", metadata={"help": f"one of {LOSSES} ('ce' for single-label)"})
    asl_gamma_neg: float = 4.0
    asl_gamma_pos: float = 0.0
    asl_clip: float = 0.05
    bce_weight: float = field(default=0.5, metadata={"help": "weight of BCE in the 'combined' loss"})
    label_pos_weight: bool = field(default=False, metadata={"help": "BCE pos_weight per label from train frequencies"})
    pos_weight_max: float = 10.0
    threshold: float = field(default=0.5, metadata={"help": "global decision threshold before tuning"})
    tune_thresholds: bool = field(default=True, metadata={"help": "tune one threshold per label on validation (never on test)"})
    early_stopping_patience: Optional[int] = field(default=3, metadata={"help": "evaluations without improvement before stopping (None: off)"})
    card_template: str = field(default="model_cards/classifier.md")
    print_report: bool = True
    save_results: bool = field(default=True, metadata={"help": "append leaderboard result records (one per evaluated split)"})
    results_location: Optional[str] = field(default=None, metadata={"help": "results folder or hf://datasets/<org>/<name> (default: $AFFECTLAB_RESULTS or results/)"})

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        self.mixture = parse_mixture(self.dataset_mixture)


def _model_config_base():
    from trl import ModelConfig

    return ModelConfig


@dataclass
class ModelArguments(_model_config_base()):
    """`trl.ModelConfig` (model id, dtype, attention, LoRA/DoRA, 4/8-bit) + `trust_remote_code`."""

    trust_remote_code: bool = field(default=False, metadata={"help": "allow custom model code (custom_models/*)"})


def parse_script_args(parser):
    """`parser.parse_args_and_config()` (TrlParser: `--config recipe.yaml` + CLI overrides), CPU-DDP aware.

    `accelerate launch` with a multi-process CPU config starts several ranks, but its `use_cpu` never
    reaches `TrainingArguments`: each rank would then train alone (world size 1) on the whole data.
    When several ranks run without CUDA we default `use_cpu` to True so they form one gloo DDP group.
    """
    import torch

    if not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        parser.set_defaults(use_cpu=True)
    return parser.parse_args_and_config()

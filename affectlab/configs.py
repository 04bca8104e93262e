"""Argument dataclasses shared by every task family (parsed with `trl.TrlParser`: YAML recipe + CLI overrides).

As in TRL / alignment-handbook, a run takes three groups: the family's script arguments (a subclass of
`DataArguments`: data, lengths, sample limits, evaluation and results options, then the family's own
fields), `training_args` (`transformers.TrainingArguments`, or TRL's `SFTConfig` for the SFT family) and
`model_args` (`ModelArguments`, i.e. `trl.ModelConfig` + `trust_remote_code`). A field name means the
same thing in every family; a family never redeclares a shared field.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Optional

from affectlab.errors import ArgumentError


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
                raise ArgumentError("dataset_mixture", f"must look like 'name:weight,name:weight', got {value!r}")
            value = {k.strip(): float(v) for k, v in pairs}
    mixture = {str(k): float(v) for k, v in dict(value).items()}
    if any(w < 0 for w in mixture.values()) or sum(mixture.values()) <= 0:
        raise ArgumentError("dataset_mixture", f"weights must be >= 0 with a positive sum, got {mixture}")
    return mixture


def parse_seeds(value) -> list[int] | None:
    """`[1337, 1338]` (a recipe), `"1337,1338,1339"` or `"1337 1338"` (the CLI), or one int -> distinct ints in order."""
    if value in (None, "", [], ()):
        return None
    items = value if isinstance(value, (list, tuple)) else str(value).replace(",", " ").split()
    try:
        seeds = [int(str(v).strip()) for v in items]
    except ValueError:
        raise ArgumentError("seeds", f"must be integers like 1337,1338,1339, got {value!r}") from None
    if len(set(seeds)) != len(seeds):
        raise ArgumentError("seeds", f"each seed once, got {seeds}")
    if any(s < 0 for s in seeds):
        raise ArgumentError("seeds", f"must be >= 0, got {seeds}")
    return seeds


@dataclass
class DataArguments:
    """What every family shares: the dataset, lengths, sample limits, evaluation and results options."""

    dataset_name: Optional[str] = field(default=None, metadata={"help": "registered dataset (dataset_builders.REGISTRY), a Parquet folder / Hub repo, or a family-specific source"})
    dataset_config: Optional[str] = field(default=None, metadata={"help": "builder config (default: the registry's)"})
    dataset_data_dir: Optional[str] = field(default=None, metadata={"help": "local folder in the original layout (default: $AFFECTLAB_DATA/<name>)"})
    max_length: Optional[int] = field(default=None, metadata={"help": "truncation length in tokens (default: the family's); batches are padded dynamically"})
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "use at most this many training rows (seeded shuffle)"})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "evaluate at most this many rows per split"})
    early_stopping_patience: Optional[int] = field(default=3, metadata={"help": "evaluations without improvement before stopping (needs load_best_model_at_end; None: off)"})
    card_template: Optional[str] = field(default=None, metadata={"help": "model-card template (default: the family's packaged one)"})
    print_report: bool = field(default=True, metadata={"help": "print the evaluation report at the end"})
    save_results: bool = field(default=True, metadata={"help": "write one leaderboard result record per evaluated split"})
    results_location: Optional[str] = field(default=None, metadata={"help": "results folder or hf://datasets/<org>/<name> (default: $AFFECTLAB_RESULTS or ./results)"})
    push_extra: Optional[str] = field(default=None, metadata={"help": "comma-separated globs of output files to push beyond the model, card and eval summary"})
    push_predictions: bool = field(default=False, metadata={"help": "push per-example prediction files too (refused for data that may not be redistributed)"})
    seeds: Optional[str] = field(default=None, metadata={"help": "train once per seed, e.g. 1337,1338,1339 (a recipe: seeds: [1337, 1338, 1339]): each run in <output_dir>/seed-<n> with its card and result records, then mean ± sd over the seeds in <output_dir>; replaces --seed, which may only repeat one of them"})
    push_seed: Optional[int] = field(default=None, metadata={"help": "with several seeds and --push_to_hub: the seed whose model is pushed (its card carries the mean ± sd over every seed); required then"})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "replace a non-empty output_dir that holds another run (its contents are removed once the data and model checks pass)"})

    # the family's default max_length (subclasses override the class attribute, not the field)
    default_max_length = 128

    def __post_init__(self):
        if self.max_length is None:
            self.max_length = self.default_max_length
        if self.max_length <= 0:
            raise ArgumentError("max_length", f"must be > 0 tokens, got {self.max_length}")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ArgumentError(name, f"must be >= 1 (or left unset for all rows), got {value}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            self.early_stopping_patience = None
        self.seeds = parse_seeds(self.seeds)
        if self.push_seed is not None and self.push_seed not in (self.seeds or []):
            raise ArgumentError("push_seed", f"{self.push_seed} is not one of --seeds {self.seeds or '(none given)'}")


def _model_config_base():
    from trl import ModelConfig

    return ModelConfig


@dataclass
class ModelArguments(_model_config_base()):
    """`trl.ModelConfig` (model id, dtype, attention, LoRA/DoRA, 4/8-bit) + `trust_remote_code`.

    One meaning in every family: `use_peft` trains a LoRA (DoRA with `use_dora`) adapter on
    `lora_target_modules` (default: the attention projections the model has) plus the family's head;
    `load_in_4bit` / `load_in_8bit` load the base weights with bitsandbytes (CUDA only: refused elsewhere);
    `dtype` is the weights' dtype (bf16/fp16 are refused on a CPU, where they are slower than fp32).
    """

    trust_remote_code: bool = field(default=False, metadata={"help": "allow custom model code (custom_models/*)"})


def multi_rank_cpu_defaults(parser) -> None:
    """`accelerate launch` with a multi-process CPU config starts several ranks, but its `use_cpu` never
    reaches `TrainingArguments`: each rank would then train alone (world size 1) on the whole data.
    When several ranks run without CUDA we default `use_cpu` to True so they form one gloo DDP group."""
    import torch

    if not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        parser.set_defaults(use_cpu=True)


def parse_script_args(parser, args=None):
    """`parser.parse_args_and_config()` (TrlParser: `--config recipe.yaml` + CLI overrides), CPU-DDP aware."""
    multi_rank_cpu_defaults(parser)
    return parser.parse_args_and_config(args)

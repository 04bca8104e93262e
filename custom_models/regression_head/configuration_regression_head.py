"""Configuration of the affectlab regression head: any encoder (stored as its config dict) + a
multi-output regression head with mean/CLS/max pooling, optional output scaling to the label range,
and an MSE or Huber loss. Self-contained (transformers only), loaded with `trust_remote_code=True`.
"""

from transformers import PretrainedConfig

AUTO_MAP = {
    "AutoConfig": "configuration_regression_head.RegressionHeadConfig",
    "AutoModel": "modeling_regression_head.RegressionHeadModel",
    "AutoModelForSequenceClassification": "modeling_regression_head.RegressionHeadModel",
}
POOLINGS = ("mean", "cls", "max")
LOSSES = ("mse", "huber")


class RegressionHeadConfig(PretrainedConfig):
    """`encoder_config` is the backbone's `config.to_dict()` (with its `model_type`); `label_names` name
    the outputs; with `output_scaling` the head emits `label_min + (label_max - label_min) * sigmoid(z)`."""

    model_type = "affectlab_regression_head"

    encoder_config: dict | None = None
    label_names: list | None = None
    pooling: str = "mean"
    output_scaling: bool = False
    label_min: float | None = None
    label_max: float | None = None
    loss: str = "mse"
    huber_delta: float = 1.0
    head_dropout: float = 0.1

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.output_scaling and (self.label_min is None or self.label_max is None or not self.label_min < self.label_max):
            raise ValueError("output_scaling needs label_min < label_max")
        if self.label_names is not None:
            self.label_names = list(self.label_names)
            self.id2label = dict(enumerate(self.label_names))
            self.label2id = {n: i for i, n in enumerate(self.label_names)}
        self.problem_type = "regression"
        # register_for_auto_class would write only the class being saved; keep every entry.
        auto_map = dict(getattr(self, "auto_map", None) or {})
        for key, value in AUTO_MAP.items():
            auto_map.setdefault(key, value)
        self.auto_map = auto_map

    @property
    def num_outputs(self) -> int:
        return len(self.label_names) if self.label_names is not None else self.num_labels

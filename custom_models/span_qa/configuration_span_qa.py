"""Configuration of the affectlab span-QA model: any encoder (stored as its config dict; BERT-family
through `AutoModel`, or the bidirectional `gemma_encoder`) + dropout + a start/end linear head.
Self-contained (transformers only), loaded with `trust_remote_code=True`.
"""

from transformers import PretrainedConfig

AUTO_MAP = {
    "AutoConfig": "configuration_span_qa.SpanQAConfig",
    "AutoModel": "modeling_span_qa.SpanQAModel",
    "AutoModelForQuestionAnswering": "modeling_span_qa.SpanQAModel",
}


class SpanQAConfig(PretrainedConfig):
    """`encoder_config` is the backbone's `config.to_dict()` (with its `model_type`; `gemma_encoder` for
    the bidirectional Gemma encoder); `head_dropout` is applied to the token states before the head."""

    model_type = "affectlab_span_qa"

    encoder_config: dict | None = None
    head_dropout: float = 0.1

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if not 0.0 <= float(self.head_dropout) < 1.0:
            raise ValueError(f"head_dropout must be in [0, 1), got {self.head_dropout}")
        if self.encoder_config is not None and "model_type" not in self.encoder_config:
            raise ValueError("encoder_config needs the backbone's 'model_type'")
        # register_for_auto_class would write only the class being saved; keep every entry.
        auto_map = dict(getattr(self, "auto_map", None) or {})
        for key, value in AUTO_MAP.items():
            auto_map.setdefault(key, value)
        self.auto_map = auto_map

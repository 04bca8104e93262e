# Copied from custom_models.gemma_encoder.configuration_gemma_encoder
"""Configuration of the bidirectional Gemma encoder (`model_type="gemma_encoder"`).

Wraps the text config of a Gemma, Gemma2 or Gemma3 backbone (`text_config`; a nested `Gemma3Config` is
unwrapped to its `text_config`) and adds the encoder options: `bidirectional` (full attention over the
non-padded tokens; `False` keeps the decoder's causal mask, as a control), `pooling`
(`mean` | `cls` | `last` | `max` | `attention`) and `classifier_dropout`.

Self-contained (imports only transformers) so it can travel to the Hub with `trust_remote_code=True`.
"""

from __future__ import annotations

from transformers import AutoConfig, PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

BACKBONE_MODEL_TYPES = ("gemma", "gemma2", "gemma3_text")
NESTED_MODEL_TYPES = ("gemma3",)
POOLING_MODES = ("mean", "cls", "last", "max", "attention")

# Every auto class this code provides. `register_for_auto_class` writes only the saved class into
# `auto_map`, so the full map is set on every config (and therefore in every saved config.json).
AUTO_MAP = {
    "AutoConfig": "configuration_gemma_encoder.GemmaEncoderConfig",
    "AutoModel": "modeling_gemma_encoder.GemmaEncoderModel",
    "AutoModelForSequenceClassification": "modeling_gemma_encoder.GemmaEncoderForSequenceClassification",
}


def _as_text_config(text_config):
    """A Gemma/Gemma2/Gemma3-text config object from a config, a dict, a nested Gemma3Config or None."""
    if text_config is None:
        text_config = CONFIG_MAPPING["gemma3_text"]()
    elif isinstance(text_config, dict):
        text_config = dict(text_config)
        model_type = text_config.pop("model_type", "gemma3_text")
        if model_type not in BACKBONE_MODEL_TYPES + NESTED_MODEL_TYPES:
            raise ValueError(f"gemma_encoder supports backbones {BACKBONE_MODEL_TYPES + NESTED_MODEL_TYPES}, got {model_type!r}")
        text_config.pop("transformers_version", None)
        text_config = CONFIG_MAPPING[model_type](**text_config)
    if getattr(text_config, "model_type", None) in NESTED_MODEL_TYPES:
        text_config = text_config.text_config
    if getattr(text_config, "model_type", None) not in BACKBONE_MODEL_TYPES:
        raise ValueError(f"gemma_encoder supports backbones {BACKBONE_MODEL_TYPES}, got {getattr(text_config, 'model_type', None)!r}")
    return text_config


class GemmaEncoderConfig(PretrainedConfig):
    """Encoder options + the backbone's text config (`text_config`)."""

    model_type = "gemma_encoder"
    sub_configs = {"text_config": AutoConfig}

    def __init__(self, text_config=None, pooling: str = "mean", bidirectional: bool = True,
                 classifier_dropout: float = 0.0, **kwargs):
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {pooling!r}")
        self.text_config = _as_text_config(text_config)
        self.pooling = pooling
        self.bidirectional = bool(bidirectional)
        self.classifier_dropout = float(classifier_dropout)
        auto_map = dict(AUTO_MAP)
        auto_map.update(kwargs.pop("auto_map", None) or {})
        for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
            kwargs.setdefault(key, getattr(self.text_config, key, None))
        super().__init__(**kwargs)
        self.auto_map = auto_map

    @property
    def hidden_size(self) -> int:
        return self.text_config.hidden_size

    @property
    def initializer_range(self) -> float:
        return getattr(self.text_config, "initializer_range", 0.02)

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        """Also accepts a plain Gemma / Gemma2 / Gemma3(-text) config: it becomes the backbone config."""
        if config_dict.get("model_type") in BACKBONE_MODEL_TYPES + NESTED_MODEL_TYPES:
            config_dict = {"text_config": dict(config_dict)}
        return super().from_dict(config_dict, **kwargs)

"""Bidirectional Gemma encoder (Gemma / Gemma2 / Gemma3 backbones) for `trust_remote_code` use.

Importing this package registers `gemma_encoder` with `AutoConfig`, `AutoModel` and
`AutoModelForSequenceClassification`, and marks the classes so `save_pretrained` copies the code files
next to the weights (the saved `config.json` always carries the complete `auto_map`).
"""

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from .configuration_gemma_encoder import AUTO_MAP, GemmaEncoderConfig
from .modeling_gemma_encoder import GemmaEncoderForSequenceClassification, GemmaEncoderModel, GemmaEncoderPooler

AutoConfig.register("gemma_encoder", GemmaEncoderConfig, exist_ok=True)
AutoModel.register(GemmaEncoderConfig, GemmaEncoderModel, exist_ok=True)
AutoModelForSequenceClassification.register(GemmaEncoderConfig, GemmaEncoderForSequenceClassification, exist_ok=True)
GemmaEncoderConfig.register_for_auto_class()
GemmaEncoderModel.register_for_auto_class("AutoModel")
GemmaEncoderForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")

__all__ = ["AUTO_MAP", "GemmaEncoderConfig", "GemmaEncoderModel", "GemmaEncoderForSequenceClassification",
           "GemmaEncoderPooler"]

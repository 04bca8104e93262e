"""Span-QA head for any encoder (trust_remote_code custom model): config + model, registered with the Auto classes."""

from .configuration_span_qa import AUTO_MAP, SpanQAConfig
from .modeling_span_qa import SpanQAModel


def register_auto_classes():
    """Register with AutoConfig/AutoModel/AutoModelForQuestionAnswering here and for `save_pretrained`
    (which then copies the code files, the Gemma encoder's included, next to the weights)."""
    from transformers import AutoConfig, AutoModel, AutoModelForQuestionAnswering

    AutoConfig.register(SpanQAConfig.model_type, SpanQAConfig, exist_ok=True)
    AutoModel.register(SpanQAConfig, SpanQAModel, exist_ok=True)
    AutoModelForQuestionAnswering.register(SpanQAConfig, SpanQAModel, exist_ok=True)
    SpanQAConfig.register_for_auto_class()
    SpanQAModel.register_for_auto_class("AutoModelForQuestionAnswering")


register_auto_classes()

__all__ = ["AUTO_MAP", "SpanQAConfig", "SpanQAModel", "register_auto_classes"]

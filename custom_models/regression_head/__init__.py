"""Regression head for any encoder (trust_remote_code custom model): config + model, registered with the Auto classes."""

from .configuration_regression_head import AUTO_MAP, RegressionHeadConfig
from .modeling_regression_head import RegressionHeadModel, pool


def register_auto_classes():
    """Register with AutoConfig/AutoModel in this process and for `save_pretrained` (copies the code files)."""
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    AutoConfig.register(RegressionHeadConfig.model_type, RegressionHeadConfig, exist_ok=True)
    AutoModel.register(RegressionHeadConfig, RegressionHeadModel, exist_ok=True)
    AutoModelForSequenceClassification.register(RegressionHeadConfig, RegressionHeadModel, exist_ok=True)
    RegressionHeadConfig.register_for_auto_class()
    RegressionHeadModel.register_for_auto_class("AutoModel")


register_auto_classes()

__all__ = ["AUTO_MAP", "RegressionHeadConfig", "RegressionHeadModel", "pool", "register_auto_classes"]

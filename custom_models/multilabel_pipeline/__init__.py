"""A `text-classification` pipeline that applies the per-label thresholds saved in the model config."""

from .multilabel_pipeline import MultiLabelTextClassificationPipeline, register  # noqa: F401

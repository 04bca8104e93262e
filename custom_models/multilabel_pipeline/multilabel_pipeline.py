"""`MultiLabelTextClassificationPipeline`: transformers' text-classification pipeline for multi-label models
that returns the labels whose sigmoid score reaches the per-label threshold tuned at training time
(`config.label_thresholds`, falling back to `config.default_threshold`, else 0.5), highest score first.

Self-contained: this file travels with a model (`custom_pipelines` in its config.json), so that

    pipeline(model="org/goemotions-minilm", trust_remote_code=True)("thank you so much!")
    # -> [{"label": "gratitude", "score": 0.97}]

returns exactly the label sets `affectlab.inference.TextClassifier` returns. `register(config)` writes the
`custom_pipelines` entry into a config; the stock pipeline is used for single-label models.
"""

from __future__ import annotations

import numpy as np
from transformers import TextClassificationPipeline

TASK = "text-classification"
MODULE = "multilabel_pipeline"
CLASS = "MultiLabelTextClassificationPipeline"


class MultiLabelTextClassificationPipeline(TextClassificationPipeline):
    """Labels at or above their tuned thresholds, as `[{"label", "score"}]` per input (highest score first)."""

    def _sanitize_parameters(self, function_to_apply=None, top_k="", **tokenizer_kwargs):
        preprocess, forward, postprocess = super()._sanitize_parameters(function_to_apply=function_to_apply,
                                                                        top_k=top_k, **tokenizer_kwargs)
        postprocess.pop("top_k", None)
        postprocess.pop("_legacy", None)
        postprocess.pop("function_to_apply", None)
        return preprocess, forward, postprocess

    def thresholds(self) -> np.ndarray:
        config = self.model.config
        saved = getattr(config, "label_thresholds", None) or {}
        default = float(getattr(config, "default_threshold", 0.5) or 0.5)
        return np.array([float(saved.get(config.id2label[i], default)) for i in range(config.num_labels)])

    def postprocess(self, model_outputs, **kwargs):
        logits = model_outputs["logits"][0].float().numpy()
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
        chosen = np.flatnonzero(scores >= self.thresholds())
        order = chosen[np.argsort(-scores[chosen], kind="stable")]
        return [{"label": self.model.config.id2label[int(i)], "score": float(scores[i])} for i in order]


def register(config) -> None:
    """Declare the pipeline in `config` (saved into config.json with the model)."""
    config.custom_pipelines = {TASK: {"impl": f"{MODULE}.{CLASS}", "pt": ["AutoModelForSequenceClassification"],
                                      "tf": [], "type": "text"}}

"""Inference that applies what training saved in the config: per-label thresholds for multi-label
models (`config.label_thresholds`), argmax for single-label ones."""

from __future__ import annotations

import numpy as np
import torch


class TextClassifier:
    def __init__(self, model, tokenizer, max_length: int = 128):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        cfg = model.config
        self.labels = [cfg.id2label[i] for i in range(cfg.num_labels)]
        self.multi_label = cfg.problem_type == "multi_label_classification"
        saved = getattr(cfg, "label_thresholds", None) or {}
        default = float(getattr(cfg, "default_threshold", 0.5))
        self.thresholds = np.array([float(saved.get(name, default)) for name in self.labels])

    @classmethod
    def from_pretrained(cls, path: str, **kwargs):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        return cls(AutoModelForSequenceClassification.from_pretrained(path, **kwargs), AutoTokenizer.from_pretrained(path))

    @torch.inference_mode()
    def predict_proba(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        texts = [str(t) for t in texts]  # also accepts a datasets Column or any iterable of strings
        out = []
        for i in range(0, len(texts), batch_size):
            batch = self.tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=self.max_length,
                                   return_tensors="pt").to(self.model.device)
            logits = self.model(**batch).logits.float()
            out.append((torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, -1)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)))

    def predict(self, texts: list[str], batch_size: int = 64) -> list[list[str]] | list[str]:
        probs = self.predict_proba(texts, batch_size)
        if self.multi_label:
            return [[self.labels[j] for j in np.flatnonzero(row >= self.thresholds)] for row in probs]
        return [self.labels[j] for j in probs.argmax(-1)]

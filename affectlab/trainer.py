"""`ClassificationTrainer`: a `transformers.Trainer` with affectlab's losses and model card.

The loss is computed here (BCE / ASL / combined / CE, see `affectlab.losses`) as a mean over the
local batch. DDP averages gradients across ranks, so the loss must NOT be rescaled by the number of
processes: `model_accepts_loss_kwargs` is forced off, which keeps Trainer's
`average_tokens_across_devices` from multiplying it (it otherwise doubled the logged loss of a
sequence classifier on 2 ranks; `tests/scripts/test_distributed.py` checks it stays equal).
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import Trainer


class ClassificationTrainer(Trainer):
    def __init__(self, *args, loss_fn: torch.nn.Module, card_renderer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn
        self.card_renderer = card_renderer
        self.model_accepts_loss_kwargs = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = self.loss_fn(outputs.logits, labels)
        return (loss, outputs) if return_outputs else loss

    def create_model_card(self, *args, **kwargs):
        """Called by `push_to_hub`: render our template instead of Trainer's generic card."""
        if self.card_renderer is not None and self.is_world_process_zero():
            self.card_renderer(self.args.output_dir)
        elif self.card_renderer is None:
            super().create_model_card(*args, **kwargs)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)

"""`ClassificationTrainer`: a `transformers.Trainer` with affectlab's losses and model card.

The loss is computed here (BCE / ASL / combined / CE, see `affectlab.losses`) as a mean over the
local batch. DDP averages gradients across ranks, so the loss must NOT be rescaled by the number of
processes: `model_accepts_loss_kwargs` is forced off, which keeps Trainer's
`average_tokens_across_devices` from multiplying it (it otherwise doubled the logged loss of a
sequence classifier on 2 ranks; `tests/scripts/test_distributed.py` checks it stays equal).

Evaluation and prediction run in length-sorted batches (longest first, like `affectlab.inference`), so a batch
pads only to its own longest example, and come back in the ORIGINAL order: `predict` / `evaluate` outputs and the
`EvalPrediction` that `compute_metrics` sees are permuted back (Trainer's own `group_by_length` evaluation sampler
returned them shuffled).
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import Trainer


class LengthSortedSampler(torch.utils.data.Sampler):
    """The dataset's indices, longest example first (stable); `order[i]` is the row evaluated i-th."""

    def __init__(self, lengths):
        self.order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")

    def __iter__(self):
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return len(self.order)


def example_lengths(dataset, input_name: str = "input_ids", length_column: str = "length"):
    """Token counts per row of a tokenized `datasets.Dataset` (its `length` column, else its `input_ids` lengths
    read through Arrow), or None for anything else."""
    try:
        import datasets
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(dataset, datasets.Dataset):
        return None
    if length_column in dataset.column_names:
        return np.asarray(dataset[length_column], dtype=np.int64)
    if input_name not in dataset.column_names:
        return None
    import pyarrow.compute as pc

    column = dataset.with_format("arrow")[input_name]
    return np.asarray(pc.list_value_length(column).to_numpy(zero_copy_only=False), dtype=np.int64)


def _find_sorted_sampler(obj, depth: int = 0):
    if isinstance(obj, LengthSortedSampler):
        return obj
    if obj is None or depth > 4:
        return None
    for name in ("batch_sampler", "sampler", "base_dataloader"):
        found = _find_sorted_sampler(getattr(obj, name, None), depth + 1)
        if found is not None:
            return found
    return None


def restore_order(values, order: np.ndarray):
    """Rows evaluated in `order` put back in dataset order (arrays, or tuples / lists / dicts of them)."""
    if values is None:
        return None
    if isinstance(values, (tuple, list)):
        return type(values)(restore_order(v, order) for v in values)
    if isinstance(values, dict):
        return {k: restore_order(v, order) for k, v in values.items()}
    if isinstance(values, np.ndarray) and values.ndim and values.shape[0] == len(order):
        out = np.empty_like(values)
        out[order] = values
        return out
    return values


class ClassificationTrainer(Trainer):
    def __init__(self, *args, loss_fn: torch.nn.Module, card_renderer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn
        self.card_renderer = card_renderer
        self.model_accepts_loss_kwargs = False

    # ---- evaluation in length-sorted batches, results in the original order ---------------------------------
    def _get_eval_sampler(self, eval_dataset):
        input_name = self.processing_class.model_input_names[0] if getattr(self, "processing_class", None) is not None \
            and getattr(self.processing_class, "model_input_names", None) else "input_ids"
        lengths = example_lengths(eval_dataset, input_name, self.args.length_column_name)
        if lengths is None or not self.args.eval_do_concat_batches:
            return super()._get_eval_sampler(eval_dataset)
        return LengthSortedSampler(lengths)

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix="eval"):
        from transformers.trainer_utils import EvalLoopOutput, EvalPrediction

        sampler = _find_sorted_sampler(dataloader)
        if sampler is None:
            return super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys,
                                           metric_key_prefix)
        order, compute_metrics = sampler.order, self.compute_metrics
        if compute_metrics is not None:
            def compute_metrics_in_order(p):
                return compute_metrics(EvalPrediction(**{k: restore_order(getattr(p, k, None), order)
                                                         for k in ("predictions", "label_ids", "inputs", "losses")}))
            self.compute_metrics = compute_metrics_in_order
        try:
            output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys,
                                             metric_key_prefix)
        finally:
            self.compute_metrics = compute_metrics
        return EvalLoopOutput(predictions=restore_order(output.predictions, order),
                              label_ids=restore_order(output.label_ids, order), metrics=output.metrics,
                              num_samples=output.num_samples)

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

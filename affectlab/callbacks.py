"""Trainer callbacks shared by the training scripts.

`GradientHealthCallback` watches gradients the way the seed ASL system did: at every logging step it
records the global and per-block gradient norms (to `gradient_health.jsonl` in the output folder)
and warns once when they collapse (vanishing, e.g. ASL with a large gamma_neg) or explode.

Across a resume the log continues as in an uninterrupted run: at the start of training the file keeps
only the records up to the resumed step (a fresh run starts it empty), so each step is recorded once;
the warnings already given travel in the checkpoint (`checkpoint_state`, see `affectlab.checkpointing`).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import defaultdict
from pathlib import Path

import torch
from transformers import TrainerCallback

logger = logging.getLogger(__name__)


def block_name(param_name: str) -> str:
    """Group a parameter under its block: up to and including the first layer index, else 2 components.

    `bert.encoder.layer.3.attention.self.query.weight` -> `bert.encoder.layer.3`;
    `classifier.weight` -> `classifier`; `bert.embeddings.word_embeddings.weight` -> `bert.embeddings`.
    """
    parts = param_name.split(".")
    for i, part in enumerate(parts[:-1]):
        if re.fullmatch(r"\d+", part):
            return ".".join(parts[: i + 1])
    return ".".join(parts[: min(2, len(parts) - 1)]) or parts[0]


def gradient_norms(model: torch.nn.Module) -> tuple[float, dict[str, float]]:
    """(global L2 norm, {block: L2 norm}) over parameters that have a gradient."""
    sq = defaultdict(float)
    for name, p in model.named_parameters():
        if p.grad is not None:
            sq[block_name(name)] += float(p.grad.detach().float().pow(2).sum())
    total = math.sqrt(sum(sq.values()))
    return total, {k: math.sqrt(v) for k, v in sq.items()}


def read_records(path: str | Path) -> list[dict]:
    """The records of a gradient_health.jsonl (a line torn by a kill mid-write is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            out.append(record)
    return out


class GradientHealthCallback(TrainerCallback):
    def __init__(self, collapse_below: float = 1e-6, explode_above: float = 1e3, filename: str = "gradient_health.jsonl"):
        self.collapse_below = collapse_below
        self.explode_above = explode_above
        self.filename = filename
        self.warned: set[str] = set()
        self.records: list[dict] = []

    # ---- state kept in checkpoints (affectlab.checkpointing) ----------------------------------------
    def checkpoint_state(self) -> dict:
        return {"warned": sorted(self.warned)}

    def load_checkpoint_state(self, state: dict) -> None:
        self.warned = set(state.get("warned", []))

    def on_train_begin(self, args, state, control, **kwargs):
        """Continue the log from the step training starts at: drop records of steps after it (run after
        the checkpoint being resumed, then lost), or start it empty for a fresh run."""
        if not args.output_dir:
            return
        path = Path(args.output_dir) / self.filename
        step = int(state.global_step or 0)
        kept = [r for r in read_records(path) if r["step"] <= step] if step > 0 else []
        self.records = kept
        if state.is_world_process_zero and (path.exists() or kept):
            from affectlab.io import atomic_write_text

            atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self.warned:
            self.warned.add(kind)
            logger.warning(message)

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        step = state.global_step + 1  # the step this optimizer update completes
        if model is None or not (step == 1 or (args.logging_steps and step % int(args.logging_steps) == 0)):
            return
        # Gradients here are already clipped to max_grad_norm; clipping only scales all blocks down
        # together, so ratios between blocks and the collapse test are unaffected.
        total, blocks = gradient_norms(model)
        record = {"step": step, "grad_norm": total, "blocks": blocks}
        self.records.append(record)
        if not math.isfinite(total):
            self._warn_once("nonfinite", f"step {step}: gradient norm is {total} (NaN/inf)")
        elif total < self.collapse_below:
            self._warn_once("collapse", f"step {step}: gradient norm {total:.3e} < {self.collapse_below:.0e}: gradients have collapsed "
                            "(with ASL, lower gamma_neg or raise the learning rate)")
        elif total > self.explode_above:
            self._warn_once("explode", f"step {step}: gradient norm {total:.3e} > {self.explode_above:.0e}: gradients are exploding")
        dead = [b for b, v in blocks.items() if v < self.collapse_below]
        if dead and total >= self.collapse_below:
            self._warn_once("dead_blocks", f"step {step}: blocks with gradient norm < {self.collapse_below:.0e}: {dead}")
        if state.is_world_process_zero and args.output_dir:
            path = Path(args.output_dir)
            path.mkdir(parents=True, exist_ok=True)
            with open(path / self.filename, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

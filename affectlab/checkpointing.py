"""Checkpoints that survive any fault, and resumes that continue a run exactly.

`attach(trainer)` (called by `Task.fit` on every family's Trainer before `train()`) gives a
`transformers.Trainer` three things:

1. **Atomic checkpoints.** Trainer writes each checkpoint into `<run>/.checkpoint-staging/checkpoint-N`;
   when every rank has finished, the main process writes `affectlab_checkpoint.json` (the file list with
   sizes + the state of item 2) last, fsyncs, and renames the folder to `<run>/checkpoint-N`. A
   `checkpoint-N` folder is therefore complete or absent; a kill mid-write leaves only the staging
   folder, which the next run removes. Rotation (`save_total_limit`) runs after the rename and counts
   complete checkpoints only, so it never deletes the last complete one in favour of an incomplete one.
2. **Exact resumes.** The checkpoint keeps Trainer's running loss (`_total_loss_scalar`, the un-logged
   `_tr_loss` of every rank, the step last logged, the step the run started from) and the state of
   every callback with `checkpoint_state()` / `load_checkpoint_state(state)` methods; a resume restores
   them, so `train_loss` and every logged loss equal the uninterrupted run's.
   (`GradientHealthCallback` keeps its log continuous itself: see `affectlab.callbacks`.)
3. **Choosing what to resume.** `latest_complete_checkpoint(folder)` is the newest complete checkpoint,
   skipping (with a warning) incomplete ones: staging leftovers, and folders written before this
   mechanism (or by a Trainer without it) that lack a readable `trainer_state.json` or hold an empty
   weights / optimizer file. `affectlab.run.check_output_dir` uses it for `--resume_from_checkpoint true`.

Fault injection for the tests only: `AFFECTLAB_TEST_KILL=step:N` SIGKILLs the process at the end of
optimizer step N (before that step's checkpoint); `AFFECTLAB_TEST_KILL=save:N` SIGKILLs it while
checkpoint N is being written (after the weights, with a 0-byte optimizer.pt).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

logger = logging.getLogger("affectlab.checkpointing")

STAGING_DIR = ".checkpoint-staging"
MARKER = "affectlab_checkpoint.json"
TRAINER_STATE = "trainer_state.json"
FORMAT = 1
KILL_ENV = "AFFECTLAB_TEST_KILL"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# files that are never legitimately empty in a checkpoint
_NON_EMPTY_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".json")


# ---- reading checkpoints -----------------------------------------------------------------------------
def checkpoint_problem(path: str | os.PathLike) -> str | None:
    """Why the checkpoint folder `path` cannot be resumed from, or None when it is complete."""
    path = Path(path)
    if not path.is_dir():
        return "not a folder"
    marker = path / MARKER
    if marker.is_file():
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
            files = info["files"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            return f"unreadable {MARKER} ({err})"
        for name, size in files.items():
            f = path / name
            if not f.is_file():
                return f"{name} is missing"
            if f.stat().st_size != size:
                return f"{name} has {f.stat().st_size} bytes, {size} were written"
        return None
    # A checkpoint without our marker (written before this mechanism or by a bare Trainer): Trainer
    # writes trainer_state.json last, so it must be there and readable, and no file may be empty.
    state = path / TRAINER_STATE
    if not state.is_file():
        return f"no {TRAINER_STATE} (the write was interrupted)"
    try:
        json.loads(state.read_text(encoding="utf-8"))["global_step"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"unreadable {TRAINER_STATE} ({err})"
    for f in path.rglob("*"):
        if f.is_file() and f.suffix in _NON_EMPTY_SUFFIXES and f.stat().st_size == 0:
            return f"{f.relative_to(path)} is empty"
    return None


def is_complete_checkpoint(path: str | os.PathLike) -> bool:
    return checkpoint_problem(path) is None


def list_checkpoints(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of the `checkpoint-N` folders in `folder`, by step."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _CHECKPOINT_RE.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


def complete_checkpoints(folder: str | os.PathLike, warn: bool = False) -> list[Path]:
    """The complete `checkpoint-N` folders in `folder`, oldest step first (incomplete ones warned about)."""
    out = []
    for _, path in list_checkpoints(folder):
        problem = checkpoint_problem(path)
        if problem is None:
            out.append(path)
        elif warn:
            logger.warning("skipping incomplete checkpoint %s: %s", path, problem)
    return out


def latest_complete_checkpoint(folder: str | os.PathLike) -> str | None:
    """The newest complete checkpoint in `folder` (what `--resume_from_checkpoint true` resumes), or None.

    Incomplete checkpoints (a kill while one was written) are skipped with a warning."""
    folder = Path(folder)
    staging = folder / STAGING_DIR
    if staging.is_dir():
        for p in sorted(staging.iterdir()):
            logger.warning("skipping incomplete checkpoint %s: its write was interrupted", p)
    found = complete_checkpoints(folder, warn=True)
    return str(found[-1]) if found else None


def rotate_checkpoints(folder: str | os.PathLike, save_total_limit: int | None, keep: list[str | None]) -> None:
    """Delete the oldest complete checkpoints beyond `save_total_limit`; never one in `keep` (the newest,
    the best). Incomplete folders are neither counted nor deleted, so the last complete one stays."""
    if not save_total_limit or save_total_limit <= 0:
        return
    protected = {Path(k).resolve() for k in keep if k}
    found = complete_checkpoints(folder)
    allowed = max(save_total_limit, len([p for p in found if p.resolve() in protected]))
    excess = len(found) - allowed
    for path in found:
        if excess <= 0:
            break
        if path.resolve() not in protected:
            logger.info("deleting older checkpoint %s (save_total_limit=%s)", path, save_total_limit)
            shutil.rmtree(path, ignore_errors=True)
            excess -= 1


def read_checkpoint_state(path: str | os.PathLike) -> dict | None:
    """The affectlab state saved with a checkpoint (None for checkpoints without it)."""
    marker = Path(path) / MARKER
    if not marker.is_file():
        return None
    return json.loads(marker.read_text(encoding="utf-8")).get("state")


# ---- writing checkpoints -----------------------------------------------------------------------------
def _fsync_tree(folder: Path) -> None:
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover  (platforms without directory fds)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_marker(folder: Path, state: dict, step: int) -> None:
    files = {str(f.relative_to(folder)): f.stat().st_size for f in sorted(folder.rglob("*")) if f.is_file()}
    payload = {"format": FORMAT, "global_step": step, "files": files, "state": state}
    tmp = folder / f".{MARKER}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(payload, indent=1, sort_keys=True))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / MARKER)


def _publish(staged: Path, final: Path) -> None:
    """Rename the finished `staged` folder to `final` (replacing an older folder of that name)."""
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staged, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, final)
    _fsync_dir(final.parent)


# ---- the Trainer side --------------------------------------------------------------------------------
def _stateful_callbacks(trainer) -> dict:
    """{key: callback} for the callbacks that keep state in our checkpoints (name#index for duplicates)."""
    out, seen = {}, {}
    for cb in trainer.callback_handler.callbacks:
        if callable(getattr(cb, "checkpoint_state", None)) and callable(getattr(cb, "load_checkpoint_state", None)):
            name = type(cb).__name__
            seen[name] = seen.get(name, -1) + 1
            out[f"{name}#{seen[name]}"] = cb
    return out


def _restore_exportable_callbacks(trainer, checkpoint: str) -> None:
    """Put the saved attributes of Trainer's own stateful callbacks (`ExportableState`, e.g. the early-stopping
    patience counter) back in place. Trainer does that only with `restore_callback_states_from_checkpoint`;
    an exact resume needs it always."""
    from transformers.trainer_callback import ExportableState

    try:
        saved = json.loads((Path(checkpoint) / TRAINER_STATE).read_text(encoding="utf-8"))
        stored = saved.get("stateful_callbacks") or {}
    except (OSError, ValueError):
        return
    for name, data in stored.items():
        entries = data if isinstance(data, list) else [data]
        same = [cb for cb in trainer.callback_handler.callbacks
                if isinstance(cb, ExportableState) and type(cb).__name__ == name]
        for cb, entry in zip(same, entries):
            for attribute, value in (entry or {}).get("attributes", {}).items():
                setattr(cb, attribute, value)


def _gather_tr_loss(trainer) -> list[float]:
    """The un-logged running loss of every rank (a collective: called on all ranks)."""
    value = trainer._tr_loss.detach().reshape(1).float()
    if getattr(trainer.args, "world_size", 1) > 1:
        value = trainer.accelerator.gather(value)
    return [float(v) for v in value.cpu().tolist()]


def _maybe_kill(where: str, step: int) -> None:
    spec = os.environ.get(KILL_ENV)
    if spec and spec == f"{where}:{step}":
        import signal

        logger.warning("%s=%s: killing this process (test fault injection)", KILL_ENV, spec)
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


def _callback_class():
    from transformers import TrainerCallback

    class ResumeStateCallback(TrainerCallback):
        """Restores the running-loss state of a resumed run once `_inner_training_loop` has reset it."""

        def __init__(self, trainer):
            self.trainer = trainer
            self.pending: dict | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            tr, pending = self.trainer, self.pending   # kept for a retry (auto_find_batch_size)
            tr._affectlab_origin_step = tr.state.global_step
            if not pending:
                return
            import torch

            if pending.get("global_step") != tr.state.global_step:
                logger.warning("checkpoint state is for step %s, the trainer is at %s: the running loss restarts",
                               pending.get("global_step"), tr.state.global_step)
                return
            losses = pending["tr_loss"]
            rank = getattr(args, "process_index", 0)
            mine = losses[rank] if len(losses) == getattr(args, "world_size", 1) else sum(losses) / len(losses)
            tr._tr_loss = torch.tensor(mine, dtype=tr._tr_loss.dtype, device=tr._tr_loss.device)
            tr._total_loss_scalar = pending["total_loss_scalar"]
            tr._globalstep_last_logged = pending["globalstep_last_logged"]
            tr._affectlab_origin_step = pending["initial_global_step"]

        def on_step_end(self, args, state, control, **kwargs):
            if os.environ.get(KILL_ENV):
                _maybe_kill("step", state.global_step)

    return ResumeStateCallback


def attach(trainer):
    """Give `trainer` atomic checkpoints and exact resumes (see the module docstring). Call it once, after
    building the Trainer and before `trainer.train(...)`; returns the trainer."""
    if getattr(trainer, "_affectlab_checkpointing", False):
        return trainer
    trainer._affectlab_checkpointing = True
    callback = _callback_class()(trainer)
    trainer.add_callback(callback)
    trainer._affectlab_origin_step = 0

    original_save = trainer._save_checkpoint
    original_train = trainer.train
    original_log = trainer.log
    original_finalize = trainer._finalize_training
    original_output_dir = trainer._get_output_dir
    original_push = trainer._push_from_checkpoint
    original_save_optimizer = trainer._save_optimizer_and_scheduler

    def state_for_checkpoint(tr_losses: list[float]) -> dict:
        return {"global_step": trainer.state.global_step,
                "initial_global_step": trainer._affectlab_origin_step,
                "total_loss_scalar": trainer._total_loss_scalar,
                "tr_loss": tr_losses,
                "globalstep_last_logged": trainer._globalstep_last_logged,
                "world_size": getattr(trainer.args, "world_size", 1),
                "callbacks": {k: cb.checkpoint_state() for k, cb in _stateful_callbacks(trainer).items()}}

    def save_checkpoint(model, trial):
        step = trainer.state.global_step
        run_dir = Path(original_output_dir(trial))
        staging_parent = run_dir / STAGING_DIR
        final = run_dir / f"checkpoint-{step}"
        staged = staging_parent / final.name
        main = trainer.args.should_save
        tr_losses = _gather_tr_loss(trainer)
        if main and staged.exists():
            shutil.rmtree(staged)
        trainer.accelerator.wait_for_everyone()
        pushes = []
        trainer._get_output_dir = lambda trial=None: str(staging_parent)
        trainer._push_from_checkpoint = pushes.append
        try:
            original_save(model, trial)
        finally:
            trainer._get_output_dir = original_output_dir
            trainer._push_from_checkpoint = original_push
        if trainer.state.best_model_checkpoint and Path(trainer.state.best_model_checkpoint) == staged:
            trainer.state.best_model_checkpoint = str(final)
            if main:
                trainer.state.save_to_json(str(staged / TRAINER_STATE))
        trainer.accelerator.wait_for_everyone()   # every rank's files are in
        if main:
            _fsync_tree(staged)
            _write_marker(staged, state_for_checkpoint(tr_losses), step)
            _publish(staged, final)
            try:
                staging_parent.rmdir()
            except OSError:
                pass
            rotate_checkpoints(run_dir, trainer.args.save_total_limit,
                               keep=[str(final), trainer.state.best_model_checkpoint])
        trainer.accelerator.wait_for_everyone()
        if pushes:
            original_push(str(final))

    def save_optimizer_and_scheduler(output_dir):
        if os.environ.get(KILL_ENV) == f"save:{trainer.state.global_step}":
            open(os.path.join(output_dir, "optimizer.pt"), "wb").close()   # the half-written file a kill leaves
            _maybe_kill("save", trainer.state.global_step)
        return original_save_optimizer(output_dir)

    def train(resume_from_checkpoint=None, *args, **kwargs):
        if resume_from_checkpoint is True:
            resume_from_checkpoint = latest_complete_checkpoint(trainer.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"no complete checkpoint to resume in {trainer.args.output_dir}")
        if resume_from_checkpoint is False:
            resume_from_checkpoint = None
        if resume_from_checkpoint:
            problem = checkpoint_problem(resume_from_checkpoint)
            if problem:
                raise ValueError(f"cannot resume from {resume_from_checkpoint}: {problem}")
            saved = read_checkpoint_state(resume_from_checkpoint)
            if saved is None:
                logger.warning("%s has no affectlab state (written without affectlab.checkpointing): train_loss will "
                               "average only the resumed steps", resume_from_checkpoint)
            else:
                callbacks = _stateful_callbacks(trainer)
                for key, value in saved.get("callbacks", {}).items():
                    if key in callbacks:
                        callbacks[key].load_checkpoint_state(value)
            callback.pending = saved
            if not trainer.args.restore_callback_states_from_checkpoint:
                _restore_exportable_callbacks(trainer, resume_from_checkpoint)
        else:
            callback.pending = None
        if trainer.args.should_save:
            staging = Path(trainer.args.output_dir) / STAGING_DIR
            if staging.is_dir():
                logger.warning("removing incomplete checkpoint(s) %s", sorted(p.name for p in staging.iterdir()))
                shutil.rmtree(staging, ignore_errors=True)
        try:
            out = original_train(resume_from_checkpoint, *args, **kwargs)
        finally:
            callback.pending = None
        if "train_loss" in out.metrics and out.training_loss != out.metrics["train_loss"]:
            out = type(out)(out.global_step, out.metrics["train_loss"], out.metrics)
        return out

    def finalize_training(*args, **kwargs):
        trainer._affectlab_finalizing = True
        try:
            return original_finalize(*args, **kwargs)
        finally:
            trainer._affectlab_finalizing = False

    def log(logs, *args, **kwargs):
        # the end-of-training metrics: train_loss over the whole run, not only the steps since the resume
        origin = trainer._affectlab_origin_step
        if getattr(trainer, "_affectlab_finalizing", False) and "train_loss" in logs \
                and origin != trainer._initial_global_step:
            logs["train_loss"] = trainer._total_loss_scalar / max(trainer.state.global_step - origin, 0.001)
        return original_log(logs, *args, **kwargs)

    trainer._save_checkpoint = save_checkpoint
    trainer._save_optimizer_and_scheduler = save_optimizer_and_scheduler
    trainer.train = train
    trainer._finalize_training = finalize_training
    trainer.log = log
    return trainer

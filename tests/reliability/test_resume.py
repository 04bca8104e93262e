"""Issue 14, resume: no kill loses or corrupts a run.

The classifier family trains the tiny random BERT in a subprocess with a checkpoint every step. One run
is killed with SIGKILL while a checkpoint is being written (AFFECTLAB_TEST_KILL=save:N, after the weights,
with a 0-byte optimizer.pt), resumed with `--resume_from_checkpoint true`, killed again at a random
(seeded) step between two checkpoints (AFFECTLAB_TEST_KILL=step:M), and resumed to the end. Its final
weights, eval metrics, train_loss, log history and gradient_health.jsonl must equal those of an
uninterrupted run with the same seed. The unit tests below cover choosing and rotating checkpoints.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from affectlab.checkpointing import (MARKER, STAGING_DIR, checkpoint_problem, latest_complete_checkpoint,
                                     rotate_checkpoints)

REPO = Path(__file__).resolve().parents[2]
MAX_STEPS = 12          # 64 rows / batch 8 = 8 steps an epoch: the run crosses an epoch boundary
LOGGING_STEPS = 3       # checkpoints between logging steps carry an un-logged running loss
TIMING = ("runtime", "per_second")


def train_cmd(model_dir: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "affectlab.cli", "train", "classifier", "--config", str(REPO / "recipes/tiny_test.yaml"),
            "--model_name_or_path", str(model_dir), "--output_dir", str(out), "--max_steps", str(MAX_STEPS),
            "--save_strategy", "steps", "--save_steps", "1", "--save_total_limit", "2",
            "--eval_strategy", "steps", "--eval_steps", "4", "--logging_steps", str(LOGGING_STEPS), "--save_results", "false", *extra]


def start(model_dir: Path, out: Path, *extra: str, kill: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("AFFECTLAB_TEST_KILL", None)
    if kill:
        env["AFFECTLAB_TEST_KILL"] = kill
    log_path = out.parent / f"{out.name}.{(kill or 'run').replace(':', '-')}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(train_cmd(model_dir, out, *extra), cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    proc.log_path = log_path
    return proc


def finish(proc: subprocess.Popen, timeout: float = 300) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def run_ok(proc: subprocess.Popen) -> None:
    assert finish(proc) == 0, proc.log_path.read_text()[-4000:]


def killed(proc: subprocess.Popen) -> None:
    assert finish(proc) == -signal.SIGKILL, proc.log_path.read_text()[-4000:]


def grad_steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "gradient_health.jsonl").read_text().splitlines()]


def checkpoint_steps(out: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))


def without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in entry.items() if not any(t in k for t in TIMING)} for entry in history]


def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path, tiny_bert_dir):
    import torch
    from safetensors.torch import load_file

    rng = random.Random(14)
    save_kill = rng.randint(3, 5)                       # killed while checkpoint-<save_kill> is written
    # killed after this step's update, before its checkpoint; a logging step, so its gradient record is written
    step_kill = rng.choice([s for s in range(save_kill + 2, MAX_STEPS) if s % LOGGING_STEPS == 0])

    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    ref_proc = start(tiny_bert_dir, reference)           # runs beside the interrupted lineage

    # 1. SIGKILL in the middle of writing checkpoint-<save_kill>
    killed(start(tiny_bert_dir, resumed, kill=f"save:{save_kill}"))
    staged = resumed / STAGING_DIR / f"checkpoint-{save_kill}"
    assert (staged / "optimizer.pt").stat().st_size == 0 and not (resumed / f"checkpoint-{save_kill}").exists()
    assert checkpoint_steps(resumed) == [save_kill - 2, save_kill - 1]      # rotation kept the 2 newest
    assert latest_complete_checkpoint(resumed) == str(resumed / f"checkpoint-{save_kill - 1}")
    # the same half-written folder as a kill left it before checkpoints were atomic: visible, no
    # trainer_state.json, 0-byte optimizer.pt (resuming it crashed); it must be skipped, then replaced
    shutil.copytree(staged, resumed / f"checkpoint-{save_kill}")
    assert "trainer_state.json" in checkpoint_problem(resumed / f"checkpoint-{save_kill}")

    # 2. resume, SIGKILL at a random step between two checkpoints
    killed(start(tiny_bert_dir, resumed, "--resume_from_checkpoint", "true", kill=f"step:{step_kill}"))
    assert not (resumed / STAGING_DIR).exists()
    assert latest_complete_checkpoint(resumed) == str(resumed / f"checkpoint-{step_kill - 1}")
    assert grad_steps(resumed)[-1] == step_kill           # step_kill's record outlived its checkpoint

    # 3. resume to the end
    run_ok(start(tiny_bert_dir, resumed, "--resume_from_checkpoint", "true"))
    run_ok(ref_proc)

    assert checkpoint_steps(resumed) == checkpoint_steps(reference) == [MAX_STEPS - 1, MAX_STEPS]
    assert not list(resumed.glob(f"checkpoint-*/{MARKER}.tmp")) and not (resumed / STAGING_DIR).exists()
    ref_w, res_w = load_file(reference / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert ref_w.keys() == res_w.keys()
    assert all(torch.equal(ref_w[k], res_w[k]) for k in ref_w)
    ref_eval, res_eval = (json.loads((d / "eval_results.json").read_text()) for d in (reference, resumed))
    assert res_eval["results"] == ref_eval["results"]
    ref_train, res_train = (json.loads((d / "train_results.json").read_text()) for d in (reference, resumed))
    assert res_train["train_loss"] == ref_train["train_loss"]
    assert without_timing(res_train["log_history"]) == without_timing(ref_train["log_history"])
    logged = list(range(LOGGING_STEPS, MAX_STEPS + 1, LOGGING_STEPS))
    assert [e["step"] for e in res_train["log_history"] if "loss" in e] == logged    # each logging step once
    assert grad_steps(resumed) == grad_steps(reference) == [1, *logged]
    assert (resumed / "gradient_health.jsonl").read_text() == (reference / "gradient_health.jsonl").read_text()


# ---- choosing and rotating checkpoints (no training) -------------------------------------------------
def fake_checkpoint(folder: Path, step: int, complete: bool = True, marker: bool = True) -> Path:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"w" * 10)
    (path / "optimizer.pt").write_bytes(b"o" * 10 if complete else b"")
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        if marker:
            files = {p.name: p.stat().st_size for p in path.iterdir()}
            (path / MARKER).write_text(json.dumps({"format": 1, "global_step": step, "files": files, "state": {}}))
    return path


def test_latest_complete_checkpoint_skips_incomplete_ones(tmp_path, caplog):
    fake_checkpoint(tmp_path, 2)
    fake_checkpoint(tmp_path, 3, marker=False)           # complete, from a Trainer without the mechanism
    fake_checkpoint(tmp_path, 4, complete=False)         # a kill mid-write, before checkpoints were atomic
    truncated = fake_checkpoint(tmp_path, 5)             # the marker says 10 bytes, the file has fewer
    (truncated / "optimizer.pt").write_bytes(b"o")
    (tmp_path / STAGING_DIR / "checkpoint-6").mkdir(parents=True)
    with caplog.at_level(logging.WARNING, logger="affectlab.checkpointing"):
        assert latest_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-3")
    text = caplog.text
    assert "checkpoint-4" in text and "checkpoint-5" in text and "checkpoint-6" in text
    assert "optimizer.pt has 1 bytes" in checkpoint_problem(truncated)
    assert latest_complete_checkpoint(tmp_path / "nothing") is None


def test_rotation_never_deletes_the_last_complete_checkpoint_for_an_incomplete_one(tmp_path):
    for step in (1, 2, 3):
        fake_checkpoint(tmp_path, step)
    fake_checkpoint(tmp_path, 4, complete=False)
    fake_checkpoint(tmp_path, 5, complete=False)
    rotate_checkpoints(tmp_path, 1, keep=[str(tmp_path / "checkpoint-3")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-3", "checkpoint-4", "checkpoint-5"]
    fake_checkpoint(tmp_path, 6)
    rotate_checkpoints(tmp_path, 2, keep=[str(tmp_path / "checkpoint-6"), str(tmp_path / "checkpoint-3")])
    assert latest_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-6")
    assert (tmp_path / "checkpoint-3").is_dir()          # the best one stays


def test_check_output_dir_resumes_the_latest_complete_checkpoint(tmp_path):
    from affectlab.errors import ArgumentError
    from affectlab.run import check_output_dir

    def task(resume):
        return SimpleNamespace(args=SimpleNamespace(overwrite_output_dir=False),
                               training_args=SimpleNamespace(output_dir=str(tmp_path), resume_from_checkpoint=resume))

    fake_checkpoint(tmp_path, 4, complete=False)
    with pytest.raises(ArgumentError, match="no complete checkpoint"):
        check_output_dir(task("true"))
    fake_checkpoint(tmp_path, 3)
    t = task("true")
    check_output_dir(t)
    assert t.training_args.resume_from_checkpoint == str(tmp_path / "checkpoint-3")
    with pytest.raises(ArgumentError, match="incomplete checkpoint"):
        check_output_dir(task(str(tmp_path / "checkpoint-4")))

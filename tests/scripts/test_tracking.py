"""Experiment tracking through `report_to`: a tiny run logs its training loss to TensorBoard event files
(the seed system used MLflow; any `report_to` integration that is installed works the same way)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_tensorboard_receives_the_logged_losses(tmp_path, tiny_bert_dir):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    out, logdir = tmp_path / "run", tmp_path / "tb"
    env = {**os.environ, "TENSORBOARD_LOGGING_DIR": str(logdir), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "train_classifier.py"), "--config",
                           str(REPO / "recipes" / "tiny_test.yaml"), "--model_name_or_path", str(tiny_bert_dir),
                           "--output_dir", str(out), "--report_to", "tensorboard", "--save_results", "false"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logged = [h["loss"] for h in json.loads((out / "train_results.json").read_text())["log_history"] if "loss" in h]
    acc = event_accumulator.EventAccumulator(str(logdir))
    acc.Reload()
    assert "train/loss" in acc.Tags()["scalars"]
    tracked = [e.value for e in acc.Scalars("train/loss")]
    assert len(tracked) == len(logged) == 4
    assert tracked == pytest.approx(logged, rel=1e-5)

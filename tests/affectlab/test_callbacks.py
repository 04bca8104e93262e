"""GradientHealthCallback: per-block norms at logging steps, one warning per kind of trouble."""

from __future__ import annotations

import json
import logging
import math
from types import SimpleNamespace

import pytest
import torch

from affectlab.callbacks import GradientHealthCallback, block_name, gradient_norms


@pytest.mark.parametrize("name,block", [
    ("bert.encoder.layer.3.attention.self.query.weight", "bert.encoder.layer.3"),
    ("bert.embeddings.word_embeddings.weight", "bert.embeddings"),
    ("classifier.weight", "classifier"),
    ("model.layers.11.mlp.up_proj.weight", "model.layers.11"),
])
def test_block_names(name, block):
    assert block_name(name) == block


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)])
        self.classifier = torch.nn.Linear(3, 2)


def set_grads(model, scale):
    for p in model.parameters():
        p.grad = torch.full_like(p, scale)


def step(cb, model, tmp_path, global_step=0, logging_steps=10):
    args = SimpleNamespace(logging_steps=logging_steps, output_dir=str(tmp_path))
    state = SimpleNamespace(global_step=global_step, is_world_process_zero=True)
    cb.on_pre_optimizer_step(args, state, None, model=model)


def test_norms_per_block_and_total():
    model = Net()
    set_grads(model, 0.5)
    total, blocks = gradient_norms(model)
    assert set(blocks) == {"layers.0", "layers.1", "classifier"}
    assert blocks["layers.0"] == pytest.approx(0.5 * math.sqrt(12))
    assert blocks["classifier"] == pytest.approx(0.5 * math.sqrt(8))
    assert total == pytest.approx(0.5 * math.sqrt(32))


def test_collapse_warns_once_and_records_at_logging_steps(tmp_path, caplog):
    cb, model = GradientHealthCallback(collapse_below=1e-6), Net()
    set_grads(model, 1e-9)
    with caplog.at_level(logging.WARNING, logger="affectlab.callbacks"):
        step(cb, model, tmp_path, global_step=0)    # step 1 is always recorded
        step(cb, model, tmp_path, global_step=4)    # step 5: not a logging step
        step(cb, model, tmp_path, global_step=9)    # step 10: logging step
    assert [r["step"] for r in cb.records] == [1, 10]
    warnings = [r.message for r in caplog.records if "collapsed" in r.message]
    assert len(warnings) == 1
    lines = (tmp_path / "gradient_health.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 10]
    assert set(json.loads(lines[0])["blocks"]) == {"layers.0", "layers.1", "classifier"}


def test_explode_and_nan_and_dead_block(tmp_path, caplog):
    cb, model = GradientHealthCallback(explode_above=100.0), Net()
    set_grads(model, 1e3)
    with caplog.at_level(logging.WARNING, logger="affectlab.callbacks"):
        step(cb, model, tmp_path)
        set_grads(model, float("nan"))
        step(cb, model, tmp_path, global_step=9)
        set_grads(model, 1.0)
        model.classifier.weight.grad.zero_()
        model.classifier.bias.grad.zero_()
        step(cb, model, tmp_path, global_step=19)
    text = " ".join(r.message for r in caplog.records)
    assert "exploding" in text and "NaN" in text and "blocks with gradient norm" in text and "classifier" in text


def test_healthy_gradients_do_not_warn(tmp_path, caplog):
    cb, model = GradientHealthCallback(), Net()
    set_grads(model, 0.01)
    with caplog.at_level(logging.WARNING, logger="affectlab.callbacks"):
        step(cb, model, tmp_path)
    assert not caplog.records and len(cb.records) == 1


def begin(cb, tmp_path, global_step):
    args = SimpleNamespace(logging_steps=1, output_dir=str(tmp_path))
    state = SimpleNamespace(global_step=global_step, is_world_process_zero=True)
    cb.on_train_begin(args, state, None)


def test_resume_keeps_each_step_once(tmp_path):
    """A resume from step 2 drops the records of steps run after that checkpoint (and a torn last line)."""
    cb, model = GradientHealthCallback(), Net()
    set_grads(model, 0.01)
    begin(cb, tmp_path, 0)
    for s in range(4):
        step(cb, model, tmp_path, global_step=s, logging_steps=1)
    path = tmp_path / "gradient_health.jsonl"
    with open(path, "a") as fh:
        fh.write('{"step": 5, "grad_no')                 # killed mid-append
    resumed = GradientHealthCallback()
    begin(resumed, tmp_path, 2)
    assert [r["step"] for r in resumed.records] == [1, 2]
    for s in range(2, 4):
        step(resumed, model, tmp_path, global_step=s, logging_steps=1)
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [1, 2, 3, 4]
    begin(GradientHealthCallback(), tmp_path, 0)       # a fresh run starts the log empty
    assert path.read_text() == ""


def test_warnings_given_travel_in_the_checkpoint(tmp_path, caplog):
    cb, model = GradientHealthCallback(), Net()
    set_grads(model, 1e-9)
    step(cb, model, tmp_path)
    resumed = GradientHealthCallback()
    resumed.load_checkpoint_state(json.loads(json.dumps(cb.checkpoint_state())))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="affectlab.callbacks"):
        step(resumed, model, tmp_path, global_step=9)
    assert resumed.warned == {"collapse"} and not caplog.records

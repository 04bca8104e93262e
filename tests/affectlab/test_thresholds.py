"""Multi-label threshold policies of the classifier (`threshold_policy`): `heldout_train` tunes on training
rows held out of training (never a validation row, never a trained row: asserted on row indices and ids),
`crossfit` tunes each half of validation on the other (disjoint halves), `tuned_on_eval` keeps the optimistic
behaviour and says so; every policy is stated in eval_results.json, the card and the result records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_run import TINY

from affectlab.tasks.classification import ClassifierTask, crossfit_halves, crossfit_predictions, heldout_indices


def test_heldout_indices_are_disjoint_seeded_and_cover_train():
    fit, tune = heldout_indices(1000, 0.1, 1337)
    assert len(tune) == 100 and len(fit) == 900 and not set(fit) & set(tune)
    assert sorted([*fit, *tune]) == list(range(1000))
    again, other = heldout_indices(1000, 0.1, 1337), heldout_indices(1000, 0.1, 1338)
    assert np.array_equal(again[1], tune) and not np.array_equal(other[1], tune)
    assert len(heldout_indices(5, 0.01, 0)[1]) == 1 and len(heldout_indices(5, 0.99, 0)[0]) == 1   # both sides kept


def test_crossfit_halves_are_disjoint_and_cover_the_split():
    a, b = crossfit_halves(33, 7)
    assert not set(a) & set(b) and sorted([*a, *b]) == list(range(33)) and abs(len(a) - len(b)) <= 1


def test_crossfit_predicts_each_half_with_the_other_halfs_thresholds():
    rng = np.random.default_rng(0)
    probs, refs = rng.random((40, 3)), (rng.random((40, 3)) > 0.6).astype(int)
    seen = []

    def tune(p, r):   # a threshold per label that depends on the rows it is given
        seen.append(p)
        return p.mean(axis=0)

    pred, thr_a, thr_b, (a, b) = crossfit_predictions(probs, refs, 3, tune)
    assert np.array_equal(seen[0], probs[a]) and np.array_equal(seen[1], probs[b])
    assert np.array_equal(pred[b], (probs[b] >= thr_a).astype(int))
    assert np.array_equal(pred[a], (probs[a] >= thr_b).astype(int))


class Recording(ClassifierTask):
    """The classifier, remembering the probabilities every threshold tuning was given."""

    def tune(self, probs, refs):
        self.tuned_on = [*getattr(self, "tuned_on", []), np.array(probs)]
        return super().tune(probs, refs)


def run_in_process(tmp_path, tiny_bert_dir, policy):
    from affectlab.run import parse_task_args, run_once

    out = tmp_path / policy
    args = parse_task_args(Recording, ["--config", str(TINY), "--model_name_or_path", str(tiny_bert_dir),
                                       "--output_dir", str(out), "--threshold_policy", policy,
                                       "--threshold_heldout_fraction", "0.25", "--save_results", "false",
                                       "--print_report", "false"])
    tasks = []
    original = Recording.load_data

    def load_data(self):
        tasks.append(self)
        return original(self)

    Recording.load_data = load_data
    try:
        run_once(Recording, *args)
    finally:
        Recording.load_data = original
    return tasks[0], out


def test_heldout_train_thresholds_never_see_validation_or_trained_rows(tmp_path, tiny_bert_dir):
    from affectlab.data import load_named_dataset

    task, out = run_in_process(tmp_path, tiny_bert_dir, "heldout_train")
    raw = load_named_dataset("goemotions", None, None)
    train = raw["train"].shuffle(seed=1337).select(range(64))          # max_train_samples: 64 (limit_train)
    fit_idx, tune_idx = task.heldout["train_indices"], task.heldout["threshold_indices"]
    assert len(tune_idx) == 16 and len(fit_idx) == 48 and not set(fit_idx) & set(tune_idx)
    tuned_ids = set(train.select(tune_idx)["id"])
    trained_ids = set(task.data.train["id"])
    assert trained_ids == set(train.select(fit_idx)["id"]) and not tuned_ids & trained_ids
    assert len(task.eval_tok["validation"]) == 32 and len(task.data.train) == 48
    assert not tuned_ids & set(raw["validation"]["id"])                # no validation row among them
    assert set(task.data.extra["threshold_rows"]["id"]) == tuned_ids
    (probs,) = task.tuned_on                                           # tuned once, on the 16 held-out rows
    assert probs.shape == (16, 28)
    payload = json.loads((out / "eval_results.json").read_text())
    policy = payload["threshold_policy"]
    assert policy["name"] == "heldout_train" and policy["tuned_on"]["split"] == "train"
    assert policy["tuned_on"]["rows"] == 16 and policy["tuned_on"]["trained_on"] is False
    assert policy["splits"]["validation"]["optimistic"] is False
    assert json.loads((out / "train_results.json").read_text())["train_rows"] == 48
    assert "Threshold policy `heldout_train`" in (out / "README.md").read_text()
    val = payload["results"]["validation"]
    assert {"macro_f1", "macro_f1_tuned", "macro_f1_at_global_threshold"} <= set(val)
    assert val["macro_f1_tuned"] >= val["macro_f1"]      # the thresholds tuned on validation itself fit it best


def test_crossfit_tunes_on_disjoint_halves_of_validation(tmp_path, tiny_bert_dir):
    task, out = run_in_process(tmp_path, tiny_bert_dir, "crossfit")
    whole, half_a, half_b = [p.shape[0] for p in task.tuned_on]
    assert (whole, half_a, half_b) == (32, 16, 16)                    # shipped thresholds, then the two halves
    a, b = crossfit_halves(32, 1337)
    assert np.array_equal(task.tuned_on[1], task.tuned_on[0][a]) and np.array_equal(task.tuned_on[2], task.tuned_on[0][b])
    payload = json.loads((out / "eval_results.json").read_text())
    assert payload["threshold_policy"]["crossfit"] == {"halves": [16, 16], "seed": 1337}
    assert payload["threshold_policy"]["splits"]["validation"]["optimistic"] is False


def test_tuned_on_eval_is_kept_and_called_optimistic(tmp_path, tiny_bert_dir):
    task, out = run_in_process(tmp_path, tiny_bert_dir, "tuned_on_eval")
    payload = json.loads((out / "eval_results.json").read_text())
    val = payload["results"]["validation"]
    assert val["macro_f1"] == pytest.approx(val["macro_f1_tuned"])
    assert payload["threshold_policy"]["splits"]["validation"]["optimistic"] is True
    assert task.record_protocol("validation") == {
        "threshold_policy": "tuned_on_eval", "optimistic": True,
        "threshold_description": "per-label thresholds tuned on validation itself (optimistic on validation)"}
    assert "optimistic" in Path(out / "README.md").read_text()

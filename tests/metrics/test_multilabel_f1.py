"""metrics/multilabel_f1 against scikit-learn, loaded through `evaluate.load` offline."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, hamming_loss, precision_recall_fscore_support

from affectlab.metrics import load_metric, metric_module


@pytest.fixture(scope="module")
def metric():
    return load_metric("multilabel_f1")


def random_case(seed, n, L, empty_labels=()):
    rng = np.random.default_rng(seed)
    probs = rng.random((n, L))
    refs = (rng.random((n, L)) < rng.uniform(0.05, 0.5, size=L)).astype(int)
    for j in empty_labels:
        refs[:, j] = 0
    return probs, refs


def sklearn_report(pred, refs):
    out = {}
    for avg in ("micro", "macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(refs, pred, average=avg, zero_division=0)
        out.update({f"{avg}_precision": p, f"{avg}_recall": r, f"{avg}_f1": f})
    out["subset_accuracy"] = accuracy_score(refs, pred)
    out["hamming_loss"] = hamming_loss(refs, pred)
    return out


CASES = [
    # (seed, n, L, labels with no positives, threshold)
    (0, 50, 3, (), 0.5),
    (1, 200, 28, (4, 17), 0.3),
    (2, 7, 5, (0, 1, 2), 0.5),
    (3, 1000, 11, (), 0.7),
    (4, 1, 4, (), 0.5),
]


@pytest.mark.parametrize("seed,n,L,empty,threshold", CASES)
def test_global_threshold_matches_sklearn(metric, seed, n, L, empty, threshold):
    probs, refs = random_case(seed, n, L, empty)
    result = metric.compute(predictions=probs, references=refs, threshold=threshold)
    pred = (probs >= threshold).astype(int)
    expected = sklearn_report(pred, refs)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-12), key
    p, r, f, s = precision_recall_fscore_support(refs, pred, average=None, zero_division=0)
    for j, row in enumerate(result["per_label"]):
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[j], r[j], f[j], s[j]))
    assert result["thresholds"] == [threshold] * L


@pytest.mark.parametrize("seed,n,L,empty,_", CASES)
def test_per_label_thresholds_match_sklearn(metric, seed, n, L, empty, _):
    probs, refs = random_case(seed, n, L, empty)
    thresholds = np.random.default_rng(seed + 100).uniform(0.1, 0.9, size=L)
    result = metric.compute(predictions=probs, references=refs, thresholds=thresholds.tolist())
    pred = (probs >= thresholds[None, :]).astype(int)
    for key, value in sklearn_report(pred, refs).items():
        assert result[key] == pytest.approx(value, abs=1e-12), key


def test_tuned_thresholds_maximise_each_label_f1(metric):
    probs, refs = random_case(7, 300, 6, empty_labels=(5,))
    grid = np.round(np.arange(1, 100) / 100.0, 2)
    result = metric.compute(predictions=probs, references=refs, tune_thresholds=True)
    thresholds = np.asarray(result["thresholds"])
    for j in range(5):
        f1_at = [precision_recall_fscore_support(refs[:, j], (probs[:, j] >= t).astype(int), average="binary",
                                                 zero_division=0)[2] for t in grid]
        assert result["per_label"][j]["f1"] == pytest.approx(max(f1_at))
        assert thresholds[j] in grid
    assert thresholds[5] == 0.5  # no positives: keeps the default
    # tuned macro-F1 is at least the F1 at any single global threshold on the same data
    for t in (0.2, 0.5, 0.8):
        assert result["macro_f1"] >= metric.compute(predictions=probs, references=refs, threshold=t)["macro_f1"] - 1e-12


def test_perfect_and_label_names(metric):
    refs = np.array([[1, 0, 1], [0, 1, 0]])
    result = metric.compute(predictions=refs * 0.9 + 0.05, references=refs, label_names=["a", "b", "c"])
    assert result["macro_f1"] == 1.0 and result["subset_accuracy"] == 1.0 and result["hamming_loss"] == 0.0
    assert [r["label"] for r in result["per_label"]] == ["a", "b", "c"]


def test_bad_shapes_and_values_raise():
    report = metric_module("multilabel_f1").multilabel_report
    with pytest.raises(ValueError, match="n_examples, n_labels"):
        report(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="multi-hot"):
        report(np.zeros((2, 2)), np.array([[0, 2], [1, 0]]))
    with pytest.raises(ValueError, match="one value per label"):
        report(np.zeros((2, 2)), np.zeros((2, 2)), thresholds=[0.5])

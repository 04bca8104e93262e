"""affectlab.stats: metrics against scikit-learn / scipy, bootstrap CIs against scipy.stats.bootstrap run directly
and against hand-computed values, the paired bootstrap, and McNemar against hand-computed p-values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import f1_score, hamming_loss, precision_score, r2_score, recall_score

from affectlab import stats as S

RNG = np.random.default_rng(11)
Y = RNG.integers(0, 3, 300)
GOOD = np.where(RNG.random(300) < 0.85, Y, RNG.integers(0, 4, 300))
BAD = np.where(RNG.random(300) < 0.55, Y, RNG.integers(0, 4, 300))


# ---------------------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_fscores_match_sklearn_for_class_ids_and_multilabel_rows(average):
    for kind, fn in (("f1", f1_score), ("precision", precision_score), ("recall", recall_score)):
        name = f"{average}_{kind}"
        assert S.metric_value(name, Y, GOOD) == pytest.approx(fn(Y, GOOD, average=average, zero_division=0), abs=1e-12)
        labels = list(range(6))  # two labels never seen: count as 0 in macro, as in the classifier's report
        assert S.metric_value(name, Y, GOOD, labels=labels) == pytest.approx(
            fn(Y, GOOD, labels=labels, average=average, zero_division=0), abs=1e-12)
        t = RNG.integers(0, 2, (80, 5))
        p = t.copy()
        p[:25, :2] ^= 1
        p[:, 4] = 0
        assert S.metric_value(name, t, p) == pytest.approx(fn(t, p, average=average, zero_division=0), abs=1e-12)
    assert S.classification_metrics(Y, GOOD)["precision"] == pytest.approx(
        precision_score(Y, GOOD, average="macro", zero_division=0))


def test_decomposable_and_regression_metrics():
    t = RNG.integers(0, 2, (50, 4))
    p = t.copy()
    p[:10, 0] ^= 1
    assert S.metric_value("hamming_loss", t, p) == pytest.approx(hamming_loss(t, p))
    assert S.metric_value("subset_accuracy", t, p) == pytest.approx(0.8)
    assert S.metric_value("f1_present", [1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)  # 2*1 / (2*1 + 1 + 1)
    y = RNG.normal(size=(60, 2))
    yp = y + RNG.normal(size=(60, 2))
    per_dim = lambda f: np.mean([f(yp[:, j], y[:, j]) for j in range(2)])  # noqa: E731
    assert S.metric_value("macro_pearson", y, yp) == pytest.approx(per_dim(lambda a, b: sps.pearsonr(a, b)[0]))
    assert S.metric_value("macro_spearman", y, yp) == pytest.approx(per_dim(lambda a, b: sps.spearmanr(a, b)[0]))
    assert S.metric_value("macro_r2", y, yp) == pytest.approx(per_dim(lambda a, b: r2_score(b, a)))
    assert S.metric_value("macro_rmse", y, yp) == pytest.approx(per_dim(lambda a, b: np.sqrt(np.mean((a - b) ** 2))))
    assert S.metric_value("mae", y[:, 0], yp[:, 0]) == pytest.approx(np.mean(np.abs(y[:, 0] - yp[:, 0])))
    assert math.isnan(S.metric_value("pearson", [1.0, 2.0, 3.0], [2.0, 2.0, 2.0]))  # constant prediction
    with pytest.raises(KeyError, match="no metric over per-example predictions"):
        S.metric_value("bleu", Y, GOOD)


def test_resampled_metric_by_hand():
    m = S.from_predictions("macro_f1", [0, 0, 1, 1], [0, 1, 1, 1])
    assert m.value == pytest.approx((2 / 3 + 4 / 5) / 2)  # class 0: 2*1/(2+0+1); class 1: 2*2/(4+1+0)
    # rows of example indices: [0,0,2,3] -> all right (1.0); [1,1,1,2] -> t=[0,0,0,1], p=[1,1,1,1]:
    # class 0 F1 0 (tp 0, fn 3), class 1 F1 2/(2+3) = 0.4 -> macro 0.2
    assert m.resampled(np.array([[0, 0, 2, 3], [1, 1, 1, 2]])) == pytest.approx([1.0, 0.2])


def test_record_metric_scores_or_predictions():
    rec = {"task": {"primary_metric": "f1", "label_names": None},
           "predictions": {"scores": {"f1": [100.0, 50.0, 0.0], "exact": [100.0, 0.0, 0.0]}}}
    assert S.record_metric(rec).value == pytest.approx(50.0)
    assert S.record_metric(rec, "exact").value == pytest.approx(100 / 3)
    rec = {"task": {"primary_metric": "macro_f1", "label_names": ["a", "b", "c", "d"]},
           "predictions": {"y_true": [0, 1, 2, 2], "y_pred": [0, 1, 2, 1]}}
    # the record's four labels count, the absent "d" included (F1 0), as the classifier's report does
    assert S.record_metric(rec).value == pytest.approx(
        f1_score([0, 1, 2, 2], [0, 1, 2, 1], labels=[0, 1, 2, 3], average="macro", zero_division=0))
    with pytest.raises(KeyError, match="no per-example scores"):
        S.record_metric({"task": {"primary_metric": "f1"}, "predictions": {"scores": {"exact": [1.0, 0.0]}}})


# ---------------------------------------------------------------------------------------------------------
# bootstrap
# ---------------------------------------------------------------------------------------------------------
def test_bootstrap_ci_equals_scipy_run_directly():
    hits = (GOOD == Y).astype(float)
    ours = S.bootstrap_ci(Y, GOOD, metrics=["accuracy", "macro_f1"], n_boot=400, seed=3)
    ref = sps.bootstrap((hits,), np.mean, n_resamples=400, method="percentile", rng=np.random.default_rng(3))
    assert ours["accuracy"]["value"] == pytest.approx(hits.mean())
    assert (ours["accuracy"]["ci_low"], ours["accuracy"]["ci_high"]) == pytest.approx(tuple(ref.confidence_interval),
                                                                                      abs=1e-12)
    ref_f1 = sps.bootstrap((Y, GOOD), lambda t, p: f1_score(t, p, average="macro", zero_division=0), paired=True,
                           vectorized=False, n_resamples=400, method="percentile", rng=np.random.default_rng(3))
    assert (ours["macro_f1"]["ci_low"], ours["macro_f1"]["ci_high"]) == pytest.approx(
        tuple(ref_f1.confidence_interval), abs=1e-12)
    alpha10 = S.bootstrap(S.from_predictions("accuracy", Y, GOOD), n_boot=400, seed=3, alpha=0.10)
    ref90 = sps.bootstrap((hits,), np.mean, n_resamples=400, method="percentile", confidence_level=0.90,
                          rng=np.random.default_rng(3))
    assert (alpha10.ci_low, alpha10.ci_high) == pytest.approx(tuple(ref90.confidence_interval), abs=1e-12)


def test_bootstrap_percentiles_by_hand():
    # two examples, one right: a resample has 0, 1 or 2 hits with probabilities 1/4, 1/2, 1/4, so the
    # distribution of the mean is {0: 1/4, 0.5: 1/2, 1: 1/4} and its 2.5% / 97.5% percentiles are 0 and 1
    res = S.bootstrap(S.from_values("accuracy", [0.0, 1.0]), n_boot=4000, seed=0)
    assert (res.value, res.ci_low, res.ci_high) == (0.5, 0.0, 1.0)
    shares = [np.mean(res.distribution == v) for v in (0.0, 0.5, 1.0)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.03)
    # the CI is the linear-interpolated percentile of the bootstrap distribution
    res = S.bootstrap(S.from_predictions("macro_f1", Y, BAD), n_boot=300, seed=1)
    assert (res.ci_low, res.ci_high) == pytest.approx(tuple(np.percentile(res.distribution, [2.5, 97.5])))
    # all examples equal: every resample gives the same value
    same = S.bootstrap(S.from_values("f1", [80.0, 80.0, 80.0]), n_boot=50)
    assert (same.value, same.ci_low, same.ci_high) == (80.0, 80.0, 80.0)
    # a proportion: the half-width is close to the normal approximation 1.96 * sqrt(p (1 - p) / n)
    acc = S.bootstrap(S.from_predictions("accuracy", Y, GOOD), n_boot=3000, seed=2)
    half = 1.96 * math.sqrt(acc.value * (1 - acc.value) / len(Y))
    assert abs((acc.ci_high - acc.ci_low) / 2 - half) < 0.006


def test_paired_bootstrap_difference():
    d = S.bootstrap_diff_ci(Y, GOOD, BAD, "accuracy", n_boot=500, seed=4)
    diff = (GOOD == Y).astype(float) - (BAD == Y).astype(float)
    ref = sps.bootstrap((diff,), np.mean, n_resamples=500, method="percentile", rng=np.random.default_rng(4))
    assert d["diff"] == pytest.approx(diff.mean())
    assert (d["ci_low"], d["ci_high"]) == pytest.approx(tuple(ref.confidence_interval), abs=1e-12)
    assert d["p_value"] == pytest.approx(np.mean(ref.bootstrap_distribution <= 0)) and d["p_value"] < 0.01
    # identical predictions: every resampled difference is 0, so A is never better (p = 1)
    same = S.bootstrap_diff_ci(Y, GOOD, GOOD, "macro_f1", n_boot=50)
    assert (same["diff"], same["ci_low"], same["ci_high"], same["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    # A right and B wrong on every example: every resampled difference is 1 (p = 0)
    y = np.zeros(20, dtype=int)
    dom = S.bootstrap_diff_ci(y, y, y + 1, "accuracy", n_boot=100)
    assert (dom["diff"], dom["ci_low"], dom["ci_high"], dom["p_value"]) == (1.0, 1.0, 1.0, 0.0)
    # lower is better: a smaller MAE is better, so its share of "not better" resamples is small
    t = RNG.normal(size=100)
    close, far = t + 0.1 * RNG.normal(size=100), t + RNG.normal(size=100)
    mae = S.bootstrap_diff_ci(t, close, far, "mae", n_boot=300)
    assert mae["diff"] < 0 and mae["ci_high"] < 0 and mae["p_value"] < 0.01
    with pytest.raises(ValueError, match="same examples"):
        S.paired_bootstrap(S.from_values("f1", [1.0, 0.0]), S.from_values("f1", [1.0, 0.0, 1.0]))


# ---------------------------------------------------------------------------------------------------------
# McNemar
# ---------------------------------------------------------------------------------------------------------
def paired(b: int, c: int, both_right: int, both_wrong: int):
    """Binary labels/predictions with exactly b (A right, B wrong) and c (A wrong, B right) discordant pairs."""
    y = np.zeros(b + c + both_right + both_wrong, dtype=int)
    a = np.concatenate([np.zeros(b), np.ones(c), np.zeros(both_right), np.ones(both_wrong)]).astype(int)
    bb = np.concatenate([np.ones(b), np.zeros(c), np.zeros(both_right), np.ones(both_wrong)]).astype(int)
    return y, a, bb


def exact_p(b: int, c: int) -> float:
    n = b + c
    return min(1.0, 2 * sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n)


def test_mcnemar_exact_by_hand():
    assert S.mcnemar(*paired(10, 2, 30, 5))["p_value"] == pytest.approx(158 / 4096)  # 2 (1 + 12 + 66) / 2^12
    assert S.mcnemar(*paired(5, 0, 10, 0))["p_value"] == pytest.approx(1 / 16)        # 2 / 2^5
    assert S.mcnemar(*paired(3, 3, 10, 2))["p_value"] == 1.0
    forced = S.mcnemar(*paired(30, 15, 100, 20), exact=True)
    assert forced["method"] == "exact" and forced["p_value"] == pytest.approx(exact_p(30, 15), rel=1e-9)


def test_mcnemar_chi2_by_hand():
    res = S.mcnemar(*paired(40, 10, 100, 20))
    stat = (abs(40 - 10) - 1) ** 2 / 50  # 841 / 50 = 16.82
    assert (res["b"], res["c"], res["method"]) == (40, 10, "chi2_cc")
    assert res["statistic"] == pytest.approx(16.82)
    assert res["p_value"] == pytest.approx(math.erfc(math.sqrt(stat / 2)), rel=1e-9)  # chi2(1) survival
    # multi-label rows: an example is right when its whole row is
    t = np.zeros((4, 3), dtype=int)
    a, b = t.copy(), t.copy()
    b[:3, 1] = 1
    m = S.mcnemar(t, a, b)
    assert (m["b"], m["c"]) == (3, 0) and m["p_value"] == pytest.approx(2 / 8)

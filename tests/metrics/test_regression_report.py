"""metrics/regression_report against scipy / scikit-learn, loaded through `evaluate.load` offline."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from affectlab.metrics import load_metric, metric_module


@pytest.fixture(scope="module")
def metric():
    return load_metric("regression_report")


@pytest.fixture(scope="module")
def mod():
    return metric_module("regression_report")


def case(seed, n, d, ties=False):
    rng = np.random.default_rng(seed)
    ref = rng.uniform(1, 5, (n, d))
    pred = ref * rng.uniform(0.2, 1.0, d) + rng.normal(0, 0.7, (n, d))
    if ties:
        ref = np.round(ref)
        pred = np.round(pred * 2) / 2
    return pred, ref


@pytest.mark.parametrize("seed,n,d,ties", [(0, 50, 3, False), (1, 300, 21, True), (2, 5, 2, True), (3, 1000, 1, False)])
def test_matches_scipy_sklearn(metric, seed, n, d, ties):
    pred, ref = case(seed, n, d, ties)
    out = metric.compute(predictions=pred, references=ref, label_names=[f"d{j}" for j in range(d)])
    for j, row in enumerate(out["per_dimension"]):
        assert row["label"] == f"d{j}" and row["n"] == n
        assert row["r2"] == pytest.approx(r2_score(ref[:, j], pred[:, j]), abs=1e-10)
        assert row["mae"] == pytest.approx(mean_absolute_error(ref[:, j], pred[:, j]), abs=1e-12)
        assert row["rmse"] == pytest.approx(np.sqrt(mean_squared_error(ref[:, j], pred[:, j])), abs=1e-12)
        assert row["pearson"] == pytest.approx(stats.pearsonr(pred[:, j], ref[:, j])[0], abs=1e-10)
        assert row["spearman"] == pytest.approx(stats.spearmanr(pred[:, j], ref[:, j])[0], abs=1e-10)
    assert out["macro_r2"] == pytest.approx(r2_score(ref, pred, multioutput="uniform_average"), abs=1e-10)
    assert out["macro_mae"] == pytest.approx(mean_absolute_error(ref, pred), abs=1e-12)
    assert out["macro_pearson"] == pytest.approx(np.mean([stats.pearsonr(pred[:, j], ref[:, j])[0] for j in range(d)]), abs=1e-10)


def test_rankdata_matches_scipy(mod):
    x = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5])
    np.testing.assert_allclose(mod.rankdata(x), stats.rankdata(x))


def test_constant_inputs_give_nan_and_macro_ignores_it(mod):
    ref = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    pred = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0]])
    out = mod.regression_report(pred, ref)
    assert np.isnan(out["per_dimension"][1]["pearson"]) and np.isnan(out["per_dimension"][1]["spearman"])
    assert out["macro_pearson"] == pytest.approx(1.0)
    assert out["per_dimension"][1]["r2"] == 0.0  # constant reference, inexact prediction (sklearn convention)
    assert out["per_dimension"][0]["r2"] == 1.0


def test_breakdowns_equal_reports_on_subsets(mod):
    pred, ref = case(5, 120, 3)
    personas = np.array(["writer", "reader", "nurse"])[np.arange(120) % 3]
    langs = np.where(np.arange(120) < 50, "en", "pl")
    out = mod.regression_report(pred, ref, label_names=list("VAD"), personas=personas, langs=langs)
    assert set(out["by_persona"]) == {"writer", "reader", "nurse"} and set(out["by_lang"]) == {"en", "pl"}
    sub = mod.regression_report(pred[personas == "reader"], ref[personas == "reader"], label_names=list("VAD"))
    assert out["by_persona"]["reader"]["n"] == 40
    assert out["by_persona"]["reader"]["macro_rmse"] == pytest.approx(sub["macro_rmse"])
    assert out["by_lang"]["pl"]["per_dimension"][2]["pearson"] == pytest.approx(
        stats.pearsonr(pred[50:, 2], ref[50:, 2])[0])
    with pytest.raises(ValueError, match="langs has 3 entries for 120 examples"):
        mod.regression_report(pred, ref, langs=["en"] * 3)


def test_calibration_bins_and_ece(mod):
    pred = np.array([1.1, 1.2, 2.5, 2.6, 4.9, 5.0])
    ref = np.array([1.0, 1.0, 3.0, 3.0, 5.0, 4.0])
    edges, count, mp, mr = mod.calibration_bins(pred, ref, n_bins=4, value_range=(1, 5))
    np.testing.assert_allclose(edges, [1, 2, 3, 4, 5])
    assert count.tolist() == [2, 2, 0, 2]  # 5.0 falls in the last bin
    np.testing.assert_allclose(mp[[0, 1, 3]], [1.15, 2.55, 4.95])
    assert np.isnan(mp[2]) and np.isnan(mr[2])
    expected = (2 * 0.15 + 2 * 0.45 + 2 * 0.45) / 6
    assert mod.expected_calibration_error(pred, ref, n_bins=4, value_range=(1, 5)) == pytest.approx(expected)
    # a perfectly calibrated predictor (prediction = conditional mean of the reference) has ECE 0
    rng = np.random.default_rng(0)
    p = rng.integers(1, 6, 2000).astype(float)
    r = p + np.where(np.arange(2000) % 2 == 0, -0.5, 0.5)
    assert mod.expected_calibration_error(p, r, n_bins=5, value_range=(0.5, 5.5)) < 0.02
    # shifting every prediction by +1 adds about 1 to ECE
    assert mod.expected_calibration_error(p + 1, r, n_bins=5, value_range=(0.5, 6.5)) == pytest.approx(1.0, abs=0.02)


def test_quantile_bins_and_plot(mod, tmp_path):
    pred, ref = case(7, 400, 3)
    out = mod.regression_report(pred, ref, label_names=list("VAD"), n_bins=8, binning="quantile",
                                plot_path=tmp_path / "rel.png")
    counts = out["calibration"]["A"]["bin_count"]
    assert sum(counts) == 400 and max(counts) - min(counts) <= 2
    png = (tmp_path / "rel.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert out["macro_ece"] == pytest.approx(np.mean([out["calibration"][d]["ece"] for d in "VAD"]))


def test_input_errors(mod):
    with pytest.raises(ValueError, match="differ in shape"):
        mod.regression_report(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        mod.regression_report([[np.nan]], [[1.0]])
    with pytest.raises(ValueError, match="binning"):
        mod.regression_report([[1.0], [2.0]], [[1.0], [2.0]], binning="log")

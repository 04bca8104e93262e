"""Multi-output regression report (an `evaluate` module): per dimension and macro R², MAE, RMSE,
Pearson r and Spearman ρ; breakdowns by persona and by language; calibration (binned predicted vs
observed means, a reliability plot as PNG, and an expected calibration error for regression).

Self-contained: it imports only numpy, datasets and evaluate (matplotlib only when a plot is asked
for), so the folder can travel to the Hub alone. Load it offline with
`evaluate.load("metrics/regression_report")`; scripts call `regression_report` directly.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Regression report for (n_examples, n_dimensions) predictions and references.
R² is 1 - SS_res / SS_tot per dimension (as scikit-learn's r2_score; a constant reference gives 0.0
when predictions are exact, else -inf is avoided and NaN returned). Pearson r and Spearman ρ (average
ranks for ties) are NaN when either side is constant. Macro values are the mean over dimensions,
ignoring NaN. Calibration bins the predictions (uniform bins over `value_range`, or quantile bins) and
compares the mean prediction with the mean reference per bin; the expected calibration error for
regression is ECE = sum_b (n_b / n) * |mean_pred_b - mean_ref_b| (in label units), and
`ece_normalized` divides it by the width of `value_range`.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: (n_examples, n_dimensions) predicted values (a flat list is one dimension).
    references: (n_examples, n_dimensions) true values.
    label_names: optional names of the dimensions.
    personas: optional per-example persona ids -> `by_persona` breakdown.
    langs: optional per-example language codes -> `by_lang` breakdown.
    n_bins: number of calibration bins (default 10).
    binning: "uniform" (equal width over value_range) or "quantile" (equal counts).
    value_range: (low, high) of the labels (default: min/max over predictions and references).
    plot_path: if given, a reliability plot (one panel per dimension) is saved there as PNG.
Returns:
    per_dimension (list of {label, n, r2, mae, rmse, pearson, spearman, ece}), macro_r2, macro_mae,
    macro_rmse, macro_pearson, macro_spearman, macro_ece, macro_ece_normalized, calibration
    ({label: {bin_edges, bin_count, bin_pred_mean, bin_ref_mean}}), by_persona / by_lang
    ({group: {n, macro_*, per_dimension}}) when groups are given, plot_path when a plot was written.
Examples:
    >>> metric = evaluate.load("metrics/regression_report")
    >>> metric.compute(predictions=[[1.0], [2.0], [3.0]], references=[[1.0], [2.0], [3.0]])["macro_r2"]
    1.0
"""

_CITATION = """@article{kuleshov2018accurate, title={Accurate Uncertainties for Deep Learning Using Calibrated Regression},
author={Kuleshov, Volodymyr and Fenner, Nathan and Ermon, Stefano}, journal={ICML}, year={2018}}"""

SCORES = ("r2", "mae", "rmse", "pearson", "spearman", "ece")


def rankdata(x):
    """Ranks starting at 1 with ties given their average rank (scipy.stats.rankdata 'average')."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_x) != 0) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(x)]])
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return ranks


def pearson(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if len(a) < 2:
        return float("nan")
    da = a - a.mean()
    db = b - b.mean()
    den = np.sqrt(np.sum(da * da) * np.sum(db * db))
    if den == 0:
        return float("nan")
    return float(np.clip(np.sum(da * db) / den, -1.0, 1.0))


def spearman(a, b):
    return pearson(rankdata(a), rankdata(b))


def r2(pred, ref):
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    ss_res = float(np.sum((ref - pred) ** 2))
    ss_tot = float(np.sum((ref - ref.mean()) ** 2))
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else 0.0
    return 1.0 - ss_res / ss_tot


def calibration_bins(pred, ref, n_bins=10, value_range=None, binning="uniform"):
    """Bin edges, counts and mean prediction / mean reference per bin (NaN in empty bins)."""
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if binning == "quantile":
        edges = np.quantile(pred, np.linspace(0, 1, n_bins + 1))
    elif binning == "uniform":
        low, high = value_range if value_range is not None else (min(pred.min(), ref.min()), max(pred.max(), ref.max()))
        if high <= low:
            high = low + 1.0
        edges = np.linspace(low, high, n_bins + 1)
    else:
        raise ValueError(f"binning must be 'uniform' or 'quantile', got {binning!r}")
    # bin i holds edges[i] <= p < edges[i+1]; the last bin also holds p == edges[-1]; out-of-range values go to the end bins
    idx = np.clip(np.searchsorted(edges, pred, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    sum_pred = np.bincount(idx, weights=pred, minlength=n_bins)
    sum_ref = np.bincount(idx, weights=ref, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.where(count > 0, sum_pred / np.maximum(count, 1), np.nan)
        mean_ref = np.where(count > 0, sum_ref / np.maximum(count, 1), np.nan)
    return edges, count, mean_pred, mean_ref


def expected_calibration_error(pred, ref, n_bins=10, value_range=None, binning="uniform"):
    _, count, mean_pred, mean_ref = calibration_bins(pred, ref, n_bins, value_range, binning)
    mask = count > 0
    return float(np.sum(count[mask] / count.sum() * np.abs(mean_pred[mask] - mean_ref[mask])))


def _as_2d(values, name):
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (n_examples, n_dimensions), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _nanmean(values):
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def _scores(pred, ref, names, n_bins, value_range, binning):
    rows = []
    for j, name in enumerate(names):
        p, r = pred[:, j], ref[:, j]
        err = p - r
        rows.append({
            "label": name, "n": int(len(p)), "r2": r2(p, r), "mae": float(np.mean(np.abs(err))),
            "rmse": float(np.sqrt(np.mean(err ** 2))), "pearson": pearson(p, r), "spearman": spearman(p, r),
            "ece": expected_calibration_error(p, r, n_bins, value_range, binning),
        })
    out = {f"macro_{k}": _nanmean([row[k] for row in rows]) for k in SCORES}
    out["per_dimension"] = rows
    return out


def _breakdown(groups, pred, ref, names, n_bins, value_range, binning, name):
    groups = np.asarray(list(groups), dtype=object)
    if len(groups) != len(pred):
        raise ValueError(f"{name} has {len(groups)} entries for {len(pred)} examples")
    out = {}
    for g in sorted(set(groups.tolist()), key=str):
        mask = groups == g
        out[str(g)] = {"n": int(mask.sum()), **_scores(pred[mask], ref[mask], names, n_bins, value_range, binning)}
    return out


def reliability_plot(calibration, path, value_range=None, title="Reliability (regression)"):
    """Save one panel per dimension: mean reference vs mean prediction per bin, with the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(calibration)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        cal = calibration[name]
        edges = np.asarray(cal["bin_edges"])
        low, high = value_range if value_range is not None else (edges[0], edges[-1])
        ax.plot([low, high], [low, high], color="grey", lw=1, ls="--")
        mp = np.asarray(cal["bin_pred_mean"], dtype=float)
        mr = np.asarray(cal["bin_ref_mean"], dtype=float)
        ok = np.isfinite(mp)
        ax.plot(mp[ok], mr[ok], marker="o", lw=1.5)
        ax.set_title(f"{name} (ECE {cal['ece']:.3f})", fontsize=9)
        ax.set_xlabel("mean predicted", fontsize=8)
        ax.set_ylabel("mean observed", fontsize=8)
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def regression_report(predictions, references, label_names=None, personas=None, langs=None, n_bins=10,
                      binning="uniform", value_range=None, plot_path=None):
    """Every number of the report as plain Python types (see `_DESCRIPTION`)."""
    pred = _as_2d(predictions, "predictions")
    ref = _as_2d(references, "references")
    if pred.shape != ref.shape:
        raise ValueError(f"predictions {pred.shape} and references {ref.shape} differ in shape")
    if len(pred) == 0:
        raise ValueError("no examples")
    names = list(label_names) if label_names is not None else [str(j) for j in range(pred.shape[1])]
    if len(names) != pred.shape[1]:
        raise ValueError(f"label_names has {len(names)} names for {pred.shape[1]} dimensions")
    if value_range is not None:
        value_range = (float(value_range[0]), float(value_range[1]))
    out = _scores(pred, ref, names, n_bins, value_range, binning)
    calibration = {}
    for j, name in enumerate(names):
        edges, count, mp, mr = calibration_bins(pred[:, j], ref[:, j], n_bins, value_range, binning)
        calibration[name] = {"bin_edges": edges.tolist(), "bin_count": count.tolist(),
                             "bin_pred_mean": mp.tolist(), "bin_ref_mean": mr.tolist(),
                             "ece": out["per_dimension"][j]["ece"]}
    out["calibration"] = calibration
    width = (value_range[1] - value_range[0]) if value_range is not None else float(max(pred.max(), ref.max()) - min(pred.min(), ref.min()))
    out["macro_ece_normalized"] = out["macro_ece"] / width if width > 0 else float("nan")
    out["num_examples"] = int(len(pred))
    if personas is not None:
        out["by_persona"] = _breakdown(personas, pred, ref, names, n_bins, value_range, binning, "personas")
    if langs is not None:
        out["by_lang"] = _breakdown(langs, pred, ref, names, n_bins, value_range, binning, "langs")
    if plot_path is not None:
        out["plot_path"] = reliability_plot(calibration, plot_path, value_range)
    return out


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RegressionReport(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("float64")),
                "references": datasets.Sequence(datasets.Value("float64")),
            }),
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html#regression-metrics"],
        )

    def _compute(self, predictions, references, label_names=None, personas=None, langs=None, n_bins=10,
                 binning="uniform", value_range=None, plot_path=None):
        return regression_report(predictions, references, label_names=label_names, personas=personas, langs=langs,
                                 n_bins=n_bins, binning=binning, value_range=value_range, plot_path=plot_path)

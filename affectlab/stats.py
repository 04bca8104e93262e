"""Metrics over per-example predictions, bootstrap confidence intervals and paired tests: the one implementation
the leaderboard (`affectlab.leaderboard`) and the model benchmark (`affectlab.sentiment_benchmark`) use.

* **Metrics** (`metric_value`, `classification_metrics`): classification over class ids (accuracy, macro / micro /
  weighted F1, precision and recall; `labels` fixes the label set, else the labels present count, as in
  scikit-learn), multi-label over 0/1 rows (subset accuracy, hamming loss, the same F-scores over all labels),
  regression over value lists or rows of values (pearson, spearman, r2, mae, rmse, ece and their `macro_`
  means over dimensions, as `metrics/regression_report`), and per-example `scores` (their mean).
* **Bootstrap** (`scipy.stats.bootstrap`, percentile method): an `ExampleMetric` is a metric that can be
  recomputed on any resample of the evaluated examples (vectorised: per-example means, confusion counts);
  `bootstrap` gives its (1 - alpha) percentile CI, `paired_bootstrap` the CI of the difference of two metrics
  on the SAME resamples of the same examples and the share of resamples where the first is not better.
  `bootstrap_ci` / `bootstrap_diff_ci` are the same over (y_true, y_pred) arrays; `record_metric` builds an
  `ExampleMetric` from a result record (`affectlab.results`).
* **McNemar** (`mcnemar`): exact two-sided binomial test on the discordant pairs when there are few (< 25),
  else the chi-square statistic with continuity correction.

Whether higher is better comes from `affectlab.registry` (never a table here).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

QUALITY_METRICS = ("accuracy", "macro_f1", "precision", "recall")
_AVERAGES = ("macro", "micro", "weighted")
_FSCORES = {f"{avg}_{kind}": (avg, kind) for avg in _AVERAGES for kind in ("f1", "precision", "recall")}
_FSCORES.update({"f1": ("macro", "f1"), "precision": ("macro", "precision"), "recall": ("macro", "recall")})
_REGRESSION = ("pearson", "spearman", "r2", "mae", "rmse", "ece")
_MAX_ELEMENTS = 4_000_000  # resampled array elements held at once (memory bound of one bootstrap batch)


# ---------------------------------------------------------------------------------------------------------
# metrics on resamples: every function takes index rows `idx` (resamples, n) and returns one value per row
# ---------------------------------------------------------------------------------------------------------
def _safe_div(num, den):
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _confusion_counts(t: np.ndarray, p: np.ndarray, idx: np.ndarray, labels=None):
    """(tp, fp, fn, counted) per resample and label. Class ids: labels = `labels` (all counted) or, when None,
    the labels present in each resample's y_true or y_pred (scikit-learn's default). 0/1 rows: every column."""
    if t.ndim == 2:
        tt, pp = t[idx].astype(bool), p[idx].astype(bool)          # (B, n, L)
        tp, fp, fn = (tt & pp).sum(1), (~tt & pp).sum(1), (tt & ~pp).sum(1)
        return tp, fp, fn, np.ones_like(tp, dtype=bool)
    universe = np.union1d(np.unique(t), np.unique(p))
    if labels is not None:
        universe = np.union1d(universe, np.asarray(list(labels)))
    k = len(universe)
    ti, pi = np.searchsorted(universe, t), np.searchsorted(universe, p)
    b = idx.shape[0]
    codes = (np.arange(b)[:, None] * k * k + ti[idx] * k + pi[idx]).ravel()
    cm = np.bincount(codes, minlength=b * k * k).reshape(b, k, k)    # [resample, true, pred]
    tp = np.diagonal(cm, axis1=1, axis2=2)
    fp, fn = cm.sum(1) - tp, cm.sum(2) - tp
    if labels is not None:
        counted = np.broadcast_to(np.isin(universe, np.asarray(list(labels))), tp.shape)
    else:
        counted = (tp + fp + fn) > 0
    return tp, fp, fn, counted


def _fscore(average: str, kind: str, tp, fp, fn, counted) -> np.ndarray:
    """F1 / precision / recall (zero_division=0) from per-label counts, averaged macro / micro / weighted."""
    tp, fp, fn, w = tp.astype(float), fp.astype(float), fn.astype(float), counted.astype(float)
    num = {"f1": 2 * tp, "precision": tp, "recall": tp}[kind]
    den = {"f1": 2 * tp + fp + fn, "precision": tp + fp, "recall": tp + fn}[kind]
    if average == "micro":
        return _safe_div((num * w).sum(-1), (den * w).sum(-1))
    per_label = _safe_div(num, den)
    if average == "weighted":
        w = w * (tp + fn)  # support
    return _safe_div((per_label * w).sum(-1), w.sum(-1))


def _as_2d(values) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return a[:, None] if a.ndim == 1 else a


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Along axis 1 of (B, n, d) arrays; NaN where one side is constant."""
    da, db = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    den = np.sqrt((da * da).sum(1) * (db * db).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, (da * db).sum(1) / np.where(den > 0, den, 1.0), np.nan)
    return np.clip(r, -1.0, 1.0)


def _ece(pred: np.ndarray, ref: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error of one dimension, uniform bins over the joint range (regression_report)."""
    low, high = min(pred.min(), ref.min()), max(pred.max(), ref.max())
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, n_bins + 1)
    i = np.clip(np.searchsorted(edges, pred, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(i, minlength=n_bins)
    m = count > 0
    mean_p = np.bincount(i, weights=pred, minlength=n_bins)[m] / count[m]
    mean_r = np.bincount(i, weights=ref, minlength=n_bins)[m] / count[m]
    return float(np.sum(count[m] / count.sum() * np.abs(mean_p - mean_r)))


def _regression(stem: str, t: np.ndarray, p: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Mean over dimensions (NaN dimensions skipped) of `stem` per resample; t, p are (n, d)."""
    from scipy.stats import rankdata

    tt, pp = t[idx], p[idx]                                         # (B, n, d)
    if stem == "pearson":
        per_dim = _pearson(pp, tt)
    elif stem == "spearman":
        per_dim = _pearson(rankdata(pp, axis=1), rankdata(tt, axis=1))
    elif stem == "r2":
        ss_res = ((tt - pp) ** 2).sum(1)
        ss_tot = ((tt - tt.mean(1, keepdims=True)) ** 2).sum(1)
        per_dim = np.where(ss_tot == 0, (ss_res == 0).astype(float), 1.0 - _safe_div(ss_res, ss_tot))
    elif stem == "mae":
        per_dim = np.abs(tt - pp).mean(1)
    elif stem == "rmse":
        per_dim = np.sqrt(((tt - pp) ** 2).mean(1))
    elif stem == "ece":
        per_dim = np.array([[_ece(pp[b, :, j], tt[b, :, j]) for j in range(tt.shape[2])] for b in range(len(idx))])
    else:  # pragma: no cover - guarded by _metric_kind
        raise KeyError(stem)
    finite = np.isfinite(per_dim)
    with np.errstate(invalid="ignore"):
        return np.where(finite.any(1), np.where(finite, per_dim, 0).sum(1) / np.maximum(finite.sum(1), 1), np.nan)


def _metric_kind(name: str) -> str:
    if name in ("accuracy", "subset_accuracy", "hamming_loss", "f1_present") or name in _FSCORES:
        return "classification"
    stem = name[len("macro_"):] if name.startswith("macro_") else name
    if stem in _REGRESSION:
        return "regression"
    raise KeyError(f"no metric over per-example predictions is known for {name!r}; known: "
                   f"{sorted(['accuracy', 'subset_accuracy', 'hamming_loss', 'f1_present', *_FSCORES])}, "
                   f"{list(_REGRESSION)} (also as macro_<name>), or any per-example score of a record")


def _per_example(name: str, t: np.ndarray, p: np.ndarray) -> np.ndarray | None:
    """Per-example values whose mean is the metric (None when the metric does not decompose so)."""
    if name in ("accuracy", "subset_accuracy"):
        return (np.all(t == p, axis=1) if t.ndim == 2 else t == p).astype(float)
    if name == "hamming_loss":
        return ((t != p).mean(axis=1) if t.ndim == 2 else (t != p)).astype(float)
    if name in ("mae", "macro_mae"):
        return np.abs(_as_2d(t) - _as_2d(p)).mean(axis=1)
    return None


def _resampled_fn(name: str, t: np.ndarray, p: np.ndarray, labels=None) -> Callable[[np.ndarray], np.ndarray]:
    kind = _metric_kind(name)
    if kind == "regression":
        stem = name[len("macro_"):] if name.startswith("macro_") else name
        t2, p2 = _as_2d(t), _as_2d(p)
        return lambda idx: _regression(stem, t2, p2, idx)
    if name == "f1_present":  # F1 of the positive class (label 1) of a binary task
        def f1_present(idx):
            tt, pp = t[idx] == 1, p[idx] == 1
            return _safe_div(2 * (tt & pp).sum(-1), 2 * (tt & pp).sum(-1) + (tt ^ pp).sum(-1))
        return f1_present
    average, which = _FSCORES[name]
    return lambda idx: _fscore(average, which, *_confusion_counts(t, p, idx, labels))


# ---------------------------------------------------------------------------------------------------------
# metrics as objects that can be recomputed on resamples
# ---------------------------------------------------------------------------------------------------------
@dataclass
class ExampleMetric:
    """A metric over `n` examples: its `value`, and `resampled(idx)` -> one value per row of the (B, n) index
    array `idx` (the metric recomputed on those examples). `width`: array elements per example (memory)."""

    name: str
    n: int
    value: float
    resampled: Callable[[np.ndarray], np.ndarray]
    width: int = 1


def from_values(name: str, values: Sequence[float]) -> ExampleMetric:
    """A metric that is the mean of per-example values (per-example scores, hits, absolute errors)."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"{name}: per-example values must be one number per example, got shape {v.shape}")
    return ExampleMetric(name, len(v), float(v.mean()) if len(v) else float("nan"), lambda idx: v[idx].mean(-1))


def from_predictions(name: str, y_true, y_pred, labels: Sequence | None = None) -> ExampleMetric:
    """`name` over (y_true, y_pred): class ids, 0/1 rows (multi-label) or values / rows of values (regression).
    `labels`: the label set of class-id F-scores (e.g. range(num_labels)); None: the labels present."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"{name}: y_true has shape {t.shape}, y_pred {p.shape}")
    per_example = _per_example(name, t, p)
    if per_example is not None:
        return from_values(name, per_example)
    fn = _resampled_fn(name, t, p, labels)
    value = float(fn(np.arange(len(t))[None, :])[0])
    return ExampleMetric(name, len(t), value, fn, width=int(np.prod(t.shape[1:], dtype=int)) or 1)


def metric_value(name: str, y_true, y_pred, labels: Sequence | None = None) -> float:
    return from_predictions(name, y_true, y_pred, labels).value


def classification_metrics(y_true, y_pred, metrics: Sequence[str] = QUALITY_METRICS,
                           labels: Sequence | None = None) -> dict[str, float]:
    """{metric: value}; `precision` / `recall` / `f1` are macro averages (zero_division=0)."""
    return {m: metric_value(m, y_true, y_pred, labels) for m in metrics}


def record_metric(record: dict, metric: str | None = None) -> ExampleMetric:
    """`metric` (default: the record's primary metric) of a result record: the mean of its per-example
    `scores[metric]` when stored, else recomputed from `y_true` / `y_pred` (class-id F-scores over the
    record's `label_names`)."""
    metric = metric or record["task"]["primary_metric"]
    preds = record.get("predictions") or {}
    scores = preds.get("scores") or {}
    if metric in scores:
        return from_values(metric, scores[metric])
    if preds.get("y_true") is None:
        raise KeyError(f"{record.get('_path', 'record')}: no per-example scores for {metric!r} "
                       f"(has {sorted(scores)}) and no y_true / y_pred")
    t = np.asarray(preds["y_true"])
    names = (record.get("task") or {}).get("label_names")
    labels = range(len(names)) if names and t.ndim == 1 and _metric_kind(metric) == "classification" else None
    return from_predictions(metric, preds["y_true"], preds["y_pred"], labels)


# ---------------------------------------------------------------------------------------------------------
# bootstrap
# ---------------------------------------------------------------------------------------------------------
@dataclass
class BootstrapResult:
    value: float
    ci_low: float
    ci_high: float
    distribution: np.ndarray

    def as_dict(self) -> dict:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high}


def _scipy_bootstrap(n: int, statistic: Callable[[np.ndarray], np.ndarray], width: int, n_boot: int, seed: int,
                     alpha: float) -> tuple[float, float, np.ndarray]:
    """Percentile bootstrap over the example indices 0..n-1 (scipy.stats.bootstrap, resamples drawn from
    `np.random.default_rng(seed)`): (ci_low, ci_high, bootstrap distribution)."""
    from scipy.stats import bootstrap as scipy_bootstrap

    if n < 2:
        return float("nan"), float("nan"), np.full(0, np.nan)
    batch = max(1, min(n_boot, _MAX_ELEMENTS // (n * max(1, width))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate distributions (NaN CIs) are handled below
        res = scipy_bootstrap((np.arange(n),), lambda idx, axis=-1: statistic(np.atleast_2d(idx)), vectorized=True,
                              n_resamples=n_boot, batch=batch, confidence_level=1 - alpha, method="percentile",
                              rng=np.random.default_rng(seed))
    dist = np.asarray(res.bootstrap_distribution, dtype=float)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(lo) and np.isfinite(hi)) and np.isfinite(dist).any():  # NaN resamples (constant vectors)
        lo, hi = (float(x) for x in np.nanquantile(dist, [alpha / 2, 1 - alpha / 2]))
    return lo, hi, dist


def bootstrap(metric: ExampleMetric, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> BootstrapResult:
    """Point value and percentile bootstrap (1 - alpha) CI of `metric` over resampled examples."""
    lo, hi, dist = _scipy_bootstrap(metric.n, metric.resampled, metric.width, n_boot, seed, alpha)
    return BootstrapResult(metric.value, lo, hi, dist)


def paired_bootstrap(a: ExampleMetric, b: ExampleMetric, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                     higher_is_better: bool = True) -> dict:
    """Paired bootstrap of a - b over the same resamples of the same examples: `diff`, its percentile CI and
    `p_value`, the share of resamples where `a` is not better than `b` (one-sided)."""
    if a.n != b.n:
        raise ValueError(f"paired comparison needs the same examples: {a.n} vs {b.n}")
    lo, hi, dist = _scipy_bootstrap(a.n, lambda idx: a.resampled(idx) - b.resampled(idx), max(a.width, b.width),
                                    n_boot, seed, alpha)
    better = dist if higher_is_better else -dist
    p = float(np.mean(~(better > 0))) if dist.size else float("nan")
    return {"metric": a.name, "diff": a.value - b.value, "ci_low": lo, "ci_high": hi, "p_value": p}


def bootstrap_ci(y_true, y_pred, metrics: Sequence[str] = QUALITY_METRICS, n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05, labels: Sequence | None = None) -> dict[str, dict]:
    """Per metric: point value and percentile bootstrap (1 - alpha) CI over resampled examples."""
    return {m: bootstrap(from_predictions(m, y_true, y_pred, labels), n_boot, seed, alpha).as_dict() for m in metrics}


def bootstrap_diff_ci(y_true, pred_a, pred_b, metric: str = "accuracy", n_boot: int = 1000, seed: int = 0,
                      alpha: float = 0.05, labels: Sequence | None = None) -> dict:
    """Paired bootstrap of metric(a) - metric(b) on the same resampled examples: difference and its CI."""
    if not (len(y_true) == len(pred_a) == len(pred_b)):
        raise ValueError("paired comparison needs predictions on the same examples")
    from affectlab.registry import higher_is_better

    a, b = from_predictions(metric, y_true, pred_a, labels), from_predictions(metric, y_true, pred_b, labels)
    return paired_bootstrap(a, b, n_boot, seed, alpha, higher_is_better(metric))


# ---------------------------------------------------------------------------------------------------------
# McNemar
# ---------------------------------------------------------------------------------------------------------
def mcnemar(y_true, pred_a, pred_b, exact: bool | None = None) -> dict:
    """McNemar's test on paired predictions. b = A right & B wrong, c = A wrong & B right.

    Exact two-sided binomial test (b ~ Bin(b + c, 1/2)) when `exact` or (by default) when b + c < 25; otherwise
    the chi-square statistic with continuity correction (|b - c| - 1)^2 / (b + c), 1 degree of freedom.
    """
    from scipy import stats

    t, a, bb = np.asarray(y_true), np.asarray(pred_a), np.asarray(pred_b)
    if not (len(t) == len(a) == len(bb)):
        raise ValueError("McNemar needs predictions on the same examples")
    ra, rb = a == t, bb == t
    if t.ndim == 2:  # multi-label rows: an example is right when the whole row is
        ra, rb = ra.all(axis=1), rb.all(axis=1)
    b = int(np.sum(ra & ~rb))
    c = int(np.sum(~ra & rb))
    n = b + c
    if exact is None:
        exact = n < 25
    if n == 0:
        return {"b": b, "c": c, "statistic": 0.0, "p_value": 1.0, "method": "exact" if exact else "chi2_cc"}
    if exact:
        p = float(stats.binomtest(min(b, c), n, 0.5, alternative="two-sided").pvalue)
        return {"b": b, "c": c, "statistic": float(min(b, c)), "p_value": min(1.0, p), "method": "exact"}
    stat = (abs(b - c) - 1) ** 2 / n
    return {"b": b, "c": c, "statistic": float(stat), "p_value": float(stats.chi2.sf(stat, 1)), "method": "chi2_cc"}

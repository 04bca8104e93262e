"""Multi-label F1 (an `evaluate` module): micro/macro/weighted P/R/F1, per-label report, subset
accuracy, Hamming loss, with one global threshold, per-label thresholds, or thresholds tuned per label.

Self-contained: it imports only numpy, datasets and evaluate, so the folder can travel to the Hub
alone. Load it offline with `evaluate.load("metrics/multilabel_f1")`. The training scripts call the
same functions (`multilabel_report`, `tune_label_thresholds`), so there is one implementation.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Multi-label classification report from probabilities and multi-hot references.
A label is predicted when its probability is >= its threshold. Thresholds come from (in order of
precedence) `tune_thresholds=True` (per label, maximising that label's F1 over `threshold_grid`),
`thresholds` (one per label), or the scalar `threshold` (default 0.5). Zero denominators give
`zero_division` (default 0.0), as in scikit-learn.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: (n_examples, n_labels) probabilities in [0, 1].
    references: (n_examples, n_labels) multi-hot 0/1 labels.
    threshold: scalar threshold for every label (default 0.5).
    thresholds: optional per-label thresholds (length n_labels).
    tune_thresholds: if True, tune one threshold per label on these inputs (maximising per-label F1).
    threshold_grid: candidate thresholds for tuning (default 0.01, 0.02, ..., 0.99).
    label_names: optional names for the per-label report.
    zero_division: value used when a ratio has a zero denominator (default 0.0).
Returns:
    micro_f1, micro_precision, micro_recall, macro_f1, macro_precision, macro_recall,
    weighted_f1, weighted_precision, weighted_recall, subset_accuracy, hamming_loss,
    thresholds (list), per_label (list of {label, precision, recall, f1, support, threshold}).
Examples:
    >>> metric = evaluate.load("metrics/multilabel_f1")
    >>> metric.compute(predictions=[[0.9, 0.2], [0.1, 0.7]], references=[[1, 0], [0, 1]])["macro_f1"]
    1.0
"""

_CITATION = """@article{scikit-learn, title={Scikit-learn: Machine Learning in {P}ython}, author={Pedregosa, F. and others},
journal={Journal of Machine Learning Research}, volume={12}, pages={2825--2830}, year={2011}}"""

DEFAULT_GRID = np.round(np.arange(1, 100) / 100.0, 2)


def _safe_div(num, den, zero_division):
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, float(zero_division))
    np.divide(num, den, out=out, where=den != 0)
    return out


def _counts(pred, ref):
    """True positives, false positives, false negatives per label (pred, ref: bool (n, L))."""
    tp = np.sum(pred & ref, axis=0)
    fp = np.sum(pred & ~ref, axis=0)
    fn = np.sum(~pred & ref, axis=0)
    return tp, fp, fn


def _as_arrays(probabilities, references):
    probs = np.asarray(probabilities, dtype=np.float64)
    refs = np.asarray(references)
    if probs.ndim != 2 or probs.shape != refs.shape:
        raise ValueError(f"predictions and references must both be (n_examples, n_labels); got {probs.shape} and {refs.shape}")
    if not np.isin(refs, (0, 1)).all():
        raise ValueError("references must be multi-hot 0/1")
    return probs, refs.astype(bool)


def tune_label_thresholds(probabilities, references, threshold_grid=None, default=0.5):
    """Per-label threshold maximising that label's F1 over the grid.

    Ties are broken by the median of the maximising grid points (the middle of the plateau); a label
    with no positive reference keeps `default`.
    """
    probs, refs = _as_arrays(probabilities, references)
    grid = np.asarray(DEFAULT_GRID if threshold_grid is None else threshold_grid, dtype=np.float64)
    f1 = np.empty((len(grid), probs.shape[1]))
    for i, t in enumerate(grid):
        tp, fp, fn = _counts(probs >= t, refs)
        f1[i] = _safe_div(2 * tp, 2 * tp + fp + fn, 0.0)
    thresholds = np.full(probs.shape[1], float(default))
    has_pos = refs.any(axis=0)
    for j in np.flatnonzero(has_pos):
        best = np.flatnonzero(f1[:, j] == f1[:, j].max())
        thresholds[j] = float(grid[best[len(best) // 2]])
    return thresholds


def multilabel_report(probabilities, references, threshold=0.5, thresholds=None, tune_thresholds=False,
                      threshold_grid=None, label_names=None, zero_division=0.0):
    """Every number of the report as plain Python types (see the module docstring)."""
    probs, refs = _as_arrays(probabilities, references)
    n_labels = probs.shape[1]
    if tune_thresholds:
        thr = tune_label_thresholds(probs, refs, threshold_grid, default=threshold)
    elif thresholds is not None:
        thr = np.asarray(thresholds, dtype=np.float64)
        if thr.shape != (n_labels,):
            raise ValueError(f"thresholds must have one value per label ({n_labels}), got shape {thr.shape}")
    else:
        thr = np.full(n_labels, float(threshold))
    pred = probs >= thr[None, :]
    tp, fp, fn = _counts(pred, refs)
    support = tp + fn

    precision = _safe_div(tp, tp + fp, zero_division)
    recall = _safe_div(tp, tp + fn, zero_division)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn, zero_division)

    micro_p = _safe_div(tp.sum(), tp.sum() + fp.sum(), zero_division)
    micro_r = _safe_div(tp.sum(), tp.sum() + fn.sum(), zero_division)
    micro_f1 = _safe_div(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum(), zero_division)
    if support.sum() > 0:
        weights = support / support.sum()
        weighted = [float(np.sum(weights * m)) for m in (precision, recall, f1)]
    else:
        weighted = [float(zero_division)] * 3
    names = list(label_names) if label_names is not None else [str(i) for i in range(n_labels)]
    if len(names) != n_labels:
        raise ValueError(f"label_names has {len(names)} names for {n_labels} labels")
    per_label = [
        {"label": names[j], "precision": float(precision[j]), "recall": float(recall[j]), "f1": float(f1[j]),
         "support": int(support[j]), "threshold": float(thr[j])}
        for j in range(n_labels)
    ]
    return {
        "micro_f1": float(micro_f1), "micro_precision": float(micro_p), "micro_recall": float(micro_r),
        "macro_f1": float(f1.mean()), "macro_precision": float(precision.mean()), "macro_recall": float(recall.mean()),
        "weighted_precision": weighted[0], "weighted_recall": weighted[1], "weighted_f1": weighted[2],
        "subset_accuracy": float(np.mean(np.all(pred == refs, axis=1))),
        "hamming_loss": float(np.mean(pred != refs)),
        "thresholds": [float(t) for t in thr],
        "per_label": per_label,
    }


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MultilabelF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("float64")),
                "references": datasets.Sequence(datasets.Value("int32")),
            }),
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html#multilabel-ranking-metrics"],
        )

    def _compute(self, predictions, references, threshold=0.5, thresholds=None, tune_thresholds=False,
                 threshold_grid=None, label_names=None, zero_division=0.0):
        return multilabel_report(predictions, references, threshold=threshold, thresholds=thresholds,
                                 tune_thresholds=tune_thresholds, threshold_grid=threshold_grid,
                                 label_names=label_names, zero_division=zero_division)

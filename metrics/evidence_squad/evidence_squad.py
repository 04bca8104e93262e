"""Evidence-span metric (an `evaluate` module): SQuAD EM/F1 with the official normalisation and SQuAD 2.0
no-answer handling, plus sentence-level evidence precision / recall / F1.

Self-contained: it imports only re, string, collections, datasets and evaluate, so the folder can travel
to the Hub alone. Load it offline with `evaluate.load("metrics/evidence_squad")`. The training script
calls the same functions (`squad_scores`, `sentence_scores`), so there is one implementation.
"""

import collections
import re
import string

import datasets
import evaluate

_DESCRIPTION = """
SQuAD 2.0 exact match and token F1 between one predicted answer text per example and its gold answers
(the maximum over the gold answers; an example without gold answers expects the empty prediction, which
scores 1, and any non-empty prediction scores 0). Normalisation as in the official script: lower case,
punctuation and the articles a/an/the removed, whitespace collapsed. Scores are percentages (0-100), as
in the official script and `evaluate`'s `squad_v2`, with `HasAns_*` / `NoAns_*` breakdowns.

Sentence-level evidence (when `context` and `spans` are given): the context is split into sentences
(after . ! ? and the ellipsis, as the ReDSM5 builder does); a sentence is gold when it overlaps a gold
answer span and predicted when it overlaps a predicted span (`spans`: character [start, end) pairs; a
post can have several). Micro precision / recall / F1 over (example, sentence) pairs, in percent.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of {"id": str, "prediction_text": str} and optionally "spans": [[start, end], ...]
        (character offsets into the context, end exclusive; "" / [] mean "no answer").
    references: list of {"id": str, "answers": {"text": [...], "answer_start": [...]}} and, with spans,
        "context": str. Predictions and references are paired by position and must carry the same id.
    zero_division: value of a sentence-level ratio with a zero denominator (default 0.0).
Returns:
    exact, f1, total, HasAns_exact, HasAns_f1, HasAns_total, NoAns_exact, NoAns_f1, NoAns_total and, when
    spans are given, sentence_precision, sentence_recall, sentence_f1, sentence_tp, sentence_fp, sentence_fn.
Examples:
    >>> metric = evaluate.load("metrics/evidence_squad")
    >>> metric.compute(predictions=[{"id": "1", "prediction_text": "the cat"}],
    ...                references=[{"id": "1", "answers": {"text": ["Cat"], "answer_start": [0]}}])["exact"]
    100.0
"""

_CITATION = """@inproceedings{rajpurkar-etal-2018-know, title={Know What You Don{'}t Know: Unanswerable Questions for {SQ}u{AD}},
author={Rajpurkar, Pranav and Jia, Robin and Liang, Percy}, booktitle={ACL}, year={2018}}"""

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)
_SENTENCE_RE = re.compile(r"[^.!?\u2026]+(?:[.!?\u2026]+|$)")


def normalize_answer(text):
    """Lower case, remove punctuation, articles and extra whitespace (the official SQuAD normalisation)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(text):
    return normalize_answer(text).split() if text else []


def exact_match(gold, pred):
    return int(normalize_answer(gold) == normalize_answer(pred))


def token_f1(gold, pred):
    """Token-overlap F1 of the normalised texts; if either is empty, 1 when both are, else 0."""
    gold_toks, pred_toks = _tokens(gold), _tokens(pred)
    if not gold_toks or not pred_toks:
        return float(gold_toks == pred_toks)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_toks), same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def gold_texts(answers):
    """Gold answers with non-empty normalised text, or [""] for a no-answer example (SQuAD 2.0)."""
    texts = [t for t in answers.get("text", []) if normalize_answer(t)]
    return texts or [""]


def squad_scores(predictions, references):
    """{exact, f1, total, HasAns_*, NoAns_*} in percent; rows paired by position, ids checked."""
    exact, f1, has_ans = [], [], []
    for row, (pred, ref) in enumerate(zip(predictions, references)):
        if str(pred["id"]) != str(ref["id"]):
            raise ValueError(f"row {row}: prediction id {pred['id']!r} != reference id {ref['id']!r}")
        golds = gold_texts(ref["answers"])
        text = pred.get("prediction_text") or ""
        exact.append(max(exact_match(g, text) for g in golds))
        f1.append(max(token_f1(g, text) for g in golds))
        has_ans.append(golds != [""])
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    out = {"total": len(exact), "exact": _pct(exact), "f1": _pct(f1)}
    for name, keep in (("HasAns", True), ("NoAns", False)):
        idx = [i for i, h in enumerate(has_ans) if h == keep]
        if idx:
            out[f"{name}_total"] = len(idx)
            out[f"{name}_exact"] = _pct([exact[i] for i in idx])
            out[f"{name}_f1"] = _pct([f1[i] for i in idx])
    return out


def _pct(values):
    return 100.0 * sum(values) / len(values) if values else 0.0


def sentence_spans(text):
    """(start, end) character spans of the sentences of `text`, trimmed of surrounding whitespace."""
    spans = []
    for m in _SENTENCE_RE.finditer(text):
        start, end = m.start(), m.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def overlapped(sentences, spans):
    """Indices of the sentences that overlap at least one [start, end) span."""
    return {i for i, (a, b) in enumerate(sentences) for s, e in spans if s < b and a < e and e > s}


def sentence_scores(predictions, references, zero_division=0.0):
    """Micro sentence-level evidence P/R/F1 (percent) and the tp/fp/fn counts."""
    tp = fp = fn = 0
    for row, (pred, ref) in enumerate(zip(predictions, references)):
        if str(pred["id"]) != str(ref["id"]):
            raise ValueError(f"row {row}: prediction id {pred['id']!r} != reference id {ref['id']!r}")
        context = ref.get("context")
        if context is None:
            raise ValueError(f"row {row} (id {ref['id']!r}): sentence-level scores need the reference 'context'")
        answers = ref["answers"]
        gold_spans = [(int(s), int(s) + len(t)) for t, s in zip(answers["text"], answers["answer_start"]) if t]
        pred_spans = [(int(s), int(e)) for s, e in (pred.get("spans") or [])]
        for s, e in pred_spans:
            if not 0 <= s <= e <= len(context):
                raise ValueError(f"row {row} (id {pred['id']!r}): span [{s}, {e}) outside the context of length {len(context)}")
        sentences = sentence_spans(context)
        gold, predicted = overlapped(sentences, gold_spans), overlapped(sentences, pred_spans)
        tp += len(gold & predicted)
        fp += len(predicted - gold)
        fn += len(gold - predicted)
    precision = 100.0 * tp / (tp + fp) if tp + fp else 100.0 * zero_division
    recall = 100.0 * tp / (tp + fn) if tp + fn else 100.0 * zero_division
    f1 = 100.0 * 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 100.0 * zero_division
    return {"sentence_precision": precision, "sentence_recall": recall, "sentence_f1": f1,
            "sentence_tp": tp, "sentence_fp": fp, "sentence_fn": fn}


_ANSWERS = datasets.Sequence({"text": datasets.Value("string"), "answer_start": datasets.Value("int32")})
_FEATURES_SPANS = datasets.Features({
    "predictions": {"id": datasets.Value("string"), "prediction_text": datasets.Value("string"),
                    "spans": datasets.Sequence(datasets.Sequence(datasets.Value("int32")))},
    "references": {"id": datasets.Value("string"), "answers": _ANSWERS, "context": datasets.Value("string")},
})
_FEATURES_TEXT = datasets.Features({
    "predictions": {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")},
    "references": {"id": datasets.Value("string"), "answers": _ANSWERS},
})


class EvidenceSquad(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[_FEATURES_SPANS, _FEATURES_TEXT],
            reference_urls=["https://rajpurkar.github.io/SQuAD-explorer/"],
        )

    def _infer_feature_from_example(self, example):
        """The format with spans when the first prediction has `spans`, else the text-only one (by keys,
        since `evaluate`'s own trial encoding stops at the first KeyError)."""
        pred = example.get("predictions") or {}
        return _FEATURES_SPANS if isinstance(pred, dict) and "spans" in pred else _FEATURES_TEXT

    def _compute(self, predictions, references, zero_division=0.0):
        out = squad_scores(predictions, references)
        if predictions and "spans" in predictions[0]:
            out.update(sentence_scores(predictions, references, zero_division))
        return out

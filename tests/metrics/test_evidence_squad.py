"""metrics/evidence_squad on hand-computed cases, loaded through `evaluate.load` offline."""

from __future__ import annotations

import pytest

from affectlab.metrics import load_metric, metric_module


@pytest.fixture(scope="module")
def metric():
    return load_metric("evidence_squad")


@pytest.fixture(scope="module")
def mod():
    return metric_module("evidence_squad")


def ans(*pairs):
    return {"text": [t for t, _ in pairs], "answer_start": [s for _, s in pairs]}


@pytest.mark.parametrize("text, expected", [
    ("The Cat!", "cat"),
    ("  a   dog,  an apple ", "dog apple"),
    ("Theater", "theater"),             # article only as a whole word
    ("I can't sleep.", "i cant sleep"),
    ("", ""),
])
def test_normalize_answer(mod, text, expected):
    assert mod.normalize_answer(text) == expected


@pytest.mark.parametrize("golds, pred, em, f1", [
    # exact after normalisation
    (["I cannot sleep."], "i cannot sleep", 100.0, 100.0),
    # pred "cannot sleep at night" (4 tokens) vs gold "i cannot sleep" (3): common 2 -> P 2/4, R 2/3, F1 4/7
    (["I cannot sleep"], "cannot sleep at night", 0.0, 100 * 4 / 7),
    # max over golds: second gold matches exactly
    (["tired", "I feel so tired"], "i feel so tired", 100.0, 100.0),
    # no-answer gold: empty prediction scores 1, anything else 0
    ([], "", 100.0, 100.0),
    ([], "something", 0.0, 0.0),
    # answerable gold, empty prediction: 0
    (["tired"], "", 0.0, 0.0),
    # duplicate tokens counted with multiplicity: gold "no no yes", pred "no yes yes": common {no:1, yes:1}=2 -> P=R=2/3
    (["no no yes"], "no yes yes", 0.0, 100 * 2 / 3),
    # only articles/punctuation in the gold -> treated as no answer
    (["the ."], "", 100.0, 100.0),
])
def test_single_example_squad(metric, golds, pred, em, f1):
    out = metric.compute(predictions=[{"id": "x", "prediction_text": pred}],
                         references=[{"id": "x", "answers": ans(*[(g, 0) for g in golds])}])
    assert out["exact"] == pytest.approx(em)
    assert out["f1"] == pytest.approx(f1)
    assert out["total"] == 1


def test_has_ans_no_ans_breakdown(metric):
    preds = [{"id": "a", "prediction_text": "sad"}, {"id": "b", "prediction_text": "very sad today"},
             {"id": "c", "prediction_text": ""}, {"id": "d", "prediction_text": "oops"}]
    refs = [{"id": "a", "answers": ans(("sad", 0))}, {"id": "b", "answers": ans(("sad", 5))},
            {"id": "c", "answers": ans()}, {"id": "d", "answers": ans()}]
    out = metric.compute(predictions=preds, references=refs)
    # b: gold "sad" (1 token), pred 3 tokens -> P 1/3, R 1 -> F1 0.5
    assert out["HasAns_total"] == 2 and out["HasAns_exact"] == 50.0 and out["HasAns_f1"] == pytest.approx(75.0)
    assert out["NoAns_total"] == 2 and out["NoAns_exact"] == 50.0 and out["NoAns_f1"] == 50.0
    assert out["exact"] == 50.0 and out["f1"] == pytest.approx((1 + 0.5 + 1 + 0) / 4 * 100)


CONTEXT = "I am tired. I cannot focus! The weather is nice. I cry a lot."
#          0         1         2         3         4         5         6
# sentences: [0,11) "I am tired." [12,27) "I cannot focus!" [28,48) "The weather is nice." [49,61) "I cry a lot."


def test_sentence_segmentation(mod):
    assert mod.sentence_spans(CONTEXT) == [(0, 11), (12, 27), (28, 48), (49, 61)]
    assert mod.sentence_spans("No final stop  ") == [(0, 13)]


@pytest.mark.parametrize("gold, spans, tp, fp, fn", [
    # predicted span exactly the gold sentence
    ([("I am tired.", 0)], [[0, 11]], 1, 0, 0),
    # a span crossing sentences 1 and 2 counts for both: gold is sentence 1 only
    ([("I cannot focus!", 12)], [[20, 35]], 1, 1, 0),
    # two gold sentences, one found, one wrong sentence predicted
    ([("I am tired.", 0), ("I cry a lot.", 49)], [[5, 9], [30, 40]], 1, 1, 1),
    # no gold evidence, no prediction: nothing counted
    ([], [], 0, 0, 0),
    # no gold evidence, one predicted sentence: a false positive
    ([], [[49, 61]], 0, 1, 0),
    # a gold span inside a sentence (exact alignment of a part) still marks the whole sentence
    ([("cannot", 14)], [[12, 27]], 1, 0, 0),
    # a span touching only the whitespace between sentences overlaps none
    ([("I am tired.", 0)], [[11, 12]], 0, 0, 1),
])
def test_sentence_level(metric, gold, spans, tp, fp, fn):
    pred_text = CONTEXT[spans[0][0]:spans[0][1]] if spans else ""
    out = metric.compute(predictions=[{"id": "p", "prediction_text": pred_text, "spans": spans}],
                         references=[{"id": "p", "answers": ans(*gold), "context": CONTEXT}])
    assert (out["sentence_tp"], out["sentence_fp"], out["sentence_fn"]) == (tp, fp, fn)
    p = 100 * tp / (tp + fp) if tp + fp else 0.0
    r = 100 * tp / (tp + fn) if tp + fn else 0.0
    f = 100 * 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    assert out["sentence_precision"] == pytest.approx(p)
    assert out["sentence_recall"] == pytest.approx(r)
    assert out["sentence_f1"] == pytest.approx(f)


def test_sentence_level_micro_over_examples(mod):
    preds = [{"id": "1", "prediction_text": "x", "spans": [[0, 11], [12, 27]]},
             {"id": "2", "prediction_text": "", "spans": []}]
    refs = [{"id": "1", "answers": ans(("I am tired.", 0)), "context": CONTEXT},
            {"id": "2", "answers": ans(("I cry a lot.", 49)), "context": CONTEXT}]
    out = mod.sentence_scores(preds, refs)
    # tp 1, fp 1 (sentence 1 of example 1), fn 1 (example 2): P = R = F1 = 50
    assert (out["sentence_tp"], out["sentence_fp"], out["sentence_fn"]) == (1, 1, 1)
    assert out["sentence_precision"] == out["sentence_recall"] == out["sentence_f1"] == 50.0
    assert mod.sentence_scores(preds[1:], [{"id": "2", "answers": ans(), "context": CONTEXT}], zero_division=1.0)["sentence_f1"] == 100.0


def test_errors_name_the_row(mod, metric):
    with pytest.raises(ValueError, match="row 1: prediction id 'z' != reference id 'b'"):
        mod.squad_scores([{"id": "a", "prediction_text": ""}, {"id": "z", "prediction_text": ""}],
                         [{"id": "a", "answers": ans()}, {"id": "b", "answers": ans()}])
    with pytest.raises(ValueError, match=r"row 0 \(id 'a'\): span \[0, 99\) outside"):
        mod.sentence_scores([{"id": "a", "spans": [[0, 99]]}], [{"id": "a", "answers": ans(), "context": "short"}])
    with pytest.raises(ValueError, match="need the reference 'context'"):
        mod.sentence_scores([{"id": "a", "spans": []}], [{"id": "a", "answers": ans()}])

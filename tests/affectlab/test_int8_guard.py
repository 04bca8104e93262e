"""The int8 guard (`affectlab.inference.Int8Guard`, calibrated by `affectlab.export.calibrate_int8_guard`): the int8
graph scores every row, the rows within the calibrated logit margin of a decision are scored again by the fp32
graph. On a tiny random multi-label BERT whose logits all sit near its thresholds (seconds): the margin reaches the
target on the calibration rows (GoEmotions train), rows inside the margin get exactly fp32's logits, rows outside
keep int8's, the guarded decisions agree with fp32 at least as often as plain int8 on validation rows, and the
export's options are checked."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

LABELS = ["joy", "anger", "sadness", "fear", "neutral"]


class FixedBackend:
    """A backend returning fixed logits per row (rows told apart by their first token id)."""

    def __init__(self, logits_by_text: dict[int, np.ndarray]):
        self.logits = logits_by_text
        self.calls = 0

    def __call__(self, feed):
        self.calls += 1
        return np.stack([self.logits[int(row[1])] for row in feed["input_ids"]])


def test_guard_scores_only_rows_near_a_decision_again(minilm_path):
    from transformers import AutoTokenizer

    from affectlab.inference import Int8Guard, TextClassifier

    tok = AutoTokenizer.from_pretrained(minilm_path)
    texts = ["joy", "anger", "fear", "neutral"]
    ids = [tok(t)["input_ids"][1] for t in texts]
    config = {"id2label": dict(enumerate(["a", "b"])), "problem_type": "multi_label_classification",
              "label_thresholds": {"a": 0.5, "b": 0.5}}  # threshold logit 0
    int8 = FixedBackend({i: np.array(v, np.float32) for i, v in zip(ids, ([0.004, 2.0], [-3.0, 1.0], [0.5, -0.009],
                                                                           [0.02, -0.02]))})
    fp32 = FixedBackend({i: np.array(v, np.float32) for i, v in zip(ids, ([-0.001, 2.1], [-3.1, 1.1], [0.4, 0.001],
                                                                           [0.03, -0.03]))})
    guard = Int8Guard(fp32, margin=0.01)
    clf = TextClassifier(int8, tok, config=config, guard=guard)
    got = clf.logits(texts)
    np.testing.assert_array_equal(got[[0, 2]], np.float32([[-0.001, 2.1], [0.4, 0.001]]))  # within 0.01: fp32's
    np.testing.assert_array_equal(got[[1, 3]], np.float32([[-3.0, 1.0], [0.02, -0.02]]))   # outside: int8's
    assert (guard.rows_seen, guard.rows_rechecked, guard.recheck_rate) == (4, 2, 0.5)
    assert clf.predict(texts) == [["b"], ["b"], ["a", "b"], ["a"]]
    # single-label: the gap between the two largest logits
    single = TextClassifier(int8, tok, config={**config, "problem_type": "single_label_classification"},
                            guard=Int8Guard(fp32, margin=0.05))
    assert single.spec.decision_distance(np.array([[1.0, 0.97, -2.0]])) == pytest.approx([0.03])
    single.logits(texts)
    assert single.guard.rows_rechecked == 1  # only the last row: its two logits are 0.04 apart
    regression = TextClassifier(int8, tok, config={**config, "problem_type": "regression"}, guard=Int8Guard(fp32, 1e9))
    regression.logits(texts)
    assert regression.guard.rows_rechecked == 0  # no decision to guard


def test_calibration_finds_the_smallest_margin_that_reaches_the_target(minilm_path):
    from transformers import AutoTokenizer

    from affectlab.export import calibrate_int8_guard

    tok = AutoTokenizer.from_pretrained(minilm_path)
    words = [w for w in ("joy anger fear neutral love grief pride relief caring desire".split())]
    ids = [tok(w)["input_ids"][1] for w in words]
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 0.05, size=(len(words), 3)).astype(np.float32)
    noisy = (ref + rng.normal(0, 0.03, size=ref.shape)).astype(np.float32)
    config = {"id2label": dict(enumerate("xyz")), "problem_type": "multi_label_classification",
              "label_thresholds": {"x": 0.5, "y": 0.5, "z": 0.5}}
    fp32, int8 = FixedBackend(dict(zip(ids, ref))), FixedBackend(dict(zip(ids, noisy)))
    changed = ((ref >= 0) != (noisy >= 0)).any(1)
    distance = np.abs(noisy).min(1)
    assert changed.sum() >= 2, "the fixture must change some decisions"
    full = calibrate_int8_guard(fp32, int8, config, tok, words, target=1.0)
    assert full["guarded_same_decisions"] == 1.0 and full["int8_same_decisions"] == pytest.approx(1 - changed.mean())
    assert full["logit_margin"] > distance[changed].max() and full["logit_margin"] == pytest.approx(
        distance[changed].max(), abs=1e-6)  # the smallest margin that catches every change
    assert full["rechecked_share"] == pytest.approx((distance < full["logit_margin"]).mean())
    loose = calibrate_int8_guard(fp32, int8, config, tok, words, target=1 - 1 / len(words))  # one row may stay
    assert loose["logit_margin"] < full["logit_margin"] and loose["guarded_same_decisions"] >= 1 - 1 / len(words)
    same = calibrate_int8_guard(fp32, fp32, config, tok, words, target=1.0)
    assert same["logit_margin"] == 0.0 and same["rechecked_share"] == 0.0


@pytest.fixture(scope="module")
def tiny_run(tiny_bert_dir, tmp_path_factory):
    """A tiny random multi-label BERT saved as a run folder that names GoEmotions in its eval_results.json."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    src = tmp_path_factory.mktemp("guard") / "run"
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_dir, num_labels=len(LABELS), problem_type="multi_label_classification",
        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    with torch.no_grad():  # thresholds at the median of each label's probability: many rows near a decision
        probs = torch.sigmoid(model(**AutoTokenizer.from_pretrained(tiny_bert_dir)(
            ["thank you", "ugh", "I miss her", "what?", "great game", "no way"], return_tensors="pt",
            padding=True)).logits).median(0).values
    model.config.label_thresholds = {n: float(p) for n, p in zip(LABELS, probs)}
    model.save_pretrained(src)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(src)
    (src / "eval_results.json").write_text(json.dumps({"dataset": {"name": "goemotions", "config": None}}))
    return src


def test_export_calibrates_the_guard_on_training_rows_and_the_predictor_uses_it(tiny_run, data_root, tmp_path):
    from affectlab.export import export
    from affectlab.inference import GUARD_KEY, TextClassifier
    from dataset_builders import build_dataset

    lines = []
    meta = export(str(tiny_run), tmp_path / "onnx", quantize="int8", calibration_rows_n=300, guard_target=0.99,
                  log=lines.append)
    guard = meta[GUARD_KEY]
    assert guard["calibrated_on"] == "goemotions train, 300 rows" and guard["calibration_rows"] == 300
    assert guard["int8_file"] == meta["default"] == "onnx/model_quantized.onnx"
    assert guard["reference_file"] == "onnx/model.onnx"
    assert guard["guarded_same_decisions"] >= 0.99 > guard["int8_same_decisions"]
    assert 0 < guard["logit_margin"] and 0 < guard["rechecked_share"] < 1
    assert any(line.startswith("int8 guard: rows within") for line in lines)
    saved = json.loads((tmp_path / "onnx" / "config.json").read_text())["onnx"][GUARD_KEY]
    assert saved["logit_margin"] == guard["logit_margin"]
    card = (tmp_path / "onnx" / "README.md").read_text()
    assert f"within {guard['logit_margin']:.4f} of a decision" in card and "goemotions train, 300 rows" in card

    texts = list(build_dataset("goemotions")["validation"]["text"][:400])  # rows the guard never saw
    reference = TextClassifier.from_pretrained(str(tmp_path / "onnx"), backend="onnx", onnx_file="onnx/model.onnx")
    guarded = TextClassifier.from_pretrained(str(tmp_path / "onnx"), backend="onnx")
    plain = TextClassifier.from_pretrained(str(tmp_path / "onnx"), backend="onnx", int8_guard=False)
    assert guarded.guard is not None and guarded.guard.margin == guard["logit_margin"] and plain.guard is None
    assert reference.guard is None  # the fp32 graph needs none
    ref = reference.logits(texts)
    got, raw = guarded.logits(texts), plain.logits(texts)
    near = guarded.spec.decision_distance(raw) < guard["logit_margin"]
    np.testing.assert_allclose(got[near], ref[near], atol=1e-6)   # the rechecked rows: fp32's logits
    np.testing.assert_array_equal(got[~near], raw[~near])         # the others: int8's, untouched
    same = lambda a: np.mean([x == y for x, y in zip(reference.spec.decide(reference.spec.scores(ref)),  # noqa: E731
                                                     reference.spec.decide(reference.spec.scores(a)))])
    # this random model's logits all lie within ~0.01 of its thresholds (plain int8 keeps 0.5% of label sets);
    # 300 calibration rows carry the guard to >= 90% of unseen rows (the demo model: make bench-inference)
    assert same(raw) < 0.5 and same(got) >= 0.9
    assert guarded.guard.rows_rechecked == near.sum()


def test_guard_options(tiny_run, data_root, tmp_path):
    from affectlab.errors import ArgumentError
    from affectlab.export import export
    from affectlab.inference import GUARD_KEY

    meta = export(str(tiny_run), tmp_path / "none", quantize="int8", calibration_dataset="none", log=lambda *_: None)
    assert GUARD_KEY not in meta
    with pytest.raises(ArgumentError, match="--calibration_dataset: unknown dataset 'nope'"):
        export(str(tiny_run), tmp_path / "bad", quantize="int8", calibration_dataset="nope", log=lambda *_: None)
    with pytest.raises(ArgumentError, match="--calibration_dataset: goemotions has no split 'tset'"):
        export(str(tiny_run), tmp_path / "bad", quantize="int8", calibration_dataset="goemotions:tset",
               log=lambda *_: None)
    assert not (tmp_path / "bad").exists()
    fp32_only = export(str(tiny_run), tmp_path / "fp32", log=lambda *_: None)  # no int8: nothing to guard
    assert GUARD_KEY not in fp32_only

"""The length-sorted predictor (`affectlab.inference`) and length-sorted evaluation in `ClassificationTrainer`:
batches stay under the token budget, and predictions / metrics come back in the original order, identical to an
unsorted run (tiny random BERT, seconds)."""

from __future__ import annotations

import numpy as np
import pytest

TEXTS = ["ok", "thank you so much, this made my day!", "ugh", "I can't believe they did that to us, furious.",
         "I'm not sure how I feel about the new policy; it seems fine but I worry about what comes next.",
         "lol same", "Wow!!", "I miss her every single day, and nothing helps.", "fine", "Could you explain why?",
         "This is the worst service I have ever had, and I have been a customer for more than ten years.", "yes"]


def test_length_sorted_batches_cover_every_row_under_the_budget():
    from affectlab.inference import length_sorted_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 120, size=500)
    batches = length_sorted_batches(lengths, max_tokens=512, batch_size=32)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(500))
    for b in batches:
        assert len(b) <= 32 and (len(b) == 1 or len(b) * lengths[b].max() <= 512)
    flat = lengths[seen]
    assert (np.diff(flat) <= 0).all(), "longest first"
    assert length_sorted_batches([700, 3], max_tokens=512)[0].tolist() == [0]  # too long for the budget: alone


@pytest.fixture(scope="module")
def tiny_classifier(tiny_bert_dir):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    labels = ["joy", "anger", "sadness"]
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_dir, num_labels=3, problem_type="multi_label_classification",
        id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    model.config.label_thresholds = {"joy": 0.5, "anger": 0.48, "sadness": 0.52}
    return model.eval(), AutoTokenizer.from_pretrained(tiny_bert_dir)


def test_predictions_do_not_depend_on_batching(tiny_classifier):
    from affectlab.inference import TextClassifier

    model, tok = tiny_classifier
    reference = TextClassifier(model, tok, batch_size=1).predict_proba(TEXTS)
    for kwargs in ({}, {"max_tokens": 40, "batch_size": 4}, {"batch_size": 1000, "max_tokens": 100000}):
        np.testing.assert_allclose(TextClassifier(model, tok, **kwargs).predict_proba(TEXTS), reference, atol=1e-5)
    clf = TextClassifier(model, tok)
    assert clf.thresholds.tolist() == [0.5, 0.48, 0.52]
    assert clf.predict(TEXTS) == [[clf.labels[j] for j in np.flatnonzero(row >= clf.thresholds)] for row in reference]
    assert clf.predict([]) == [] and clf.predict_proba([]).shape == (0, 3)
    # pairs (NLI) go through the same batching
    pairs = ["a criterion"] * len(TEXTS)
    np.testing.assert_allclose(TextClassifier(model, tok, max_tokens=64).predict_proba(TEXTS, text_pairs=pairs),
                               TextClassifier(model, tok, batch_size=1).predict_proba(TEXTS, text_pairs=pairs),
                               atol=1e-5)


def _tokenized(tok):
    from datasets import Dataset

    rng = np.random.default_rng(1)
    rows = [TEXTS[i % len(TEXTS)] + " more" * int(rng.integers(0, 20)) for i in range(70)]
    y = rng.integers(0, 2, size=(70, 3)).astype(np.float32)
    enc = tok(rows, truncation=True, max_length=64)
    return Dataset.from_dict({"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"],
                              "attention_mask": enc["attention_mask"], "labels": y.tolist(),
                              "length": [len(x) for x in enc["input_ids"]]})


def _trainer(model, tok, ds, tmp_path, strategy, cls, seen, **kwargs):
    from transformers import DataCollatorWithPadding, TrainingArguments

    def compute_metrics(p):
        seen.append(p)
        logits = p.predictions
        # order-sensitive on purpose: the metric changes if rows come back permuted
        return {"first_rows": float(logits[:10].sum()), "weighted": float((logits.sum(-1) * np.arange(len(logits))).sum()),
                "agree": float(((logits > 0) == (p.label_ids > 0.5)).mean())}

    args = TrainingArguments(output_dir=str(tmp_path / strategy), per_device_eval_batch_size=16, report_to="none",
                             use_cpu=True, train_sampling_strategy=strategy, disable_tqdm=True)
    return cls(model=model, args=args, eval_dataset=ds, data_collator=DataCollatorWithPadding(tok),
               processing_class=tok, compute_metrics=compute_metrics, **kwargs)


def test_trainer_evaluates_length_sorted_and_returns_the_original_order(tiny_classifier, tmp_path):
    from transformers import Trainer

    from affectlab.losses import ClassificationLoss, LossConfig
    from affectlab.trainer import ClassificationTrainer

    model, tok = tiny_classifier
    ds = _tokenized(tok)
    widths = []
    hook = model.register_forward_pre_hook(lambda m, args, kwargs: widths.append(kwargs["input_ids"].shape),
                                           with_kwargs=True)
    try:
        seen_ref, seen = [], []
        reference = _trainer(model, tok, ds, tmp_path, "sequential", Trainer, seen_ref).predict(ds)
        ref_widths, widths[:] = list(widths), []
        for strategy in ("sequential", "group_by_length"):
            seen.clear()
            trainer = _trainer(model, tok, ds, tmp_path, strategy, ClassificationTrainer, seen,
                               loss_fn=ClassificationLoss(LossConfig("bce")))
            out = trainer.predict(ds)
            np.testing.assert_allclose(out.predictions, reference.predictions, atol=1e-5)
            np.testing.assert_array_equal(out.label_ids, reference.label_ids)
            for key in ("test_first_rows", "test_weighted", "test_agree"):
                assert out.metrics[key] == pytest.approx(reference.metrics[key], rel=1e-5, abs=1e-4), key
            np.testing.assert_allclose(seen[0].predictions, seen_ref[0].predictions, atol=1e-5)
            metrics = trainer.evaluate()
            assert metrics["eval_weighted"] == pytest.approx(reference.metrics["test_weighted"], rel=1e-5, abs=1e-4)
            # the batches really were length-sorted: less padding than sequential batches of the same size
            padded = sum(b * s for b, s in widths[:len(ref_widths)])
            assert padded < sum(b * s for b, s in ref_widths)
            assert [s for _, s in widths[:len(ref_widths)]] == sorted((s for _, s in widths[:len(ref_widths)]),
                                                                      reverse=True)
            widths.clear()
    finally:
        hook.remove()


DDP_SCRIPT = '''
import sys
import numpy as np, torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, TrainingArguments
from affectlab.losses import ClassificationLoss, LossConfig
from affectlab.trainer import ClassificationTrainer
model_dir, out = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(model_dir)
torch.manual_seed(0)
model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=3,
                                                           problem_type="multi_label_classification")
rng = np.random.default_rng(0)
rows = ["word " * int(rng.integers(1, 40)) + str(i) for i in range(101)]
enc = tok(rows, truncation=True, max_length=64)
ds = Dataset.from_dict({**dict(enc), "labels": np.eye(3)[np.arange(101) % 3].tolist(),
                        "length": [len(x) for x in enc["input_ids"]]})
args = TrainingArguments(output_dir=out + ".trainer", per_device_eval_batch_size=8, report_to="none", use_cpu=True,
                         disable_tqdm=True)
trainer = ClassificationTrainer(
    model=model, args=args, data_collator=DataCollatorWithPadding(tok), processing_class=tok,
    loss_fn=ClassificationLoss(LossConfig("bce")),
    compute_metrics=lambda p: {"order": float((p.label_ids.argmax(-1) * np.arange(len(p.label_ids))).sum())})
result = trainer.predict(ds)
if trainer.is_world_process_zero():
    np.save(out, result.predictions)
    print("ORDER", trainer.args.world_size, result.metrics["test_order"])
'''


def test_two_ranks_predict_in_the_original_order(tiny_bert_dir, tmp_path):
    """DDP (2 CPU processes): sharded length-sorted batches gathered back into the single-process order."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    script = tmp_path / "ddp_predict.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    accelerate = Path(sys.executable).with_name("accelerate")
    outputs = {}
    for name, cmd in (("one", [sys.executable, str(script)]),
                      ("two", [str(accelerate), "launch", "--config_file", str(repo / "accelerate_configs" / "cpu_ddp.yaml"),
                               str(script)])):
        out = tmp_path / f"{name}.npy"
        proc = subprocess.run([*cmd, str(tiny_bert_dir), str(out)], capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        line = next(x for x in proc.stdout.splitlines() if x.startswith("ORDER"))
        outputs[name] = (line.split()[1:], np.load(out))
    expected_order = float(((np.arange(101) % 3) * np.arange(101)).sum())
    assert outputs["one"][0] == ["1", str(expected_order)] and outputs["two"][0] == ["2", str(expected_order)]
    np.testing.assert_allclose(outputs["two"][1], outputs["one"][1], atol=1e-5)


def test_onednn_linears_give_the_stock_predictions_and_fall_back_for_small_inputs(tiny_classifier, tiny_bert_dir):
    import torch
    from transformers import AutoModelForSequenceClassification

    from affectlab.inference import TextClassifier, TorchBackend, onednn_by_default, use_onednn_linears

    model, tok = tiny_classifier
    texts = TEXTS * 12  # batches of more than ONEDNN_MIN_ROWS token rows take the oneDNN kernel
    stock = TextClassifier(model, tok).predict_proba(texts)
    assert TorchBackend(model).onednn_linears == 0  # a model passed in is left alone unless asked
    fresh = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=3,
                                                               problem_type="multi_label_classification")
    fresh.load_state_dict(model.state_dict())
    linears = sum(type(m) is torch.nn.Linear for m in fresh.modules())
    backend = TorchBackend(fresh, onednn=True)
    assert backend.onednn_linears == linears > 0
    assert not any(type(m) is torch.nn.Linear for m in fresh.modules())
    clf = TextClassifier(backend, tok, config=model.config)
    np.testing.assert_allclose(clf.predict_proba(texts), stock, atol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(texts[:1], batch_size=1), stock[:1], atol=1e-6)  # small: stock path
    with torch.enable_grad():  # training (gradients) takes the stock kernel on the same parameters
        layer = next(m for m in fresh.modules() if hasattr(m, "packed_weight"))
        x = torch.randn(80, layer.in_features, requires_grad=True)
        layer(x).sum().backward()
        assert x.grad is not None and layer.weight.grad is not None
    assert isinstance(onednn_by_default(), bool)
    assert use_onednn_linears(fresh) == 0  # nothing left to swap

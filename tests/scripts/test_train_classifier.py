"""scripts/train_classifier.py end to end: accelerate launch with 1 and 2 CPU processes (loss not
doubled under DDP), a real MiniLM fine-tune that beats its untrained F1, thresholds saved and applied
after reload, and a model card that parses and carries the eval results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "train_classifier.py"


def accelerate_bin() -> str:
    exe = Path(sys.executable).with_name("accelerate")
    return str(exe) if exe.exists() else "accelerate"


def launch(config: str, args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    cmd = [accelerate_bin(), "launch", "--config_file", str(REPO / "accelerate_configs" / config), str(SCRIPT), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="module")
def spread_tiny_bert(tmp_path_factory, minilm_path):
    """Tiny random BERT with large init, so the first loss depends on which rows are in the batch."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("spread_bert")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        initializer_range=0.5)
    BertModel(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(out)
    return out


def losses(run_dir: Path) -> tuple[int, list[float]]:
    results = json.loads((run_dir / "train_results.json").read_text())
    return results["world_size"], [h["loss"] for h in results["log_history"] if "loss" in h]


def test_two_cpu_ranks_log_the_same_loss_as_one_process(tmp_path, spread_tiny_bert):
    common = ["--config", str(REPO / "recipes" / "tiny_test.yaml"), "--model_name_or_path", str(spread_tiny_bert),
              "--max_steps", "3"]
    launch("cpu.yaml", [*common, "--output_dir", str(tmp_path / "one"), "--per_device_train_batch_size", "8"], tmp_path)
    two = launch("cpu_ddp.yaml", [*common, "--output_dir", str(tmp_path / "two"), "--per_device_train_batch_size", "4"], tmp_path)
    launch("cpu.yaml", [*common, "--output_dir", str(tmp_path / "half"), "--per_device_train_batch_size", "4"], tmp_path)
    ws1, one = losses(tmp_path / "one")
    ws2, two_losses = losses(tmp_path / "two")
    _, half = losses(tmp_path / "half")
    assert (ws1, ws2) == (1, 2), "the 2-process launch must really run two ranks"
    assert two.stdout.count("Per-label results on validation") == 1  # only rank 0 reports
    assert len(one) == len(two_losses) == 3
    # same global batch of 8 -> same loss (not doubled by average_tokens_across_devices), same updates after
    np.testing.assert_allclose(two_losses, one, rtol=2e-4)
    # and the comparison can fail: a batch of 4 on one process gives another first loss
    assert abs(half[0] - one[0]) > 1e-3


@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory, minilm_path):
    """A real MiniLM fine-tune on a few hundred GoEmotions rows (about a minute on 2 cores)."""
    out = tmp_path_factory.mktemp("minilm") / "run"
    launch("cpu.yaml", ["--config", str(REPO / "recipes" / "goemotions_minilm_demo.yaml"),
                        "--max_train_samples", "800", "--max_eval_samples", "400", "--num_train_epochs", "2",
                        "--learning_rate", "2e-4", "--max_length", "48", "--per_device_train_batch_size", "16",
                        "--output_dir", str(out)], out.parent)
    return out


def untrained_report(model_dir: str, texts, refs, thresholds):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from affectlab.inference import TextClassifier
    from affectlab.metrics import metric_module

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=28,
                                                               problem_type="multi_label_classification")
    probs = TextClassifier(model, AutoTokenizer.from_pretrained(model_dir)).predict_proba(texts)
    return metric_module("multilabel_f1").multilabel_report(probs, refs, thresholds=thresholds)


def test_minilm_beats_untrained_and_thresholds_apply_after_reload(minilm_run, minilm_path):
    from affectlab.data import multi_hot
    from affectlab.inference import TextClassifier
    from affectlab.metrics import metric_module
    from dataset_builders import build_dataset

    results = json.loads((minilm_run / "eval_results.json").read_text())
    val = build_dataset("goemotions")["validation"].select(range(400))
    refs = multi_hot(val["labels"], 28).astype(int)

    clf = TextClassifier.from_pretrained(str(minilm_run))
    saved = json.loads((minilm_run / "config.json").read_text())["label_thresholds"]
    assert set(saved) == set(clf.labels) and clf.thresholds.tolist() == [saved[n] for n in clf.labels]
    assert clf.thresholds.tolist() == [results["thresholds"][n] for n in clf.labels]
    assert len(set(clf.thresholds.tolist())) > 1, "thresholds are tuned per label"

    probs = clf.predict_proba(list(val["text"]))
    report = metric_module("multilabel_f1").multilabel_report(probs, refs, thresholds=clf.thresholds)
    assert report["macro_f1"] == pytest.approx(results["results"]["validation"]["macro_f1"], abs=1e-3)
    predicted = clf.predict(list(val["text"])[:20])
    assert predicted == [[clf.labels[j] for j in np.flatnonzero(row >= clf.thresholds)] for row in probs[:20]]

    before = untrained_report(minilm_path, list(val["text"]), refs, clf.thresholds)
    after = results["results"]["validation"]
    assert after["macro_f1"] > before["macro_f1"] + 0.05, (before["macro_f1"], after["macro_f1"])
    assert after["micro_f1"] > before["micro_f1"], (before["micro_f1"], after["micro_f1"])


def test_model_card_parses_and_carries_eval_results(minilm_run):
    from huggingface_hub import ModelCard

    card = ModelCard.load(minilm_run / "README.md")
    results = json.loads((minilm_run / "eval_results.json").read_text())["results"]
    assert card.data.pipeline_tag == "text-classification" and "affectlab" in card.data.tags
    by_name = {r.metric_name: r for r in card.data.eval_results}
    macro = by_name["Macro F1 (validation)"]
    assert macro.metric_value == pytest.approx(results["validation"]["macro_f1"], abs=1e-4)
    assert macro.dataset_split == "validation" and macro.task_type == "text-classification"
    assert "| admiration |" in card.text and "label_thresholds" in card.text
    for name in ("per_label_report_validation.csv", "report.txt", "model.safetensors", "tokenizer.json",
                 "gradient_health.jsonl", "train_results.json"):
        assert (minilm_run / name).is_file(), name
    assert not (minilm_run / ".final-staging").exists()

"""recipes/emobank_minilm_combined.yaml (EmoBank, the literature's protocol): its options parse, and a two-step
run of it (tiny BERT, a slice of the real data) trains on official train, scores official dev sentence by sentence
with Pearson r per dimension."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.stats import pearsonr

RECIPE = "recipes/emobank_minilm_combined.yaml"
GEMMA_RECIPE = "recipes/emobank_gemma3_270m_combined_cpu_lora.yaml"


def parse(repo_root, *extra, recipe=RECIPE):
    from affectlab.run import parse_task_args
    from affectlab.tasks.regression import RegressionTask

    return parse_task_args(RegressionTask, ["--config", str(repo_root / recipe), *extra])


def test_recipe_options(repo_root, tmp_path):
    script, training, model = parse(repo_root, "--output_dir", str(tmp_path / "o"))
    assert (script.dataset_name, script.dataset_config, script.persona_mode, script.split_strategy) == (
        "emobank", "combined", "non_personalized", "predefined")
    assert script.keep_personas is None and script.max_length == 128
    assert model.model_name_or_path == "default"
    assert training.num_train_epochs >= 3 and training.eval_strategy == "epoch" and training.seed == 1337
    assert 1e-5 <= training.learning_rate <= 1e-3
    text = (repo_root / RECIPE).read_text(encoding="utf-8")
    assert "tuned on dev" in text.lower()       # the protocol the numbers come from is stated in the recipe


def test_gemma_recipe_options(repo_root, tmp_path):
    script, training, model = parse(repo_root, "--output_dir", str(tmp_path / "o"), recipe=GEMMA_RECIPE)
    assert (script.dataset_config, script.persona_mode, script.encoder, script.pooling) == (
        "combined", "non_personalized", "bidirectional", "mean")
    assert model.model_name_or_path == "gemma-3-270m" and model.use_peft and not model.use_dora
    assert list(model.lora_target_modules) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert script.max_train_samples == 4000 and training.num_train_epochs == 1


def test_recipe_runs_on_official_splits(repo_root, tmp_path, tiny_bert_dir, data_root):
    from scripts.train_regression import main

    out = tmp_path / "run"
    script, training, model = parse(repo_root, "--output_dir", str(out), "--model_name_or_path", str(tiny_bert_dir),
                                    "--max_steps", "2", "--max_train_samples", "64", "--max_eval_samples", "40",
                                    "--eval_strategy", "no", "--print_report", "false")
    results = main(script, training, model)
    saved = json.loads((out / "eval_results.json").read_text())
    assert saved["split_strategy"] == "predefined" and saved["split_sizes"] == {"train": 64, "validation": 40}
    assert saved["personas"] == ["combined"]
    assert saved["dataset"]["absent_splits"] == ["test (official, 1,000 sentences, with its individual ratings)"]
    note = saved["dataset"]["split_notes"]["validation"]
    assert note.startswith("EmoBank's official dev split") and "tuned on it" in note   # the card says so too
    assert "tuned on it" in (out / "README.md").read_text(encoding="utf-8")
    preds = [json.loads(line) for line in (out / "predictions_validation.jsonl").read_text().splitlines()]
    with open(data_root / "emobank" / "emobank.csv", newline="", encoding="utf-8") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    ids = [p["id"].split("::")[0] for p in preds]
    assert len(set(ids)) == 40 and all(rows[i]["split"] == "dev" for i in ids)   # dev sentences, once each
    for dim in "VAD":
        gold = np.array([float(rows[i][dim]) for i in ids])
        np.testing.assert_allclose([p["labels"][dim] for p in preds], gold, atol=1e-6)
        r = pearsonr([p["predicted"][dim] for p in preds], gold).statistic
        assert results["validation"][f"pearson_{dim}"] == pytest.approx(r, abs=1e-4)

"""scripts/train_nli.py on tiny models: a tiny random BERT on the real ReDSM5 sample with 2-fold CV, and
a tiny random Gemma checkpoint wrapped as the bidirectional encoder; recipes parse."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("train_nli", REPO / "scripts" / "train_nli.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["train_nli"] = mod
    spec.loader.exec_module(mod)
    return mod


def args(mod, tmp_path, model, argv_extra=()):
    from transformers import TrainingArguments
    from trl import TrlParser

    from affectlab.configs import ModelArguments

    parser = TrlParser((mod.NLIScriptArguments, TrainingArguments, ModelArguments))
    argv = ["--config", str(REPO / "recipes" / "redsm5_nli_cpu.yaml"), "--model_name_or_path", str(model),
            "--output_dir", str(tmp_path / "out"), "--max_length", "64", "--num_train_epochs", "1",
            "--use_cpu", "true", *argv_extra]
    return parser.parse_args_and_config(argv)


def test_train_nli_cv_on_sample(tmp_path, tiny_bert_dir):
    mod = load_script()
    script_args, training_args, model_args = args(mod, tmp_path, tiny_bert_dir, ["--num_folds", "2", "--encoder", "none"])
    payload = mod.main(script_args, training_args, model_args)
    out = tmp_path / "out"
    saved = json.loads((out / "eval_results.json").read_text())
    assert saved["num_folds"] == 2 and len(saved["folds"]) == 2
    for fold in saved["folds"]:
        val = fold["validation"]
        assert 0 <= val["macro_f1"] <= 1 and val["num_examples"] % 9 == 0
        assert set(val["per_criterion_f1"]) == {"DEPRESSED_MOOD", "ANHEDONIA", "APPETITE_CHANGE", "SLEEP_ISSUES", "PSYCHOMOTOR",
                                                "FATIGUE", "WORTHLESSNESS", "COGNITIVE_ISSUES", "SUICIDAL_THOUGHTS"}
    vals = [f["validation"]["macro_f1"] for f in saved["folds"]]
    mean = sum(vals) / 2
    assert math.isclose(saved["summary"]["macro_f1"]["mean"], mean, abs_tol=1e-9)
    assert math.isclose(saved["summary"]["macro_f1"]["sd"], abs(vals[0] - vals[1]) / math.sqrt(2), abs_tol=1e-9)
    w = saved["class_weights"]
    assert w[1] > 1 > w[0]  # "present" is the rare class
    assert (out / "per_criterion_f1.csv").is_file() and (out / "model.safetensors").is_file()
    assert payload["summary"] == saved["summary"]


def test_per_criterion_f1_and_binary_metrics():
    import numpy as np

    mod = load_script()
    pred = np.array([1, 0, 1, 1, 0, 0])
    labels = np.array([1, 1, 0, 1, 0, 0])
    symptoms = np.array([0, 0, 0, 1, 1, 2])
    f1 = mod.per_criterion_f1(pred, labels, symptoms, ["A", "B", "C"])
    assert f1 == {"A": 0.5, "B": 1.0, "C": None}  # A: tp1 fp1 fn1; C has no positives at all
    m = mod.binary_metrics(np.eye(2)[pred], labels)
    assert m["accuracy"] == pytest.approx(4 / 6) and m["f1_present"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert m["macro_f1"] == pytest.approx((m["f1_present"] + 2 * 2 / (2 * 2 + 1 + 1)) / 2)


def test_train_nli_wraps_gemma_checkpoint_as_bidirectional_encoder(tmp_path):
    from tests.custom_models.test_gemma_encoder import tiny_text_config, tiny_tokenizer
    from transformers import GemmaForCausalLM

    torch.manual_seed(0)
    ckpt = tmp_path / "tiny_gemma"
    text = tiny_text_config("gemma", vocab_size=64)
    GemmaForCausalLM(text).save_pretrained(ckpt)
    tok = tiny_tokenizer()
    assert len(tok) <= 64
    tok.save_pretrained(ckpt)
    mod = load_script()
    script_args, training_args, model_args = args(mod, tmp_path, ckpt, ["--max_train_samples", "45", "--encoder", "bidirectional", "--pooling", "mean"])
    mod.main(script_args, training_args, model_args)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["model_type"] == "gemma_encoder" and config["bidirectional"] is True
    assert config["auto_map"]["AutoModelForSequenceClassification"].endswith("GemmaEncoderForSequenceClassification")
    assert (tmp_path / "out" / "modeling_gemma_encoder.py").is_file()


@pytest.mark.parametrize("recipe", ["redsm5_nli_cpu.yaml", "redsm5_nli_gemma3_1b.yaml", "redsm5_nli_gemma3_4b.yaml"])
def test_recipes_parse(recipe):
    from transformers import TrainingArguments
    from trl import TrlParser

    from affectlab.configs import ModelArguments

    mod = load_script()
    parser = TrlParser((mod.NLIScriptArguments, TrainingArguments, ModelArguments))
    script_args, training_args, model_args = parser.parse_args_and_config(
        ["--config", str(REPO / "recipes" / recipe), "--use_cpu", "true", "--bf16", "false"])
    assert training_args.metric_for_best_model == "macro_f1" and training_args.greater_is_better
    assert training_args.seed == 1337
    if "gemma3" in recipe:
        assert model_args.model_name_or_path.startswith("google/gemma-3-") and model_args.use_dora
        assert training_args.gradient_checkpointing and model_args.dtype == "bfloat16"


def test_gemma_memory_estimate_table(capsys):
    spec = importlib.util.spec_from_file_location("gemma_memory_estimate", REPO / "scripts" / "gemma_memory_estimate.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gemma_memory_estimate"] = mod
    spec.loader.exec_module(mod)
    rows = mod.main(["--models", "1B", "4B", "12B"])
    by = {(r["model"], r["method"]): r for r in rows}
    assert by[("1B", "full")]["params_B"] == pytest.approx(1.0, abs=0.01)   # Gemma 3 1B has ~1.0e9 parameters
    assert by[("4B", "full")]["params_B"] == pytest.approx(3.88, abs=0.05)  # 4B text part (no vision tower)
    assert by[("12B", "full")]["params_B"] == pytest.approx(11.77, abs=0.1)
    for size in ("1B", "4B", "12B"):
        full, lora, dora, q = (by[(size, m)] for m in ("full", "lora", "dora", "qlora-dora"))
        assert full["total_GiB"] > lora["total_GiB"] > q["total_GiB"]
        assert dora["trainable_M"] > lora["trainable_M"] and lora["trainable_M"] < 0.01 * full["trainable_M"]
        assert full["optimizer_GiB"] == pytest.approx(full["params_B"] * 1e9 * 12 / 1024 ** 3)
    assert "12B" in capsys.readouterr().out

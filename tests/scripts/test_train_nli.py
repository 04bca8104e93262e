"""scripts/train_nli.py on tiny models: a tiny random BERT on the real ReDSM5 sample with 2-fold CV, and
a tiny random Gemma checkpoint trained as the bidirectional encoder (the folder reloads in a fresh process
with trust_remote_code); --use_peft trains only adapter + head; --load_in_4bit is refused on a CPU; recipes parse."""

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
    from affectlab.run import parse_task_args

    argv = ["--config", str(REPO / "recipes" / "redsm5_nli_cpu.yaml"), "--model_name_or_path", str(model),
            "--output_dir", str(tmp_path / "out"), "--max_length", "64", "--num_train_epochs", "1",
            "--use_cpu", "true", *argv_extra]
    return parse_task_args(mod.NLITask, argv)


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


@pytest.fixture(scope="module")
def gemma_run(tmp_path_factory):
    """A tiny random Gemma checkpoint (Gemma LM + word-level tokenizer) trained as the bidirectional encoder."""
    from tests.custom_models.test_gemma_encoder import tiny_text_config, tiny_tokenizer
    from transformers import GemmaForCausalLM

    tmp_path = tmp_path_factory.mktemp("gemma_nli")
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
    return tmp_path


def test_train_nli_wraps_gemma_checkpoint_as_bidirectional_encoder(gemma_run):
    tmp_path = gemma_run
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["model_type"] == "gemma_encoder" and config["bidirectional"] is True
    assert config["auto_map"]["AutoModelForSequenceClassification"].endswith("GemmaEncoderForSequenceClassification")
    assert (tmp_path / "out" / "modeling_gemma_encoder.py").is_file()


def test_gemma_encoder_folder_reloads_in_fresh_process(gemma_run, tmp_path):
    """The saved folder is self-contained: no encoder_init link farm, no symlink, and a fresh process without
    this repository on its path loads it with trust_remote_code to the same logits as the local classes."""
    import os
    import subprocess
    import textwrap

    import numpy as np

    from custom_models.gemma_encoder import GemmaEncoderForSequenceClassification

    out = gemma_run / "out"
    assert not (out / "encoder_init").exists()
    assert not [p for p in out.rglob("*") if p.is_symlink()]
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"]["AutoConfig"].endswith("GemmaEncoderConfig") and config["pooling"] == "mean"
    assert (out / "configuration_gemma_encoder.py").is_file() and (out / "model.safetensors").is_file()
    posts = ["i feel tired and sad every day", "happy calm today"]
    criteria = ["sleep badly", "nothing matters"]
    script = textwrap.dedent(f"""
        import json, sys, numpy as np, torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        path = {str(out)!r}
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True).eval()
        assert "custom_models" not in sys.modules
        enc = tok({posts!r}, {criteria!r}, padding=True, return_tensors="pt")
        with torch.no_grad():
            np.save({str(tmp_path / "logits.npy")!r}, model(**enc).logits.numpy())
        print(json.dumps({{"model": type(model).__module__ + "." + type(model).__name__,
                          "bidirectional": model.config.bidirectional}}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    info = json.loads(last[last.index("{"):])
    assert info["model"].startswith("transformers_modules.") and info["model"].endswith("GemmaEncoderForSequenceClassification")
    assert info["bidirectional"] is True

    from transformers import AutoTokenizer

    local = GemmaEncoderForSequenceClassification.from_pretrained(out).eval()
    enc = AutoTokenizer.from_pretrained(out)(posts, criteria, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = local(**enc).logits.numpy()
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected, rtol=1e-5, atol=1e-6)


def test_use_peft_trains_only_adapter_and_head(tmp_path, tiny_bert_dir):
    """--use_peft true on the tiny BERT: the saved adapter holds LoRA matrices on the attention projections and
    the head (classifier + pooler) in full, nothing else; no full model is written."""
    from safetensors import safe_open

    mod = load_script()
    script_args, training_args, model_args = args(mod, tmp_path, tiny_bert_dir, ["--use_peft", "true", "--encoder", "none"])
    payload = mod.main(script_args, training_args, model_args)
    out = tmp_path / "out"
    assert payload["model"]["method"] == "lora"
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as fh:
        keys = sorted(fh.keys())
    lora = [k for k in keys if ".lora_A." in k or ".lora_B." in k]
    head = [k for k in keys if ".classifier." in k or ".pooler." in k]
    assert lora and head and sorted(lora + head) == keys, keys
    assert {k.split(".lora_")[0].rsplit(".", 1)[-1] for k in lora} == {"query", "key", "value"}
    assert {"base_model.model.classifier.weight", "base_model.model.bert.pooler.dense.weight"} <= set(head)
    config = json.loads((out / "config.json").read_text())  # the base config the adapter is loaded onto
    assert config["id2label"] == {"0": "absent", "1": "present"}


def test_load_in_4bit_is_refused_on_cpu(tmp_path, tiny_bert_dir):
    import os
    import subprocess

    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "train_nli.py"), "--config",
                           str(REPO / "recipes" / "redsm5_nli_cpu.yaml"), "--model_name_or_path", str(tiny_bert_dir),
                           "--output_dir", str(out), "--load_in_4bit", "true", "--use_peft", "true"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --load_in_4bit"), proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("recipe", ["redsm5_nli_cpu.yaml", "redsm5_nli_gemma3_1b.yaml", "redsm5_nli_gemma3_4b.yaml"])
def test_recipes_parse(recipe):
    from trl import TrlParser

    mod = load_script()
    parser = TrlParser(mod.NLITask.dataclass_types())
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

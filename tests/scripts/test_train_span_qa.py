"""scripts/train_span_qa.py (the span-qa family, affectlab.tasks.span_qa) with a tiny random BERT: a run on the
real ReDSM5 sample, a 2-trial Optuna search on SYNTHETIC data with the best trial retrained, a LoRA run that
trains only the adapter and the QA head, the 4-bit refusal on CPU, no dataset cache in output_dir, recipes parse."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from affectlab.tasks import span_qa as family

REPO = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("train_span_qa", REPO / "scripts" / "train_span_qa.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["train_span_qa"] = mod
    spec.loader.exec_module(mod)
    return mod


def parse(mod, argv):
    from affectlab.run import parse_task_args
    from affectlab.tasks.span_qa import SpanQATask

    return parse_task_args(SpanQATask, argv)


def tiny_argv(tmp_path, model, *extra):
    return ["--config", str(REPO / "recipes" / "span_qa_minilm_cpu.yaml"), "--model_name_or_path", str(model),
            "--output_dir", str(tmp_path / "out"), "--max_length", "96", "--doc_stride", "24", "--num_train_epochs", "1",
            "--per_device_train_batch_size", "16", "--use_cpu", "true", "--dataloader_num_workers", "0",
            "--results_location", str(tmp_path / "results"), *extra]


def assert_no_dataset_cache(out: Path):
    """No dataset (arrow files, a datasets cache, the synthetic corpus) was written under output_dir."""
    assert not list(out.rglob("*.arrow")), list(out.rglob("*.arrow"))
    assert not [p for p in out.rglob("*") if p.is_dir() and ("cache" in p.name or p.name == "synthetic_data")]
    assert not list(out.rglob("dataset_info.json")) and not list(out.rglob("redsm5_*.csv"))


def test_train_on_sample(tmp_path, tiny_bert_dir):
    mod = load_script()
    payload = mod.main(*parse(mod, tiny_argv(tmp_path, tiny_bert_dir)))
    out = tmp_path / "out"
    saved = json.loads((out / "eval_results.json").read_text())
    assert saved["results"] == json.loads(json.dumps(payload["results"]))
    # the sample: 17 posts x 9 criteria; 21 positive annotations, alignment counted for every one of them
    assert sum(saved["alignment"].values()) == 21 and len(saved["unaligned"]) == saved["alignment"]["unaligned"]
    assert saved["num_examples"]["validation"] == 5 * 9 and saved["num_examples"]["test"] == 2 * 9
    for split in ("validation", "test"):
        m = saved["results"][split]
        assert m["total"] == saved["num_examples"][split]
        assert 0 <= m["exact"] <= m["f1"] <= 100 and 0 <= m["sentence_f1"] <= 100
        preds = [json.loads(line) for line in (out / f"predictions_{split}.jsonl").read_text().splitlines()]
        assert len(preds) == m["total"] and all(len(p["spans"]) <= 3 for p in preds)
        # NoAns exact is the share of no-answer examples predicted empty: recompute it from the file
        no_ans = [p for p in preds if p["id"] in _no_answer_ids(mod, split)]
        if no_ans:
            assert m["NoAns_exact"] == pytest.approx(100 * sum(p["prediction_text"] == "" for p in no_ans) / len(no_ans))
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "affectlab_span_qa" and config["auto_map"]["AutoModelForQuestionAnswering"]
    assert (out / "modeling_span_qa.py").is_file() and (out / "model.safetensors").is_file()
    # the typed schema, one result record per evaluated split with per-example scores (no text)
    from affectlab.eval_results import validate_eval_results

    validate_eval_results(saved)
    assert saved["family"] == "span-qa" and saved["dataset"]["redistributable"] is False
    assert all("sentence_text" not in u for u in saved["unaligned"])
    records = sorted((tmp_path / "results").rglob("results_*.json"))
    assert len(records) == 2
    for path in records:
        text = path.read_text()
        record = json.loads(text)
        split = record["dataset"]["split"]
        scores = record["predictions"]["scores"]
        assert set(record["predictions"]) == {"scores"} and set(scores) == {"exact", "f1"}
        assert len(scores["f1"]) == saved["num_examples"][split]
        assert sum(scores["f1"]) / len(scores["f1"]) == pytest.approx(saved["results"][split]["f1"])
        assert "prediction_text" not in text and "context" not in text
    assert_no_dataset_cache(out)


def _no_answer_ids(mod, split):
    from dataset_builders.redsm5.redsm5 import ReDSM5

    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        b = ReDSM5(config_name="evidence", data_dir=str(REPO.parent / "shared" / "data" / "redsm5_sample"), cache_dir=cache)
        b.download_and_prepare()
        return {ex["id"] for ex in b.as_dataset(split=split) if not ex["evidence"]}


def test_optuna_search_on_synthetic_then_best_retrained(tmp_path, tiny_bert_dir):
    mod = load_script()
    argv = tiny_argv(tmp_path, tiny_bert_dir, "--synthetic_posts", "40", "--max_negatives_per_positive", "0.5",
                     "--max_eval_samples", "36", "--hp_search_trials", "2", "--hp_epochs", "1,1", "--hp_batch_sizes", "16,32",
                     "--hp_max_lengths", "64,96", "--hp_doc_strides", "16,24", "--save_strategy", "no",
                     "--load_best_model_at_end", "false")
    payload = mod.main(*parse(mod, argv))
    out = tmp_path / "out"
    search = json.loads((out / "hp_search.json").read_text())
    assert len(search["trials"]) == 2 and all(t["state"] == "COMPLETE" for t in search["trials"])
    best = max(search["trials"], key=lambda t: t["f1"])
    assert search["best_f1"] == pytest.approx(best["f1"]) and search["best_params"]["max_length"] == best["max_length"]
    for t in search["trials"]:
        assert t["max_length"] in (64, 96) and t["doc_stride"] in (16, 24) and t["per_device_train_batch_size"] in (16, 32)
        assert 2e-5 <= t["learning_rate"] <= 2e-4 and 0 <= t["warmup_steps"] <= 0.2
    with open(out / "hp_trials.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 2
    import yaml

    best_cfg = yaml.safe_load((out / "best_config.yaml").read_text())
    assert best_cfg["max_length"] == best["max_length"] and best_cfg["doc_stride"] == best["doc_stride"]
    assert best_cfg["learning_rate"] == pytest.approx(best["learning_rate"])
    # the retrained model used the best trial's windows
    assert payload["max_length"] == best["max_length"] and payload["doc_stride"] == best["doc_stride"]
    # the synthetic corpus lives in the datasets cache, never in output_dir
    synthetic_dir = family.synthetic_data_dir(40, 1337)
    assert payload["synthetic"] and (synthetic_dir / "README.md").read_text().startswith("# SYNTHETIC")
    assert payload["dataset"]["synthetic"] and not (out / "synthetic_data").exists()
    assert_no_dataset_cache(out)
    assert payload["alignment"]["exact"] > 0 and payload["alignment"]["unaligned"] == 0  # synthetic evidence is verbatim
    assert payload["results"]["validation"]["total"] <= 36


def test_trainer_hp_space_and_errors():
    import optuna

    args = family.SpanQAArguments(hp_max_lengths="128", hp_doc_strides="32", hp_epochs="2,2")
    trial = optuna.trial.FixedTrial({"learning_rate": 3e-5, "per_device_train_batch_size": 8, "num_train_epochs": 2,
                                     "warmup_steps": 0.1, "doc_stride": 32, "max_length": 128})
    space = family.make_hp_space(args)(trial)
    assert space == {"learning_rate": 3e-5, "per_device_train_batch_size": 8, "num_train_epochs": 2, "warmup_steps": 0.1,
                     "doc_stride": 32, "max_length": 128}


@pytest.mark.parametrize("recipe", ["span_qa_minilm_cpu.yaml", "span_qa_spanbert_gpu.yaml"])
def test_recipes_parse(recipe):
    mod = load_script()
    script_args, training_args, model_args = parse(mod, ["--config", str(REPO / "recipes" / recipe), "--use_cpu", "true",
                                                         "--bf16", "false"])
    assert training_args.metric_for_best_model == "f1" and training_args.greater_is_better
    assert training_args.seed == 1337 and script_args.doc_stride < script_args.max_length
    if "spanbert" in recipe:
        assert model_args.model_name_or_path == "SpanBERT/spanbert-base-cased" and script_args.max_length == 384


def test_hp_space_errors():
    from affectlab.errors import ArgumentError
    from affectlab.tasks.span_qa import SpanQAArguments

    for bad in ({"hp_learning_rate": "1e-4"}, {"hp_epochs": "3,1"}, {"hp_batch_sizes": ""}, {"doc_stride": 400},
                {"dataset_name": "goemotions"}, {"dataset_config": "nli"}, {"synthetic_posts": 10, "dataset_data_dir": "x"},
                {"hp_search_trials": 2, "hp_max_lengths": "64", "hp_doc_strides": "64"}):
        with pytest.raises(ArgumentError):
            SpanQAArguments(**bad)
    assert SpanQAArguments().max_length == 384 and SpanQAArguments().dataset_config == "evidence"


def test_peft_trains_only_adapter_and_head(tmp_path, tiny_bert_dir):
    from safetensors import safe_open

    from affectlab.models import trainable_parameter_names

    mod = load_script()
    argv = tiny_argv(tmp_path, tiny_bert_dir, "--use_peft", "true", "--lora_r", "4", "--lora_alpha", "8",
                     "--max_eval_samples", "9", "--save_strategy", "no", "--load_best_model_at_end", "false")
    task = family.SpanQATask(*parse(mod, argv))
    task.load_tokenizer()
    model = task.model_init()
    names = trainable_parameter_names(model)
    assert any("lora_" in n for n in names) and any("qa_outputs" in n for n in names)
    assert all("lora_" in n or ".qa_outputs." in n for n in names), [n for n in names if "lora_" not in n][:5]
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert any("encoder.embeddings" in n for n in frozen) and any(".query.base_layer." in n for n in frozen)

    payload = mod.main(*parse(mod, argv))
    out = tmp_path / "out"
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as fh:
        keys = list(fh.keys())
    assert keys and all("lora_" in k or "qa_outputs" in k for k in keys), keys
    assert any("qa_outputs" in k for k in keys) and not (out / "model.safetensors").exists()
    assert payload["model"]["method"] == "lora" and json.loads((out / "adapter_config.json").read_text())["task_type"] == "QUESTION_ANS"
    assert_no_dataset_cache(out)


def test_4bit_refused_on_cpu(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "train_span_qa.py"), "--config",
                           str(REPO / "recipes" / "span_qa_minilm_cpu.yaml"), "--load_in_4bit", "true",
                           "--output_dir", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --load_in_4bit"), proc.stderr
    assert not out.exists()

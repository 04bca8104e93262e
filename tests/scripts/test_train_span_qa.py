"""scripts/train_span_qa.py with a tiny random BERT: a run on the real ReDSM5 sample, a 2-trial Optuna
search on SYNTHETIC data with the best trial retrained, recipes parse."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("train_span_qa", REPO / "scripts" / "train_span_qa.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["train_span_qa"] = mod
    spec.loader.exec_module(mod)
    return mod


def parse(mod, argv):
    from transformers import TrainingArguments
    from trl import TrlParser

    from affectlab.configs import ModelArguments

    return TrlParser((mod.SpanQAScriptArguments, TrainingArguments, ModelArguments)).parse_args_and_config(argv)


def tiny_argv(tmp_path, model, *extra):
    return ["--config", str(REPO / "recipes" / "span_qa_minilm_cpu.yaml"), "--model_name_or_path", str(model),
            "--output_dir", str(tmp_path / "out"), "--max_length", "96", "--doc_stride", "24", "--num_train_epochs", "1",
            "--per_device_train_batch_size", "16", "--use_cpu", "true", "--dataloader_num_workers", "0", *extra]


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
    assert payload["synthetic"] and (out / "synthetic_data" / "README.md").read_text().startswith("# SYNTHETIC")
    assert payload["alignment"]["exact"] > 0 and payload["alignment"]["unaligned"] == 0  # synthetic evidence is verbatim
    assert payload["results"]["validation"]["total"] <= 36


def test_trainer_hp_space_and_errors():
    mod = load_script()
    import optuna

    args = mod.SpanQAScriptArguments(hp_max_lengths="128", hp_doc_strides="32", hp_epochs="2,2")
    trial = optuna.trial.FixedTrial({"learning_rate": 3e-5, "per_device_train_batch_size": 8, "num_train_epochs": 2,
                                     "warmup_steps": 0.1, "doc_stride": 32, "max_length": 128})
    space = mod.make_hp_space(args)(trial)
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

"""Pushes are an allow-list: exactly the model, tokenizer, code, card and eval summary leave the machine;
anything else only when named; predictions only when asked and never for non-redistributable data."""

from __future__ import annotations

import json

import pytest

from affectlab.hub import HubError, files_to_push

RUN_FILES = {
    "config.json": "{}", "model.safetensors": "w", "tokenizer.json": "{}", "tokenizer_config.json": "{}",
    "special_tokens_map.json": "{}", "vocab.txt": "a", "README.md": "card", ".eval_results/goemotions.yaml": "- x",
    "modeling_span_qa.py": "code", "configuration_span_qa.py": "code",
    # never by default:
    "training_args.bin": "args", "train_results.json": "{}", "gradient_health.jsonl": "{}", "report.txt": "r",
    "per_label_report_validation.csv": "c", "predictions_validation.jsonl": '{"text": "a post"}',
    "generations_finetuned.jsonl": "g", "hub_push.json": "{}", "notes.txt": "n",
    "hf_cache/redsm5/default/0.0.0/abc/redsm5-train.arrow": "posts", "checkpoint-10/model.safetensors": "w",
    "runs/events.out.tfevents": "e", ".final-staging/model.safetensors": "w", "synthetic_data/posts.csv": "p",
}


def make_run(tmp_path, redistributable=True):
    run = tmp_path / "run"
    for rel, text in RUN_FILES.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text(text)
    (run / "eval_results.json").write_text(json.dumps({"dataset": {"name": "redsm5", "redistributable": redistributable}}))
    return run


def test_only_the_allow_list_goes(tmp_path):
    run = make_run(tmp_path)
    files = files_to_push(run, code_files=["modeling_span_qa.py", "configuration_span_qa.py"])
    assert files == sorted([".eval_results/goemotions.yaml", "README.md", "config.json", "configuration_span_qa.py",
                            "eval_results.json", "model.safetensors", "modeling_span_qa.py", "special_tokens_map.json",
                            "tokenizer.json", "tokenizer_config.json", "vocab.txt"])


def test_extra_files_go_only_when_named(tmp_path):
    run = make_run(tmp_path)
    files = files_to_push(run, extra=["notes.txt", "per_label_report_*.csv"])
    assert "notes.txt" in files and "per_label_report_validation.csv" in files and "report.txt" not in files


def test_predictions_only_when_asked_and_allowed(tmp_path):
    ok = make_run(tmp_path / "a", redistributable=True)
    assert "predictions_validation.jsonl" not in files_to_push(ok)
    assert {"predictions_validation.jsonl", "generations_finetuned.jsonl"} <= set(files_to_push(ok, predictions=True))
    refused = make_run(tmp_path / "b", redistributable=False)
    with pytest.raises(HubError, match="forbids redistribution"):
        files_to_push(refused, predictions=True)

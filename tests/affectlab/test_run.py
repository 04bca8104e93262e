"""The run life-cycle (affectlab.run) through the classifier family and the `affectlab` command: the typed
eval_results.json, the card, one result record per split, refusals as one line with exit code 2 (nothing
written), the output-folder guard, the token kept off disk, PEFT training only adapter + head."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "recipes" / "tiny_test.yaml"


def affectlab(*args, cwd: Path, env_extra: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", **(env_extra or {})}
    cmd = [sys.executable, "-m", "affectlab.cli", *[str(a) for a in args]]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def tiny_args(model: Path, out: Path, *extra) -> list:
    return ["train", "classifier", "--config", TINY, "--model_name_or_path", model, "--output_dir", out, *extra]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_bert_dir):
    root = tmp_path_factory.mktemp("run")
    out, results = root / "out", root / "results"
    proc = affectlab(*tiny_args(tiny_bert_dir, out, "--results_location", results, "--hub_token", "hf_SECRETtoken123456"),
                     cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, results, proc


def test_eval_results_follow_the_one_schema(tiny_run):
    from affectlab.eval_results import EVAL_RESULTS_SCHEMA, validate_eval_results

    out, _, _ = tiny_run
    payload = validate_eval_results(json.loads((out / "eval_results.json").read_text()))
    assert payload["schema"] == EVAL_RESULTS_SCHEMA and payload["family"] == "classifier"
    assert payload["task"]["primary_metric"] == "macro_f1" and payload["task"]["higher_is_better"] is True
    assert payload["dataset"]["name"] == "goemotions" and payload["dataset"]["hub_id"]
    val = payload["splits"]["validation"]
    assert val["num_examples"] == 32 and val["fingerprint"].startswith("sha256:") and val["fingerprint"].endswith(":32")
    assert payload["results"]["validation"]["num_examples"] == 32
    assert payload["model"]["method"] == "full" and payload["seed"] == 1337
    assert len(payload["thresholds"]) == 28  # the family's own entry


def test_card_parses_with_model_index_and_shared_sections(tiny_run):
    from huggingface_hub import ModelCard

    out, _, _ = tiny_run
    card = ModelCard.load(out / "README.md")
    payload = json.loads((out / "eval_results.json").read_text())
    results = {(r.dataset_split, r.metric_config): r.metric_value for r in card.data.eval_results}
    assert results[("validation", "macro_f1")] == pytest.approx(payload["results"]["validation"]["macro_f1"], abs=1e-4)
    for section in ("## Intended use", "## Out-of-scope use", "## Limitations and biases",
                    "## Training data and split protocol", "### Framework versions"):
        assert section in card.text, section
    assert "transformers" in card.text and card.data.datasets == ["google-research-datasets/go_emotions"]
    assert card.data.license == "cc-by-4.0" and card.data.language == ["en"]  # GoEmotions' licence, not a default
    assert card.data.widget and all(w["text"] for w in card.data.widget)      # our own example sentences
    assert "Not available here, so no number on this card comes from it: test (official" in card.text


def test_most_restrictive_licence_wins():
    from affectlab.cards import most_restrictive_license

    assert most_restrictive_license(["apache-2.0", "cc-by-4.0"]) == "cc-by-4.0"
    assert most_restrictive_license(["cc-by-4.0", "cc-by-sa-4.0", "apache-2.0"]) == "cc-by-sa-4.0"
    assert most_restrictive_license(["cc-by-4.0", "some-custom-terms"]) == "other"
    assert most_restrictive_license([None, None]) == "other"


def test_one_result_record_per_split_without_text(tiny_run):
    from affectlab.results import load_results

    out, results, proc = tiny_run
    records = load_results(results)
    assert [r["dataset"]["split"] for r in records] == ["validation"]
    rec = records[0]
    assert rec["model"]["repo_id"] == f"local/{out.name}" and rec["task"]["family"] == "classifier"
    assert rec["dataset"]["fingerprint"] == json.loads((out / "eval_results.json").read_text())["splits"]["validation"]["fingerprint"]
    assert len(rec["predictions"]["y_true"]) == len(rec["predictions"]["y_pred"]) == 32
    from dataset_builders import build_dataset

    texts = build_dataset("goemotions")["validation"].select(range(32))["text"]
    blob = json.dumps(rec)
    assert not [t for t in texts if len(t) > 20 and t in blob], "dataset text leaked into a result record"


def test_token_never_written(tiny_run):
    out, results, proc = tiny_run
    token = "hf_SECRETtoken123456"
    assert token not in proc.stdout + proc.stderr
    for root in (out, results):
        for path in Path(root).rglob("*"):
            if path.is_file():
                assert token.encode() not in path.read_bytes(), path


def test_non_empty_output_dir_is_refused_then_overwritten(tiny_run, tiny_bert_dir, tmp_path):
    out, _, _ = tiny_run
    before = sorted(p.name for p in out.iterdir())
    proc = affectlab(*tiny_args(tiny_bert_dir, out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: --output_dir")
    assert sorted(p.name for p in out.iterdir()) == before
    stale = out / "hub_push.json"
    stale.write_text("{}")
    proc = affectlab(*tiny_args(tiny_bert_dir, out, "--overwrite_output_dir", "true", "--results_location",
                                tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not stale.exists() and (out / "eval_results.json").is_file()


@pytest.mark.parametrize("flags,fragment", [
    (["--load_in_4bit", "true", "--use_peft", "true"], "error: --load_in_4bit"),
    (["--use_dora", "true"], "error: --use_dora"),
    (["--dtype", "bfloat16"], "error: --dtype"),
    (["--max_length", "0"], "error: --max_length"),
    (["--resume_from_checkpoint", "true"], "error: --resume_from_checkpoint"),
])
def test_refusals_are_one_line_exit_2_and_write_nothing(tiny_bert_dir, tmp_path, flags, fragment):
    out = tmp_path / "never"
    proc = affectlab(*tiny_args(tiny_bert_dir, out, *flags), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith(fragment), proc.stderr
    assert not out.exists()


def test_missing_model_is_one_line_before_any_data(tmp_path):
    proc = affectlab("train", "classifier", "--config", TINY, "--model_name_or_path", tmp_path / "no_such_model",
                     "--output_dir", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --model_name_or_path")
    assert proc.stderr.strip().count("\n") == 0 and not (tmp_path / "out").exists()


def test_use_peft_trains_only_adapter_and_head(tiny_bert_dir, tmp_path):
    from affectlab.run import parse_task_args, run_task
    from affectlab.tasks.classification import ClassifierTask

    seen = {}

    class Spy(ClassifierTask):
        def build_trainer(self, model, tokenizer, data):
            seen["trainable"] = [n for n, p in model.named_parameters() if p.requires_grad]
            seen["frozen"] = [n for n, p in model.named_parameters() if not p.requires_grad]
            return super().build_trainer(model, tokenizer, data)

    args = parse_task_args(Spy, ["--config", str(TINY), "--model_name_or_path", str(tiny_bert_dir), "--output_dir",
                                 str(tmp_path / "out"), "--use_peft", "true", "--lora_r", "4",
                                 "--results_location", str(tmp_path / "r")])
    run_task(Spy, *args)
    trainable = seen["trainable"]
    # the adapter, and the head: the classifier and BERT's pooler (which feeds it) are trained in full
    assert trainable and all("lora_" in n or ".classifier." in n or ".pooler." in n for n in trainable), trainable
    assert any("lora_A" in n for n in trainable) and any("classifier" in n for n in trainable)
    assert any("encoder.layer.0.attention.self.query.base_layer.weight" in n for n in seen["frozen"])
    saved = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "adapter_model.safetensors" in saved and "adapter_config.json" in saved and "model.safetensors" not in saved
    cfg = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert set(cfg["target_modules"]) == {"query", "key", "value"} and "classifier" in cfg["modules_to_save"]
    assert json.loads((tmp_path / "out" / "eval_results.json").read_text())["model"]["method"] == "lora"


def test_default_lora_targets_follow_the_architecture():
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model, LlamaConfig, LlamaModel

    from affectlab.models import default_lora_targets

    bert = BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    llama = LlamaModel(LlamaConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                   vocab_size=50))
    gpt2 = GPT2Model(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50))
    assert default_lora_targets(bert) == ["query", "key", "value"]
    assert default_lora_targets(llama) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert default_lora_targets(gpt2) == ["c_attn"]


def test_eval_results_validation_rejects_bad_payloads():
    from affectlab.eval_results import EvalResultsError, validate_eval_results

    good = {"schema": "affectlab.eval_results/1", "family": "x", "details": {}, "model": {}, "seed": 1,
            "task": {"name": "t", "type": "text-classification", "primary_metric": "macro_f1", "higher_is_better": True},
            "dataset": {"name": "d"}, "splits": {"validation": {"num_examples": 3}},
            "results": {"validation": {"macro_f1": 0.5, "num_examples": 3}}}
    validate_eval_results(good)
    for broken in ({"results": {"validation": {"macro_f1": float("nan")}}},
                   {"results": {"validation": {"macro_f1": 0.5, "made_up_metric": 1.0}}},
                   {"results": {"test": {"macro_f1": 0.5}}},
                   {"schema": "other/1"}):
        with pytest.raises(EvalResultsError):
            validate_eval_results({**good, **broken})


def test_pipeline_applies_the_tuned_thresholds_like_textclassifier(tiny_run):
    from transformers import pipeline

    from affectlab.hub import files_to_push
    from affectlab.inference import TextClassifier
    from dataset_builders import build_dataset

    out, _, _ = tiny_run
    config = json.loads((out / "config.json").read_text())
    assert config["custom_pipelines"]["text-classification"]["impl"] == "multilabel_pipeline.MultiLabelTextClassificationPipeline"
    assert "multilabel_pipeline.py" in files_to_push(out)
    texts = build_dataset("goemotions")["validation"].select(range(32))["text"]
    expected = TextClassifier.from_pretrained(str(out)).predict(list(texts))
    pipe = pipeline(model=str(out), trust_remote_code=True)
    assert type(pipe).__name__ == "MultiLabelTextClassificationPipeline"
    got = pipe(list(texts))
    assert [sorted(d["label"] for d in row) for row in got] == [sorted(labels) for labels in expected]
    assert any(expected) and len({tuple(x) for x in expected}) >= 1
    for row in got:  # highest score first, every returned score at or above its label's threshold
        scores = [d["score"] for d in row]
        assert scores == sorted(scores, reverse=True)
        assert all(d["score"] >= config["label_thresholds"][d["label"]] for d in row)

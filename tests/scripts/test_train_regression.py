"""scripts/train_regression.py (affectlab.tasks.regression) end to end on tiny data: every persona mode, splits,
outputs, reload; LoRA trains only the adapter and the head; refused options exit 2 before writing anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from affectlab.personas import MEDICAL_LABEL_SET, persona_token


def run(tmp_path, tiny_bert_dir, **script):
    from transformers import TrainingArguments

    from affectlab.configs import ModelArguments
    from affectlab.tasks.regression import RegressionArguments
    from scripts.train_regression import main

    args = RegressionArguments(**{"dataset_name": "synthetic_medical", "synthetic_texts": 40,
                                        "synthetic_personas_per_text": 2, "max_length": 48, "split_strategy": "random",
                                        "print_report": False, **script})
    out = tmp_path / f"out_{args.persona_mode}_{args.split_strategy}"
    training = TrainingArguments(output_dir=str(out), num_train_epochs=2, learning_rate=5e-3, per_device_train_batch_size=16,
                                 per_device_eval_batch_size=32, eval_strategy="no", save_strategy="no", report_to="none",
                                 seed=1337, use_cpu=True, logging_steps=5, disable_tqdm=True)
    results = main(args, training, ModelArguments(model_name_or_path=str(tiny_bert_dir)))
    return out, results


@pytest.mark.parametrize("mode", ["non_personalized", "persona_token", "personalized_desc"])
def test_modes_train_and_write_outputs(tmp_path, tiny_bert_dir, mode):
    out, results = run(tmp_path, tiny_bert_dir, persona_mode=mode)
    saved = json.loads((out / "eval_results.json").read_text())
    assert saved["persona_mode"] == mode and saved["results"]["validation"]["num_examples"] == 8
    by_lang = saved["reports"]["validation"]["by_lang"]
    assert set(by_lang) <= {"en", "pl"} and sum(v["n"] for v in by_lang.values()) == 8
    for name in ("config.json", "model.safetensors", "modeling_regression_head.py", "personas.json", "label_set.json",
                 "reliability_validation.png", "reliability_test.png", "predictions_test.jsonl", "report.md", "README.md"):
        assert (out / name).is_file(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["persona_mode"] == mode and len(cfg["auto_map"]) == 3 and cfg["label_names"] == list(MEDICAL_LABEL_SET.dimensions)
    preds = [json.loads(line) for line in (out / "predictions_validation.jsonl").read_text().splitlines()]
    pred = np.array([[p["predicted"][d] for d in MEDICAL_LABEL_SET.dimensions] for p in preds])
    gold = np.array([[p["labels"][d] for d in MEDICAL_LABEL_SET.dimensions] for p in preds])
    assert pred.min() >= 0.0 and pred.max() <= 1.0  # output scaling to the label range
    mae = np.abs(pred - gold).mean()
    assert results["validation"]["macro_mae"] == pytest.approx(mae, abs=1e-5)
    # it learned something: better than predicting the middle of the range
    assert mae < np.abs(0.5 - gold).mean()
    if mode == "persona_token":
        tok = json.loads((out / "tokenizer_config.json").read_text())
        assert persona_token("nurse") in json.dumps(tok) or persona_token("nurse") in (out / "tokenizer.json").read_text()
        assert cfg["encoder_config"]["vocab_size"] == 30522 + len(json.loads((out / "personas.json").read_text()))


def test_lopo_reload_in_fresh_process_reproduces_predictions(tmp_path, tiny_bert_dir):
    out, results = run(tmp_path, tiny_bert_dir, persona_mode="persona_token", split_strategy="lopo", held_out="nurse",
                       synthetic_texts=40, synthetic_personas_per_text=4)
    saved = json.loads((out / "eval_results.json").read_text())
    assert set(saved["reports"]["test"]["by_persona"]) == {"nurse"}
    preds = [json.loads(line) for line in (out / "predictions_test.jsonl").read_text().splitlines()]
    assert {p["persona_id"] for p in preds} == {"nurse"}
    from affectlab.personas import synthetic_medical_records

    by_id = {r["id"]: r for r in synthetic_medical_records(40, 4, seed=1337)}
    texts = [f"{persona_token('nurse')} {by_id[p['id']]['text']}" for p in preds[:4]]
    expected = [[p["predicted"][d] for d in MEDICAL_LABEL_SET.dimensions] for p in preds[:4]]
    script = textwrap.dedent(f"""
        import json, torch
        from transformers import AutoModel, AutoTokenizer
        tok = AutoTokenizer.from_pretrained({str(out)!r})
        model = AutoModel.from_pretrained({str(out)!r}, trust_remote_code=True).eval()
        rows = []
        for t in {texts!r}:
            with torch.no_grad():
                rows.append(model(**tok([t], truncation=True, max_length=48, return_tensors="pt")).logits[0].tolist())
        open("reloaded.json", "w").write(json.dumps(rows))
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_allclose(json.loads((tmp_path / "reloaded.json").read_text()), expected, atol=1e-5)


def test_argument_errors():
    from affectlab.tasks.regression import RegressionArguments

    with pytest.raises(ValueError, match="sft_emotions"):
        RegressionArguments(persona_mode="personalized_instruction")
    with pytest.raises(ValueError, match="needs --held_out"):
        RegressionArguments(split_strategy="lolo")


def test_use_peft_trains_only_the_adapter_and_the_head(tmp_path, tiny_bert_dir):
    """--use_peft: LoRA on the attention projections + the head in full; every other encoder weight is the
    base model's, bit for bit. The merged model reloads like a full fine-tune; the adapter is in adapter/."""
    from huggingface_hub import ModelCard
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import TrainingArguments

    from affectlab.configs import ModelArguments
    from affectlab.eval_results import validate_eval_results
    from affectlab.tasks.regression import RegressionArguments
    from scripts.train_regression import main

    args = RegressionArguments(dataset_name="synthetic_medical", synthetic_texts=40, synthetic_personas_per_text=2,
                               max_length=48, split_strategy="random", print_report=False,
                               results_location=str(tmp_path / "results"))
    out = tmp_path / "lora"
    training = TrainingArguments(output_dir=str(out), num_train_epochs=2, learning_rate=5e-3, per_device_train_batch_size=16,
                                 eval_strategy="no", save_strategy="no", report_to="none", seed=1337, use_cpu=True,
                                 disable_tqdm=True)
    main(args, training, ModelArguments(model_name_or_path=str(tiny_bert_dir), use_peft=True, lora_r=4, lora_alpha=8))
    with safe_open(str(out / "adapter" / "adapter_model.safetensors"), "pt") as fh:
        sizes = {k: fh.get_slice(k).get_shape() for k in fh.keys()}
    lora = [k for k in sizes if ".lora_A." in k or ".lora_B." in k]
    head = [k for k in sizes if k not in lora]
    assert lora and {k.split(".")[-3] for k in lora} == {"query", "key", "value"}
    assert head and all(".head." in k for k in head), head
    trained = json.loads((out / "train_results.json").read_text())
    assert trained["trainable_parameters"] == sum(int(np.prod(s)) for s in sizes.values())
    # the merged model: the untargeted encoder weights are the base model's
    base = load_file(str(tiny_bert_dir / "model.safetensors"))
    merged = load_file(str(out / "model.safetensors"))
    untouched = [k for k in base if not any(f"attention.self.{t}." in k for t in ("query", "key", "value"))]
    assert len(untouched) > 10
    for key in untouched:
        np.testing.assert_array_equal(merged[f"encoder.{key}"].numpy(), base[key].numpy(), err_msg=key)
    changed = [k for k in base if "attention.self.query.weight" in k]
    assert any(not np.array_equal(merged[f"encoder.{k}"].numpy(), base[k].numpy()) for k in changed)
    saved = validate_eval_results(json.loads((out / "eval_results.json").read_text()))
    assert saved["model"]["method"] == "lora" and saved["persona_mode"] == "non_personalized"
    assert ModelCard.load(out / "README.md").data.eval_results
    assert len(list((tmp_path / "results").rglob("results_*.json"))) == len(saved["results"]) == 2


def test_load_in_4bit_on_cpu_is_refused_before_anything_is_written(tmp_path, repo_root):
    out = tmp_path / "never"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(repo_root / "scripts" / "train_regression.py"), "--output_dir", str(out),
                           "--load_in_4bit", "true", "--use_peft", "true"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --load_in_4bit"), proc.stderr[-3000:]
    assert not out.exists()


def test_unknown_persona_is_refused_with_the_valid_ones():
    from transformers import TrainingArguments

    from affectlab.configs import ModelArguments
    from affectlab.errors import ArgumentError
    from affectlab.personas import MEDICAL_PERSONAS
    from affectlab.tasks.regression import RegressionArguments, RegressionTask

    args = RegressionArguments(dataset_name="synthetic_medical", synthetic_texts=20, keep_personas="nurse,martian",
                               split_strategy="random")
    task = RegressionTask(args, TrainingArguments(output_dir="unused", report_to="none", use_cpu=True), ModelArguments())
    with pytest.raises(ArgumentError, match=r"--keep_personas: unknown persona id\(s\) \['martian'\]") as err:
        task.load_data()
    assert all(pid in str(err.value) for pid in MEDICAL_PERSONAS.ids)

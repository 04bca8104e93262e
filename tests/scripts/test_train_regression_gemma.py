"""The regression family over a Gemma checkpoint (tiny, random, saved here): by default the bidirectional
`custom_models.gemma_encoder` under the regression head, with the checkpoint's backbone weights; LoRA on q/k/v/o
trains the adapter and the head; `--encoder none` keeps the causal backbone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory):
    from transformers import Gemma3ForCausalLM

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from affectlab.personas import synthetic_medical_records
    from tests.custom_models.test_gemma_encoder import tiny_text_config

    torch.manual_seed(0)
    ckpt = tmp_path_factory.mktemp("tiny_gemma3")
    Gemma3ForCausalLM(tiny_text_config("gemma3", vocab_size=512)).save_pretrained(ckpt)
    # a word-level tokenizer that knows the synthetic texts' words (an all-<unk> input would be one constant)
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    texts = [r["text"] for r in synthetic_medical_records(24, 2, seed=1337)]
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=512, special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"]))
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>",
                            unk_token="<unk>").save_pretrained(ckpt)
    return ckpt


def train(tmp_path, ckpt, name, use_peft=False, **script):
    from transformers import TrainingArguments

    from affectlab.configs import ModelArguments
    from affectlab.tasks.regression import RegressionArguments
    from scripts.train_regression import main

    args = RegressionArguments(dataset_name="synthetic_medical", synthetic_texts=24, synthetic_personas_per_text=2,
                               max_length=32, split_strategy="random", print_report=False, **script)
    out = tmp_path / name
    training = TrainingArguments(output_dir=str(out), max_steps=2, learning_rate=5e-3, per_device_train_batch_size=8,
                                 eval_strategy="no", save_strategy="no", report_to="none", seed=1337, use_cpu=True,
                                 disable_tqdm=True)
    model = ModelArguments(model_name_or_path=str(ckpt), use_peft=use_peft, lora_r=4, lora_alpha=8,
                           lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj"] if use_peft else None)
    return out, main(args, training, model)


def test_gemma_checkpoint_becomes_the_bidirectional_encoder(tmp_path, tiny_gemma):
    from safetensors.torch import load_file

    out, results = train(tmp_path, tiny_gemma, "full")
    enc = json.loads((out / "config.json").read_text())["encoder_config"]
    assert enc["model_type"] == "gemma_encoder" and enc["bidirectional"] is True
    assert enc["text_config"]["model_type"] == "gemma3_text"
    assert np.isfinite(results["validation"]["macro_mae"])
    # before training, the head model's backbone is the checkpoint's, tensor for tensor
    from affectlab.configs import ModelArguments
    from affectlab.tasks.regression import gemma_regression_model
    from transformers import AutoConfig

    model = gemma_regression_model(str(tiny_gemma), AutoConfig.from_pretrained(tiny_gemma), ["V", "A"],
                                   ModelArguments(model_name_or_path=str(tiny_gemma)), pooling="mean",
                                   output_scaling=True, label_min=0.0, label_max=1.0)
    assert not model.head.weight.any() and not model.head.bias.any()   # zero head: outputs start mid-range
    ckpt = load_file(str(tiny_gemma / "model.safetensors"))
    state = model.state_dict()
    backbone = [k for k in ckpt if k.startswith("model.")]
    assert len(backbone) > 10
    for key in backbone:
        torch.testing.assert_close(state[f"encoder.{key}"], ckpt[key], rtol=0, atol=0, msg=key)
    # bidirectional: the first token's state depends on a later token
    ids = torch.tensor([[5, 6, 7, 8], [5, 6, 7, 9]])
    with torch.no_grad():
        hidden = model.encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    assert not torch.allclose(hidden[0, 0], hidden[1, 0])


def test_gemma_lora_trains_adapter_and_head(tmp_path, tiny_gemma):
    from safetensors import safe_open

    out, _ = train(tmp_path, tiny_gemma, "lora", use_peft=True)
    with safe_open(str(out / "adapter" / "adapter_model.safetensors"), "pt") as fh:
        keys = list(fh.keys())
    lora = [k for k in keys if ".lora_A." in k or ".lora_B." in k]
    assert {k.split(".")[-3] for k in lora} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert all(".head." in k for k in keys if k not in lora)


def test_encoder_none_keeps_the_causal_backbone(tmp_path, tiny_gemma):
    out, _ = train(tmp_path, tiny_gemma, "causal", encoder="none")
    assert json.loads((out / "config.json").read_text())["encoder_config"]["model_type"] == "gemma3_text"
    from affectlab.tasks.regression import RegressionArguments

    with pytest.raises(ValueError, match="encoder"):
        RegressionArguments(encoder="sideways")

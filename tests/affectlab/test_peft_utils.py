"""LoRA / DoRA on the Gemma encoder: only adapters + head train, merging keeps the logits, the adapter is
saved alone and reloads to the same logits, and a 4-bit NF4 model trains a DoRA adapter on CPU."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from affectlab.peft_utils import (add_adapter, encoder_lora_config, load_4bit, merge_for_inference, save_adapter,
                                  trainable_parameter_names)
from custom_models.gemma_encoder import GemmaEncoderConfig, GemmaEncoderForSequenceClassification
from tests.custom_models.test_gemma_encoder import tiny_text_config


def tiny_classifier(seed=0, **text):
    torch.manual_seed(seed)
    config = GemmaEncoderConfig(text_config=tiny_text_config("gemma3", **text), num_labels=2, pooling="attention")
    return GemmaEncoderForSequenceClassification._from_config(config, attn_implementation="eager").eval()


def train_steps(model, steps=5, lr=1e-2):
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 64, (8, 8), generator=gen)
    labels = torch.randint(0, 2, (8,), generator=gen)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return float(loss.detach())


@pytest.mark.parametrize("use_dora", [False, True])
def test_adapter_train_merge_save_reload(tmp_path, use_dora):
    from peft import PeftModel

    ids = torch.randint(3, 64, (3, 7), generator=torch.Generator().manual_seed(1))
    base_logits = tiny_classifier()(ids).logits.detach()
    model = add_adapter(tiny_classifier(), encoder_lora_config(r=4, alpha=8, dropout=0.0, use_dora=use_dora))
    names = trainable_parameter_names(model)
    assert names and all("lora_" in n or ".modules_to_save." in n for n in names)
    assert any("score" in n for n in names) and any("pooler" in n for n in names)
    assert any("lora_magnitude_vector" in n for n in names) == use_dora
    targeted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names if "lora_A" in n}
    assert targeted == {"q_proj", "k_proj", "v_proj", "o_proj"}
    train_steps(model)
    with torch.no_grad():
        tuned = model(input_ids=ids).logits
    assert (tuned - base_logits).abs().max() > 1e-3

    out = save_adapter(model, tmp_path / "adapter")
    assert (out / "adapter_config.json").is_file()
    saved = load_file(str(out / "adapter_model.safetensors"))
    assert saved and all("lora_" in k or "score" in k or "pooler" in k for k in saved)
    assert not any("embed_tokens" in k or "mlp" in k for k in saved)  # the adapter alone, not the model
    reloaded = PeftModel.from_pretrained(tiny_classifier(), str(out)).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, tuned)

    merged = merge_for_inference(model)
    assert isinstance(merged, GemmaEncoderForSequenceClassification)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=ids).logits, tuned, atol=1e-5, rtol=1e-4)


def test_include_mlp_targets():
    config = encoder_lora_config(include_mlp=True)
    assert set(config.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert set(config.modules_to_save) >= {"pooler", "score"}


def test_4bit_dora_on_cpu(tmp_path):
    import bitsandbytes as bnb

    fp32 = tiny_classifier(hidden_size=64, head_dim=32, intermediate_size=128)  # 4-bit CPU kernels need >= 64 inputs
    fp32.save_pretrained(tmp_path / "fp32")
    model = load_4bit(GemmaEncoderForSequenceClassification, tmp_path / "fp32")
    attn = model.model.layers[0].self_attn
    assert isinstance(attn.q_proj, bnb.nn.Linear4bit) and attn.q_proj.weight.dtype == torch.uint8
    assert type(model.score) is torch.nn.Linear and model.score.weight.dtype == torch.float32  # head not quantised
    ids = torch.randint(3, 64, (2, 8), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        q_logits, f_logits = model(input_ids=ids).logits, fp32(input_ids=ids).logits
    assert torch.isfinite(q_logits).all() and (q_logits - f_logits).abs().max() < 0.5
    peft_model = add_adapter(model, encoder_lora_config(r=4, alpha=8, dropout=0.0, use_dora=True))
    before = [p.detach().clone() for n, p in peft_model.named_parameters() if "lora_B" in n]
    loss = train_steps(peft_model, steps=3)
    after = [p for n, p in peft_model.named_parameters() if "lora_B" in n]
    assert loss == loss and any((a - b).abs().max() > 0 for a, b in zip(after, before))


def test_bench_dora_lora_small():
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "bench_dora_lora.py"
    spec = importlib.util.spec_from_file_location("bench_dora_lora", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_dora_lora"] = mod
    spec.loader.exec_module(mod)
    lora, dora, ratio = mod.main(["--steps", "2", "--batch", "2", "--seq", "16", "--hidden", "64", "--layers", "1",
                                  "--rank", "4", "--device", "cpu"])
    # DoRA adds one magnitude per output feature of q, k, v, o: 64 + 32 + 32 + 64 with 4 heads x 16, 2 kv heads
    assert dora["trainable_params"] - lora["trainable_params"] == 64 + 32 + 32 + 64
    assert ratio["activation_memory_ratio"] > 1.0 and lora["step_s"] > 0 and dora["step_s"] > 0

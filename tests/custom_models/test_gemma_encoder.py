"""Bidirectional Gemma encoder: attention really is bidirectional for Gemma, Gemma2 and Gemma3 (flat and
nested configs), padding on either side changes nothing, poolers/heads compute what they say, a task that
needs right context is learned only bidirectionally, and a saved model reloads in a fresh process with
`trust_remote_code=True` to identical logits."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import Gemma2Config, Gemma3Config, Gemma3TextConfig, GemmaConfig

from custom_models.gemma_encoder import (AUTO_MAP, GemmaEncoderConfig, GemmaEncoderForSequenceClassification,
                                         GemmaEncoderModel)

FAMILIES = ["gemma", "gemma2", "gemma3", "gemma3_nested"]
VOCAB = 64


def tiny_text_config(family: str, **overrides):
    common = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=16, max_position_embeddings=64, pad_token_id=0, bos_token_id=1,
                  eos_token_id=2)
    common.update(overrides)
    if family == "gemma":
        return GemmaConfig(**common)
    # one sliding + one full layer, window 4: the sliding mask must be bidirectional too
    common.setdefault("sliding_window", 4)
    common.setdefault("layer_types", ["sliding_attention", "full_attention"])
    if family == "gemma2":
        return Gemma2Config(**common)
    if family == "gemma3":
        return Gemma3TextConfig(**common)
    return Gemma3Config(text_config=Gemma3TextConfig(**common).to_dict(),
                        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                           num_attention_heads=2, image_size=16, patch_size=8))


def impls(family):
    return ["eager"] if family == "gemma2" else ["eager", "sdpa"]  # Gemma2 (logit soft-capping) has no SDPA


def make(family, impl="eager", cls=GemmaEncoderForSequenceClassification, seed=0, **config_kwargs):
    torch.manual_seed(seed)
    config = GemmaEncoderConfig(text_config=tiny_text_config(family), **config_kwargs)
    return cls._from_config(config, attn_implementation=impl).eval()


@pytest.mark.parametrize("family,impl", [(f, i) for f in FAMILIES for i in impls(f)])
def test_last_token_changes_first_token(family, impl):
    model = make(family, impl)
    assert model.config.text_config.model_type == ("gemma3_text" if family.startswith("gemma3") else family)
    ids = torch.randint(3, VOCAB, (2, 10), generator=torch.Generator().manual_seed(1))
    other = ids.clone()
    other[:, -1] = (ids[:, -1] - 2) % (VOCAB - 3) + 3
    mask = torch.ones_like(ids)
    with torch.no_grad():
        a = model._encode(ids, mask)[0]
        b = model._encode(other, mask)[0]
    assert (a[:, 0] - b[:, 0]).abs().max() > 1e-3  # the first token sees the last one
    model.set_causal(True)
    with torch.no_grad():
        a = model._encode(ids, mask)[0]
        b = model._encode(other, mask)[0]
    assert torch.equal(a[:, 0], b[:, 0])  # control: the causal mask hides it
    assert (a[:, -1] - b[:, -1]).abs().max() > 1e-3


@pytest.mark.parametrize("family", ["gemma", "gemma2"])
def test_library_flag_leaves_gemma_and_gemma2_causal(family):
    """The trap this encoder exists for: transformers' `use_bidirectional_attention` does not make Gemma /
    Gemma2 bidirectional with eager attention or padded batches. (If this fails, upstream fixed it.)"""
    from transformers import AutoModel

    torch.manual_seed(0)
    lib = AutoModel.from_config(tiny_text_config(family, use_bidirectional_attention=True), attn_implementation="eager").eval()
    ids = torch.randint(3, VOCAB, (2, 10), generator=torch.Generator().manual_seed(1))
    other = ids.clone()
    other[:, -1] = (ids[:, -1] - 2) % (VOCAB - 3) + 3
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    with torch.no_grad():
        delta = (lib(ids, attention_mask=mask).last_hidden_state[:, -7] - lib(other, attention_mask=mask).last_hidden_state[:, -7])
    assert delta.abs().max() == 0


@pytest.mark.parametrize("pooling", ["mean", "cls", "last", "max", "attention"])
@pytest.mark.parametrize("family,impl", [(f, i) for f in FAMILIES for i in impls(f)])
def test_padding_left_and_right_give_unpadded_vectors(family, impl, pooling):
    model = make(family, impl, cls=GemmaEncoderModel, pooling=pooling)
    gen = torch.Generator().manual_seed(2)
    seqs = [torch.randint(3, VOCAB, (n,), generator=gen) for n in (9, 5, 7)]
    with torch.no_grad():
        alone = torch.stack([model(s[None]).pooler_output[0] for s in seqs])
        for side in ("left", "right"):
            width = max(len(s) for s in seqs)
            ids = torch.zeros(len(seqs), width, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, s in enumerate(seqs):
                sl = slice(width - len(s), width) if side == "left" else slice(0, len(s))
                ids[i, sl], mask[i, sl] = s, 1
            batched = model(ids, attention_mask=mask).pooler_output
            torch.testing.assert_close(batched, alone, atol=2e-5, rtol=1e-4, msg=f"{side} padding changed {pooling}")


def test_poolers_compute_what_they_say():
    model = make("gemma", cls=GemmaEncoderModel)
    hidden = torch.randn(2, 5, 32)
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 0]])
    pool = model.pooler
    expected = {
        "mean": torch.stack([hidden[0, 2:].mean(0), hidden[1, :4].mean(0)]),
        "cls": torch.stack([hidden[0, 2], hidden[1, 0]]),
        "last": torch.stack([hidden[0, 4], hidden[1, 3]]),
        "max": torch.stack([hidden[0, 2:].max(0).values, hidden[1, :4].max(0).values]),
    }
    for mode, want in expected.items():
        pool.mode = mode
        torch.testing.assert_close(pool(hidden, mask), want)
    attn = make("gemma", cls=GemmaEncoderModel, pooling="attention").pooler
    out = attn(hidden, mask)
    scores = attn.attention(hidden).squeeze(-1)
    w0 = torch.softmax(scores[0, 2:], -1)
    torch.testing.assert_close(out[0], (w0[:, None] * hidden[0, 2:]).sum(0))
    with pytest.raises(ValueError, match="pooling"):
        GemmaEncoderConfig(text_config=tiny_text_config("gemma"), pooling="sum")


def test_heads_and_losses():
    ids = torch.randint(3, VOCAB, (4, 6), generator=torch.Generator().manual_seed(3))
    single = make("gemma3", num_labels=3)
    y = torch.tensor([0, 2, 1, 2])
    out = single(ids, labels=y)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, y))
    assert single.config.problem_type == "single_label_classification"
    multi = make("gemma3", num_labels=3, problem_type="multi_label_classification")
    yy = torch.tensor([[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.float)
    out = multi(ids, labels=yy)
    torch.testing.assert_close(out.loss, torch.nn.functional.binary_cross_entropy_with_logits(out.logits, yy))
    reg = make("gemma3", num_labels=1)
    t = torch.tensor([0.5, -1.0, 2.0, 0.0])
    out = reg(ids, labels=t)
    assert reg.config.problem_type == "regression"
    torch.testing.assert_close(out.loss, torch.nn.functional.mse_loss(out.logits.squeeze(-1), t))
    drop = make("gemma", classifier_dropout=0.5).train()
    assert drop.dropout.p == 0.5
    assert not torch.equal(drop(ids).logits, drop(ids).logits)  # dropout is active in training


def test_gradient_checkpointing_same_loss_and_grads():
    ids = torch.randint(3, VOCAB, (2, 8), generator=torch.Generator().manual_seed(4))
    y = torch.tensor([0, 1])
    results = []
    for ckpt in (False, True):
        model = make("gemma2").train()
        if ckpt:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            assert all(layer.gradient_checkpointing for layer in model.model.layers)
        loss = model(ids, labels=y).loss
        loss.backward()
        results.append((loss.detach(), model.model.layers[0].self_attn.q_proj.weight.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def synthetic_accuracy(family: str, bidirectional: bool, steps: int = 60) -> float:
    """Label = which of two marker tokens ends the sequence; pooled at the FIRST token (`cls`).

    A causal encoder's first token cannot see the end, so it stays at chance; a bidirectional one learns it.
    """
    torch.manual_seed(1337)
    gen = torch.Generator().manual_seed(1337)
    model = make(family, num_labels=2, pooling="cls", bidirectional=bidirectional, seed=1337).train()

    def batch(n):
        ids = torch.randint(5, VOCAB, (n, 8), generator=gen)
        labels = torch.randint(0, 2, (n,), generator=gen)
        ids[:, -1] = 3 + labels  # token 3 -> class 0, token 4 -> class 1
        return ids, labels

    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        ids, labels = batch(32)
        loss = model(ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    ids, labels = batch(512)
    with torch.no_grad():
        return float((model(ids).logits.argmax(-1) == labels).float().mean())


@pytest.mark.parametrize("family", ["gemma", "gemma2", "gemma3"])
def test_synthetic_task_needs_bidirectional_attention(family):
    bi = synthetic_accuracy(family, True)
    causal = synthetic_accuracy(family, False)
    print(f"\n[synthetic] {family}: bidirectional acc={bi:.3f} causal acc={causal:.3f}")
    assert bi >= 0.9
    assert causal <= 0.6


def test_from_pretrained_of_plain_gemma_checkpoint(tmp_path):
    from transformers import Gemma3ForConditionalGeneration, GemmaForCausalLM

    torch.manual_seed(0)
    lm = GemmaForCausalLM(tiny_text_config("gemma"))
    lm.save_pretrained(tmp_path / "plain")
    enc = GemmaEncoderForSequenceClassification.from_pretrained(tmp_path / "plain", num_labels=2, pooling="last")
    assert enc.config.model_type == "gemma_encoder" and enc.config.text_config.model_type == "gemma"
    assert enc.config.pooling == "last"
    for name, tensor in lm.model.state_dict().items():
        torch.testing.assert_close(enc.model.state_dict()[name], tensor, msg=name)

    # nested multimodal Gemma3 checkpoint: the text model's weights land in the encoder's backbone
    torch.manual_seed(0)
    mm = Gemma3ForConditionalGeneration(tiny_text_config("gemma3_nested"))
    mm.save_pretrained(tmp_path / "nested")
    enc3 = GemmaEncoderModel.from_pretrained(tmp_path / "nested")
    assert enc3.config.text_config.model_type == "gemma3_text"
    text_state = mm.model.language_model.state_dict()
    for name, tensor in text_state.items():
        torch.testing.assert_close(enc3.model.state_dict()[name], tensor, msg=name)


def tiny_tokenizer():
    """A word-level tokenizer trained here with `tokenizers` (no Hub)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    words = "i feel tired and sad every day sleep badly cannot focus nothing matters happy calm today".split()
    tok.train_from_iterator([" ".join(words)] * 3, trainers.WordLevelTrainer(special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", unk_token="<unk>")


def test_save_reload_in_fresh_process_trust_remote_code(tmp_path):
    model = make("gemma3", "sdpa", num_labels=3, pooling="attention")  # sdpa: the default a reload gets
    tokenizer = tiny_tokenizer()
    out = tmp_path / "saved"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"] == AUTO_MAP
    assert (out / "modeling_gemma_encoder.py").is_file() and (out / "configuration_gemma_encoder.py").is_file()
    texts = ["i feel tired and sad every day", "nothing matters"]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**enc).logits.numpy()
    script = textwrap.dedent(f"""
        import json, sys, numpy as np, torch
        from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer
        path = {str(out)!r}
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
        model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True).eval()
        base = AutoModel.from_pretrained(path, trust_remote_code=True)
        cfg = AutoConfig.from_pretrained(path, trust_remote_code=True)
        assert "custom_models" not in sys.modules
        enc = tok({texts!r}, padding=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits.numpy()
        np.save({str(tmp_path / "logits.npy")!r}, logits)
        print(json.dumps({{"model": type(model).__module__ + "." + type(model).__name__,
                          "base": type(base).__name__, "config": type(cfg).__name__}}))
    """)
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    info = json.loads(last[last.index("{"):])
    assert info["model"].startswith("transformers_modules.") and info["model"].endswith("GemmaEncoderForSequenceClassification")
    assert info["base"] == "GemmaEncoderModel" and info["config"] == "GemmaEncoderConfig"
    np.testing.assert_array_equal(np.load(tmp_path / "logits.npy"), expected)

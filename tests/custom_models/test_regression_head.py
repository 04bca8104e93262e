"""custom_models/regression_head: pooling, scaling, losses, complete auto_map, fresh-process reload."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from custom_models.regression_head import AUTO_MAP, RegressionHeadConfig, RegressionHeadModel, pool

TEXTS = ["The nurse was kind.", "Waiting eleven hours, nobody said anything at all."]


@pytest.fixture(scope="module")
def tokenizer(tiny_bert_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert_dir)


def make(tiny_bert_dir, **kw):
    torch.manual_seed(0)
    model = RegressionHeadModel.from_encoder(str(tiny_bert_dir), ["V", "A", "D"], **kw)
    return model.eval()


def test_pooling_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 3.0]]
    assert pool(hidden, mask, "max").tolist() == [[3.0, 4.0]]
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 2.0]]


def test_encoder_weights_kept_and_padding_invariant(tiny_bert_dir, tokenizer):
    from transformers import AutoModel

    model = make(tiny_bert_dir)
    ref = AutoModel.from_pretrained(tiny_bert_dir).eval()
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model.encoder(**enc).last_hidden_state, ref(**enc).last_hidden_state)
        batched = model(**enc).logits
        single = model(**tokenizer(TEXTS[:1], return_tensors="pt")).logits
    assert batched.shape == (2, 3)
    torch.testing.assert_close(batched[:1], single, atol=1e-5, rtol=1e-5)


def test_output_scaling_and_losses(tiny_bert_dir, tokenizer):
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    labels = torch.tensor([[1.0, 5.0, 3.0], [2.0, 2.0, 2.0]])
    scaled = make(tiny_bert_dir, output_scaling=True, label_min=1.0, label_max=5.0)
    with torch.no_grad():
        scaled.head.bias.fill_(50.0)  # saturate: outputs pinned to the top of the range
        out = scaled(**enc, labels=labels)
    assert torch.all(out.logits <= 5.0) and torch.all(out.logits >= 4.99)
    assert out.loss.item() == pytest.approx(torch.nn.functional.mse_loss(out.logits, labels).item())
    huber = make(tiny_bert_dir, loss="huber", huber_delta=0.5)
    with torch.no_grad():
        out = huber(**enc, labels=labels)
    assert out.loss.item() == pytest.approx(torch.nn.functional.huber_loss(out.logits, labels, delta=0.5).item())
    with pytest.raises(ValueError, match="output_scaling needs"):
        RegressionHeadConfig(encoder_config={"model_type": "bert"}, label_names=["x"], output_scaling=True)
    with pytest.raises(ValueError, match="loss must be one of"):
        RegressionHeadConfig(encoder_config={"model_type": "bert"}, label_names=["x"], loss="l1")


def test_gradients_reach_encoder(tiny_bert_dir, tokenizer):
    model = make(tiny_bert_dir).train()
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    model(**enc, labels=torch.ones(2, 3)).loss.backward()
    assert model.head.weight.grad.abs().sum() > 0
    assert model.encoder.get_input_embeddings().weight.grad.abs().sum() > 0


def test_complete_auto_map_and_fresh_process_reload(tiny_bert_dir, tokenizer, tmp_path):
    model = make(tiny_bert_dir, output_scaling=True, label_min=1.0, label_max=5.0, pooling="mean")
    tokenizer.add_special_tokens({"extra_special_tokens": ["[PERSONA:writer]"]}, replace_extra_special_tokens=False)
    model.resize_token_embeddings(len(tokenizer))
    out_dir = tmp_path / "saved"
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    cfg = json.loads((out_dir / "config.json").read_text())
    assert cfg["auto_map"] == AUTO_MAP  # all entries, not only the saved class
    assert cfg["encoder_config"]["vocab_size"] == len(tokenizer)
    assert (out_dir / "modeling_regression_head.py").is_file() and (out_dir / "configuration_regression_head.py").is_file()

    texts = ["[PERSONA:writer] " + t for t in TEXTS]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**enc).logits.numpy()
    np.save(tmp_path / "expected.npy", expected)
    script = textwrap.dedent(f"""
        import json, sys, numpy as np, torch
        from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer
        path = {str(out_dir)!r}
        assert "custom_models" not in sys.modules
        tok = AutoTokenizer.from_pretrained(path)
        enc = tok({texts!r}, padding=True, return_tensors="pt")
        outs = []
        for auto in (AutoModel, AutoModelForSequenceClassification):
            m = auto.from_pretrained(path, trust_remote_code=True).eval()
            assert type(m).__name__ == "RegressionHeadModel", type(m)
            with torch.no_grad():
                outs.append(m(**enc).logits.numpy())
        cfg = AutoConfig.from_pretrained(path, trust_remote_code=True)
        assert cfg.label_names == ["V", "A", "D"] and cfg.output_scaling
        np.testing.assert_array_equal(outs[0], outs[1])
        np.save({str(tmp_path / "reloaded.npy")!r}, outs[0])
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "reloaded.npy"), expected)

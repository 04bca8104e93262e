"""custom_models/span_qa: BERT and bidirectional-Gemma backbones, QA loss, complete auto_map, and
save -> reload with trust_remote_code in a fresh process -> identical logits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from custom_models.span_qa import AUTO_MAP, SpanQAConfig, SpanQAModel

QUESTION = "The writer feels tired almost every day."
CONTEXTS = ["I am tired all the time and sleep badly.", "The weather is nice."]


@pytest.fixture(scope="module")
def tokenizer(tiny_bert_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert_dir)


def make_bert(tiny_bert_dir, **kw):
    torch.manual_seed(0)
    return SpanQAModel.from_encoder(str(tiny_bert_dir), **kw).eval()


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory):
    from tests.custom_models.test_gemma_encoder import tiny_text_config, tiny_tokenizer
    from transformers import GemmaForCausalLM

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny_gemma_ckpt")
    GemmaForCausalLM(tiny_text_config("gemma", vocab_size=64)).save_pretrained(out)
    tiny_tokenizer().save_pretrained(out)
    return out


def test_bert_encoder_weights_kept_and_loss_matches_reference(tiny_bert_dir, tokenizer):
    from transformers import AutoModel

    model = make_bert(tiny_bert_dir, head_dropout=0.0)
    assert not hasattr(model.encoder, "pooler") or model.encoder.pooler is None
    ref = AutoModel.from_pretrained(tiny_bert_dir).eval()
    enc = tokenizer([QUESTION] * 2, CONTEXTS, padding=True, return_tensors="pt")
    starts, ends = torch.tensor([9, 0]), torch.tensor([12, 0])
    with torch.no_grad():
        torch.testing.assert_close(model.encoder(**enc).last_hidden_state, ref(**enc).last_hidden_state)
        out = model(**enc, start_positions=starts, end_positions=ends)
        hidden = ref(**enc).last_hidden_state
    logits = hidden @ model.qa_outputs.weight.T + model.qa_outputs.bias
    torch.testing.assert_close(out.start_logits, logits[..., 0])
    torch.testing.assert_close(out.end_logits, logits[..., 1])
    ce = torch.nn.functional.cross_entropy
    expected = (ce(logits[..., 0], starts) + ce(logits[..., 1], ends)) / 2
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # positions beyond the sequence are ignored (clamped to the ignore index), as in BertForQuestionAnswering
    with torch.no_grad():
        far = model(**enc, start_positions=torch.tensor([9, 999]), end_positions=torch.tensor([12, 999])).loss
    only_first = (ce(logits[:1, :, 0], starts[:1]) + ce(logits[:1, :, 1], ends[:1])) / 2
    assert far.item() == pytest.approx(only_first.item(), rel=1e-5)


def test_gradients_reach_encoder_and_config_errors(tiny_bert_dir, tokenizer):
    model = make_bert(tiny_bert_dir).train()
    enc = tokenizer([QUESTION] * 2, CONTEXTS, padding=True, return_tensors="pt")
    model(**enc, start_positions=torch.tensor([3, 0]), end_positions=torch.tensor([4, 0])).loss.backward()
    assert model.qa_outputs.weight.grad.abs().sum() > 0
    assert model.encoder.get_input_embeddings().weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="head_dropout must be in"):
        SpanQAConfig(encoder_config={"model_type": "bert"}, head_dropout=1.5)
    with pytest.raises(ValueError, match="needs the backbone's 'model_type'"):
        SpanQAConfig(encoder_config={"hidden_size": 8})
    with pytest.raises(ValueError, match="encoder_config is empty"):
        SpanQAModel(SpanQAConfig())


def test_gemma_backbone_is_bidirectional(gemma_dir):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    model = SpanQAModel.from_encoder(str(gemma_dir), head_dropout=0.0).eval()
    assert model.config.encoder_config["model_type"] == "gemma_encoder"
    assert model.encoder.config.bidirectional
    tok = AutoTokenizer.from_pretrained(gemma_dir)
    a = tok(["i feel tired and sad every day"], return_tensors="pt")
    b = tok(["i feel tired and sad every calm"], return_tensors="pt")
    with torch.no_grad():
        la, lb = model(**a).start_logits, model(**b).start_logits
    assert la.shape == a["input_ids"].shape
    assert not torch.allclose(la[0, 0], lb[0, 0])  # the first token sees the last: not causal
    # the wrapped backbone kept the checkpoint's weights
    from transformers import GemmaForCausalLM

    lm = GemmaForCausalLM.from_pretrained(gemma_dir)
    torch.testing.assert_close(model.encoder.model.embed_tokens.weight, lm.model.embed_tokens.weight)


def test_complete_auto_map_and_fresh_process_reload(tiny_bert_dir, tokenizer, gemma_dir, tmp_path):
    from transformers import AutoTokenizer

    saved = {}
    for name, model, tok in (("bert", make_bert(tiny_bert_dir), tokenizer),
                             ("gemma", SpanQAModel.from_encoder(str(gemma_dir)).eval(), AutoTokenizer.from_pretrained(gemma_dir))):
        out_dir = tmp_path / name
        model.save_pretrained(out_dir)
        tok.save_pretrained(out_dir)
        cfg = json.loads((out_dir / "config.json").read_text())
        assert cfg["auto_map"] == AUTO_MAP  # all entries, not only the saved class
        for f in ("modeling_span_qa.py", "configuration_span_qa.py", "modeling_gemma_encoder.py", "configuration_gemma_encoder.py"):
            assert (out_dir / f).is_file() and not (out_dir / f).is_symlink(), f
        texts = ["i feel tired and sad every day", "nothing matters"]
        enc = tok([QUESTION.lower()] * 2 if name == "bert" else ["sleep badly"] * 2, texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            o = model(**enc)
        np.save(tmp_path / f"{name}_expected.npy", np.stack([o.start_logits.numpy(), o.end_logits.numpy()]))
        saved[name] = (str(out_dir), texts)
    script = textwrap.dedent(f"""
        import sys, numpy as np, torch
        from transformers import AutoConfig, AutoModel, AutoModelForQuestionAnswering, AutoTokenizer
        assert "custom_models" not in sys.modules
        for name, (path, texts) in {saved!r}.items():
            tok = AutoTokenizer.from_pretrained(path)
            q = [{QUESTION.lower()!r}] * 2 if name == "bert" else ["sleep badly"] * 2
            enc = tok(q, texts, padding=True, return_tensors="pt")
            outs = []
            for auto in (AutoModelForQuestionAnswering, AutoModel):
                m = auto.from_pretrained(path, trust_remote_code=True).eval()
                assert type(m).__name__ == "SpanQAModel", type(m)
                with torch.no_grad():
                    o = m(**enc)
                outs.append(np.stack([o.start_logits.numpy(), o.end_logits.numpy()]))
            assert AutoConfig.from_pretrained(path, trust_remote_code=True).model_type == "affectlab_span_qa"
            np.testing.assert_array_equal(outs[0], outs[1])
            np.save({str(tmp_path)!r} + f"/{{name}}_reloaded.npy", outs[0])
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": "", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in saved:
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}_reloaded.npy"), np.load(tmp_path / f"{name}_expected.npy"))

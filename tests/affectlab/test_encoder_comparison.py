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

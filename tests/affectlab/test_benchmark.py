"""affectlab.benchmark: McNemar against hand-computed cases, bootstrap CIs, composite ranking, Pareto front,
warm-up / minimum-iterations / minimum-time logic and percentiles, device refusals, real timings on a tiny model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from affectlab import benchmark as B


def paired(b: int, c: int, both_right: int, both_wrong: int):
    """Binary labels/predictions with exactly b (A right, B wrong) and c (A wrong, B right) discordant pairs."""
    y = np.zeros(b + c + both_right + both_wrong, dtype=int)
    a = np.concatenate([np.zeros(b), np.ones(c), np.zeros(both_right), np.ones(both_wrong)]).astype(int)
    bb = np.concatenate([np.ones(b), np.zeros(c), np.zeros(both_right), np.ones(both_wrong)]).astype(int)
    return y, a, bb


def test_mcnemar_exact_small_counts_by_hand():
    y, a, b = paired(10, 2, 30, 5)
    res = B.mcnemar(y, a, b)
    # two-sided exact: 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert (res["b"], res["c"], res["method"]) == (10, 2, "exact")
    assert res["p_value"] == pytest.approx(158 / 4096, rel=1e-9)
    # symmetric in the models
    assert B.mcnemar(y, b, a)["p_value"] == pytest.approx(res["p_value"])


def test_mcnemar_chi2_continuity_by_hand():
    y, a, b = paired(30, 15, 100, 20)
    res = B.mcnemar(y, a, b)
    stat = (abs(30 - 15) - 1) ** 2 / 45  # 196 / 45
    assert res["method"] == "chi2_cc"
    assert res["statistic"] == pytest.approx(196 / 45)
    assert res["p_value"] == pytest.approx(math.erfc(math.sqrt(stat / 2)), rel=1e-9)  # chi2(1) survival
    assert 0.03 < res["p_value"] < 0.04
    same = B.mcnemar(y, a, a)
    assert same["p_value"] == 1.0 and same["b"] == same["c"] == 0


def test_bootstrap_ci_and_paired_difference():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    good = np.where(rng.random(400) < 0.9, y, 1 - y)
    bad = np.where(rng.random(400) < 0.6, y, 1 - y)
    ci = B.bootstrap_ci(y, good, n_boot=300)
    assert set(ci) == {"accuracy", "macro_f1", "precision", "recall"}
    acc = ci["accuracy"]
    assert acc["value"] == pytest.approx(np.mean(good == y))
    assert acc["ci_low"] < acc["value"] < acc["ci_high"] and acc["ci_high"] - acc["ci_low"] < 0.1
    d = B.bootstrap_diff_ci(y, good, bad, "accuracy", n_boot=300)
    assert d["diff"] == pytest.approx(np.mean(good == y) - np.mean(bad == y))
    assert 0 < d["ci_low"] < d["diff"] < d["ci_high"]
    assert B.bootstrap_diff_ci(y, good, good, "macro_f1", n_boot=50)["ci_high"] == 0.0


def test_composite_ranking_by_hand():
    rows = [{"model": "A", "accuracy": 0.9, "macro_f1": 0.9, "throughput": 100, "latency_p50_ms": 10},
            {"model": "B", "accuracy": 0.8, "macro_f1": 0.8, "throughput": 300, "latency_p50_ms": 5},
            {"model": "C", "accuracy": 0.85, "macro_f1": 0.7, "throughput": 200, "latency_p50_ms": 20}]
    scores = B.composite_scores(rows)
    # A: .3*1 + .3*1 + .2*0 + .2*(10/15); B: 0 + .3*.5 + .2*1 + .2*1; C: .3*.5 + 0 + .2*.5 + 0
    assert scores == pytest.approx([0.3 + 0.3 + 0.2 * 2 / 3, 0.15 + 0.4, 0.25])
    table = B.rank_table(rows, by="composite")
    assert [r["model"] for r in table] == ["A", "B", "C"] and [r["rank"] for r in table] == [1, 2, 3]
    assert [r["model"] for r in B.rank_table(rows, weights={"latency_p50_ms": 1}, by="composite")] == ["B", "A", "C"]
    # the headline ranking is by quality (no CIs here: every accuracy differs), the composite stays beside it
    headline = B.rank_table(rows)
    assert [r["model"] for r in headline] == ["A", "C", "B"] and [r["rank"] for r in headline] == [1, 2, 3]
    assert [r["composite_rank"] for r in headline] == [1, 3, 2]
    with pytest.raises(ValueError, match="rank_by"):
        B.rank_table(rows, by="speed")
    assert list(B.minmax_normalise([3, 3])) == [1.0, 1.0]
    with pytest.raises(KeyError, match="throughput"):
        B.composite_scores([{"accuracy": 1, "macro_f1": 1, "latency_p50_ms": 1}])


def test_quality_headline_ties_overlapping_cis_then_orders_by_speed():
    """The sentiment benchmark's case: a near-chance but very fast model topped the composite; by quality it is
    last, and models whose CIs overlap share a rank and are ordered by latency."""
    def row(model, acc, lo, hi, p50, thr):
        return {"model": model, "accuracy": acc, "macro_f1": acc, "latency_p50_ms": p50, "throughput": thr,
                "ci": {"accuracy": {"value": acc, "ci_low": lo, "ci_high": hi}}}

    rows = [row("tiny-gpt2", 0.515, 0.48, 0.55, 0.4, 30000.0), row("minilm", 0.9117, 0.9044, 0.9183, 6.0, 198.5),
            row("tiny-bert", 0.8472, 0.8387, 0.8558, 3.0, 1000.0), row("minilm-lora", 0.9080, 0.9000, 0.9150, 5.0, 200.0)]
    speedy = {"accuracy": 0.2, "throughput": 0.4, "latency_p50_ms": 0.4}
    assert B.rank_table(rows, speedy, by="composite")[0]["model"] == "tiny-gpt2"  # what a composite headline says
    ranked = B.rank_table(rows, speedy)
    assert [r["model"] for r in ranked] == ["minilm-lora", "minilm", "tiny-bert", "tiny-gpt2"]
    assert [r["rank"] for r in ranked] == [1, 1, 3, 4]  # the two MiniLMs overlap: tied, the faster first
    assert B.quality_ranks(rows) == [4, 1, 3, 1]
    assert ranked[-1]["composite_rank"] == 1
    # lower-is-better quality metrics rank the other way round
    mae = [{"model": m, "mae": v, "ci": {"mae": {"ci_low": v - 0.01, "ci_high": v + 0.01}}} for m, v in
           (("a", 0.5), ("b", 0.2), ("c", 0.205))]
    assert [r["model"] for r in B.rank_table(mae, quality="mae", speed=None)] == ["b", "c", "a"]


def test_pareto_front():
    assert B.pareto_front([0.9, 0.8, 0.85, 0.7], [10, 5, 20, 6]) == [1, 0]
    assert B.pareto_front([0.9, 0.9], [5, 5]) == [0, 1]  # equal points do not dominate each other


def test_timed_runs_needs_min_iterations_and_min_seconds():
    clock = {"t": 0.0}
    calls = []

    def fn(i):
        calls.append(i)
        clock["t"] += 0.01

    times = B.timed_runs(fn, warmup=3, min_iterations=5, min_seconds=0.2, clock=lambda: clock["t"])
    assert len(times) == 20 and len(calls) == 23  # time-bound: 20 x 10 ms, after 3 untimed warm-up calls
    calls.clear()
    times = B.timed_runs(fn, warmup=0, min_iterations=30, min_seconds=0.1, clock=lambda: clock["t"])
    assert len(times) == 30 and len(calls) == 30  # iteration-bound
    stats = B.latency_stats(np.arange(1, 101) / 1000.0)
    assert (stats["p50_ms"], stats["p90_ms"], stats["p99_ms"], stats["n"]) == pytest.approx((50.5, 90.1, 99.01, 100))
    assert B.relative_spread([10.0, 10.5]) == pytest.approx(0.05)


def test_device_refusals_are_explicit():
    cpu_only = {"cuda": False, "mps": False, "cpu": True}
    assert B.detect_device("auto", cpu_only) == "cpu"
    assert B.detect_device("auto", {"cuda": False, "mps": True, "cpu": True}) == "mps"
    with pytest.raises(B.DeviceOptionError, match="'cuda' was requested but is not available"):
        B.detect_device("cuda", cpu_only)
    with pytest.raises(B.DeviceOptionError, match="bfloat16 is refused on CPU"):
        B.check_device_options("cpu", "bf16")
    for device in ("cpu", "mps"):
        with pytest.raises(B.DeviceOptionError, match=f"'qlora'.*refused on {device}"):
            B.check_device_options(device, "float32", "qlora")
    with pytest.raises(B.DeviceOptionError, match="does not support bf16"):
        B.check_device_options("cuda", "bfloat16", "lora", bf16_supported_on_cuda=False)
    B.check_device_options("cpu", "float32", "lora")
    B.check_device_options("cuda", "bfloat16", "qlora", bf16_supported_on_cuda=True)


def test_real_latency_throughput_ttft_on_tiny_models(minilm_path):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(minilm_path)
    clf = BertForSequenceClassification(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                                   intermediate_size=64, max_position_embeddings=128)).eval()
    cfg = B.SpeedConfig(warmup=2, min_iterations=10, min_seconds=0.2, batch_size=8, max_length=32)
    texts = ["a good film", "dull and far too long", "it works"]
    with B.MemoryTracker("cpu") as mem:
        stats, times = B.measure_latency(clf, tok, texts, cfg, "cpu", mem)
        thr = B.measure_throughput(clf, tok, texts, cfg, "cpu", mem)
    assert stats["n"] == len(times) >= 10 and times.sum() >= 0.2
    assert 0 < stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"]
    assert thr["samples_s"] > 0 and thr["tokens_s"] > thr["samples_s"] and thr["total_s"] >= 0.2
    assert mem.result()["peak_rss_mb"] > 10
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_embd=32, n_layer=2, n_head=2, n_positions=128)).eval()
    ttft = B.measure_ttft(lm, tok, texts, B.SpeedConfig(warmup=1, min_iterations=5, min_seconds=0.0), "cpu")
    assert ttft["n"] == 5 and ttft["p50_ms"] > 0


def test_sentiment_benchmark_passes_the_dataset_config_to_the_builder(data_root):
    """A dataset entry's `config` reaches dataset_builders.build_dataset: the recipe's SST-2 sentence-level
    held-out split and its reduced training phrases, not the default config's files."""
    import yaml

    from affectlab import sentiment_benchmark as SB

    cfg = SB.load_config(["--config", "recipes/sentiment_benchmark_cpu.yaml"])
    (ds_cfg,) = cfg["datasets"]
    assert ds_cfg["config"] == "sentences_heldout" and ds_cfg["eval_split"] == "heldout_sentences"
    train, evaluation, names, split = SB.load_pair_data(ds_cfg, {**cfg, "max_train_samples": 1000})
    assert split == "heldout_sentences" and len(evaluation) == 872 and names == ["negative", "positive"]
    assert len(train) == 1000 and sorted(train["labels"]) == [0] * 500 + [1] * 500
    assert not set(train["id"]) & set(evaluation["id"])
    # without eval_split the config's one held-out split is found; the default config has no such split
    _, _, _, split = SB.load_pair_data({"name": "sst2", "config": "sentences_heldout"}, {**cfg, "max_train_samples": 10})
    assert split == "heldout_sentences"
    with pytest.raises(Exception, match="no evaluation split 'heldout_sentences'"):
        SB.load_pair_data({"name": "sst2", "eval_split": "heldout_sentences"}, {**cfg, "max_train_samples": 10})
    from pathlib import Path

    smoke = Path(__file__).resolve().parents[2] / "recipes" / "smoke" / "benchmark.yaml"
    assert yaml.safe_load(smoke.read_text(encoding="utf-8"))["datasets"][0]["config"] == "sentences_heldout"

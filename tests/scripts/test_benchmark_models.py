"""The sentiment benchmark (`affectlab.sentiment_benchmark`, behind scripts/benchmark_models.py and `affectlab
benchmark`) end to end on tiny random BERT / GPT-2 models and a few hundred SST-2 rows: one leaderboard result
per pair, resume skips finished pairs, ranked report with plots, device refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from affectlab import sentiment_benchmark as benchmark_models
from affectlab.benchmark import DeviceOptionError


def recipe(tmp_path) -> Path:
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump({
        "models": ["tiny-bert", "tiny-gpt2"],
        "datasets": [{"name": "sst2", "max_train_samples": 256, "max_eval_samples": 200, "balanced": True}],
        "output_dir": str(tmp_path / "out"), "n_boot": 100, "speed_texts": 32,
        "training": {"per_device_train_batch_size": 16, "max_length": 32},
        "speed": {"warmup": 2, "min_iterations": 10, "min_seconds": 0.1, "batch_size": 8, "repeats": 2},
    }))
    return path


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, data_root):
    tmp = tmp_path_factory.mktemp("bench")
    cfg = recipe(tmp)
    return tmp, cfg, benchmark_models.main(["--config", str(cfg)])


def result_files(out: Path) -> list[Path]:
    return sorted((out / "results").glob("*/*/results_*.json"))


def test_each_pair_writes_a_leaderboard_result(first_run):
    tmp, _, res = first_run
    assert res["ran"] == [("tiny-bert", "sst2"), ("tiny-gpt2", "sst2")] and res["skipped"] == []
    files = result_files(tmp / "out")
    assert [f.parent.name for f in files] == ["tiny-bert", "tiny-gpt2"]
    for f in files:
        rec = json.loads(f.read_text())
        assert rec["schema"] == "affectlab.result/1" and rec["dataset"]["split"] == "train_heldout"
        t, p = np.asarray(rec["predictions"]["y_true"]), np.asarray(rec["predictions"]["y_pred"])
        assert len(t) == 200 and np.bincount(t).tolist() == [100, 100]  # balanced evaluation subsample
        assert rec["metrics"]["accuracy"] == pytest.approx(np.mean(t == p))
        bench = rec["benchmark"]
        ci = bench["ci"]["accuracy"]
        assert ci["ci_low"] <= rec["metrics"]["accuracy"] <= ci["ci_high"]
        speed = bench["speed"]
        assert len(speed["latency_runs"]) == 2 and all(r["n"] >= 10 for r in speed["latency_runs"])
        assert speed["throughput"]["samples_s"] > 0 and speed["memory"]["peak_rss_mb"] > 0
        assert bench["train_rows"] == 256 and bench["train_time_s"] > 0
        assert ("ttft" in speed) == (bench["family"] == "decoder")
    gpt2 = json.loads(files[1].read_text())["benchmark"]
    assert gpt2["method"] == "lora" and gpt2["trainable_params"] < gpt2["params"]
    # the leaderboard reads these records
    from affectlab import leaderboard
    from affectlab.results import load_results

    tables = leaderboard.build_tables(load_results(str(tmp / "out" / "results")), n_boot=50)
    table = tables[("sentiment", "sst2", "train_heldout")]
    assert sorted(table["model"]) == ["local/tiny-bert", "local/tiny-gpt2"]


def test_report_ranking_and_plots(first_run):
    tmp, _, res = first_run
    out = tmp / "out"
    report = (out / "report_sst2.md").read_text()
    assert "## Ranking" in report and "McNemar" in report and "Pareto front" in report
    for png in ("sst2_accuracy_vs_latency.png", "sst2_f1_ci.png", "sst2_latency.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    summary = json.loads((out / "summary_sst2.json").read_text())
    ranking = summary["ranking"]
    unstable = [r["model"] for r in ranking if max(r["latency_p50_runs_ms"]) > 1.1 * min(r["latency_p50_runs_ms"])]
    assert [u.split(" ")[0] for u in summary["latency_unstable"]] == unstable
    assert ("UNSTABLE" in report) == bool(unstable)
    assert [r["rank"] for r in ranking] == sorted(r["rank"] for r in ranking)
    # the headline is by quality (overlapping CIs tie, then the faster first); the composite stays beside it
    assert summary["rank_by"] == "quality"
    assert [r["quality_rank"] for r in ranking] == [r["rank"] for r in ranking]
    first, second = ranking[0], ranking[1]
    if first["rank"] == second["rank"]:
        assert first["latency_p50_ms"] <= second["latency_p50_ms"]
    else:
        assert first["ci"]["accuracy"]["ci_low"] > second["ci"]["accuracy"]["ci_high"]
    # (two models min-max normalised can tie on the composite when speed is noisy: ties share the better rank)
    composite = sorted(r["composite_rank"] for r in ranking)
    assert composite in ([1, 2], [1, 1]) and all(r["composite"] is not None for r in ranking)
    assert (composite == [1, 1]) == (abs(ranking[0]["composite"] - ranking[1]["composite"]) <= 1e-12)
    assert "composite (rank)" in report and "Ranked by accuracy" in report
    test = summary["tests"][0]
    pairs = {r["model"]: r for r in res["rankings"]["sst2"]}
    a, b = pairs[test["model_a"]], pairs[test["model_b"]]
    ya, yb, y = np.asarray(a["y_pred"]), np.asarray(b["y_pred"]), np.asarray(a["y_true"])
    assert test["b"] == int(np.sum((ya == y) & (yb != y))) and test["c"] == int(np.sum((ya != y) & (yb == y)))
    assert test["acc_diff"] == pytest.approx(a["accuracy"] - b["accuracy"])


def test_resume_skips_finished_pairs(first_run):
    tmp, cfg, _ = first_run
    before = result_files(tmp / "out")
    again = benchmark_models.main(["--config", str(cfg)])
    assert again["ran"] == [] and again["skipped"] == [("tiny-bert", "sst2"), ("tiny-gpt2", "sst2")]
    assert result_files(tmp / "out") == before
    assert (tmp / "out" / "report_sst2.md").is_file()


def test_qlora_on_cpu_is_refused_before_anything_runs(tmp_path):
    cfg = recipe(tmp_path)
    with pytest.raises(DeviceOptionError, match="'qlora'.*refused on cpu"):
        benchmark_models.main(["--config", str(cfg), "--method", "qlora", "--device", "cpu"])
    with pytest.raises(DeviceOptionError, match="bfloat16 is refused on CPU"):
        benchmark_models.main(["--config", str(cfg), "--dtype", "bfloat16", "--device", "cpu"])
    assert not (tmp_path / "out" / "pairs").exists()


def test_registry_has_the_seed_models():
    models = benchmark_models.load_registry("recipes/models.yaml")
    hub = {m["hub_id"] for m in models.values() if "hub_id" in m}
    assert len(hub) == 18 and {"prajjwal1/bert-tiny", "microsoft/Phi-3-mini-4k-instruct", "google/gemma-2-2b"} <= hub
    assert {"minilm", "tiny-bert", "tiny-gpt2"} <= set(models)
    assert all(m["params"] > 1e6 for m in models.values() if "hub_id" in m)


def test_parquet_or_hub_dataset_columns_and_balanced_subsample(tmp_path):
    import datasets

    feats = datasets.Features({"review": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    for split, n in (("train", 90), ("test", 30)):
        rows = {"review": [f"{split} review {i}" for i in range(n)], "label": [int(i % 3 == 0) for i in range(n)]}
        (tmp_path / "data").mkdir(exist_ok=True)
        datasets.Dataset.from_dict(rows, features=feats).to_parquet(str(tmp_path / "data" / f"{split}.parquet"))
    ds_cfg = {"name": "toy", "source": str(tmp_path), "label_column": "label", "text_column": "review",
              "eval_split": "test", "max_train_samples": 40, "balanced": True}
    cfg = {"max_train_samples": None, "max_eval_samples": None, "seed": 0}
    train, evaluation, names, split = benchmark_models.load_pair_data(ds_cfg, cfg)
    assert names == ["neg", "pos"] and split == "test" and len(evaluation) == 30
    assert len(train) == 40 and sorted(train["labels"]) == [0] * 20 + [1] * 20  # 30 positives available, 20 taken
    assert train[0]["text"].startswith("train review")
    with pytest.raises(ValueError, match="needs 40 rows of class 1, the split has 30"):
        benchmark_models.load_pair_data({**ds_cfg, "max_train_samples": 80}, cfg)


def test_model_entries_name_a_method_and_learning_rate_per_run():
    registry = benchmark_models.load_registry("recipes/models.yaml")
    entries = benchmark_models.model_entries(
        ["minilm", "tiny-gpt2:full", {"model": "tiny-gpt2", "method": "lora", "learning_rate": 3e-4}], registry)
    assert [name for name, _ in entries] == ["minilm", "tiny-gpt2-full", "tiny-gpt2"]
    full, lora = entries[1][1], entries[2][1]
    assert full["method"] == "full" and full["registry_method"] == "lora" and full["registry_name"] == "tiny-gpt2"
    assert lora["method"] == "lora" and lora["entry_learning_rate"] == 3e-4 and "registry_method" not in lora
    # --method overrides every entry
    assert {s["method"] for _, s in benchmark_models.model_entries(["minilm", "tiny-gpt2"], registry, "lora")} == {"lora"}
    from affectlab.errors import ArgumentError

    for bad, message in ((["tiny-gpt2:int4"], "method must be full, lora or qlora"),
                         ([{"model": "tiny-gpt2", "lr": 1e-4}], "unknown key"),
                         (["nope"], "not in the registry"),
                         (["tiny-gpt2:full", {"model": "tiny-gpt2", "method": "full"}], "listed twice")):
        with pytest.raises(ArgumentError, match=message):
            benchmark_models.model_entries(bad, registry)


def test_one_decoder_fine_tuned_in_full_and_with_lora_in_one_sweep(tmp_path, data_root):
    cfg = recipe(tmp_path)
    spec = yaml.safe_load(cfg.read_text())
    spec["models"] = ["tiny-gpt2", {"model": "tiny-gpt2", "method": "full", "learning_rate": 5e-4}]
    spec["datasets"][0].update(max_train_samples=64, max_eval_samples=40)
    cfg.write_text(yaml.safe_dump(spec))
    res = benchmark_models.main(["--config", str(cfg)])
    assert res["ran"] == [("tiny-gpt2", "sst2"), ("tiny-gpt2-full", "sst2")]
    records = {json.loads(f.read_text())["benchmark"]["model"]: json.loads(f.read_text())
               for f in result_files(tmp_path / "out")}
    lora, full = records["tiny-gpt2"]["benchmark"], records["tiny-gpt2-full"]["benchmark"]
    assert lora["method"] == "lora" and full["method"] == "full"
    assert full["trainable_params"] == full["params"] > lora["trainable_params"]  # every weight trains in full
    assert records["tiny-gpt2-full"]["model"]["base_model"] == records["tiny-gpt2"]["model"]["base_model"]
    assert "ttft" in full["speed"]
    report = (tmp_path / "out" / "report_sst2.md").read_text()
    assert "tiny-gpt2-full" in report and "| full |" in report

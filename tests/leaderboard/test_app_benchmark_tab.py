"""The leaderboard app's sentiment-benchmark tab reads the summaries of scripts/benchmark_models.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]


def app_module():
    spec = importlib.util.spec_from_file_location("leaderboard_app", REPO / "leaderboard" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(model, rank, acc, lo, hi, f1, p50, p99, thr, comp):
    return {"dataset": "sst2", "model": model, "rank": rank, "method": "full", "accuracy": acc, "composite": comp,
            "latency_p50_ms": p50, "latency_p99_ms": p99, "throughput": thr,
            "ci": {"accuracy": {"value": acc, "ci_low": lo, "ci_high": hi}, "macro_f1": {"value": f1}}}


def test_benchmark_frame_and_tab(tmp_path):
    summary = {"ranking": [row("tiny-bert", 1, 0.8472, 0.8387, 0.8558, 0.8464, 0.477, 0.82, 21138.8, 0.895),
                           row("minilm", 2, 0.9117, 0.9044, 0.9183, 0.9110, 5.988, 10.94, 198.5, 0.600)],
               "pareto_front": ["tiny-bert", "minilm"], "tests": [], "latency_unstable": []}
    (tmp_path / "summary_sst2.json").write_text(json.dumps(summary))
    app = app_module()
    frame = app.load_benchmark_frame(str(tmp_path))
    assert list(frame.columns) == app.BENCH_COLUMNS
    assert frame["model"].tolist() == ["tiny-bert", "minilm"] and frame["rank"].tolist() == [1, 2]
    assert frame.loc[1, "accuracy 95% CI"] == "[0.9044, 0.9183]" and frame.loc[1, "p50 ms"] == 5.988
    assert frame["pareto"].tolist() == ["yes", "yes"]
    assert app.load_benchmark_frame(None).empty
    leaderboard = pd.DataFrame({c: [] for c in app.SHOWN}).assign(task=[], dataset=[])
    blocks = app.build_app(leaderboard, frame)
    assert any(getattr(c, "elem_id", None) == "benchmark-table" for c in blocks.blocks.values())

"""The benchmark headline on the board (leaderboard/app.py `benchmark_ranks`): where speed was measured, models
whose 95% CIs overlap share a rank (`=1`) and are listed faster first, while the gap and the paired test stay
against the best value; tables without speed keep their rank by value. Also the shown number formats
(parameters, speed, a base model's parameter count when the record has none, the subset note)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def bench_table(values, cis, latencies, group=1):
    rows = []
    order = np.argsort(-np.asarray(values), kind="stable")
    for rank, i in enumerate(order, 1):
        rows.append({"group": group, "rank": rank, "model": f"m{i}", "metric": "accuracy", "value": values[i],
                     "ci_low": cis[i][0], "ci_high": cis[i][1], "latency_p50_ms": latencies[i],
                     "margin_to_leader": values[order[0]] - values[i], "p_vs_leader": None if rank == 1 else 0.2,
                     "significant": None if rank == 1 else False})
    return pd.DataFrame(rows)


def test_overlapping_cis_tie_and_the_faster_model_is_listed_first(app_module):
    # m0 best (slow), m1 overlaps it (fast), m2 clearly worse (fastest)
    df = bench_table([0.90, 0.88, 0.60], [(0.87, 0.93), (0.85, 0.91), (0.55, 0.65)], [20.0, 2.0, 1.0])
    out = app_module.benchmark_ranks(df)
    assert list(out["model"]) == ["m1", "m0", "m2"]
    assert list(out["rank"]) == [1, 1, 3] and list(out["tied"]) == [True, True, False]
    assert list(out["value_rank"]) == [2, 1, 3]
    out["tab"], out["path"], out["revision"], out["base_model"] = "sentiment", None, "", None
    for col in ("params", "seeds", "hardware", "date", "note", "throughput", "ttft_p50_ms", "rows", "method"):
        out[col] = None
    shown = app_module.display_frame(out)
    assert list(shown["Rank"]) == ["=1", "=1", "3"]
    assert list(shown["Δ to #1"]) == ["−0.0200", "—", "−0.3000"]   # against the best value, not the first row
    assert list(shown["vs #1"]) == ["n.s. (p=0.200)", "—", "n.s. (p=0.200)"]


def test_without_speed_or_without_overlap_the_rank_is_by_value(app_module):
    no_speed = bench_table([0.90, 0.88], [(0.87, 0.93), (0.85, 0.91)], [None, None])
    out = app_module.benchmark_ranks(no_speed)
    assert list(out["model"]) == ["m0", "m1"] and list(out["rank"]) == [1, 2] and not out["tied"].any()
    apart = bench_table([0.90, 0.70], [(0.87, 0.93), (0.65, 0.75)], [20.0, 1.0])
    out = app_module.benchmark_ranks(apart)
    assert list(out["model"]) == ["m0", "m1"] and list(out["rank"]) == [1, 2]


def test_number_formats(app_module):
    assert [app_module.fmt_params(n) for n in (999_138, 1_006_336, 103_874, 22_713_216, 2.6e9)] == \
        ["1.00M", "1.01M", "104K", "22.7M", "2.60B"]
    assert [app_module.fmt_speed(v, 2) for v in (353.83, 12.345, 5.99)] == ["354", "12.3", "5.99"]
    assert app_module.fmt_speed(1881.4, 0) == "1,881" and app_module.fmt_metric(-0.16313, 4) == "−0.1631"
    assert app_module.split_size("the official dev split (5,426 comments)") == 5426
    assert app_module.split_size("config x: 872 full sentences sampled (seed 1337) from train") == 872
    assert app_module.split_size("as published") is None


def test_base_model_params_and_subset_note(app_module, board):
    params = app_module.registry_params()
    assert params["sentence-transformers/all-MiniLM-L6-v2"] == 22_700_000 and params["minilm"] == 22_700_000
    df = board.tables[board.by_tab["emotions"][0]]
    text = app_module.protocol_markdown(df, board)
    assert "**evaluated rows** 300 (`sha256:" in text and "a subset of the split's 5,426" in text
    row = df.iloc[[0]].copy()
    row["params"], row["base_params"] = None, 22_700_000
    assert app_module.display_frame(row).iloc[0]["Params"] == "≈22.7M"

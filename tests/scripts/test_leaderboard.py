"""Leaderboard (`affectlab.leaderboard`) from a local results folder: records land without overwriting, metrics
are recomputed from the stored predictions (class ids, 0/1 rows, regression values, per-example scores),
bootstrap CIs match the normal approximation, ranks follow the metric direction and only rows evaluated on the
same rows are ranked together, the leader's margin is significant only when it should be (paired, same rows),
`local/` models get no Hub link, and the exports agree."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]

from affectlab import leaderboard  # noqa: E402
from affectlab.results import fingerprint_rows, load_results, result_record, save_result  # noqa: E402

N = 400
RNG = np.random.default_rng(7)
Y = RNG.integers(0, 3, N)
ROWS = [{"text": f"t{i}", "label": int(y)} for i, y in enumerate(Y)]


def preds(n_wrong: int, offset: int = 0) -> np.ndarray:
    p = Y.copy()
    wrong = (np.arange(n_wrong) + offset) % N
    p[wrong] = (p[wrong] + 1) % 3
    return p


def record(model, y_pred, y_true=Y, rows=ROWS, task="sentiment", metric="accuracy", when=None, **kw):
    acc = float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))
    return result_record(model_repo=model, revision="a" * 40, task=task, dataset="tweet_eval", split="test",
                         metrics={metric: acc, **kw.pop("extra", {})}, y_true=y_true, y_pred=y_pred,
                         dataset_rows=rows, seed=0, config={"lr": 2e-5}, primary_metric=metric, date=when, **kw)


@pytest.fixture()
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_doNotLeakThisToken123456")
    root = tmp_path / "results"
    save_result(record("org/strong", preds(40)), root)            # 0.900
    save_result(record("org/close", preds(44, offset=40)), root)   # 0.890, 4 more errors than the leader
    save_result(record("org/weak", preds(200)), root)             # 0.500
    other_rows = [{"text": f"other{i}", "label": int(y)} for i, y in enumerate(Y)]
    save_result(record("org/elsewhere", preds(100), rows=other_rows), root)  # evaluated on other rows
    ml_true = RNG.integers(0, 2, (60, 4))
    ml_a = ml_true.copy(); ml_a[:6, 0] ^= 1
    ml_b = ml_true.copy(); ml_b[:30, :2] ^= 1
    from sklearn.metrics import hamming_loss

    for name, p in (("org/ml-good", ml_a), ("org/ml-bad", ml_b)):
        save_result(result_record(model_repo=name, revision=None, task="emotions", dataset="goemotions", split="test",
                                  metrics={"hamming_loss": hamming_loss(ml_true, p)}, y_true=ml_true, y_pred=p,
                                  dataset_rows=ml_true.tolist()), root)
    return root


def test_records_never_overwrite_and_carry_provenance(tmp_path):
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)
    rec = record("org/m", preds(10), when=when)
    a, b = save_result(rec, tmp_path), save_result(rec, tmp_path)
    assert a != b and Path(a).name == "results_2026-01-02T03-04-05.678901Z.json"
    assert Path(a).parent == tmp_path / "org" / "m" and Path(b).name == "results_2026-01-02T03-04-05.678902Z.json"
    saved = json.loads(Path(a).read_text())
    assert saved["dataset"]["fingerprint"] == fingerprint_rows(ROWS) and saved["dataset"]["num_rows"] == N
    assert saved["model"]["revision"] == "a" * 40 and saved["seed"] == 0 and saved["config_hash"].startswith("sha256:")
    assert {"torch", "transformers", "huggingface_hub", "python"} <= set(saved["versions"])
    assert "cpu_count" in saved["hardware"] and saved["date"].startswith("2026-01-02T03:04:05")
    assert fingerprint_rows(ROWS[:-1]) != fingerprint_rows(ROWS)
    assert len(load_results(tmp_path)) == 2
    assert not list(tmp_path.rglob(".*"))  # no temp files left behind


def test_tables_ci_rank_and_significance(results_dir):
    tables = leaderboard.build_tables(load_results(results_dir), n_boot=2000, seed=0)
    assert set(tables) == {("sentiment", "tweet_eval", "test"), ("emotions", "goemotions", "test")}
    df = tables[("sentiment", "tweet_eval", "test")]
    # org/elsewhere was evaluated on other rows: listed apart (group 2), ranked on its own, not among the others
    assert list(df["model"]) == ["org/strong", "org/close", "org/weak", "org/elsewhere"]
    assert list(df["group"]) == [1, 1, 1, 2] and list(df["rank"]) == [1, 2, 3, 1]
    assert np.allclose(df["value"], [0.9, 0.89, 0.5, 0.75])
    for r in df.itertuples():  # percentile bootstrap ~ normal approximation for a proportion
        half = 1.96 * np.sqrt(r.value * (1 - r.value) / N)
        assert r.ci_low <= r.value <= r.ci_high
        assert abs((r.ci_high - r.ci_low) / 2 - half) < 0.01
    by = df.set_index("model")
    assert pd.isna(by.loc["org/strong", "p_vs_leader"])
    assert by.loc["org/weak", "significant"] is True and by.loc["org/weak", "p_vs_leader"] < 0.001
    assert by.loc["org/close", "significant"] is False and by.loc["org/close", "p_vs_leader"] > 0.05
    assert pd.isna(by.loc["org/elsewhere", "p_vs_leader"])  # different rows: no paired test
    assert np.isclose(by.loc["org/weak", "margin_to_leader"], 0.4)
    ml = tables[("emotions", "goemotions", "test")]
    assert list(ml["model"]) == ["org/ml-good", "org/ml-bad"]  # hamming loss: lower is better
    assert ml["value"].iloc[0] < ml["value"].iloc[1] and bool(ml["significant"].iloc[1])


def test_stored_metric_must_match_predictions(tmp_path):
    rec = record("org/liar", preds(40))
    rec["metrics"]["accuracy"] = 0.99
    save_result(rec, tmp_path)
    with pytest.raises(ValueError, match="stored accuracy=0.99"):
        leaderboard.build_tables(load_results(tmp_path), n_boot=10)
    # not strict (the app, the CLI): the recomputed value is ranked and the row says why it differs (the nli
    # family stores the mean over CV folds beside the pooled out-of-fold predictions)
    row = leaderboard.build_tables(load_results(tmp_path), n_boot=10, strict=False)[("sentiment", "tweet_eval", "test")].iloc[0]
    assert row.value == pytest.approx(0.9) and row.stored_value == 0.99
    assert row.note.startswith("the record stores accuracy = 0.99 but its per-example predictions give 0.9")


def test_unscorable_records_are_left_out_unless_strict(tmp_path):
    save_result(record("org/fine", preds(40)), tmp_path)
    usable = np.array([1.0, 0.0, 1.0, 1.0])
    llm = result_record(model_repo="org/llm", revision=None, task="llm", dataset="emobank", split="validation",
                        metrics={"usable_rate": 0.75}, scores={"usable": usable, "abs_error": usable},
                        primary_metric="usable_rate", family="sft", task_type="text-generation")
    save_result(llm, tmp_path)  # the rate is the mean of the per-example 0/1 `usable`
    broken = record("org/broken", preds(40), task="llm")
    broken["task"]["primary_metric"] = "usable_rate"
    broken["metrics"]["usable_rate"] = 0.5
    save_result(broken, tmp_path)  # no per-example values for its metric
    with pytest.raises(KeyError, match="'usable_rate'"):
        leaderboard.build_tables(load_results(tmp_path), n_boot=10)
    skipped = []
    tables = leaderboard.build_tables(load_results(tmp_path), n_boot=10, strict=False, skipped=skipped)
    llm_table = tables[("llm", "emobank", "validation")]
    assert list(llm_table["model"]) == ["org/llm"] and llm_table["value"].iloc[0] == 0.75
    assert len(skipped) == 1 and skipped[0][0].startswith("org/broken/") and "usable_rate" in skipped[0][1]
    assert ("sentiment", "tweet_eval", "test") in tables and ("llm", "tweet_eval", "test") not in tables


def test_cli_exports_markdown_csv_html(results_dir, tmp_path):
    out = tmp_path / "board"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "leaderboard.py"), "--results", str(results_dir),
                           "--out", str(out), "--n-boot", "300", "--hub-url", "http://hub.example"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    csv = pd.read_csv(out / "leaderboard.csv")
    assert len(csv) == 6 and set(csv["task"]) == {"sentiment", "emotions"}
    md = (out / "leaderboard.md").read_text()
    assert "## sentiment — tweet_eval (test), accuracy" in md and "| 1 | org/strong |" in md
    page = (out / "leaderboard.html").read_text()
    assert "href='http://hub.example/org/strong/tree/aaaaaaaaaaaa'" in page and page.count("<tr class='row'") == 6
    for f in [*results_dir.rglob("*.json"), *out.iterdir()]:
        assert "hf_doNotLeakThisToken123456" not in f.read_text()


def test_regression_record_pearson_ci_rank_and_significance(tmp_path):
    from scipy import stats as sps

    rng = np.random.default_rng(3)
    y = rng.normal(size=(120, 2))
    rows = [{"i": i} for i in range(len(y))]
    preds = {"org/reg-good": y + 0.3 * rng.normal(size=y.shape), "org/reg-bad": y + 1.5 * rng.normal(size=y.shape)}
    for name, p in preds.items():
        r = float(np.mean([np.corrcoef(p[:, j], y[:, j])[0, 1] for j in range(2)]))
        save_result(result_record(model_repo=name, revision=None, task="vad", dataset="emobank", split="test",
                                  metrics={"macro_pearson": r, "macro_mae": float(np.abs(p - y).mean())},
                                  y_true=y, y_pred=p, dataset_rows=rows, family="regression",
                                  primary_metric="macro_pearson", task_type="text-regression"), tmp_path)
    df = leaderboard.build_tables(load_results(tmp_path), n_boot=1000, seed=0)[("vad", "emobank", "test")]
    assert list(df["model"]) == ["org/reg-good", "org/reg-bad"] and list(df["rank"]) == [1, 2]
    assert set(df["family"]) == {"regression"} and df["metric"].iloc[0] == "macro_pearson"
    good = df.iloc[0]
    assert good.value == pytest.approx(np.mean([np.corrcoef(preds["org/reg-good"][:, j], y[:, j])[0, 1] for j in range(2)]))
    # the CI is scipy's percentile bootstrap of the same statistic over resampled examples
    ref = sps.bootstrap((np.arange(len(y)),), lambda i: np.mean([np.corrcoef(preds["org/reg-good"][i, j], y[i, j])[0, 1]
                                                                  for j in range(2)]),
                        vectorized=False, n_resamples=1000, method="percentile", rng=np.random.default_rng(0))
    assert (good.ci_low, good.ci_high) == pytest.approx(tuple(ref.confidence_interval), abs=1e-9)
    assert good.ci_low < good.value < good.ci_high
    assert df.iloc[1].p_vs_leader < 0.001 and df.iloc[1].significant is True
    # lower is better for MAE: ranked the other way round
    records = load_results(tmp_path)
    for rec in records:
        rec["task"]["primary_metric"] = "macro_mae"
    mae = leaderboard.build_tables(records, n_boot=200)[("vad", "emobank", "test")]
    assert list(mae["model"]) == ["org/reg-good", "org/reg-bad"] and mae["value"].iloc[0] < mae["value"].iloc[1]


def test_scores_record_mean_ci_and_local_models_without_links(tmp_path):
    from scipy import stats as sps

    rng = np.random.default_rng(5)
    n = 150
    rows = [{"id": f"q{i}"} for i in range(n)]
    f1 = {"org/qa-strong": np.clip(rng.normal(80, 20, n), 0, 100), "local/qa-run": np.clip(rng.normal(60, 25, n), 0, 100)}
    for name, v in f1.items():
        exact = (v > 70).astype(float) * 100
        save_result(result_record(model_repo=name, revision=None, task="evidence", dataset="redsm5", split="test",
                                  metrics={"f1": float(v.mean()), "exact": float(exact.mean())},
                                  scores={"f1": v, "exact": exact}, dataset_rows=rows, family="span-qa",
                                  primary_metric="f1", task_type="question-answering"), tmp_path)
    save_result(result_record(model_repo="org/qa-subset", revision=None, task="evidence", dataset="redsm5", split="test",
                              metrics={"f1": 50.0}, scores={"f1": [50.0, 40.0, 60.0]}, dataset_rows=rows[:3],
                              primary_metric="f1"), tmp_path)
    tables = leaderboard.build_tables(load_results(tmp_path), n_boot=1000, seed=0)
    df = tables[("evidence", "redsm5", "test")]
    assert list(df["model"]) == ["org/qa-strong", "local/qa-run", "org/qa-subset"]
    assert list(df["group"]) == [1, 1, 2] and list(df["rank"]) == [1, 2, 1]
    strong = df.iloc[0]
    assert strong.value == pytest.approx(f1["org/qa-strong"].mean()) and strong.n == n
    ref = sps.bootstrap((f1["org/qa-strong"],), np.mean, n_resamples=1000, method="percentile",
                        rng=np.random.default_rng(0))
    assert (strong.ci_low, strong.ci_high) == pytest.approx(tuple(ref.confidence_interval), abs=1e-9)
    assert df.iloc[1].significant is True and pd.isna(df.iloc[2].p_vs_leader)  # other rows: no paired test
    page = leaderboard.to_html(tables, "http://hub.example")
    assert "href='http://hub.example/org/qa-strong'" in page
    assert "local/qa-run" in page and "hub.example/local" not in page
    md = leaderboard.to_markdown(tables)
    assert "Evaluated on other rows" in md and "| 1 | org/qa-subset |" in md


# ---------------------------------------------------------------------------------------------------------
# what the app shows beside the metric: tabs, protocol, metadata, speed, per-label scores, submissions
# ---------------------------------------------------------------------------------------------------------
def test_family_tab_protocol_metadata_and_speed():
    sentiment = record("org/s", preds(10), extra={"macro_f1": 0.5}, family="classifier")
    assert leaderboard.family_tab(sentiment) == "sentiment"
    assert leaderboard.threshold_policy(sentiment) == "argmax"
    emo = result_record(model_repo="org/e", revision=None, task="emotion-multilabel", dataset="goemotions",
                        split="validation", metrics={"macro_f1": 0.5, "macro_f1_at_global_threshold": 0.4},
                        y_true=[[0, 1], [1, 0]], y_pred=[[0, 1], [1, 1]], family="classifier")
    assert leaderboard.family_tab(emo) == "emotions"
    assert leaderboard.threshold_policy(emo) == "per-label, tuned on validation (optimistic on this split)"
    emo["dataset"]["split"] = "test"
    assert leaderboard.threshold_policy(emo) == "per-label, tuned on validation"
    emo["protocol"] = {"threshold_policy": "global 0.3"}
    assert leaderboard.threshold_policy(emo) == "global 0.3"
    for family, task, kind, tab in (("nli", "dsm5-criterion-matching", "text-classification", "criterion-matching"),
                                    ("span-qa", "evidence-span-extraction", "question-answering", "evidence-spans"),
                                    ("regression", "emotion-regression", "text-classification", "persona-regression"),
                                    ("sft", "emotion-regression-llm", "text-generation", "llm-sft"),
                                    (None, "evidence", "question-answering", "evidence-spans"),
                                    (None, "emotion-regression-llm", "text-generation", "llm-sft"),
                                    (None, "something", "fill-mask", "other")):
        rec = {"task": {"family": family, "name": task, "type": kind}, "dataset": {"name": "x"}}
        assert leaderboard.family_tab(rec) == tab, (family, task)
    # hardware, parameters and speed as the sentiment benchmark writes them
    bench = dict(sentiment, hardware={"cpu_count": 16, "cuda": True, "gpus": ["NVIDIA H100 80GB HBM3"]})
    bench["benchmark"] = {"device": "cuda", "dtype": "bfloat16", "params": 22_713_216, "speed": {
        "latency_runs": [{"p50_ms": 1.5, "p99_ms": 3.0}, {"p50_ms": 1.6, "p99_ms": 3.1}],
        "throughput": {"samples_s": 900.0, "tokens_s": 18000.0}, "ttft": {"p50_ms": 7.0},
        "memory": {"peak_rss_mb": 2000.0, "cuda_max_allocated_mb": 512.0}}}
    assert leaderboard.hardware_label(bench) == "1× H100 80GB (bfloat16)"
    assert leaderboard.params_of(bench) == 22_713_216 and leaderboard.params_of(sentiment) is None
    assert leaderboard.speed_of(bench) == {"latency_p50_ms": 1.5, "latency_p99_ms": 3.0, "throughput": 900.0,
                                           "tokens_s": 18000.0, "ttft_p50_ms": 7.0, "peak_memory_mb": 512.0}
    assert leaderboard.speed_of({"speed": {"latency_p50_ms": 2, "throughput": 10}}) == {"latency_p50_ms": 2.0,
                                                                                        "throughput": 10.0}
    assert leaderboard.hardware_label({"hardware": {"cpu_count": 2}}) == "CPU ×2"


def test_tables_carry_metadata_seeds_and_speed(tmp_path):
    for seed in (1, 2, 3):
        save_result(record("org/strong", preds(40)) | {"seed": seed}, tmp_path)
    save_result(record("local/weak", preds(100), base_model="org/base", method="lora"), tmp_path)
    df = leaderboard.build_tables(load_results(tmp_path), n_boot=50)[("sentiment", "tweet_eval", "test")]
    by = df.set_index("model")
    assert by.loc["org/strong", "seeds"] == 3 and by.loc["local/weak", "seeds"] == 1
    assert by.loc["org/strong", "revision_full"] == "a" * 40 and by.loc["org/strong", "tab"] == "sentiment"
    assert by.loc["local/weak", "method"] == "lora" and by.loc["local/weak", "base_model"] == "org/base"
    assert by.loc["org/strong", "fingerprint"] == fingerprint_rows(ROWS) and by.loc["org/strong", "threshold_policy"] == "argmax"
    assert pd.isna(by.loc["org/strong", "latency_p50_ms"]) and "hardware" in df.columns
    assert leaderboard.tables_by_tab({("sentiment", "tweet_eval", "test"): df})["sentiment"] == [("sentiment", "tweet_eval", "test")]


def test_per_label_scores_and_pareto():
    from scipy.stats import pearsonr
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    t = (rng.random((200, 3)) < 0.3).astype(int)
    p = np.where(rng.random(t.shape) < 0.15, 1 - t, t)
    rec = result_record(model_repo="org/m", revision=None, task="emotions", dataset="d", split="test",
                        metrics={"macro_f1": 0.0}, y_true=t, y_pred=p, label_names=["a", "b", "c"])
    scores = leaderboard.per_label_scores(rec, n_boot=200).set_index("label")
    for j, name in enumerate("abc"):
        assert scores.loc[name, "value"] == pytest.approx(f1_score(t[:, j], p[:, j]))
        assert scores.loc[name, "ci_low"] < scores.loc[name, "value"] < scores.loc[name, "ci_high"]
        assert scores.loc[name, "support"] == t[:, j].sum()
    single = record("org/s", preds(60), label_names=["neg", "neu", "pos"])
    ovr = leaderboard.per_label_scores(single, n_boot=50).set_index("label")
    p1 = preds(60)
    assert ovr.loc["pos", "value"] == pytest.approx(f1_score(Y == 2, p1 == 2))
    y = rng.normal(size=(80, 2))
    reg = result_record(model_repo="org/r", revision=None, task="vad", dataset="d", split="test", metrics={"macro_pearson": 0},
                        y_true=y, y_pred=y + rng.normal(size=y.shape), label_names=["V", "A"])
    dims = leaderboard.per_label_scores(reg, n_boot=50).set_index("label")
    assert dims.loc["V", "value"] == pytest.approx(pearsonr(np.asarray(reg["predictions"]["y_pred"])[:, 0], y[:, 0])[0])
    qa = result_record(model_repo="org/q", revision=None, task="qa", dataset="d", split="test", metrics={"f1": 1.0},
                       scores={"f1": [1.0, 1.0]})
    assert leaderboard.per_label_scores(qa) is None
    # Pareto: max quality, min cost; rows without a cost are left out; lower-is-better quality flips
    assert leaderboard.pareto_indices([0.9, 0.8, 0.85, 0.7, 0.95], [10, 5, 20, 6, None]) == [1, 0]
    assert leaderboard.pareto_indices([0.2, 0.3], [1, 2], higher_quality=False) == [0]
    assert leaderboard.pareto_indices([0.9, 0.8], [100, 900], lower_cost=False) == [1, 0]


def test_validate_record_says_what_is_wrong(tmp_path):
    good = record("org/new", preds(30))
    board = [record("org/strong", preds(40))]
    known = leaderboard.known_fingerprints(board)
    assert known == {("sentiment", "tweet_eval", "test"): {fingerprint_rows(ROWS)}}
    assert leaderboard.validate_record(good, known, board) == []
    assert leaderboard.validate_record({"schema": "x"})[0].startswith("schema: expected 'affectlab.result/1'")

    def errors(**changes):
        rec = json.loads(json.dumps(good))
        for path, value in changes.items():
            *parents, leaf = path.split("__")
            target = rec
            for key in parents:
                target = target[key]
            if value is KeyError:
                del target[leaf]
            else:
                target[leaf] = value
        return " | ".join(leaderboard.validate_record(rec, known, board))

    assert "model.repo_id: 'local/x' is not a model on the Hub" in errors(model__repo_id="local/x")
    assert "model.revision: 'main' is not a commit sha" in errors(model__revision="main")
    assert "task.primary_metric: 'bleu' is not a known metric" in errors(task__primary_metric="bleu")
    assert "dataset.fingerprint: 'abc' is not sha256" in errors(dataset__fingerprint="abc")
    other = fingerprint_rows([{"x": i} for i in range(N)])
    assert "are not the rows of tweet_eval (test) that sentiment results" in errors(dataset__fingerprint=other)
    assert errors(dataset__fingerprint=other, task__name="another-task") == ""  # no rows known for that task
    assert "hashes 400 rows but dataset.num_rows is 10" in errors(dataset__num_rows=10)
    assert "y_true has 400 and y_pred 3 values" in errors(predictions__y_pred=[0, 1, 2])
    assert "no per-example predictions" in errors(predictions={})
    assert "metrics.accuracy: the record says 0.5 but its predictions give 0.925" in errors(metrics__accuracy=0.5)
    assert "config_hash: missing" in errors(config_hash=None)
    assert "versions: transformers missing" in errors(versions={"python": "3.11"})
    assert "date: 'yesterday' is not an ISO 8601 date" in errors(date="yesterday")
    assert "is in the future" in errors(date="2999-01-01T00:00:00+00:00")
    assert "seed: 'x' is not an integer" in errors(seed="x")
    assert "is already on the leaderboard" in " ".join(leaderboard.validate_record(board[0], known, board))
    record_, problems = leaderboard.parse_submission(b"[1, 2]")
    assert record_ is None and "JSON object" in problems[0]
    assert "not a JSON document" in leaderboard.parse_submission(b"{")[1][0]

"""The leaderboard app's pieces without a browser (leaderboard/app.py over `board_records`): one tab per task
family and one table per dataset and split, the shown columns (CI, gap to the leader and its significance,
model metadata, speed where measured, links except for `local/` models), results on other rows listed apart,
the protocol line from the dataset builders' split metadata, filters, plots (Pareto front, CI forest, per-label
breakdown), the About text, submissions (refusals say what is wrong; a valid record opens a pull request on the
Hub emulator), and what a Space needs (front matter, requirements, no torch import to serve the board)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import board_records

REPO = Path(__file__).resolve().parents[2]


def table(board, tab, i=0):
    return board.tables[board.by_tab[tab][i]]


def test_every_family_has_its_tab_and_tables(board):
    expected = {"emotions": [("emotion-multilabel", "goemotions", "validation"),
                             ("emotion-multilabel", "semeval2018_ec", "train")],
                "sentiment": [("sentiment", "sst2", "train_heldout")],
                "criterion-matching": [("dsm5-criterion-matching", "redsm5", "test")],
                "evidence-spans": [("evidence-span-extraction", "redsm5", "validation")],
                "persona-regression": [("emotion-regression", "emobank", "validation")],
                "llm-sft": [("emotion-regression-llm", "emobank", "validation")]}
    assert {k: v for k, v in board.by_tab.items() if v} == expected
    assert len(board.records) == 18 and len(board.known) == 7


def test_shown_columns_links_significance_and_other_rows(app_module, board):
    df = table(board, "emotions")
    main, other = app_module.split_groups(df)
    shown = app_module.display_frame(main, board.hub_url)
    assert list(shown.columns) == ["Rank", "Model", "Macro F1 ↑", "95% CI", "Δ to #1", "vs #1", "Base model", "Params",
                                   "Method", "Seeds", "Mean ± sd over seeds", "Hardware", "Date", "Revision"]
    first = shown.iloc[0]
    rev = board_records.SHA["roberta"]
    assert first["Model"] == f"[org/roberta-goemotions](http://hub.example/org/roberta-goemotions/tree/{rev[:12]})"
    assert first["Base model"] == "[roberta-base](http://hub.example/FacebookAI/roberta-base)"
    assert (first["Params"], first["Method"], first["Seeds"], first["Hardware"]) == ("124.7M", "full", "2", "1× H100 80GB")
    assert first["Revision"] == f"`{rev[:7]}`" and first["vs #1"] == "—" and first["Δ to #1"] == "—"
    assert first["95% CI"].startswith("[0.") and first["Macro F1 ↑"] == f"{main['value'].iloc[0]:.4f}"
    assert all(len(v.split(".")[1]) == 4 for v in [*shown["Macro F1 ↑"], *shown["Δ to #1"][1:]])  # every row alike
    local = shown[shown["Model"] == "local/minilm-demo"].iloc[0]  # never pushed: no link, no revision
    assert local["Revision"] == "" and local["vs #1"] == "✱ p<0.001" and local["Method"] == "full"
    lora = shown.iloc[1]
    assert lora["Method"] == "LoRA" and lora["vs #1"].startswith("✱ p=")
    # the 32-row smoke evaluation is not ranked with the 300-row ones
    assert list(other["model"]) == ["org/minilm-smoke"] and int(other["n"].iloc[0]) == 32
    rest = app_module.display_frame(other, board.hub_url, other=True)
    assert rest.iloc[0]["Rows"].endswith("(32 rows)") and "vs #1" not in rest.columns
    # speed only where measured; percent-scale metrics with two decimals; no seeds column when all are 1
    sent = app_module.display_frame(table(board, "sentiment"), board.hub_url)
    assert {"p50 ms", "samples/s", "TTFT ms"} <= set(sent.columns) and "Seeds" not in sent.columns
    assert "Revision" not in sent.columns and list(sent["Model"]) == ["local/minilm", "local/tiny-bert", "local/tiny-gpt2"]
    assert list(sent["p50 ms"]) == ["5.99", "0.48", "0.41"] and list(sent["TTFT ms"]) == ["", "", "0.90"]
    assert "p50 ms" not in app_module.display_frame(table(board, "emotions"), board.hub_url).columns
    spans = app_module.display_frame(table(board, "evidence-spans"), board.hub_url)
    assert spans.columns[2] == "F1 ↑" and len(spans.iloc[0]["F1 ↑"].split(".")[1]) == 2
    assert app_module.display_frame(table(board, "persona-regression"), board.hub_url).columns[2] == "Macro Pearson r ↑"
    assert len(app_module.widths(shown)) == len(shown.columns)


def test_protocol_line_says_split_rows_thresholds_seeds_and_held_out_splits(app_module, board):
    text = app_module.protocol_markdown(table(board, "emotions"), board)
    assert "**Split** `validation` (config `simplified`)" in text and "**evaluated rows** 300 (`sha256:" in text
    assert "per-label, tuned on validation (optimistic on this split)" in text and "**seeds** 1–2 per model" in text
    assert "the official dev split (5,426 comments)" in text and "test (official, 5,427 comments)" in text
    sst2 = app_module.protocol_markdown(table(board, "sentiment"), board)
    assert "argmax" in sst2 and "1 per model" in sst2 and "not GLUE's validation set" in sst2
    assert "n/a (scored answers)" in app_module.protocol_markdown(table(board, "evidence-spans"), board)


def test_filters(app_module, board):
    df = table(board, "emotions")
    assert list(app_module.filter_rows(df, "roberta")["model"]) == ["org/roberta-goemotions"]
    assert list(app_module.filter_rows(df, "ALL-minilm")["model"]) == ["org/minilm-goemotions-lora", "local/minilm-demo",
                                                                      "org/minilm-smoke"]  # base model matches too
    assert "org/minilm-goemotions-lora" not in set(app_module.filter_rows(df, "", ["full"])["model"])
    assert app_module.filter_rows(df, "nothing-like-this").empty
    assert len(app_module.display_frame(app_module.filter_rows(df, "nothing"), board.hub_url)) == 0


def test_plots_pareto_front_forest_and_per_label(app_module, board):
    fig, note = app_module.quality_plot(table(board, "sentiment"), "p50 latency (ms, batch 1)")
    assert fig is not None and "**Pareto front**" in note
    assert note.index("local/tiny-gpt2") < note.index("local/tiny-bert") < note.index("local/minilm")
    _, note = app_module.quality_plot(table(board, "sentiment"), "throughput (samples/s)")
    assert "`local/tiny-gpt2`" in note and "`local/minilm`" in note  # fastest, and most accurate
    _, note = app_module.quality_plot(table(board, "emotions"), "parameters")
    assert "Pareto front" in note and "other rows are not plotted" in note
    fig, note = app_module.quality_plot(table(board, "llm-sft"), "p50 latency (ms, batch 1)")
    assert fig is not None and note.startswith("No p50 latency")  # the CI forest plot
    key = board.by_tab["emotions"][0]
    fig, note = app_module.label_plot(app_module._record_of(board, key, "org/roberta-goemotions"), 100)
    assert fig is not None and note.startswith("6 labels")
    fig, note = app_module.label_plot(app_module._record_of(board, board.by_tab["persona-regression"][0],
                                                            "org/minilm-emobank"), 100)
    assert fig is not None and note == "3 dimensions."
    fig, note = app_module.label_plot(app_module._record_of(board, board.by_tab["evidence-spans"][0],
                                                            "org/spanbert-redsm5-evidence"), 100)
    assert fig is None and "no per-label predictions" in note


def test_about_describes_protocols_statistics_and_splits(app_module, board):
    text = app_module.about_markdown(board)
    for title in ("Emotions", "Sentiment", "Criterion matching", "Evidence spans", "Persona regression", "LLM SFT"):
        assert f"### {title}" in text
    assert "paired bootstrap" in text and "200 resamples" in text and "fingerprint" in text
    assert "| goemotions | simplified | google-research-datasets/go_emotions | cc-by-4.0 |" in text
    assert "validation (GLUE SST-2 dev, 872 sentences)" in text and "test (official, 5,427 comments)" in text


def test_submissions_are_validated_and_refusals_say_why(app_module, board, tmp_path):
    valid = tmp_path / "valid.json"
    valid.write_text(json.dumps(board_records.submission()))
    assert "**The record is valid**" in app_module.submit(board, str(valid), None)  # no results repo configured
    broken = app_module.submit(board, None, json.dumps(board_records.submission(valid=False)))
    assert broken.startswith("✗ **The record was refused**")
    assert "model.repo_id: 'local/electra-run' is not a model on the Hub (&lt;org&gt;/&lt;name&gt;)" in broken
    assert "model.revision: None is not a commit sha" in broken
    assert "are not the rows of sst2 (train_heldout) that sentiment results on this leaderboard" in broken
    assert app_module.submit(board, None, "  ").startswith("✗ **Nothing to submit**")
    assert "not a JSON document" in app_module.submit(board, None, "{not json")
    lying = board_records.submission()
    lying["metrics"]["accuracy"] = 0.99
    assert "metrics.accuracy: the record says 0.99 but its predictions give" in app_module.submit(board, None,
                                                                                                   json.dumps(lying))
    no_preds = board_records.submission()
    no_preds["predictions"] = {}
    assert "predictions: no per-example predictions" in app_module.submit(board, None, json.dumps(no_preds))
    pushed = next(r for r in board.records if r["model"]["repo_id"] == "org/deberta-redsm5-nli")
    already = json.loads((Path(board.sources[0]) / pushed["_path"]).read_text())
    assert "is already on the leaderboard" in app_module.submit(board, None, json.dumps(already))
    token = board_records.submission()
    token["config_hash"] = "hf_" + "x" * 30
    assert "shaped like a Hugging Face token" in app_module.submit(board, None, json.dumps(token))


def test_a_valid_submission_opens_a_pull_request_on_the_hub_emulator(app_module, board, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from affectlab.testing.hub_emulator import HubEmulator

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    owner, bot = "hf_ownerToken0000000000000001", "hf_botToken000000000000000002"
    with HubEmulator(tokens={owner: "owner", bot: "lb-bot"}, orgs={"owner": ["board"]}) as hub:
        from huggingface_hub import HfApi

        HfApi(endpoint=hub.url, token=owner).create_repo("board/results", repo_type="dataset")
        board.submit_repo = "board/results"
        try:
            path = tmp_path / "record.json"
            path.write_text(json.dumps(board_records.submission()))
            message = app_module.submit(board, str(path), None, token=bot, endpoint=hub.url)
            assert message.startswith("✓ **Pull request #1 opened** on `board/results`"), message
            assert f"{hub.url}/datasets/board/results/discussions/1" in message
            repo = hub.repos[("dataset", "board/results")]
            (pr,) = repo.discussions
            assert pr.is_pr and pr.author == "lb-bot" and pr.status == "open"
            added = [p for p in repo.commits[repo.pr_refs["refs/pr/1"]].tree if p.endswith(".json")]
            assert len(added) == 1 and added[0].startswith("new-org/electra-sst2/results_")
            assert not [p for p in repo.commits[repo.branches["main"]].tree if p.endswith(".json")]  # main untouched
            queue = app_module.submissions_frame(board, token=bot, endpoint=hub.url)
            assert queue.iloc[0]["#"] == 1 and queue.iloc[0]["Author"] == "lb-bot"
            assert queue.iloc[0]["Title"] == "Submit new-org/electra-sst2 on sst2 (train_heldout)"
            # a token the Hub refuses: a clear message, the token never shown
            refused = app_module.submit(board, str(path), None, token="hf_notARealTokenAtAll000000", endpoint=hub.url)
            assert refused.startswith("✗ **Could not open the pull request**") and "notARealToken" not in refused
        finally:
            board.submit_repo = None


def test_space_files_and_light_imports(app_module, board_dir):
    readme = (REPO / "leaderboard" / "README.md").read_text()
    front = readme.split("---")[1]
    assert "sdk: gradio" in front and "sdk_version: 6.31.0" in front and "app_file: app.py" in front
    reqs = (REPO / "leaderboard" / "requirements.txt").read_text().splitlines()
    assert "gradio==6.31.0" in reqs and not any(r.startswith("torch") for r in reqs)
    makefile = (REPO / "Makefile").read_text()
    assert "leaderboard/app.py --results $(LEADERBOARD_RESULTS) --host 127.0.0.1 --port 7860" in makefile
    assert app_module.default_submit_repo(["hf://datasets/org/results"]) == "org/results"
    assert app_module.default_submit_repo(["results/"]) is None
    # serving the board needs neither torch nor transformers (a light Space)
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('app', sys.argv[1]); "
            "m = importlib.util.module_from_spec(spec); sys.modules['app'] = m; spec.loader.exec_module(m); "
            "m.build_app(m.load_board(sys.argv[2], n_boot=50)); "
            "print(sorted(x for x in ('torch', 'transformers', 'peft') if x in sys.modules))")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code, str(REPO / "leaderboard" / "app.py"), str(board_dir)],
                         capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_tables_hold_numbers_a_reader_can_check(board):
    """The leader's CI and value come from the stored predictions (normal approximation for a proportion)."""
    df = table(board, "sentiment")
    top = df.iloc[0]
    half = 1.96 * np.sqrt(top.value * (1 - top.value) / top.n)
    assert abs((top.ci_high - top.ci_low) / 2 - half) < 0.01


def test_an_empty_board_still_serves_every_tab(app_module, tmp_path):
    empty = app_module.load_board(str(tmp_path / "none"), n_boot=50)
    assert empty.tables == {} and "**0** results" in app_module.header_markdown(empty)
    blocks = app_module.build_app(empty)
    ids = {getattr(c, "elem_id", None) for c in blocks.blocks.values()}
    assert {"tab-emotions", "tab-llm-sft", "tab-plots", "tab-about", "tab-submit", "empty-emotions"} <= ids
    assert "| goemotions |" in app_module.about_markdown(empty)


def test_a_stored_metric_that_differs_is_marked(app_module, board):
    df = table(board, "criterion-matching").copy()
    df.loc[df.index[1], "note"] = "the record stores macro_f1 = 0.2 but its per-example predictions give 0.1"
    shown = app_module.display_frame(df, board.hub_url)
    assert shown.iloc[1]["Macro F1 ↑"].endswith(" †") and not shown.iloc[0]["Macro F1 ↑"].endswith("†")
    assert app_module.notes_markdown(df) == (f"† `{df.iloc[1]['model']}` (test): the record stores macro_f1 = 0.2 "
                                             "but its per-example predictions give 0.1.")
    assert app_module.notes_markdown(table(board, "criterion-matching")) == ""


def test_a_multi_seed_run_is_one_row_with_its_spread(app_module, tmp_path):
    """The records of one `--seeds` run (shared `run_group`) make one row: the pushed seed's record is ranked, the
    row shows n seeds and mean ± sample sd of the primary metric recomputed from every seed's predictions; the
    threshold policy the records state is the protocol's."""
    import statistics

    from affectlab.leaderboard import metric_of
    from affectlab.results import result_record, save_result

    rng = np.random.default_rng(0)
    y = (rng.random((60, 4)) > 0.7).astype(int)
    rows = [f"text {i}" for i in range(60)]
    group = {"id": "demo-seeds-0123456789ab", "name": "demo-seeds", "seeds": [1337, 1338, 1339]}
    sha = "a" * 40
    values = {}
    for i, seed in enumerate(group["seeds"]):
        pred = y.copy()
        flip = rng.random(y.shape) < 0.1 + 0.05 * i
        pred[flip] = 1 - pred[flip]
        pushed = seed == 1338
        record = result_record(model_repo="org/demo-seeds" if pushed else "local/demo-seeds",
                               revision=sha if pushed else None, task="emotion-multilabel", dataset="goemotions",
                               split="validation", metrics={"macro_f1": 0.0}, y_true=y, y_pred=pred,
                               dataset_rows=rows, family="classifier", seed=seed, config={"seed": seed},
                               primary_metric="macro_f1", run_group=group,
                               protocol={"threshold_policy": "heldout_train", "optimistic": False})
        values[seed] = record["metrics"]["macro_f1"] = metric_of(record, "macro_f1").value
        save_result(record, tmp_path)
    board = app_module.load_board(str(tmp_path), n_boot=50, hub_url="http://hub.example")
    df = board.tables[("emotion-multilabel", "goemotions", "validation")]
    assert len(df) == 1
    row = df.iloc[0]
    assert row["model"] == "org/demo-seeds" and row["seed"] == 1338 and row["value"] == values[1338]
    assert row["seeds"] == 3 and len(set(values.values())) == 3
    assert abs(row["seed_mean"] - statistics.mean(values.values())) < 1e-12
    assert abs(row["seed_sd"] - statistics.stdev(values.values())) < 1e-12
    assert row["threshold_policy"] == "per-label, tuned on train rows held out of training"
    shown = app_module.display_frame(df, board.hub_url).iloc[0]
    assert shown["Seeds"] == "3"
    mean, sd = statistics.mean(values.values()), statistics.stdev(values.values())
    assert shown["Mean ± sd over seeds"] == f"{mean:.4f} ± {sd:.4f}"


def test_tables_of_one_dataset_and_split_get_distinct_tab_labels(app_module):
    bench, runs, other = ("sentiment", "sst2", "heldout_sentences"), ("text-classification", "sst2", "heldout_sentences"), \
        ("sentiment", "sst2", "train_heldout")
    assert app_module.shares_dataset_split([bench, runs]) and not app_module.shares_dataset_split([bench, other])
    labels = [app_module.table_label(k, True) for k in (bench, runs)]
    assert labels == ["sst2 · heldout_sentences · benchmark", "sst2 · heldout_sentences · classifier runs"]
    assert app_module.table_label(other, False) == "sst2 · train_heldout"

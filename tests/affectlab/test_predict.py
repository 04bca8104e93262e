"""`affectlab predict`: every input and output format, predictions in the input order equal to
`TextClassifier.predict`, and bad rows (empty text, non-UTF-8 bytes, broken JSON) reported by row number — an
error that writes nothing by default, `skip` / `keep` with a report file — never dropped silently (tiny random
BERT, seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
LABELS = ["joy", "anger", "sadness"]
GOOD = ["thank you so much!", "multi\nline text, quoted", "I can't believe it", "fine", "ugh, Mondays.",
        "I miss her every single day."]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tiny_bert_dir) -> Path:
    """A multi-label tiny BERT folder with tuned thresholds in its config."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny_multilabel")
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_dir, num_labels=3, problem_type="multi_label_classification",
        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    model.config.label_thresholds = {"joy": 0.5, "anger": 0.49, "sadness": 0.51}
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def expected(tiny_model):
    from affectlab.inference import TextClassifier

    clf = TextClassifier.from_pretrained(str(tiny_model))
    return dict(zip(GOOD, clf.predict(GOOD))), dict(zip(GOOD, clf.predict_proba(GOOD)))


def predict(*argv) -> int:
    from affectlab.predict import main

    return main([*map(str, argv), "--quiet"])


def write_csv_with_bad_rows(path: Path) -> dict[int, str]:
    """Rows 1..9 (data rows, header not counted); returns the bad rows' expected reasons."""
    lines = [b"id,text\n", b"a,thank you so much!\n", b"b,\n", b'c,"multi\nline text, quoted"\n', b"d,   \n",
             b"e,caf\xe9 au lait\n", b"f,I can't believe it\n", b"g,fine\n", b"h,ugh, Mondays.\n",
             b"i,I miss her every single day.\n"]
    # row 8 has an unquoted comma: pandas would see 3 fields; quote it properly instead
    lines[8] = b'h,"ugh, Mondays."\n'
    path.write_bytes(b"".join(lines))
    return {2: "empty text", 4: "empty text", 5: "not valid UTF-8"}


def test_bad_rows_are_an_error_naming_them_and_nothing_is_written(tiny_model, tmp_path):
    from affectlab.predict import BadRowsError

    src = tmp_path / "in.csv"
    bad = write_csv_with_bad_rows(src)
    out = tmp_path / "preds.parquet"
    with pytest.raises(BadRowsError) as err:
        predict("--model", tiny_model, "--input", src, "--output", out)
    message = str(err.value)
    assert "3 of 9 rows" in message
    for row, reason in bad.items():
        assert f"row {row}: {reason}" in message
    assert not out.exists() and not list(tmp_path.glob(".*partial"))
    # through the CLI: one line on stderr, exit code 2
    proc = subprocess.run([sys.executable, "-m", "affectlab.cli", "predict", "--model", str(tiny_model), "--input",
                           str(src), "--output", str(out), "--quiet"], capture_output=True, text=True, cwd=REPO,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 3 of 9 rows") and "Traceback" not in proc.stderr
    assert "row 5: not valid UTF-8 (byte 0xe9" in proc.stderr


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_skip_and_keep_write_the_others_in_order_and_list_the_bad_rows(tiny_model, expected, tmp_path, suffix):
    labels, _ = expected
    src = tmp_path / "in.csv"
    bad = write_csv_with_bad_rows(src)
    for policy in ("skip", "keep"):
        out = tmp_path / f"preds_{policy}{suffix}"
        assert predict("--model", tiny_model, "--input", src, "--output", out, "--id_column", "id",
                       "--on_bad_rows", policy, "--chunk_rows", "4") == 0
        if suffix == ".parquet":
            frame = pd.read_parquet(out)
            got = [list(v) if v is not None else None for v in frame["labels"]]
        elif suffix == ".csv":
            frame = pd.read_csv(out, keep_default_na=False)
            got = [v.split(";") if v else [] for v in frame["labels"]]
        else:
            records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
            frame = pd.DataFrame(records)
            got = list(frame["labels"])
        good_rows = [r for r in range(1, 10) if r not in bad]
        if policy == "skip":
            assert frame["row"].tolist() == good_rows
            assert "error" not in frame
        else:
            assert frame["row"].tolist() == list(range(1, 10))
            errors = dict(zip(frame["row"], frame["error"]))
            for row, reason in bad.items():
                assert errors[row].startswith(reason)
            assert all(not errors[r] or errors[r] != errors[r] for r in good_rows)  # empty / NaN / None
            keep = frame["row"].isin(good_rows).tolist()
            got = [g for g, k in zip(got, keep) if k]
            frame = frame[keep]
        assert frame["id"].tolist() == list("acfghi")
        texts = ["thank you so much!", "multi\nline text, quoted", "I can't believe it", "fine", "ugh, Mondays.",
                 "I miss her every single day."]
        assert got == [labels[t] for t in texts]  # CSV: the label sets joined with ";" (an empty set: empty field)
        report = pd.read_csv(out.with_name(out.name + ".bad_rows.csv"))
        assert report["row"].tolist() == sorted(bad)


def test_json_lines_text_and_parquet_inputs(tiny_model, expected, tmp_path):
    labels, probs = expected
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_bytes(b'{"text": "thank you so much!", "id": 1}\n'
                      b'{"text": "fine", "id": 2}\n'
                      b'\n'
                      b'{"text": "caf\xe9"}\n'
                      b'{"txt": "no text field"}\n'
                      b'not json\n'
                      b'["a list"]\n'
                      b'{"text": ""}\n'
                      b'{"text": 42}\n'
                      b'{"text": "ugh, Mondays.", "id": 10}\n')
    out = tmp_path / "out.jsonl"
    from affectlab.predict import BadRowsError

    with pytest.raises(BadRowsError) as err:
        predict("--model", tiny_model, "--input", jsonl, "--output", out)
    for row, reason in {3: "empty line", 4: "not valid UTF-8", 5: "no 'text' field", 6: "not valid JSON",
                        7: "not a JSON object", 8: "empty text", 9: "text is a int"}.items():
        assert f"row {row}: {reason}" in str(err.value)
    assert predict("--model", tiny_model, "--input", jsonl, "--output", out, "--on_bad_rows", "skip",
                   "--id_column", "id", "--scores") == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["row"] for r in rows] == [1, 2, 10] and [r["id"] for r in rows] == [1, 2, 10]
    assert [r["labels"] for r in rows] == [labels["thank you so much!"], labels["fine"], labels["ugh, Mondays."]]
    np.testing.assert_allclose([rows[0][f"score_{n}"] for n in LABELS], probs["thank you so much!"], atol=1e-5)

    txt = tmp_path / "in.txt"
    txt.write_bytes("thank you so much!\nfine\n\nugh, Mondays.\n".encode())
    out_txt = tmp_path / "txt.csv"
    assert predict("--model", tiny_model, "--input", txt, "--output", out_txt, "--on_bad_rows", "keep") == 0
    frame = pd.read_csv(out_txt, keep_default_na=False)
    assert frame["row"].tolist() == [1, 2, 3, 4] and frame["error"].tolist() == ["", "", "empty text", ""]

    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": pa.array([b"fine", b"caf\xe9", None, "ugh, Mondays.".encode()], pa.binary()),
                             "id": ["x", "y", "z", "w"]}), parquet)
    out_pq = tmp_path / "pq.parquet"
    assert predict("--model", tiny_model, "--input", parquet, "--output", out_pq, "--on_bad_rows", "skip",
                   "--id_column", "id") == 0
    frame = pd.read_parquet(out_pq)
    assert frame["id"].tolist() == ["x", "w"]
    assert [list(v) for v in frame["labels"]] == [labels["fine"], labels["ugh, Mondays."]]
    report = pd.read_csv(out_pq.with_name(out_pq.name + ".bad_rows.csv"))
    assert report["row"].tolist() == [2, 3] and report["reason"].str.startswith(("not valid UTF-8", "empty")).all()


def test_a_registered_dataset_streams_in_chunks_and_pairs_reach_the_model(tiny_model, tmp_path):
    from affectlab.inference import TextClassifier
    from dataset_builders import build_dataset

    out = tmp_path / "val.parquet"
    assert predict("--model", tiny_model, "--dataset", "goemotions", "--split", "validation", "--output", out,
                   "--chunk_rows", "1000", "--keep_columns", "id") == 0
    frame = pd.read_parquet(out)
    val = build_dataset("goemotions")["validation"]
    assert frame["row"].tolist() == list(range(1, len(val) + 1)) and frame["id"].tolist() == list(val["id"])
    clf = TextClassifier.from_pretrained(str(tiny_model))
    assert [list(v) for v in frame["labels"][:300]] == clf.predict(list(val["text"][:300]))

    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"text": GOOD, "criterion": ["Depressed mood"] * len(GOOD)}).to_csv(pairs, index=False)
    out_pairs = tmp_path / "pairs.jsonl"
    assert predict("--model", tiny_model, "--input", pairs, "--output", out_pairs, "--text_pair_column",
                   "criterion") == 0
    got = [json.loads(line)["labels"] for line in out_pairs.read_text(encoding="utf-8").splitlines()]
    assert got == clf.predict(GOOD, text_pairs=["Depressed mood"] * len(GOOD))


def test_user_errors_name_the_option(tiny_model, tmp_path):
    from affectlab.errors import ArgumentError, ModelNotFoundError

    src = tmp_path / "in.csv"
    pd.DataFrame({"body": ["x"]}).to_csv(src, index=False)
    with pytest.raises(ArgumentError, match="--text_column: .*no column 'text'"):
        predict("--model", tiny_model, "--input", src, "--output", tmp_path / "o.csv")
    with pytest.raises(ArgumentError, match="--output: unknown output type '.xlsx'"):
        predict("--model", tiny_model, "--input", src, "--output", tmp_path / "o.xlsx", "--text_column", "body")
    with pytest.raises(ModelNotFoundError):
        predict("--model", tmp_path / "nope", "--input", src, "--output", tmp_path / "o.csv", "--text_column", "body")
    with pytest.raises(ArgumentError, match="--backend"):
        predict("--model", tiny_model, "--input", src, "--output", tmp_path / "o.csv", "--text_column", "body",
                "--backend", "onnx")


def test_regression_outputs_one_column_per_dimension(tiny_bert_dir, tmp_path):
    import torch
    from transformers import AutoTokenizer

    from custom_models.regression_head import RegressionHeadModel

    torch.manual_seed(0)
    src = tmp_path / "regression"
    RegressionHeadModel.from_encoder(str(tiny_bert_dir), ["valence", "arousal"], output_scaling=True, label_min=1.0,
                                     label_max=5.0).save_pretrained(src)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(src)
    texts = tmp_path / "in.csv"
    pd.DataFrame({"text": GOOD}).to_csv(texts, index=False)
    out = tmp_path / "out.parquet"
    assert predict("--model", src, "--input", texts, "--output", out, "--trust_remote_code") == 0
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["row", "valence", "arousal"] and str(frame["valence"].dtype) == "float32"
    assert frame[["valence", "arousal"]].apply(lambda c: c.between(1, 5)).all().all()

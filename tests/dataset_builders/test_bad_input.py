"""Bad input gives a clear error naming the file and line, and leaves nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dataset_builders import DataFormatError, build_dataset

GOOD = ["I love this so much\t18\tid1", "meh\t27\tid2", "this is awful and scary\t2,14\tid3"]


def write_goemotions(folder: Path, train_lines, dev_lines=GOOD, raw: bytes | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    if raw is not None:
        (folder / "train.tsv").write_bytes(raw)
    elif train_lines is not None:
        (folder / "train.tsv").write_text("\n".join(train_lines) + "\n", encoding="utf-8")
    (folder / "dev.tsv").write_text("\n".join(dev_lines) + "\n", encoding="utf-8")
    return folder


def test_good_small_folder_builds(tmp_path):
    ds = build_dataset("goemotions", data_dir=write_goemotions(tmp_path / "ok", GOOD), cache_dir=str(tmp_path / "c"))
    assert ds["train"].num_rows == 3 and ds["train"][2]["labels"] == [2, 14]


@pytest.mark.parametrize("lines,message,line", [
    (GOOD[:1] + ["only text and labels\t3"], "expected 3 tab-separated fields", 2),
    (GOOD[:2] + ["too many\t3\tid\textra"], "expected 3 tab-separated fields", 3),
    (GOOD + ["out of range\t28\tid9"], r"label id\(s\) \[28\] outside 0-27", 4),
    (["negative\t-1\tid9"], r"label id\(s\) \[-1\] outside 0-27", 1),
    (GOOD[:1] + ["not a number\tjoy\tid9"], "comma-separated integers", 2),
    (GOOD[:1] + ["   \t3\tid9"], "empty text", 2),
])
def test_malformed_rows_name_file_and_line(tmp_path, lines, message, line):
    folder = write_goemotions(tmp_path / "bad", lines)
    with pytest.raises(DataFormatError, match=message) as err:
        build_dataset("goemotions", data_dir=folder, cache_dir=str(tmp_path / "c"))
    assert err.value.path == str(folder / "train.tsv") and err.value.line == line
    assert f"train.tsv, line {line}" in str(err.value)
    assert not list((tmp_path / "c").rglob("*.arrow")), "no half-built dataset may remain in the cache"


def test_non_utf8_names_line(tmp_path):
    raw = "\n".join(GOOD).encode() + b"\ncaf\xe9 au lait\t0\tid4\n"
    folder = write_goemotions(tmp_path / "latin1", None, raw=raw)
    with pytest.raises(DataFormatError, match="not valid UTF-8") as err:
        build_dataset("goemotions", data_dir=folder, cache_dir=str(tmp_path / "c"))
    assert err.value.line == 4


def test_missing_file_and_missing_column(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(DataFormatError, match="train.tsv: file not found"):
        build_dataset("goemotions", data_dir=folder, cache_dir=str(tmp_path / "c"))
    se = tmp_path / "semeval"
    se.mkdir()
    (se / "2018-E-c-En-train.txt").write_text("ID\tTweet\tanger\n1\thello\t0\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"line 1: missing column\(s\) \['anticipation'"):
        build_dataset("semeval2018_ec", data_dir=se, cache_dir=str(tmp_path / "c"))


def test_semeval_bad_value_names_line(tmp_path):
    se = tmp_path / "semeval"
    se.mkdir()
    header = "ID\tTweet\tanger\tanticipation\tdisgust\tfear\tjoy\tlove\toptimism\tpessimism\tsadness\tsurprise\ttrust"
    rows = ["a\tgood day\t0\t0\t0\t0\t1\t0\t0\t0\t0\t0\t0", "b\tbad day\t1\t0\t0\t0\t0\t0\t0\t0\t2\t0\t0"]
    (se / "2018-E-c-En-train.txt").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"line 3: column 'sadness' must be 0 or 1"):
        build_dataset("semeval2018_ec", data_dir=se, cache_dir=str(tmp_path / "c"))


def test_wrong_label_file_is_rejected(tmp_path):
    folder = write_goemotions(tmp_path / "labels", GOOD)
    (folder / "labels.txt").write_text("joy\nanger\n")
    with pytest.raises(DataFormatError, match="labels.txt: label names differ"):
        build_dataset("goemotions", data_dir=folder, cache_dir=str(tmp_path / "c"))


def test_training_on_bad_data_leaves_no_output_folder(tmp_path, repo_root, tiny_bert_dir):
    folder = write_goemotions(tmp_path / "bad", GOOD + ["broken row without tabs"])
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "train_classifier.py"), "--config",
         str(repo_root / "recipes" / "goemotions_minilm_demo.yaml"), "--dataset_data_dir", str(folder),
         "--model_name_or_path", str(tiny_bert_dir), "--output_dir", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode != 0
    assert f"{folder / 'train.tsv'}, line 4: expected 3 tab-separated fields" in proc.stderr
    assert not out.exists()

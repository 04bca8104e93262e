"""Table-driven user errors through the entry points (`affectlab train ...` and `scripts/*.py`): each case
gives the command, the expected exit code, the message fragment of the ONE stderr line, and checks that
no output folder and no completed dataset were left behind. `--debug` shows the traceback instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "recipes" / "tiny_test.yaml")
GOOD = "I love this so much\t18\tid1\nmeh\t27\tid2\n"


def goemotions_copy(folder: Path, train: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.tsv").write_text(train, encoding="utf-8")
    (folder / "dev.tsv").write_text(GOOD, encoding="utf-8")
    return folder


# name, argv builder (tmp, model) -> list, exit code, fragment of the one stderr line
CASES = [
    ("malformed data row", lambda t, m: ["-m", "affectlab.cli", "train", "classifier", "--config", TINY,
                                         "--model_name_or_path", m, "--dataset_data_dir",
                                         goemotions_copy(t / "bad", GOOD + "broken row\tjoy\tid3\n")],
     2, "train.tsv, line 3: labels must be comma-separated integers"),
    ("empty train file", lambda t, m: ["scripts/train_classifier.py", "--config", TINY, "--model_name_or_path", m,
                                       "--dataset_data_dir", goemotions_copy(t / "empty", "")],
     2, "train.tsv: no data rows (the file is empty)"),
    ("header line", lambda t, m: ["-m", "affectlab.cli", "train", "classifier", "--config", TINY, "--model_name_or_path", m,
                                  "--dataset_data_dir", goemotions_copy(t / "hdr", "text\tlabels\tid\n" + GOOD)],
     2, "looks like a header line"),
    ("no such model", lambda t, m: ["-m", "affectlab.cli", "train", "classifier", "--config", TINY,
                                    "--model_name_or_path", t / "no" / "such" / "dir"],
     2, "--model_name_or_path"),
    ("max_length 0", lambda t, m: ["scripts/train_regression.py", "--dataset_name", "synthetic_medical",
                                   "--model_name_or_path", m, "--max_length", "0"],
     2, "--max_length: must be > 0"),
    ("unknown persona", lambda t, m: ["-m", "affectlab.cli", "train", "regression", "--dataset_name", "synthetic_medical",
                                      "--model_name_or_path", m, "--keep_personas", "nurse,dentist"],
     2, "dentist"),
    ("resume without checkpoint", lambda t, m: ["-m", "affectlab.cli", "train", "classifier", "--config", TINY,
                                                "--model_name_or_path", m, "--resume_from_checkpoint", "true"],
     2, "--resume_from_checkpoint: no complete checkpoint"),
    ("4-bit on CPU", lambda t, m: ["scripts/train_nli.py", "--model_name_or_path", m, "--use_peft", "true",
                                   "--load_in_4bit", "true"],
     2, "--load_in_4bit"),
    ("unknown family", lambda t, m: ["-m", "affectlab.cli", "train", "sentiment"], 2, "unknown task family"),
]


def run(argv, tmp_path, debug=False):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "HF_DATASETS_CACHE": str(tmp_path / "cache"),
           "AFFECTLAB_RESULTS": str(tmp_path / "results")}
    cmd = [sys.executable, *[str(a) for a in argv], "--output_dir", str(tmp_path / "out"), *(["--debug"] if debug else [])]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


@pytest.mark.parametrize("name,argv,code,fragment", CASES, ids=[c[0] for c in CASES])
def test_user_error_is_one_line_exit_2_and_leaves_nothing(tmp_path, tiny_bert_dir, name, argv, code, fragment):
    proc = run(argv(tmp_path, tiny_bert_dir), tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == code, proc.stderr[-3000:]
    assert lines and lines[-1].startswith("error:") and fragment in lines[-1], lines[-3:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    if name in ("malformed data row", "empty train file", "header line"):  # no completed dataset left to reuse
        assert not list((tmp_path / "cache").rglob("*.arrow")) and not list((tmp_path / "cache").rglob("dataset_info.json"))
    assert not list((tmp_path / "results").rglob("*.json"))


def test_debug_shows_the_traceback(tmp_path, tiny_bert_dir):
    proc = run(CASES[0][1](tmp_path, tiny_bert_dir), tmp_path, debug=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "DataFormatError" in proc.stderr

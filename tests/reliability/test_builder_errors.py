"""Table-driven user errors in the dataset builders: each case gives the input files, the expected
message fragment and line, and checks that the datasets cache holds no completed dataset afterwards.
(The argument and entry-point cases are in tests/affectlab/test_run.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from dataset_builders import DataFormatError, build_dataset

GOEMO_OK = "I love this so much\t18\tid1\nmeh\t27\tid2\n"
SEMEVAL_HEADER = "ID\tTweet\tanger\tanticipation\tdisgust\tfear\tjoy\tlove\toptimism\tpessimism\tsadness\tsurprise\ttrust\n"
SEMEVAL_ROW = "{id}\tso happy today\t0\t0\t0\t0\t1\t0\t0\t0\t0\t0\t0\n"

CASES = [
    # name, dataset, files {name: bytes}, file that fails, line (None: whole file), message fragment
    ("goemotions empty train", "goemotions", {"train.tsv": b"", "dev.tsv": GOEMO_OK.encode()},
     "train.tsv", None, "no data rows (the file is empty)"),
    ("goemotions header line", "goemotions",
     {"train.tsv": ("text\tlabels\tid\n" + GOEMO_OK).encode(), "dev.tsv": GOEMO_OK.encode()},
     "train.tsv", 1, "looks like a header line"),
    ("goemotions duplicate id", "goemotions",
     {"train.tsv": (GOEMO_OK + "again\t3\tid1\n").encode(), "dev.tsv": GOEMO_OK.encode()},
     "train.tsv", 3, "duplicate comment id 'id1' (first on line 1)"),
    ("semeval duplicate ID", "semeval2018_ec",
     {"2018-E-c-En-train.txt": (SEMEVAL_HEADER + SEMEVAL_ROW.format(id="2018-En-1")
                                + SEMEVAL_ROW.format(id="2018-En-1")).encode()},
     "2018-E-c-En-train.txt", 3, "duplicate ID '2018-En-1' (first on line 2)"),
    ("semeval header only", "semeval2018_ec", {"2018-E-c-En-train.txt": SEMEVAL_HEADER.encode()},
     "2018-E-c-En-train.txt", None, "no data rows"),
    ("sst2 empty dev", "sst2", {"train.tsv": b"sentence\tlabel\ngood film \t1\n", "dev.tsv": b"sentence\tlabel\n"},
     "dev.tsv", None, "no data rows"),
]


@pytest.mark.parametrize("name,dataset,files,bad_file,line,fragment", CASES, ids=[c[0] for c in CASES])
def test_builder_user_errors(tmp_path, name, dataset, files, bad_file, line, fragment):
    folder = tmp_path / "data"
    folder.mkdir()
    for fname, content in files.items():
        (folder / fname).write_bytes(content)
    cache = tmp_path / "cache"
    with pytest.raises(DataFormatError) as err:
        build_dataset(dataset, data_dir=folder, cache_dir=str(cache))
    assert err.value.path == str(folder / bad_file), str(err.value)
    assert err.value.line == line and fragment in str(err.value), str(err.value)
    assert not list(cache.rglob("*.arrow")) and not list(cache.rglob("dataset_info.json")), \
        "a failed build must leave no completed dataset in the cache"


def test_bom_is_stripped_from_the_first_text(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.tsv").write_bytes(b"\xef\xbb\xbf" + GOEMO_OK.encode())
    (folder / "dev.tsv").write_bytes(GOEMO_OK.encode())
    ds = build_dataset("goemotions", data_dir=folder, cache_dir=str(tmp_path / "cache"))
    assert ds["train"][0]["text"] == "I love this so much" and ds["train"][0]["id"] == "id1"

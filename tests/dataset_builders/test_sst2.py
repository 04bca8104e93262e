"""SST-2 builder on the real shared files: exact row counts, features, label balance; bad rows name file+line."""

from __future__ import annotations

import pytest

from dataset_builders import DataFormatError, build_dataset
from dataset_builders.sst2 import LABEL_NAMES


@pytest.fixture(scope="module")
def sst2(data_root):
    return build_dataset("sst2")


def test_sst2_rows_and_features(sst2):
    assert sst2["train"].num_rows == 60_614
    assert sst2["train_heldout"].num_rows == 6_735 and "validation" not in sst2  # a slice of GLUE train, named so
    assert "test" not in sst2
    assert sst2["train"].features["labels"].names == LABEL_NAMES == ["negative", "positive"]
    first = sst2["train"][0]
    assert first == {"id": "train-2", "text": "when are bears bears and", "labels": 1}
    dev_labels = sst2["train_heldout"]["labels"]
    assert sum(1 for x in dev_labels if x == 0) == 2_994 and sum(dev_labels) == 3_741


def test_sst2_bad_label_names_file_and_line(tmp_path):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\ngood film \t1\nbad film \t2\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"train.tsv, line 3: label must be 0 or 1"):
        build_dataset("sst2", data_dir=tmp_path, cache_dir=str(tmp_path / "cache"))

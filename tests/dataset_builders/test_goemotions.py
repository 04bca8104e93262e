"""GoEmotions and SemEval-2018 E-c builders on the real shared files; Parquet+card export; mixtures."""

from __future__ import annotations

import collections

import datasets
import pytest

from dataset_builders import build_dataset, export_dataset, get_spec
from dataset_builders.goemotions import LABEL_NAMES
from dataset_builders.semeval2018_ec import LABEL_MAPPING, SEMEVAL_LABELS
from dataset_builders.semeval2018_ec.semeval2018_ec import map_to_goemotions


@pytest.fixture(scope="module")
def goemotions(data_root):
    return build_dataset("goemotions")


@pytest.fixture(scope="module")
def semeval(data_root):
    return build_dataset("semeval2018_ec")


def test_goemotions_rows_and_features(goemotions, data_root):
    assert goemotions["train"].num_rows == 43_410
    assert goemotions["validation"].num_rows == 5_426
    assert "test" not in goemotions  # not in the shared copy
    assert goemotions["train"].features["labels"].feature.names == LABEL_NAMES
    assert len(LABEL_NAMES) == 28 and LABEL_NAMES[-1] == "neutral"
    names_file = (data_root / "goemotions" / "labels.txt").read_text().split()
    assert names_file == LABEL_NAMES
    first = goemotions["train"][0]
    assert first == {"id": "eebbqej", "text": "My favourite food is anything I didn't have to cook myself.", "labels": [27]}
    assert all(1 <= len(x) <= 5 for x in goemotions["validation"]["labels"])


def test_export_writes_parquet_and_card_that_load_dataset_reads(goemotions, tmp_path):
    out = export_dataset(goemotions, tmp_path / "ge", get_spec("goemotions").card(), config_name="simplified")
    card = datasets.load_dataset_builder(str(out)).info
    assert (out / "data" / "train-00000-of-00001.parquet").is_file()
    text = (out / "README.md").read_text()
    assert text.startswith("---\nconfigs:") and "config_name: simplified" in text and "Demszky" in text
    reloaded = datasets.load_dataset(str(out))
    assert reloaded["train"].num_rows == 43_410 and reloaded["validation"].num_rows == 5_426
    assert reloaded["train"].features == goemotions["train"].features
    assert reloaded["validation"][10] == goemotions["validation"][10]
    assert card is not None
    assert not list(tmp_path.glob(".ge.tmp-*"))


def test_semeval_rows_and_mapping(semeval, data_root):
    train = semeval["train"]
    assert train.num_rows == 6_838
    assert train.features["labels"].feature.names == LABEL_NAMES
    assert set(LABEL_MAPPING) == set(SEMEVAL_LABELS) and set(LABEL_MAPPING.values()) <= set(LABEL_NAMES)
    # the first tweet is anticipation + optimism + trust -> excitement, optimism, approval
    assert train[0]["id"] == "2017-En-21441"
    assert sorted(LABEL_NAMES[i] for i in train[0]["labels"]) == ["approval", "excitement", "optimism"]
    assert map_to_goemotions([]) == [LABEL_NAMES.index("neutral")]
    assert map_to_goemotions(["pessimism", "sadness"]) == [LABEL_NAMES.index("sadness")]
    original = build_dataset("semeval2018_ec", config="original")["train"]
    assert original.features["labels"].feature.names == SEMEVAL_LABELS
    assert original[0]["labels"] == [SEMEVAL_LABELS.index(x) for x in ("anticipation", "optimism", "trust")]


def test_mixture_weights_are_respected_and_deterministic(goemotions, semeval):
    from affectlab.data import mix_train_splits

    parts = {"goemotions": goemotions["train"], "semeval2018_ec": semeval["train"]}
    mixed = mix_train_splits(parts, {"goemotions": 3.0, "semeval2018_ec": 1.0}, total=20_000, seed=1337)
    counts = collections.Counter(mixed["source"])
    assert counts == {"goemotions": 15_000, "semeval2018_ec": 5_000}
    # the smaller component is repeated, never more than ceil(share / size) times per row
    assert max(collections.Counter(i for i, s in zip(mixed["id"], mixed["source"]) if s == "semeval2018_ec").values()) == 1
    again = mix_train_splits(parts, {"goemotions": 3.0, "semeval2018_ec": 1.0}, total=20_000, seed=1337)
    assert again["id"][:50] == mixed["id"][:50]
    other = mix_train_splits(parts, {"goemotions": 3.0, "semeval2018_ec": 1.0}, total=20_000, seed=1)
    assert other["id"][:50] != mixed["id"][:50]
    upsampled = mix_train_splits(parts, {"goemotions": 1.0, "semeval2018_ec": 1.0}, total=20_000, seed=1337)
    assert collections.Counter(upsampled["source"])["semeval2018_ec"] == 10_000  # 6,838 rows, repeated


def test_mixture_spec_parsing():
    from affectlab.configs import parse_mixture

    assert parse_mixture("goemotions:0.8, semeval2018_ec:0.2") == {"goemotions": 0.8, "semeval2018_ec": 0.2}
    assert parse_mixture({"goemotions": 1}) == {"goemotions": 1.0}
    assert parse_mixture(None) is None
    with pytest.raises(ValueError):
        parse_mixture("goemotions=1")
    with pytest.raises(ValueError):
        parse_mixture({"goemotions": -1})

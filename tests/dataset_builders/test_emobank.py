"""dataset_builders/emobank: real EmoBank -> persona contract (configs, means, splits) and row-naming errors."""

from __future__ import annotations

import csv
from collections import defaultdict

import numpy as np
import pytest

from affectlab.personas import make_splits, validate_records
from dataset_builders import DataFormatError, build_dataset
from dataset_builders.emobank.emobank import LABEL_SET, PERSONAS


@pytest.fixture(scope="module")
def emobank_dir(data_root):
    return data_root / "emobank"


@pytest.fixture(scope="module")
def aggregated(emobank_dir, tmp_path_factory):
    return build_dataset("emobank", cache_dir=str(tmp_path_factory.mktemp("hf_cache")))


def individual_means(path, ids):
    sums = defaultdict(lambda: np.zeros(3))
    counts = defaultdict(int)
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["id"] in ids:
                sums[row["id"]] += [float(row[d]) for d in "VAD"]
                counts[row["id"]] += 1
    return {k: sums[k] / counts[k] for k in sums}, counts


def test_aggregated_real_emobank(aggregated, emobank_dir):
    assert {s: len(d) for s, d in aggregated.items()} == {"train": 2 * 8062, "validation": 2 * 1000}
    val = aggregated["validation"]
    assert set(val["persona_id"]) == {"writer", "reader"} and set(val["lang"]) == {"en"}
    records = val.select(range(200)).to_list()
    assert validate_records(records, LABEL_SET, PERSONAS) == 200
    ids = {r["text_id"] for r in records[:20]}
    for persona, fname in (("writer", "individual_writer_ratings.csv"), ("reader", "individual_reader_ratings.csv")):
        means, counts = individual_means(emobank_dir / fname, ids)
        for r in records[:20]:
            if r["persona_id"] == persona:
                assert r["id"] == f"{r['text_id']}::{persona}"
                np.testing.assert_allclose([r["labels"][d] for d in "VAD"], means[r["text_id"]], atol=1e-6)
    # the two perspectives of one sentence share text and text_id, and differ somewhere
    first = [r for r in records if r["text_id"] == records[0]["text_id"]]
    assert len(first) == 2 and first[0]["text"] == first[1]["text"]
    by = {(r["text_id"], r["persona_id"]): r["labels"]["V"] for r in val}
    gap = np.mean([abs(by[(t, "writer")] - by[(t, "reader")]) for t in set(val["text_id"])])
    assert 0.1 < gap < 1.0  # perspectives disagree, but not wildly


def test_individual_and_combined_configs(emobank_dir, tmp_path):
    ind = build_dataset("emobank", config="individual", cache_dir=str(tmp_path / "c1"))
    val = ind["validation"]
    assert 9000 < len(val) < 11000  # about 5 ratings x 2 perspectives x 1000 sentences
    tid = val[0]["text_id"]
    rows = val.filter(lambda r: r["text_id"] == tid)
    means, counts = individual_means(emobank_dir / "individual_reader_ratings.csv", {tid})
    reader = [r for r in rows if r["persona_id"] == "reader"]
    assert len(reader) == counts[tid]
    assert all(float(r["labels"][d]).is_integer() for r in reader for d in "VAD")
    np.testing.assert_allclose(np.mean([[r["labels"][d] for d in "VAD"] for r in reader], axis=0), means[tid], atol=1e-6)
    comb = build_dataset("emobank", config="combined", cache_dir=str(tmp_path / "c2"))
    assert {s: len(d) for s, d in comb.items()} == {"train": 8062, "validation": 1000}
    assert set(comb["train"]["persona_id"]) == set(comb["validation"]["persona_id"]) == {"combined"}
    with open(emobank_dir / "emobank.csv", newline="", encoding="utf-8") as fh:
        csv_rows = {r["id"]: r for r in csv.DictReader(fh)}
    for split, name in (("train", "train"), ("validation", "dev")):
        d = comb[split]
        assert len(set(d["text_id"])) == len(d)                       # one row per sentence
        assert all(csv_rows[t]["split"] == name for t in d["text_id"])
        labels = np.array([[r[k] for k in "VAD"] for r in d["labels"]])
        expected = np.array([[float(csv_rows[t][k]) for k in "VAD"] for t in d["text_id"]])
        np.testing.assert_allclose(labels, expected, atol=1e-6)
    row = comb["train"][0]
    assert row["text"] == csv_rows[row["text_id"]]["text"]


def test_random_split_keeps_perspectives_together(aggregated):
    ds = aggregated["validation"]
    splits = make_splits(ds, "random", seed=1337)
    texts = {k: set(v["text_id"]) for k, v in splits.items()}
    assert not texts["train"] & texts["validation"] and not texts["train"] & texts["test"]
    lopo = make_splits(ds, "lopo", held_out="reader")
    assert set(lopo["test"]["persona_id"]) == {"reader"} and set(lopo["train"]["persona_id"]) == {"writer"}


def write_folder(path, main_rows, writer_rows, reader_rows):
    path.mkdir()
    (path / "emobank.csv").write_text("id,split,V,A,D,text\n" + "".join(main_rows), encoding="utf-8")
    (path / "individual_writer_ratings.csv").write_text("id,V,A,D\n" + "".join(writer_rows), encoding="utf-8")
    (path / "individual_reader_ratings.csv").write_text("id,V,A,D\n" + "".join(reader_rows), encoding="utf-8")
    return path


def test_tiny_folder_and_errors(tmp_path):
    main = ['a,train,3,3,3,"Hello, world"\n', "b,dev,2,4,3,Bye\n"]
    w = ["a,3,3,3\n", "a,4,3,2\n", "b,1,5,3\n", "zzz,1,1,1\n"]
    r = ["a,2,2,2\n", "b,2,4,3\n"]
    ok = build_dataset("emobank", data_dir=write_folder(tmp_path / "ok", main, w, r), cache_dir=str(tmp_path / "c"))
    a_writer = ok["train"].filter(lambda x: x["id"] == "a::writer")[0]
    assert a_writer["text"] == "Hello, world" and a_writer["labels"] == pytest.approx({"V": 3.5, "A": 3.0, "D": 2.5})
    assert len(ok["validation"]) == 2

    bad = write_folder(tmp_path / "bad", main, w, ["a,2,2,2\n", "b,2,7,3\n"])
    with pytest.raises(DataFormatError, match=r"individual_reader_ratings.csv, line 3: column A=7 outside \[1, 5\]"):
        build_dataset("emobank", data_dir=bad, cache_dir=str(tmp_path / "c"))
    missing = write_folder(tmp_path / "missing", main, w, ["a,2,2,2\n"])
    with pytest.raises(DataFormatError, match=r"no reader ratings for sentence 'b' \(emobank.csv line 3\)"):
        build_dataset("emobank", data_dir=missing, cache_dir=str(tmp_path / "c"))
    split = write_folder(tmp_path / "split", ["a,train,3,3,3,x\n", "b,valid,3,3,3,y\n"], w, r)
    with pytest.raises(DataFormatError, match=r"emobank.csv, line 3: split must be one of"):
        build_dataset("emobank", data_dir=split, cache_dir=str(tmp_path / "c"))


def test_combined_config_one_row_per_sentence(tmp_path):
    """`combined`: the csv's released scores, one row per sentence, official split names, no writer/reader
    rows, and no individual-ratings files needed."""
    folder = tmp_path / "combined"
    folder.mkdir()
    rows = [("s1", "train", "3.2", "2.8", "3.0", "I love it."), ("s2", "train", "1.6", "3.9", "2.1", "Stop, now!"),
            ("s3", "dev", "2.5", "3.1", "3.4", "Fine"), ("s4", "test", "4.4", "3.6", "3.3", "Great news")]
    (folder / "emobank.csv").write_text("id,split,V,A,D,text\n" + "".join(
        f'{i},{s},{v},{a},{d},"{t}"\n' for i, s, v, a, d, t in rows), encoding="utf-8")
    ds = build_dataset("emobank", config="combined", data_dir=folder, cache_dir=str(tmp_path / "c"))
    assert {s: len(d) for s, d in ds.items()} == {"train": 2, "validation": 1, "test": 1}
    got = {r["text_id"]: (split, r) for split, d in ds.items() for r in d}
    assert sorted(got) == ["s1", "s2", "s3", "s4"]           # one row per sentence, none repeated
    names = {"train": "train", "dev": "validation", "test": "test"}
    for sid, split, v, a, d, text in rows:
        got_split, r = got[sid]
        assert got_split == names[split] and r["text"] == text and r["id"] == f"{sid}::combined"
        assert r["labels"] == pytest.approx({"V": float(v), "A": float(a), "D": float(d)}, abs=1e-6)
    personas = {p for d in ds.values() for p in d["persona_id"]}
    assert personas == {"combined"}                           # the contract's single persona, never writer/reader
    with pytest.raises(DataFormatError, match=r"emobank.csv, line 2: column V=6 outside \[1, 5\]"):
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "emobank.csv").write_text("id,split,V,A,D,text\ns1,train,6,3,3,x\n", encoding="utf-8")
        build_dataset("emobank", config="combined", data_dir=bad, cache_dir=str(tmp_path / "c"))

"""ReDSM5 builder: nli / multilabel / evidence configs on the real sample, post-level splits and folds,
class weights, input validation naming file and line, evidence alignment, and the synthetic generator."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from dataset_builders import DataFormatError, build_dataset
from dataset_builders.redsm5.redsm5 import (CRITERIA, SYMPTOMS, ReDSM5, align_sentence, alignment_report,
                                           assign_splits, class_weights, fold_of, read_corpus, split_of,
                                           write_synthetic)


@pytest.fixture(scope="module")
def sample_dir(data_root) -> Path:
    return data_root / "redsm5_sample"


def raw_positives(folder: Path) -> set[tuple[str, str]]:
    """(post_id, symptom) pairs with a status-1 annotation, read independently of the builder."""
    (ann,) = folder.glob("*annotations*.csv")
    with open(ann, encoding="utf-8", newline="") as fh:
        return {(r["post_id"], r["DSM5_symptom"]) for r in csv.DictReader(fh) if r["status"] == "1"}


def build(folder, config, tmp_path, **kwargs):
    builder = ReDSM5(config_name=config, data_dir=str(folder), cache_dir=str(tmp_path / "cache"), **kwargs)
    builder.download_and_prepare()
    return builder.as_dataset()


def test_nli_every_post_times_nine_criteria(sample_dir, tmp_path):
    ds = build_dataset("redsm5", config="nli", cache_dir=str(tmp_path))
    rows = [r for split in ds.values() for r in split]
    assert len(rows) == 17 * 9
    names = ds["train"].features["symptom"].names
    got = {(r["post_id"], names[r["symptom"]]) for r in rows if r["labels"] == 1}
    assert got == raw_positives(sample_dir)
    assert len(got) == 20  # 21 positive annotations, two of them the same (post, symptom)
    by_id = {r["id"]: r for r in rows}
    assert by_id["s_329_224:WORTHLESSNESS"]["labels"] == 1 and by_id["s_329_224:DEPRESSED_MOOD"]["labels"] == 1
    assert all(by_id[f"s_1955_1069:{s}"]["labels"] == 0 for s in SYMPTOMS)  # only a status-0 annotation
    assert by_id["s_1270_9:SLEEP_ISSUES"]["criterion"] == CRITERIA["SLEEP_ISSUES"]
    assert ds["train"].features["labels"].names == ["absent", "present"]


def test_criteria_are_nine_distinct_own_descriptions():
    assert list(CRITERIA) == SYMPTOMS and len(set(CRITERIA.values())) == 9
    assert all(10 < len(text) < 120 for text in CRITERIA.values())


def test_multilabel_posts_to_symptoms(sample_dir, tmp_path):
    ds = build(sample_dir, "multilabel", tmp_path)
    rows = {r["post_id"]: {SYMPTOMS[i] for i in r["labels"]} for split in ds.values() for r in split}
    assert len(rows) == 17
    expected = {}
    for pid, symptom in raw_positives(sample_dir):
        expected.setdefault(pid, set()).add(symptom)
    assert {k: v for k, v in rows.items() if v} == expected
    assert rows["s_1955_1069"] == set() and rows["s_2748_341"] == set()  # negatives kept, with no labels
    assert rows["s_993_1060"] == {"FATIGUE", "COGNITIVE_ISSUES", "SLEEP_ISSUES"}


def test_splits_are_by_post_deterministic_and_disjoint(sample_dir, tmp_path):
    ds = build(sample_dir, "nli", tmp_path)
    posts = {split: set(d["post_id"]) for split, d in ds.items()}
    assert sum(len(p) for p in posts.values()) == 17
    for a in posts:
        for b in posts:
            if a != b:
                assert not posts[a] & posts[b], f"a post is in {a} and {b}"
    for split, ids in posts.items():
        assert all(split_of(pid) == split for pid in ids)
        assert all(len([r for r in ds[split] if r["post_id"] == pid]) == 9 for pid in ids)
    again = build(sample_dir, "nli", tmp_path / "again")
    assert {s: set(d["post_id"]) for s, d in again.items()} == posts
    # split of a post depends on its id only
    many = [f"post_{i}" for i in range(5000)]
    shares = np.array([[split_of(p) == s for s in ("train", "validation", "test")] for p in many]).mean(0)
    np.testing.assert_allclose(shares, [0.8, 0.1, 0.1], atol=0.02)
    assert assign_splits(many[:50]) == assign_splits(list(reversed(many[:50])))


def test_kfold_by_post(sample_dir, tmp_path):
    k = 3
    corpus = read_corpus(sample_dir)
    non_test = {pid for pid in corpus.posts if split_of(pid) != "test"}
    validation_sets = []
    for fold in range(k):
        ds = build(sample_dir, "multilabel", tmp_path / f"f{fold}", num_folds=k, fold=fold)
        val, train = set(ds["validation"]["post_id"]), set(ds["train"]["post_id"])
        assert not val & train and val | train == non_test
        assert val == {pid for pid in non_test if fold_of(pid, k) == fold}
        assert set(ds["test"]["post_id"]) == {pid for pid in corpus.posts if split_of(pid) == "test"}
        validation_sets.append(val)
    assert set().union(*validation_sets) == non_test and sum(map(len, validation_sets)) == len(non_test)
    with pytest.raises(ValueError, match="fold"):
        build(sample_dir, "nli", tmp_path / "bad", num_folds=3, fold=3)


def test_class_weights_from_train(tmp_path, sample_dir):
    import datasets

    single = datasets.Dataset.from_dict({"labels": [0, 0, 0, 1]}, features=datasets.Features({"labels": datasets.ClassLabel(names=["absent", "present"])}))
    np.testing.assert_allclose(class_weights(single), [4 / (2 * 3), 4 / (2 * 1)])
    multi = datasets.Dataset.from_dict({"labels": [[0], [0, 2], [], []]},
                                       features=datasets.Features({"labels": datasets.List(datasets.ClassLabel(names=["a", "b", "c"]))}))
    np.testing.assert_allclose(class_weights(multi), [2 / 2, 1.0, 3 / 1])
    train = build(sample_dir, "nli", tmp_path)["train"]
    pos = sum(train["labels"])
    np.testing.assert_allclose(class_weights(train), [len(train) / (2 * (len(train) - pos)), len(train) / (2 * pos)], rtol=1e-6)


def write_layout(folder: Path, posts: list[list[str]], annotations: list[list[str]],
                 post_header=("post_id", "text"),
                 ann_header=("post_id", "sentence_id", "sentence_text", "DSM5_symptom", "status", "explanation")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, header, rows in (("redsm5_posts.csv", post_header, posts), ("redsm5_annotations.csv", ann_header, annotations)):
        with open(folder / name, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
    return folder


GOOD_POSTS = [["p1", "I cannot sleep. I am tired."], ["p2", "All good here."]]


@pytest.mark.parametrize("posts,annotations,file,line,message", [
    (GOOD_POSTS, [["p1", "p1_0", "I cannot sleep.", "INSOMNIA", "1", ""]], "annotations", 2, "unknown DSM5_symptom 'INSOMNIA'"),
    (GOOD_POSTS, [["p1", "p1_0", "I cannot sleep.", "SLEEP_ISSUES", "1", ""], ["p9", "p9_0", "x", "FATIGUE", "1", ""]],
     "annotations", 3, "annotation for post 'p9'"),
    (GOOD_POSTS + [["p1", "again"]], [], "posts", 4, "duplicate post_id 'p1' (first at line 2)"),
    (GOOD_POSTS, [["p1", "p1_0", "I cannot sleep.", "SLEEP_ISSUES", "1", ""], ["p1", "p1_0", "I cannot sleep.", "SLEEP_ISSUES", "0", ""]],
     "annotations", 3, "duplicate annotation of sentence 'p1_0' for SLEEP_ISSUES"),
    (GOOD_POSTS, [["p1", "p1_0", "I cannot sleep.", "SLEEP_ISSUES", "yes", ""]], "annotations", 2, "status must be 0 or 1"),
    ([["p1", " "]], [], "posts", 2, "empty text for post 'p1'"),
])
def test_validation_errors_name_file_and_line(tmp_path, posts, annotations, file, line, message):
    folder = write_layout(tmp_path / "bad", posts, annotations)
    with pytest.raises(DataFormatError) as err:
        build_dataset("redsm5", data_dir=folder, config="nli", cache_dir=str(tmp_path / "cache"))
    assert err.value.path.endswith(f"redsm5_{file}.csv") and err.value.line == line
    assert message in str(err.value) and f"line {line}" in str(err.value)


def test_missing_column_and_missing_file(tmp_path):
    folder = write_layout(tmp_path / "cols", GOOD_POSTS, [], ann_header=("post_id", "sentence_id", "DSM5_symptom", "status"))
    with pytest.raises(DataFormatError, match=r"redsm5_annotations.csv, line 1: missing column\(s\) \['sentence_text'\]"):
        read_corpus(folder)
    (folder / "redsm5_annotations.csv").unlink()
    with pytest.raises(DataFormatError, match=r"expected exactly one \*annotations\*.csv"):
        read_corpus(folder)


def test_align_sentence_exact_normalised_fuzzy_unaligned():
    post = "First line here.  I   CAN’T sleep — at all! Then I ate a whole pizza and felt great."
    assert align_sentence(post, "First line here.") == (0, 16, "exact", 1.0)
    start, end, method, score = align_sentence(post, "i can't sleep - at all!")
    assert method == "normalised" and post[start:end] == "I   CAN’T sleep — at all!"
    start, end, method, score = align_sentence(post, "Then I ate an entire pizza and felt good.")
    assert method == "fuzzy" and post[start:end] == "Then I ate a whole pizza and felt great." and 0.5 <= score < 1
    assert align_sentence(post, "My grandmother's garden grows tomatoes in July.") is None


def test_evidence_config_on_sample(sample_dir, tmp_path):
    ds = build(sample_dir, "evidence", tmp_path)
    rows = [r for split in ds.values() for r in split]
    report = alignment_report(sample_dir)
    n_aligned = sum(len(r["evidence"]) for r in rows)
    n_unaligned = sum(len(r["unaligned"]) for r in rows)
    assert n_aligned + n_unaligned == 21 == sum(report["counts"].values())  # every positive sentence accounted for
    assert n_unaligned == report["counts"]["unaligned"] == len(report["unaligned"])
    assert all(u["line"] >= 2 and u["sentence_id"] for u in report["unaligned"])
    for r in rows:
        if r["labels"] == 0:
            assert r["evidence"] == [] and r["unaligned"] == []
        for span in r["evidence"]:
            assert 0 <= span["start"] < span["end"] <= len(r["text"])
    by_id = {r["id"]: r for r in rows}
    # the paraphrased hypersomnia sentence is found fuzzily in its post
    (span,) = by_id["s_2748_278:SLEEP_ISSUES"]["evidence"]
    assert "14 hours" in by_id["s_2748_278:SLEEP_ISSUES"]["text"][span["start"]:span["end"]] and span["method"] == "fuzzy"


def test_synthetic_generator_real_scale(tmp_path):
    folder = write_synthetic(tmp_path / "syn")
    assert "SYNTHETIC" in (folder / "README.md").read_text()
    corpus = read_corpus(folder)
    assert len(corpus.posts) == 1484 and all(pid.startswith("synthetic_") for pid in corpus.posts)
    positives = corpus.positives()
    pair_rate = sum(len(v) for v in positives.values()) / (9 * len(positives))
    assert 0.10 <= pair_rate <= 0.14
    assert 0.22 <= np.mean([not v for v in positives.values()]) <= 0.31
    report = alignment_report(folder)
    assert report["counts"]["unaligned"] == 0 and report["counts"]["fuzzy"] == 0
    assert write_synthetic(tmp_path / "again").joinpath("redsm5_posts_synthetic.csv").read_bytes() == \
        (folder / "redsm5_posts_synthetic.csv").read_bytes()
    ds = build(folder, "nli", tmp_path)
    assert sum(len(d) for d in ds.values()) == 1484 * 9
    assert 0.7 < len(ds["train"]) / (1484 * 9) < 0.9

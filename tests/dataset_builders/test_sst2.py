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


# ---- sentence-level held-out configs -------------------------------------------------------------------
SENTENCES = [  # (sentence, label, sub-phrases also in the files): sub-trees, some shared between sentences
    ("a gorgeous , witty film .", 1, ["gorgeous , witty film", "witty film", "film", "gorgeous"]),
    ("the plot is dull and slow .", 0, ["the plot", "dull and slow", "dull", "slow"]),
    ("a film with no heart .", 0, ["with no heart", "no heart", "heart", "film"]),
    ("funny and tender from start to finish", 1, ["funny and tender", "tender", "start to finish"]),
    ("the actors look bored", 0, ["the actors", "look bored", "bored"]),
    ("an uplifting story told with grace", 1, ["uplifting story", "with grace", "grace"]),
    ("dull , dull , dull", 0, ["dull ,", "dull"]),
    ("the best film of the year", 1, ["the best film", "of the year", "the year", "film"]),
    ("a mess of a script", 0, ["a mess", "of a script", "script"]),
    ("warm , smart and never boring", 1, ["warm", "smart and never boring", "never boring"]),
    ("it drags on forever", 0, ["drags on forever", "forever"]),
    ("sheer joy", 1, ["joy"]),
]


def write_pool(folder, extra_train=(), extra_dev=()):
    """train.tsv gets the first eight sentences with their phrases, dev.tsv the rest (like the real slices, the
    sub-phrases of one sentence are spread over both files); `extra_*` rows are appended as (text, label)."""
    train, dev = [], []
    for i, (sentence, label, phrases) in enumerate(SENTENCES):
        rows = [(sentence, label)] + [(p, label) for p in phrases]
        (train if i < 8 else dev).extend(rows[::2])
        (dev if i < 8 else train).extend(rows[1::2])
    for name, rows in (("train.tsv", train + list(extra_train)), ("dev.tsv", dev + list(extra_dev))):
        (folder / name).write_text("sentence\tlabel\n" + "".join(f"{t} \t{y}\n" for t, y in rows), encoding="utf-8")
    return folder


def contains(outer: str, inner: str) -> bool:
    """Plain token-wise containment (the slow reference the builder's index must agree with)."""
    o, i = outer.lower().split(), inner.lower().split()
    return any(o[k:k + len(i)] == i for k in range(len(o) - len(i) + 1))


def build_small(tmp_path, config="sentences_heldout", **kwargs):
    return build_dataset("sst2", data_dir=tmp_path, config=config, cache_dir=str(tmp_path / "cache"), **kwargs)


def test_full_sentences_are_the_maximal_phrases():
    from dataset_builders.sst2.sst2 import full_sentences, tokens

    keys = [tokens(t) for t in ["a b c", "b c", "A  B", "c d", "b c", "x"]]
    assert full_sentences(keys) == [("a", "b", "c"), ("c", "d"), ("x",)]  # "a b" is inside "a b c" token-wise


def test_heldout_sentences_are_full_sentences_and_nothing_inside_them_is_trained_on(tmp_path):
    # rows that differ from a sub-phrase only in case and spacing must go with it
    variants = [(ps[0].upper().replace(" ", "   "), y) for _, y, ps in SENTENCES]
    write_pool(tmp_path, extra_train=variants)
    dsd = build_small(tmp_path, heldout_size=4)
    assert set(dsd) == {"train", "heldout_sentences"}
    pool = [(t, y) for s, y, ps in SENTENCES for t in [s, *ps]] + variants
    heldout, train = list(dsd["heldout_sentences"]["text"]), list(dsd["train"]["text"])
    assert len(heldout) == 4 and len(set(heldout)) == 4
    full = {s for s, _, _ in SENTENCES}
    assert set(heldout) <= full
    for h in heldout:  # a full sentence: no longer phrase of the pool contains it
        assert not any(len(p.split()) > len(h.split()) and contains(p, h) for p, _ in pool)
    assert not [(t, h) for t in train for h in heldout if contains(h, t)]
    # everything not inside a held-out sentence stays in training, and nothing is lost or duplicated
    expected_train = sorted(t.strip() for t, _ in pool if not any(contains(h, t) for h in heldout))
    assert sorted(train) == expected_train
    assert sum(v in train for v, _ in variants) == 12 - 4  # the variants of the held-out sentences' phrases went
    labels = dict((s, y) for s, y, _ in SENTENCES)
    assert list(dsd["heldout_sentences"]["labels"]) == [labels[h] for h in heldout]
    description = dsd["train"].info.description
    assert "GLUE" in description and "validation" in description
    assert "held out 4 sentences (seed 1337)" in description and f"train keeps {len(train)} rows" in description
    assert f"pooled {len(pool)} phrases" in description and "12 full sentences" in description


def test_heldout_sentences_are_deterministic_with_the_seed(tmp_path):
    write_pool(tmp_path)
    a = build_small(tmp_path, heldout_size=4)["heldout_sentences"]["id"]
    b = build_dataset("sst2", data_dir=tmp_path, config="sentences_heldout", heldout_size=4,
                      cache_dir=str(tmp_path / "other_cache"))["heldout_sentences"]["id"]
    c = build_small(tmp_path, heldout_size=4, split_seed=7)["heldout_sentences"]["id"]
    assert list(a) == list(b) and sorted(a) != sorted(c)


def test_tuning_config_carves_from_training_only_and_hides_the_heldout_sentences(tmp_path):
    write_pool(tmp_path)
    held = build_small(tmp_path, heldout_size=3)
    tune = build_small(tmp_path, config="sentences_tuning", heldout_size=3, tuning_size=3)
    assert set(tune) == {"train", "tuning_sentences"}
    heldout, tuning, train = (list(held["heldout_sentences"]["text"]), list(tune["tuning_sentences"]["text"]),
                              list(tune["train"]["text"]))
    assert len(tuning) == 3 and not set(tuning) & set(heldout) and set(tuning) <= set(held["train"]["text"])
    assert set(train) <= set(held["train"]["text"])
    assert not [(t, h) for t in train for h in heldout + tuning if contains(h, t)]


def test_too_many_heldout_sentences_is_a_data_error(tmp_path):
    write_pool(tmp_path)
    with pytest.raises(DataFormatError, match=r"cannot hold out 13 sentences: only 12 full sentences"):
        build_small(tmp_path, heldout_size=13)


def test_sst2_sentences_heldout_on_the_real_files(data_root):
    dsd = build_dataset("sst2", config="sentences_heldout")
    heldout, train = dsd["heldout_sentences"], dsd["train"]
    assert heldout.num_rows == 872 and train.num_rows == 57_645 and sum(heldout["labels"]) == 442
    assert "6885 full sentences" in train.info.description and "removed 8832 phrase rows" in train.info.description
    runs = {tuple(t.split())[i:j] for t in heldout["text"] for i in range(len(t.split()))
            for j in range(i + 1, len(t.split()) + 1)}
    assert not [t for t in train["text"] if tuple(t.lower().split()) in runs]
    assert sum(len(t.split()) for t in heldout["text"]) / 872 > 15  # sentences (GLUE dev averages ~19 tokens), not phrases

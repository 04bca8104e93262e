"""Dataset cards written by `affectlab build-dataset` carry full Hub metadata, what each local split is,
a line for every absent official split, and the label mapping where there is one."""

from __future__ import annotations

import pytest

from dataset_builders import REGISTRY, build_dataset, export_dataset, get_spec, size_category


@pytest.mark.parametrize("name", ["goemotions", "semeval2018_ec", "sst2", "emobank", "redsm5"])
def test_card_metadata_is_complete(name):
    meta = get_spec(name).card_metadata()
    assert meta["license"] and meta["language"] == ["en"] and meta["task_categories"] and meta["pretty_name"]
    assert meta["source_datasets"] and all(s == "original" or s.startswith("extended|") for s in meta["source_datasets"])
    assert get_spec(name).card().count("Not in this build:") == len(get_spec(name).module().ABSENT_SPLITS)


def test_exported_semeval_card_loads_with_metadata_absent_splits_and_mapping(tmp_path):
    from huggingface_hub import DatasetCard

    spec = get_spec("semeval2018_ec")
    dsd = build_dataset("semeval2018_ec")
    meta = spec.card_metadata(dsd)
    out = export_dataset(dsd, tmp_path / "card", spec.card(), config_name=spec.config,
                         pretty_name=meta.pop("pretty_name"), license=meta.pop("license"), extra_yaml=meta)
    card = DatasetCard.load(out / "README.md")
    assert card.data.license == "other" and card.data.language == ["en"]
    assert card.data.size_categories == ["1K<n<10K"] and card.data.task_ids == ["multi-label-classification"]
    assert card.data.source_datasets == ["extended|SemEvalWorkshop/sem_eval_2018_task_1"]
    assert "Not in this build: validation (official dev)." in card.text
    assert "| pessimism | sadness |" in card.text and "| (no emotion) | neutral |" in card.text


def test_size_categories():
    assert [size_category(n) for n in (0, 999, 1000, 43410, 100_000)] == ["n<1K", "n<1K", "1K<n<10K", "10K<n<100K",
                                                                          "100K<n<1M"]
    assert set(REGISTRY) >= {"goemotions", "semeval2018_ec", "sst2", "emobank", "redsm5"}

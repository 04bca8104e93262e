"""Data contract, persona registry, medical preset, synthetic generator, persona modes and leak-free splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from affectlab.personas import (MEDICAL_LABEL_SET, MEDICAL_PERSONAS, PERSONA_MODES, ContractError, LabelSet,
                                PersonaRegistry, add_persona_tokens, answer_schema, check_record, make_splits,
                                persona_token, persona_view, read_jsonl, record_schema, records_to_dataset,
                                split_indices, synthetic_medical_records, validate_records, write_jsonl)

VAD = LabelSet("vad", ("V", "A", "D"), 1.0, 5.0)
TWO = PersonaRegistry([
    {"id": "writer", "name": "Writer", "description": "The author.", "instruction": "Rate as the author."},
    {"id": "reader", "name": "Reader", "description": "A reader.", "instruction": "Rate as a reader."},
])


def good(**over):
    rec = {"id": "r1", "text": "hello", "lang": "en", "persona_id": "writer", "labels": {"V": 3.0, "A": 2.5, "D": 1}}
    rec.update(over)
    return rec


def test_medical_preset_sizes_and_schema():
    assert len(MEDICAL_PERSONAS) == 16
    assert len(MEDICAL_LABEL_SET.dimensions) == 21 == len(set(MEDICAL_LABEL_SET.dimensions))
    for p in MEDICAL_PERSONAS:
        assert p.name and p.description and p.instruction and p.id in MEDICAL_PERSONAS
    schema = record_schema(MEDICAL_LABEL_SET, MEDICAL_PERSONAS.ids)
    assert schema["properties"]["labels"]["required"] == list(MEDICAL_LABEL_SET.dimensions)
    assert schema["properties"]["persona_id"]["enum"] == MEDICAL_PERSONAS.ids
    assert answer_schema(MEDICAL_LABEL_SET)["properties"]["fear"] == {"type": "number", "minimum": 0.0, "maximum": 1.0}
    json.dumps(schema)  # serialisable


@pytest.mark.parametrize("record,message", [
    (good(labels={"V": 3.0, "A": 2.5}), "miss dimension(s) ['D']"),
    (good(labels={"V": 3.0, "A": 2.5, "D": 6.0}), "'D'=6.0 outside [1.0, 5.0]"),
    (good(labels={"V": 3.0, "A": float("nan"), "D": 2}), "'A' must be a finite number"),
    (good(labels={"V": "3", "A": 2, "D": 2}), "'V' must be a finite number"),
    (good(labels={"V": 3, "A": 2, "D": 2, "X": 1}), "unknown dimension(s) ['X']"),
    (good(persona_id="editor"), "unknown persona_id 'editor'"),
    (good(lang="English"), "lang must be"),
    (good(text="  "), "'text' must be a non-empty string"),
    (good(extra=1), "unknown field(s) ['extra']"),
])
def test_validation_names_row_and_id(record, message):
    records = [good(id="r0"), record]
    with pytest.raises(ContractError) as err:
        validate_records(records, VAD, TWO, source="mine.jsonl")
    assert "mine.jsonl, row 1 (id 'r1')" in str(err.value)
    assert message in str(err.value)
    assert err.value.row == 1


def test_missing_fields_and_duplicates():
    with pytest.raises(ContractError, match=r"row 0 \(id 'r1'\): missing field\(s\) \['lang'\]"):
        check_record({k: v for k, v in good().items() if k != "lang"}, VAD, TWO, row=0)
    with pytest.raises(ContractError, match="row 2 .*duplicate id \\(first at row 0\\)"):
        validate_records([good(id="a"), good(id="b"), good(id="a")], VAD, TWO)
    assert validate_records([good(id="a"), good(id="b", persona_id="reader")], VAD, TWO) == 2


def test_registry_errors_and_roundtrip(tmp_path):
    with pytest.raises(ContractError, match="row 2 .*duplicate persona id 'writer'"):
        PersonaRegistry([*TWO.to_list(), TWO.to_list()[0]], source="p.json")
    with pytest.raises(ContractError, match="row 0 .*misses field\\(s\\) \\['instruction'\\]"):
        PersonaRegistry([{"id": "a", "name": "A", "description": "d"}])
    path = tmp_path / "personas.json"
    MEDICAL_PERSONAS.save(path)
    again = PersonaRegistry.load(path)
    assert again.ids == MEDICAL_PERSONAS.ids and again["nurse"] == MEDICAL_PERSONAS["nurse"]


def test_jsonl_roundtrip_and_line_numbers(tmp_path):
    path = tmp_path / "r.jsonl"
    write_jsonl(path, [good(id="a"), good(id="b")])
    assert [r["id"] for r in read_jsonl(path, VAD, TWO)] == ["a", "b"]
    path.write_text(json.dumps(good(id="a")) + "\n" + json.dumps(good(id="b", lang="EN")) + "\n")
    with pytest.raises(ContractError, match=r"r.jsonl, row 2 \(id 'b'\): lang"):
        read_jsonl(path, VAD, TWO)
    path.write_text(json.dumps(good(id="a")) + "\n{oops\n")
    with pytest.raises(ContractError, match=r"row 2: not valid JSON"):
        read_jsonl(path, VAD, TWO)


def test_synthetic_generator_follows_contract_and_is_deterministic():
    recs = synthetic_medical_records(n_texts=40, personas_per_text=3, seed=7)
    assert len(recs) == 120
    assert validate_records(recs, MEDICAL_LABEL_SET, MEDICAL_PERSONAS) == 120
    assert all(r["source"] == "synthetic" and r["id"].startswith("syn-") for r in recs)
    assert {r["lang"] for r in recs} == {"en", "pl"}
    assert any("ę" in r["text"] or "ą" in r["text"] or "ż" in r["text"] for r in recs if r["lang"] == "pl")
    assert recs == synthetic_medical_records(n_texts=40, personas_per_text=3, seed=7)
    assert recs != synthetic_medical_records(n_texts=40, personas_per_text=3, seed=8)
    # persona matters: two personas rating the same text differ by more than the noise
    by_text = {}
    for r in recs:
        by_text.setdefault(r["text_id"], []).append(np.array(MEDICAL_LABEL_SET.vector(r["labels"])))
    diffs = [np.abs(v[0] - v[1]).mean() for v in by_text.values()]
    assert np.mean(diffs) > 0.05


@pytest.fixture(scope="module")
def synthetic_ds():
    return records_to_dataset(synthetic_medical_records(n_texts=80, personas_per_text=4, seed=3),
                              MEDICAL_LABEL_SET, MEDICAL_PERSONAS)


def test_persona_modes(synthetic_ds):
    ds = synthetic_ds.select(range(5))
    row = ds[0]
    views = {m: persona_view(ds, m, MEDICAL_PERSONAS, MEDICAL_LABEL_SET) for m in PERSONA_MODES}
    assert views["non_personalized"][0]["input_text"] == row["text"]
    assert views["persona_token"][0]["input_text"] == f"{persona_token(row['persona_id'])} {row['text']}"
    desc = views["personalized_desc"][0]
    assert desc["input_pair"] == row["text"] and MEDICAL_PERSONAS[row["persona_id"]].description in desc["input_text"]
    chat = views["personalized_instruction"][0]
    assert [m["role"] for m in chat["messages"]] == ["system", "user", "assistant"]
    assert chat["prompt"] == chat["messages"][:2]
    assert chat["messages"][0]["content"] == MEDICAL_PERSONAS[row["persona_id"]].instruction
    answer = json.loads(chat["messages"][2]["content"])
    assert list(answer) == list(MEDICAL_LABEL_SET.dimensions)
    assert answer["fear"] == pytest.approx(row["labels"]["fear"], abs=0.006)
    for view in views.values():
        assert view[0]["label_values"] == pytest.approx([row["labels"][d] for d in MEDICAL_LABEL_SET.dimensions])
    with pytest.raises(ValueError, match="unknown persona mode"):
        persona_view(ds, "nope", MEDICAL_PERSONAS, MEDICAL_LABEL_SET)


def test_persona_tokens_added_resized_and_saved(tmp_path, tiny_bert_dir):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModel.from_pretrained(tiny_bert_dir)
    before = len(tok)
    tokens = add_persona_tokens(tok, MEDICAL_PERSONAS, model)
    assert len(tok) == before + 16
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    ids = tok(f"{persona_token('nurse')} the ward was full")["input_ids"]
    assert tok.convert_tokens_to_ids(persona_token("nurse")) in ids
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.convert_tokens_to_ids(tokens) == tok.convert_tokens_to_ids(tokens)
    assert again(f"{persona_token('gp')} x")["input_ids"] == tok(f"{persona_token('gp')} x")["input_ids"]


def _assert_disjoint(splits):
    ids = {name: set(ds["id"]) for name, ds in splits.items()}
    texts = {name: set(ds["text_id"]) for name, ds in splits.items()}
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not ids[a] & ids[b], (a, b)
    return ids, texts


def test_random_split_groups_texts(synthetic_ds):
    splits = make_splits(synthetic_ds, "random", seed=1)
    ids, texts = _assert_disjoint(splits)
    assert sum(len(v) for v in ids.values()) == len(synthetic_ds)
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not texts[a] & texts[b]
    assert len(texts["test"]) == 8 and len(texts["validation"]) == 8
    again = make_splits(synthetic_ds, "random", seed=1)
    assert again["test"]["id"] == splits["test"]["id"]
    assert make_splits(synthetic_ds, "random", seed=2)["test"]["id"] != splits["test"]["id"]


@pytest.mark.parametrize("lang", ["en", "pl"])
def test_lolo_holds_out_a_language(synthetic_ds, lang):
    splits = make_splits(synthetic_ds, "lolo", held_out=lang)
    ids, texts = _assert_disjoint(splits)
    assert set(splits["test"]["lang"]) == {lang}
    assert lang not in set(splits["train"]["lang"]) | set(splits["validation"]["lang"])
    assert len(splits["test"]) == sum(1 for x in synthetic_ds["lang"] if x == lang)
    assert not texts["train"] & texts["validation"] and not texts["train"] & texts["test"]


def test_lopo_holds_out_a_persona(synthetic_ds):
    held = "journalist"
    splits = make_splits(synthetic_ds, "lopo", held_out=held)
    ids, texts = _assert_disjoint(splits)
    assert set(splits["test"]["persona_id"]) == {held}
    assert held not in set(splits["train"]["persona_id"]) | set(splits["validation"]["persona_id"])
    assert len(splits["test"]) == synthetic_ds["persona_id"].count(held)
    assert not texts["train"] & texts["validation"]
    assert sum(len(v) for v in ids.values()) == len(synthetic_ds)
    with pytest.raises(ValueError, match="held_out='martian' does not occur"):
        make_splits(synthetic_ds, "lopo", held_out="martian")
    with pytest.raises(ValueError, match="needs held_out"):
        split_indices(["a"], ["en"], ["x"], "lolo")

"""EmoBank: English sentences with Valence / Arousal / Dominance (1-5) from two perspectives, as
records of affectlab's persona regression contract (`affectlab.personas`).

Self-contained: no affectlab code is loaded here (the dependency goes one way, from affectlab to the
builders). Its label set (`LABEL_SET`) and personas (`PERSONAS`) are plain data in the contract's form,
which `affectlab.personas.dataset_contract("emobank")` turns into a `LabelSet` and a `PersonaRegistry`;
`FEATURES` are the contract's `datasets.Features`, built here from `LABEL_SET`.

Reads the original layout from a local folder: `emobank.csv` (`id,split,V,A,D,text`; splits `train`,
`dev`, optionally `test`) and `individual_writer_ratings.csv` / `individual_reader_ratings.csv`
(`id,V,A,D`, one row per single rating). The two annotation perspectives become two personas:
`writer` (the emotion the writer expressed) and `reader` (the emotion a reader perceived).

Configs:
- `aggregated` (default): one record per sentence and perspective; labels are the mean of that
  perspective's individual ratings (`id` = `<sentence id>::<persona>`).
- `individual`: one record per single rating (`id` = `<sentence id>::<persona>::<k>`); annotators are
  not identified in EmoBank, so the persona is the perspective.
- `combined`: one record per sentence with the released aggregated scores of `emobank.csv` (the
  reliability-weighted combination of both perspectives), persona `combined`. These are the scores the
  literature reports Pearson r on (official train / dev / test); `persona_id` is the constant `combined`
  only because the persona contract needs one, and the `non_personalized` mode never shows it to a model
  (`recipes/emobank_minilm_combined.yaml`).

Records of the same sentence share `text_id`, so `affectlab.personas.make_splits` keeps them together.
Splits: `train`, `validation` (EmoBank `dev`) and `test` when present. Individual ratings of
sentences missing from `emobank.csv` (no text) are skipped.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import datasets

from dataset_builders.common import DataFormatError, read_csv_records

# The contract's plain data (affectlab.personas.LabelSet.to_dict() / PersonaRegistry.to_list() form).
LABEL_SET = {"name": "emobank_vad", "dimensions": ["V", "A", "D"], "low": 1.0, "high": 5.0,
             "descriptions": {"V": "valence (1 negative - 5 positive)", "A": "arousal (1 calm - 5 excited)",
                              "D": "dominance (1 controlled - 5 in control)"}}
DIMENSIONS = tuple(LABEL_SET["dimensions"])
LOW, HIGH = LABEL_SET["low"], LABEL_SET["high"]
PERSONAS = [
    {"id": "writer", "name": "The writer",
     "description": "The author of the sentence: the emotion the writer expressed.",
     "instruction": "Rate the emotion the writer of the text expressed, from 1 to 5."},
    {"id": "reader", "name": "A reader",
     "description": "Someone reading the sentence: the emotion a reader perceives.",
     "instruction": "Rate the emotion you feel as a reader of the text, from 1 to 5."},
    {"id": "combined", "name": "Writer and reader combined",
     "description": "The combination of the writer's and the reader's perspective.",
     "instruction": "Rate the emotion of the text, from 1 to 5."},
]
# The contract's record features (the same as affectlab.personas.records_features(LABEL_SET)).
FEATURES = datasets.Features({
    "id": datasets.Value("string"), "text_id": datasets.Value("string"), "text": datasets.Value("string"),
    "lang": datasets.Value("string"), "persona_id": datasets.Value("string"),
    "labels": {d: datasets.Value("float32") for d in DIMENSIONS},
    "source": datasets.Value("string"),
})
PERSPECTIVES = {"writer": "individual_writer_ratings.csv", "reader": "individual_reader_ratings.csv"}
SPLITS = {"train": "train", "dev": "validation", "test": "test"}

# What cards and eval_results.json say about the dataset (read by affectlab's dataset_info).
LICENSE = "cc-by-sa-4.0"
LANGUAGES = ["en"]
SPLIT_NOTES = {"validation": "EmoBank's official dev split (1,000 sentences)"}
ABSENT_SPLITS = ["test (official, 1,000 sentences, with its individual ratings)"]
TASK_CATEGORIES = ["text-classification"]
TASK_IDS = ["sentiment-scoring"]

CITATION = """@inproceedings{buechel2017emobank,
  title = {{EmoBank}: Studying the Impact of Annotation Perspective and Representation Format on Dimensional Emotion Analysis},
  author = {Buechel, Sven and Hahn, Udo},
  booktitle = {Proceedings of the 15th Conference of the European Chapter of the Association for Computational Linguistics (EACL)},
  year = {2017}
}"""


def _value(path, line, column, raw):
    try:
        value = float(raw)
    except ValueError:
        raise DataFormatError(path, f"column {column} must be a number, got {raw!r}", line) from None
    if not math.isfinite(value) or not LOW <= value <= HIGH:
        raise DataFormatError(path, f"column {column}={raw} outside [{LOW:g}, {HIGH:g}]", line)
    return value


def read_sentences(path: str | Path) -> dict[str, dict]:
    """`emobank.csv` -> {id: {split, text, labels, line}}, validating every row."""
    out = {}
    for line, row in read_csv_records(path, ["id", "split", "V", "A", "D", "text"]):
        sid = row["id"].strip()
        if not sid:
            raise DataFormatError(path, "empty id", line)
        if sid in out:
            raise DataFormatError(path, f"duplicate id {sid!r} (first at line {out[sid]['line']})", line)
        if row["split"] not in SPLITS:
            raise DataFormatError(path, f"split must be one of {sorted(SPLITS)}, got {row['split']!r}", line)
        if not row["text"].strip():
            raise DataFormatError(path, f"empty text for id {sid!r}", line)
        out[sid] = {"split": SPLITS[row["split"]], "text": row["text"], "line": line,
                    "labels": {d: _value(path, line, d, row[d]) for d in DIMENSIONS}}
    if not out:
        raise DataFormatError(path, "no rows")
    return out


def read_individual(path: str | Path) -> dict[str, list[dict]]:
    """An individual-ratings file -> {sentence id: [ {V, A, D}, ... ]} in file order."""
    out: dict[str, list[dict]] = defaultdict(list)
    for line, row in read_csv_records(path, ["id", "V", "A", "D"]):
        sid = row["id"].strip()
        if not sid:
            raise DataFormatError(path, "empty id", line)
        out[sid].append({d: _value(path, line, d, row[d]) for d in DIMENSIONS})
    return out


class EmoBankConfig(datasets.BuilderConfig):
    pass


class EmoBank(datasets.GeneratorBasedBuilder):
    """`EmoBank(data_dir=<folder>, config_name="aggregated" | "individual" | "combined")`."""

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIGS = [
        EmoBankConfig(name="aggregated", version=VERSION, description="per-perspective mean ratings, personas writer/reader"),
        EmoBankConfig(name="individual", version=VERSION, description="every single rating, personas writer/reader"),
        EmoBankConfig(name="combined", version=VERSION, description="released combined scores, persona 'combined'"),
    ]
    DEFAULT_CONFIG_NAME = "aggregated"

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(description=__doc__, features=FEATURES,
                                    homepage="https://github.com/JULIELab/EmoBank", license=LICENSE,
                                    citation=CITATION)

    def _split_generators(self, dl_manager):
        if not self.config.data_dir:
            raise DataFormatError("emobank", "no local EmoBank folder: set AFFECTLAB_DATA or pass data_dir "
                                  "(emobank.csv + individual_*_ratings.csv)")
        folder = Path(self.config.data_dir)
        main = folder / "emobank.csv"
        if not main.is_file():
            raise DataFormatError(main, "file not found")
        if self.config.name != "combined":
            for name in PERSPECTIVES.values():
                if not (folder / name).is_file():
                    raise DataFormatError(folder / name, "file not found")
        present = {s["split"] for s in read_sentences(main).values()}
        return [datasets.SplitGenerator(name=split, gen_kwargs={"folder": str(folder), "split": split})
                for split in ("train", "validation", "test") if split in present]

    def _generate_examples(self, folder: str, split: str):
        folder = Path(folder)
        sentences = read_sentences(folder / "emobank.csv")
        if self.config.name == "combined":
            for sid, s in sentences.items():
                if s["split"] == split:
                    yield f"{sid}::combined", _record(f"{sid}::combined", sid, s, "combined", s["labels"])
            return
        ratings = {p: read_individual(folder / f) for p, f in PERSPECTIVES.items()}
        for sid, s in sentences.items():
            if s["split"] != split:
                continue
            for persona, by_id in ratings.items():
                rows = by_id.get(sid)
                if not rows:
                    raise DataFormatError(folder / PERSPECTIVES[persona], f"no {persona} ratings for sentence {sid!r} "
                                          f"(emobank.csv line {s['line']})")
                if self.config.name == "aggregated":
                    labels = {d: sum(r[d] for r in rows) / len(rows) for d in DIMENSIONS}
                    yield f"{sid}::{persona}", _record(f"{sid}::{persona}", sid, s, persona, labels)
                else:
                    for k, labels in enumerate(rows):
                        rid = f"{sid}::{persona}::{k}"
                        yield rid, _record(rid, sid, s, persona, labels)


def _record(rid, sid, sentence, persona, labels):
    return {"id": rid, "text_id": sid, "text": sentence["text"], "lang": "en", "persona_id": persona,
            "labels": labels, "source": "emobank"}


CARD = """# EmoBank (persona records), built by affectlab

10k English sentences rated for Valence, Arousal and Dominance (1-5) from the writer's and the
reader's perspective (Buechel & Hahn, EACL 2017; LAW 2017). Licence CC BY-SA 4.0. Built with
`dataset_builders/emobank` of affectlab as records of the persona regression contract: `id`,
`text_id` (the sentence), `text`, `lang` (`en`), `persona_id` (`writer` / `reader`, or `combined`),
`labels` ({V, A, D}), `source`. Configs: `aggregated` (per-perspective means of the individual
ratings), `individual` (every single rating), `combined` (the released combined scores).

```bibtex
""" + CITATION + "\n```\n"

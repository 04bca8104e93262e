"""SST-2 (GLUE, binary sentiment): phrases from the Stanford Sentiment Treebank labelled negative/positive.

Reads the local TSV layout (`train.tsv`, `dev.tsv`, optional `test.tsv`; header `sentence<TAB>label`, label
0 = negative, 1 = positive) or, when no folder is given and the Hub is reachable, `stanfordnlp/sst2`.
Output features: `id` (string), `text`, `labels` (ClassLabel negative/positive). Sentences are stripped of the
trailing blank the GLUE files carry. Every row is validated; errors name the file and line.

Configs:
- `default`: the files as they are (`train`, and the local dev.tsv as `train_heldout`).
- `sentences_heldout`: an honest held-out set built from the local files, which are both slices of GLUE SST-2
  *train* (GLUE's validation set, 872 sentences, is absent). SST-2 phrases are sub-trees of sentences, so a
  random slice of phrases overlaps the training sentences. Here the phrases of train.tsv and dev.tsv are pooled;
  a *full sentence* is a phrase that is not a token-wise sub-phrase (contiguous token run, after lowercasing and
  whitespace normalisation) of any longer phrase in the pool; a seeded sample of `heldout_size` (872, GLUE dev's
  size) full sentences becomes the split `heldout_sentences`, and EVERY pooled phrase that is a sub-phrase of a
  held-out sentence (the sentence itself and its duplicates included) is removed from `train`.
- `sentences_tuning`: `sentences_heldout` minus a second seeded sample of `tuning_size` full sentences carved
  from its *training* phrases the same way (split `tuning_sentences`, their sub-phrases removed from `train`);
  `heldout_sentences` is not exposed, so hyper-parameters are chosen without seeing it.
The counts of every build are in the dataset info's description.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import datasets

from dataset_builders.common import DataFormatError, RowChecks, read_delimited

logger = logging.getLogger(__name__)

HUB_ID = "stanfordnlp/sst2"
LABEL_NAMES = ["negative", "positive"]
# The local dev.tsv is NOT GLUE's validation set: it is a slice of GLUE SST-2 train, so it is named for what
# it is (`train_heldout`); the Hub source's `validation` is GLUE's real dev set and keeps its name.
SPLIT_FILES = {"train": "train.tsv", "train_heldout": "dev.tsv", "test": "test.tsv"}
POOLED_FILES = ("train.tsv", "dev.tsv")  # what the sentence-level configs pool (both slices of GLUE train)
HELDOUT_SIZE = 872  # GLUE SST-2 dev's size
SPLIT_SEED = 1337
# What cards, eval_results.json and result records say about the data (affectlab.tasks.*.dataset_info).
LICENSE = "other"  # the Stanford Sentiment Treebank has no explicit licence; GLUE redistributes it for research
LANGUAGES = ["en"]
ABSENT_SPLITS = ["validation (GLUE SST-2 dev, 872 sentences)", "test (GLUE, unlabelled)"]
SPLIT_NOTES = {
    "train_heldout": "the local dev.tsv: 6,735 phrases held out from GLUE SST-2 *train* (not GLUE's validation set); "
                  "its phrases are sub-trees of sentences whose other phrases are in train, so it overlaps training "
                  "sentences and reads optimistic next to GLUE dev numbers",
    "heldout_sentences": "config sentences_heldout: 872 full sentences (phrases not inside any longer phrase) sampled "
                         "(seed 1337) from the pooled local train.tsv + dev.tsv, i.e. from GLUE SST-2 *train*, with "
                         "every phrase inside them removed from training; sentence-level like GLUE dev, but not it",
    "tuning_sentences": "config sentences_tuning: a second sample of full sentences carved from the training phrases "
                        "of sentences_heldout (their sub-phrases removed from its train), for choosing "
                        "hyper-parameters without the held-out sentences",
}
TASK_CATEGORIES = ["text-classification"]
TASK_IDS = ["sentiment-classification"]

CITATION = """@inproceedings{socher2013recursive,
  title = {Recursive Deep Models for Semantic Compositionality Over a Sentiment Treebank},
  author = {Socher, Richard and Perelygin, Alex and Wu, Jean and Chuang, Jason and Manning, Christopher D. and Ng, Andrew and Potts, Christopher},
  booktitle = {Proceedings of EMNLP},
  year = {2013}
}"""


def features() -> datasets.Features:
    return datasets.Features({
        "id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "labels": datasets.ClassLabel(names=LABEL_NAMES),
    })


def parse_tsv(path: str | Path, split: str):
    """Yield (line, example) from one SST-2 TSV file, validating every row."""
    checks = RowChecks(path)
    for line_no, row in read_delimited(path, "\t", ["sentence", "label"]):
        checks.row(line_no)
        text = row["sentence"].strip()
        if not text:
            raise DataFormatError(path, "empty sentence", line_no)
        if row["label"].strip() not in ("0", "1"):
            raise DataFormatError(path, f"label must be 0 or 1, got {row['label']!r}", line_no)
        yield line_no, {"id": f"{split}-{line_no}", "text": text, "labels": int(row["label"])}
    checks.finish()


# ---------------------------------------------------------------------------------------------------------
# sentence-level held-out sets
# ---------------------------------------------------------------------------------------------------------
def tokens(text: str) -> tuple[str, ...]:
    """The token-wise key of a phrase: lowercased, split on whitespace (GLUE's SST-2 text is pre-tokenised)."""
    return tuple(text.lower().split())


def sub_phrases(toks: tuple[str, ...]):
    """Every contiguous token run of `toks`, itself included."""
    n = len(toks)
    for i in range(n):
        for j in range(i + 1, n + 1):
            yield toks[i:j]


def full_sentences(keys) -> list[tuple[str, ...]]:
    """The distinct keys that are not a contiguous token run of any longer key, in first-seen order.

    Longest first: a key already found inside a longer one needs no enumeration of its own runs (they are runs of
    that longer key too), so only the maximal keys are enumerated against a hash set of all keys."""
    distinct = list(dict.fromkeys(keys))
    present = set(distinct)
    covered: set[tuple[str, ...]] = set()
    maximal = set()
    for key in sorted(distinct, key=len, reverse=True):
        if key in covered:
            continue
        maximal.add(key)
        n = len(key)
        for i in range(n):
            for j in range(i + 1, n + 1):
                if j - i < n:
                    run = key[i:j]
                    if run in present:
                        covered.add(run)
    return [k for k in distinct if k in maximal]


def carve_sentences(rows: list[dict], size: int, seed: int) -> tuple[list[dict], list[dict], dict]:
    """Hold out `size` full sentences (seeded sample) of `rows`; returns (held-out rows, remaining training rows,
    counts). Training keeps no row whose key is a sub-phrase of a held-out sentence (duplicates included); of
    duplicate held-out sentences the first row is kept."""
    keys = [tokens(r["text"]) for r in rows]
    sentences = full_sentences(keys)
    if size > len(sentences):
        raise ValueError(f"cannot hold out {size} sentences: only {len(sentences)} full sentences")
    picked = random.Random(seed).sample(sentences, size)
    picked_set = set(picked)
    banned = {run for s in picked for run in sub_phrases(s)}
    heldout, train, seen = [], [], set()
    for row, key in zip(rows, keys):
        if key in picked_set:
            if key not in seen:
                seen.add(key)
                heldout.append(row)
        elif key not in banned:
            train.append(row)
    counts = {"rows": len(rows), "distinct_phrases": len(set(keys)), "full_sentences": len(sentences),
              "heldout_sentences": len(heldout), "removed_phrases": len(rows) - len(train) - len(heldout),
              "train_rows": len(train)}
    return heldout, train, counts


def read_pool(folder: Path) -> list[dict]:
    """The rows of train.tsv and dev.tsv (validated), ids `<file stem>-<line>`."""
    rows = []
    for name in POOLED_FILES:
        path = folder / name
        if not path.is_file():
            raise DataFormatError(path, "file not found (the sentence-level configs pool train.tsv and dev.tsv)")
        rows.extend(ex for _, ex in parse_tsv(path, path.stem))
    return rows


def sentence_splits(folder: Path, heldout_size: int, tuning_size: int, seed: int) -> tuple[dict[str, list], str]:
    """The splits of a sentence-level config and a line of counts for the dataset info."""
    rows = read_pool(folder)
    try:
        heldout, train, counts = carve_sentences(rows, heldout_size, seed)
        note = (f"pooled {counts['rows']} phrases of {' + '.join(POOLED_FILES)} ({counts['distinct_phrases']} distinct "
                f"token-wise, {counts['full_sentences']} full sentences); held out {counts['heldout_sentences']} "
                f"sentences (seed {seed}) and removed {counts['removed_phrases']} phrase rows inside them from train")
        if not tuning_size:
            return {"train": train, "heldout_sentences": heldout}, note + f"; train keeps {len(train)} rows."
        tuning, train, t_counts = carve_sentences(train, tuning_size, seed + 1)
    except ValueError as err:
        raise DataFormatError(folder, str(err)) from None
    return {"train": train, "tuning_sentences": tuning}, note + (
        f"; then held out {t_counts['heldout_sentences']} of the remaining {t_counts['full_sentences']} full sentences "
        f"as tuning_sentences (seed {seed + 1}), removed {t_counts['removed_phrases']} more phrase rows; train keeps "
        f"{len(train)} rows; heldout_sentences is not exposed.")


@dataclass
class SST2Config(datasets.BuilderConfig):
    """`heldout_size` > 0 makes a sentence-level config (see the module docstring); `tuning_size` > 0 adds the
    tuning carve-out and hides `heldout_sentences`."""

    heldout_size: int = 0
    tuning_size: int = 0
    split_seed: int = SPLIT_SEED


class SST2(datasets.GeneratorBasedBuilder):
    """SST-2 builder: `SST2(data_dir=...)` for a local copy, `SST2()` for the Hub."""

    VERSION = datasets.Version("1.1.0")
    BUILDER_CONFIG_CLASS = SST2Config
    BUILDER_CONFIGS = [
        SST2Config(name="default", version=VERSION, description="binary sentiment"),
        SST2Config(name="sentences_heldout", version=VERSION, heldout_size=HELDOUT_SIZE,
                   description=f"{HELDOUT_SIZE} full sentences of the pooled local GLUE-train phrases held out "
                               "(split heldout_sentences), every phrase inside them removed from train; GLUE "
                               "validation is absent"),
        SST2Config(name="sentences_tuning", version=VERSION, heldout_size=HELDOUT_SIZE, tuning_size=HELDOUT_SIZE,
                   description=f"the train split of sentences_heldout minus {HELDOUT_SIZE} more full sentences held "
                               "out as tuning_sentences (with every phrase inside them), for hyper-parameter search"),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> datasets.DatasetInfo:
        description = __doc__
        if self.config.description:
            description += f"\nThis build: config {self.config.name!r}: {self.config.description}.\n"
        return datasets.DatasetInfo(description=description, features=features(),
                                    homepage="https://nlp.stanford.edu/sentiment/", citation=CITATION)

    def _split_generators(self, dl_manager):
        if self.config.data_dir:
            folder = Path(self.config.data_dir)
            if not folder.is_dir():
                raise DataFormatError(folder, "data folder not found")
            if not (folder / "train.tsv").is_file():
                raise DataFormatError(folder / "train.tsv", "file not found")
            if self.config.heldout_size:
                self._rows, counts = sentence_splits(folder, self.config.heldout_size, self.config.tuning_size,
                                                     self.config.split_seed)
                self.info.description += f"Counts: {counts}\n"
                logger.info("SST-2 %s: %s", self.config.name, counts)
                return [datasets.SplitGenerator(name=split, gen_kwargs={"split": split}) for split in self._rows]
            return [datasets.SplitGenerator(name=split, gen_kwargs={"path": str(folder / name), "split": split})
                    for split, name in SPLIT_FILES.items() if (folder / name).is_file()]
        if self.config.heldout_size:
            raise DataFormatError("sst2", f"config {self.config.name!r} needs the local train.tsv + dev.tsv folder")
        hub = datasets.load_dataset(HUB_ID)
        # The Hub's test split has no labels (-1): keep train and validation only.
        return [datasets.SplitGenerator(name=split, gen_kwargs={"hub_split": hub[split], "split": split})
                for split in ("train", "validation") if split in hub]

    def _generate_examples(self, path: str | None = None, split: str = "train", hub_split=None):
        if path is not None:
            yield from parse_tsv(path, split)
        elif hub_split is None:
            for row in self._rows[split]:
                yield row["id"], row
        else:
            for i, row in enumerate(hub_split):
                yield i, {"id": str(row.get("idx", i)), "text": row["sentence"].strip(), "labels": int(row["label"])}


CARD = """# SST-2, built by affectlab

Binary sentiment (negative / positive) phrases from the Stanford Sentiment Treebank, as in GLUE SST-2.
Built with `dataset_builders/sst2` of affectlab from the original TSV files.

Features: `id`, `text`, `labels` (ClassLabel: negative, positive).

Configs: `default` (the files as they are: `train`, and the local dev.tsv, a slice of GLUE train, as
`train_heldout`); `sentences_heldout` (train.tsv + dev.tsv pooled; 872 full sentences, i.e. phrases inside no
longer phrase, held out as `heldout_sentences` with seed 1337, and every phrase inside them removed from `train`:
a sentence-level held-out set like GLUE dev, drawn from GLUE *train*, since GLUE's validation set is absent);
`sentences_tuning` (the train of `sentences_heldout` minus 872 more full sentences, `tuning_sentences`, and the
phrases inside them: for choosing hyper-parameters without touching `heldout_sentences`).

```bibtex
""" + CITATION + "\n```\n"

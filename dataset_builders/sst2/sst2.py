"""SST-2 (GLUE, binary sentiment): phrases from the Stanford Sentiment Treebank labelled negative/positive.

Reads the local TSV layout (`train.tsv`, `dev.tsv`, optional `test.tsv`; header `sentence<TAB>label`, label
0 = negative, 1 = positive) or, when no folder is given and the Hub is reachable, `stanfordnlp/sst2`.
Output features: `id` (string), `text`, `labels` (ClassLabel negative/positive). Sentences are stripped of the
trailing blank the GLUE files carry. Every row is validated; errors name the file and line.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from dataset_builders.common import DataFormatError, RowChecks, read_delimited

HUB_ID = "stanfordnlp/sst2"
LABEL_NAMES = ["negative", "positive"]
# The local dev.tsv is NOT GLUE's validation set: it is a slice of GLUE SST-2 train, so it is named for what
# it is (`train_heldout`); the Hub source's `validation` is GLUE's real dev set and keeps its name.
SPLIT_FILES = {"train": "train.tsv", "train_heldout": "dev.tsv", "test": "test.tsv"}
# What cards, eval_results.json and result records say about the data (affectlab.tasks.*.dataset_info).
LICENSE = "other"  # the Stanford Sentiment Treebank has no explicit licence; GLUE redistributes it for research
LANGUAGES = ["en"]
ABSENT_SPLITS = ["validation (GLUE SST-2 dev, 872 sentences)", "test (GLUE, unlabelled)"]
SPLIT_NOTES = {
    "train_heldout": "the local dev.tsv: 6,735 phrases held out from GLUE SST-2 *train* (not GLUE's validation set); "
                  "its phrases are sub-trees of sentences whose other phrases are in train, so it overlaps training "
                  "sentences and reads optimistic next to GLUE dev numbers",
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


class SST2(datasets.GeneratorBasedBuilder):
    """SST-2 builder: `SST2(data_dir=...)` for a local copy, `SST2()` for the Hub."""

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIGS = [datasets.BuilderConfig(name="default", version=VERSION, description="binary sentiment")]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(description=__doc__, features=features(),
                                    homepage="https://nlp.stanford.edu/sentiment/", citation=CITATION)

    def _split_generators(self, dl_manager):
        if self.config.data_dir:
            folder = Path(self.config.data_dir)
            if not folder.is_dir():
                raise DataFormatError(folder, "data folder not found")
            if not (folder / "train.tsv").is_file():
                raise DataFormatError(folder / "train.tsv", "file not found")
            return [datasets.SplitGenerator(name=split, gen_kwargs={"path": str(folder / name), "split": split})
                    for split, name in SPLIT_FILES.items() if (folder / name).is_file()]
        hub = datasets.load_dataset(HUB_ID)
        # The Hub's test split has no labels (-1): keep train and validation only.
        return [datasets.SplitGenerator(name=split, gen_kwargs={"hub_split": hub[split], "split": split})
                for split in ("train", "validation") if split in hub]

    def _generate_examples(self, path: str | None = None, split: str = "train", hub_split=None):
        if path is not None:
            yield from parse_tsv(path, split)
        else:
            for i, row in enumerate(hub_split):
                yield i, {"id": str(row.get("idx", i)), "text": row["sentence"].strip(), "labels": int(row["label"])}


CARD = """# SST-2, built by affectlab

Binary sentiment (negative / positive) phrases from the Stanford Sentiment Treebank, as in GLUE SST-2.
Built with `dataset_builders/sst2` of affectlab from the original TSV files.

Features: `id`, `text`, `labels` (ClassLabel: negative, positive).

```bibtex
""" + CITATION + "\n```\n"

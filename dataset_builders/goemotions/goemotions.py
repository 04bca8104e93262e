"""GoEmotions (simplified): Reddit comments with 28 emotion labels (27 emotions + neutral), multi-label.

Reads the original TSV layout (`train.tsv`, `dev.tsv`, optional `test.tsv`, optional `labels.txt`;
rows `text<TAB>comma-separated label ids<TAB>comment id`, no header) from a local folder, or, when no
folder is given and the Hub is reachable, the Hub dataset `google-research-datasets/go_emotions`
(config `simplified`). Output features: `id`, `text`, `labels` (a list of ClassLabel over 28 names).
"""

from __future__ import annotations

from pathlib import Path

import datasets

from dataset_builders.common import DataFormatError, RowChecks, read_utf8_lines

HUB_ID = "google-research-datasets/go_emotions"
LICENSE = "cc-by-4.0"
LANGUAGES = ["en"]
ABSENT_SPLITS = ["test (official, 5,427 comments)"]
SPLIT_NOTES = {"validation": "the official dev split (5,426 comments)"}
TASK_CATEGORIES = ["text-classification"]
TASK_IDS = ["multi-label-classification", "sentiment-classification"]
LABEL_NAMES = [
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity",
    "desire", "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear",
    "gratitude", "grief", "joy", "love", "nervousness", "optimism", "pride", "realization", "relief",
    "remorse", "sadness", "surprise", "neutral",
]
SPLIT_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}

CITATION = """@inproceedings{demszky2020goemotions,
  title = {{GoEmotions: A Dataset of Fine-Grained Emotions}},
  author = {Demszky, Dorottya and Movshovitz-Attias, Dana and Ko, Jeongwoo and Cowen, Alan and Nemade, Gaurav and Ravi, Sujith},
  booktitle = {Proceedings of the 58th Annual Meeting of the Association for Computational Linguistics (ACL)},
  year = {2020}
}"""


def features() -> datasets.Features:
    return datasets.Features({
        "id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "labels": datasets.Sequence(datasets.ClassLabel(names=LABEL_NAMES)),
    })


def parse_tsv(path: str | Path):
    """Yield (line, example) from one GoEmotions TSV file, validating every row."""
    num_labels = len(LABEL_NAMES)
    checks = RowChecks(path, "comment id")
    for line_no, line in read_utf8_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise DataFormatError(path, f"expected 3 tab-separated fields (text, labels, id), found {len(fields)}", line_no)
        text, label_field, comment_id = fields
        if not text.strip():
            raise DataFormatError(path, "empty text", line_no)
        if not comment_id.strip():
            raise DataFormatError(path, "empty comment id", line_no)
        try:
            labels = [int(x) for x in label_field.split(",")]
        except ValueError:
            hint = (" (this looks like a header line: GoEmotions TSVs have none, remove it)"
                    if line_no == 1 and not any(c.isdigit() for c in label_field) else "")
            raise DataFormatError(path, f"labels must be comma-separated integers, got {label_field!r}{hint}", line_no) from None
        bad = [x for x in labels if not 0 <= x < num_labels]
        if bad:
            raise DataFormatError(path, f"label id(s) {bad} outside 0-{num_labels - 1}", line_no)
        checks.row(line_no, comment_id)
        yield line_no, {"id": comment_id, "text": text, "labels": sorted(set(labels))}
    checks.finish()


def check_label_file(path: Path) -> None:
    names = [line.strip() for _, line in read_utf8_lines(path) if line.strip()]
    if names != LABEL_NAMES:
        raise DataFormatError(path, f"label names differ from the GoEmotions taxonomy: {names}")


class GoEmotions(datasets.GeneratorBasedBuilder):
    """GoEmotions builder: `GoEmotions(data_dir=...)` for a local copy, `GoEmotions()` for the Hub."""

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIGS = [datasets.BuilderConfig(name="simplified", version=VERSION, description="28 labels, multi-label")]
    DEFAULT_CONFIG_NAME = "simplified"

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=__doc__,
            features=features(),
            homepage="https://github.com/google-research/google-research/tree/master/goemotions",
            license="cc-by-4.0",
            citation=CITATION,
        )

    def _split_generators(self, dl_manager):
        if self.config.data_dir:
            folder = Path(self.config.data_dir)
            if not folder.is_dir():
                raise DataFormatError(folder, "data folder not found")
            if (folder / "labels.txt").is_file():
                check_label_file(folder / "labels.txt")
            if not (folder / "train.tsv").is_file():
                raise DataFormatError(folder / "train.tsv", "file not found")
            return [
                datasets.SplitGenerator(name=split, gen_kwargs={"path": str(folder / name)})
                for split, name in SPLIT_FILES.items() if (folder / name).is_file()
            ]
        hub = datasets.load_dataset(HUB_ID, "simplified")
        return [datasets.SplitGenerator(name=split, gen_kwargs={"hub_split": hub[split]}) for split in hub]

    def _generate_examples(self, path: str | None = None, hub_split=None):
        if path is not None:
            for line_no, example in parse_tsv(path):
                yield line_no, example
        else:
            for i, row in enumerate(hub_split):
                yield i, {"id": row["id"], "text": row["text"], "labels": sorted(set(row["labels"]))}


CARD = """# GoEmotions (simplified), built by affectlab

Reddit comments labelled with 27 emotions + neutral (multi-label), from Demszky et al., ACL 2020.
Licence CC BY 4.0. Built with `dataset_builders/goemotions` of affectlab from the original TSV files.

Features: `id` (comment id), `text`, `labels` (list of ClassLabel ids over the 28 names).

```bibtex
""" + CITATION + "\n```\n"

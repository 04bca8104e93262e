"""SemEval-2018 Task 1 E-c (English tweets, 11 emotions, multi-label), optionally mapped to GoEmotions.

Files in the original layout: `2018-E-c-En-train.txt`, `2018-E-c-En-dev.txt`, `2018-E-c-En-test-gold.txt`
(tab-separated, header `ID  Tweet  anger ... trust`, 0/1 per emotion); whichever are present become
the `train`, `validation`, `test` splits.

Configs:
- `goemotions_taxonomy` (default): labels mapped into the 28 GoEmotions names (below), so the data
  mixes with GoEmotions in one classifier.
- `original`: the 11 SemEval emotions as they are.

Label mapping into the GoEmotions taxonomy (lossy where no GoEmotions label matches exactly):

| SemEval      | GoEmotions   | why |
|--------------|--------------|-----|
| anger        | anger        | same emotion |
| anticipation | excitement   | GoEmotions' excitement is "enthusiasm and eagerness", the closest to anticipation |
| disgust      | disgust      | same emotion |
| fear         | fear         | same emotion |
| joy          | joy          | same emotion |
| love         | love         | same emotion |
| optimism     | optimism     | same emotion |
| pessimism    | sadness      | Plutchik: pessimism = sadness + anticipation; the sadness part is kept |
| sadness      | sadness      | same emotion |
| surprise     | surprise     | same emotion |
| trust        | approval     | Plutchik's trust/acceptance is closest to GoEmotions' approval |
| (none)       | neutral      | SemEval marks a tweet with no emotion as "neutral or no emotion" |

The 17 GoEmotions labels that SemEval does not annotate are negatives in the mapped rows: a mixture
treats them as known absences, which is the price of mixing taxonomies (weight the mixture accordingly).
"""

from __future__ import annotations

from pathlib import Path

import datasets

from dataset_builders.common import DataFormatError, RowChecks, read_delimited
from dataset_builders.goemotions.goemotions import LABEL_NAMES as GOEMOTIONS_LABELS

HUB_ID = "SemEvalWorkshop/sem_eval_2018_task_1"
LICENSE = "other"  # SemEval-2018 Task 1 data: for research use (the task's terms)
LANGUAGES = ["en"]
ABSENT_SPLITS = ["validation (official dev)", "test (official test file carries no labels here)"]
SPLIT_NOTES = {"train": "the official E-c English train split (6,838 tweets)"}
TASK_CATEGORIES = ["text-classification"]
TASK_IDS = ["multi-label-classification"]
HUB_CONFIG = "subtask5.english"
SEMEVAL_LABELS = ["anger", "anticipation", "disgust", "fear", "joy", "love", "optimism", "pessimism",
                  "sadness", "surprise", "trust"]
LABEL_MAPPING = {
    "anger": "anger", "anticipation": "excitement", "disgust": "disgust", "fear": "fear", "joy": "joy",
    "love": "love", "optimism": "optimism", "pessimism": "sadness", "sadness": "sadness",
    "surprise": "surprise", "trust": "approval",
}
NO_EMOTION_LABEL = "neutral"
SPLIT_FILES = {"train": "2018-E-c-En-train.txt", "validation": "2018-E-c-En-dev.txt", "test": "2018-E-c-En-test-gold.txt"}

CITATION = """@inproceedings{mohammad2018semeval,
  title = {{SemEval-2018 Task 1: Affect in Tweets}},
  author = {Mohammad, Saif M. and Bravo-Marquez, Felipe and Salameh, Mohammad and Kiritchenko, Svetlana},
  booktitle = {Proceedings of the 12th International Workshop on Semantic Evaluation (SemEval-2018)},
  year = {2018}
}"""


def map_to_goemotions(semeval_labels: list[str]) -> list[int]:
    """GoEmotions label ids for a set of SemEval emotion names (empty set -> neutral)."""
    names = {LABEL_MAPPING[name] for name in semeval_labels}
    if not names:
        names = {NO_EMOTION_LABEL}
    return sorted(GOEMOTIONS_LABELS.index(name) for name in names)


def parse_file(path: str | Path):
    """Yield (line, id, text, [SemEval emotion names]) from one E-c file, validating every row."""
    checks = RowChecks(path, "ID")
    for line_no, row in read_delimited(path, "\t", ["ID", "Tweet", *SEMEVAL_LABELS]):
        checks.row(line_no, row["ID"])
        text = row["Tweet"]
        if not text.strip():
            raise DataFormatError(path, "empty text", line_no)
        present = []
        for name in SEMEVAL_LABELS:
            value = row[name].strip()
            if value not in ("0", "1"):
                raise DataFormatError(path, f"column {name!r} must be 0 or 1, got {value!r}", line_no)
            if value == "1":
                present.append(name)
        yield line_no, row["ID"], text, present
    checks.finish()


class SemEval2018ECConfig(datasets.BuilderConfig):
    def __init__(self, taxonomy: str = "goemotions", **kwargs):
        super().__init__(**kwargs)
        self.taxonomy = taxonomy


class SemEval2018EC(datasets.GeneratorBasedBuilder):
    """`SemEval2018EC(data_dir=...)`; config `goemotions_taxonomy` (default) or `original`."""

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIG_CLASS = SemEval2018ECConfig
    BUILDER_CONFIGS = [
        SemEval2018ECConfig(name="goemotions_taxonomy", taxonomy="goemotions", version=VERSION,
                            description="labels mapped into the 28 GoEmotions names"),
        SemEval2018ECConfig(name="original", taxonomy="semeval", version=VERSION, description="the 11 SemEval emotions"),
    ]
    DEFAULT_CONFIG_NAME = "goemotions_taxonomy"

    def _info(self) -> datasets.DatasetInfo:
        names = GOEMOTIONS_LABELS if self.config.taxonomy == "goemotions" else SEMEVAL_LABELS
        return datasets.DatasetInfo(
            description=__doc__,
            features=datasets.Features({
                "id": datasets.Value("string"),
                "text": datasets.Value("string"),
                "labels": datasets.Sequence(datasets.ClassLabel(names=names)),
            }),
            homepage="https://competitions.codalab.org/competitions/17751",
            citation=CITATION,
        )

    def _split_generators(self, dl_manager):
        if self.config.data_dir:
            folder = Path(self.config.data_dir)
            if not (folder / SPLIT_FILES["train"]).is_file():
                raise DataFormatError(folder / SPLIT_FILES["train"], "file not found")
            return [
                datasets.SplitGenerator(name=split, gen_kwargs={"path": str(folder / name)})
                for split, name in SPLIT_FILES.items() if (folder / name).is_file()
            ]
        hub = datasets.load_dataset(HUB_ID, HUB_CONFIG)
        return [datasets.SplitGenerator(name=split, gen_kwargs={"hub_split": hub[split]}) for split in hub]

    def _labels(self, present: list[str]) -> list[int]:
        if self.config.taxonomy == "goemotions":
            return map_to_goemotions(present)
        return [SEMEVAL_LABELS.index(name) for name in present]

    def _generate_examples(self, path: str | None = None, hub_split=None):
        if path is not None:
            for line_no, tweet_id, text, present in parse_file(path):
                yield line_no, {"id": tweet_id, "text": text, "labels": self._labels(present)}
        else:
            for i, row in enumerate(hub_split):
                present = [name for name in SEMEVAL_LABELS if row.get(name)]
                yield i, {"id": row["ID"], "text": row["Tweet"], "labels": self._labels(present)}


CARD = """# SemEval-2018 Task 1 E-c (English), built by affectlab

Tweets with 11 emotions (multi-label), from Mohammad et al., SemEval 2018 (research use).
Built with `dataset_builders/semeval2018_ec` of affectlab; see that module for the documented
mapping into the GoEmotions taxonomy.

```bibtex
""" + CITATION + "\n```\n"

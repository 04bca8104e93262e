"""`Task`: what a task family is to the run life-cycle (`affectlab.run.run_task`).

A family is mostly data (class attributes: its arguments class, card template, primary metric and
direction, Hub task type, tags, PEFT task type and head modules) plus a few hooks:

    load_data()                        -> TaskData            (always through dataset_builders.build_dataset)
    build_model(data)                  -> (model, tokenizer)  (through affectlab.models: one ModelConfig road)
    build_trainer(model, tokenizer, data) -> transformers.Trainer
    fit(data)                          -> FitResult           (default: model -> PEFT -> trainer -> train)
    evaluate(fit, data)                -> {split: SplitEvaluation}
    save_artifacts(folder, ...)        family files (reports, plots, predictions) written into the staging folder
    extra_results(...) / record_protocol(split) / card_context(...) / report(...)

`run_task` calls them in the same order for every family and does everything else (seed, refusals,
model checks, eval_results.json in one schema, the card, result records, the atomic move, the push).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from affectlab.configs import DataArguments, ModelArguments


@dataclass
class DatasetInfo:
    """What the card, eval_results.json and result records say about the data (never the rows' text)."""

    name: str                                   # registry name (or the path / repo the user gave)
    config: str | None = None
    hub_id: str | None = None                   # the dataset's id on the Hub, when it has one
    license: str | None = None
    languages: list[str] = field(default_factory=lambda: ["en"])
    split_notes: dict[str, str] = field(default_factory=dict)    # split -> what it really is
    absent_splits: list[str] = field(default_factory=list)       # official splits not available here
    citation: str | None = None
    synthetic: bool = False
    redistributable: bool = True                # False: never push rows or per-example predictions (ReDSM5)
    components: list = field(default_factory=list)   # DatasetInfo of the other sources of a training mixture

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def dataset_info(name: str, config: str | None = None) -> DatasetInfo:
    """What the registry and the builder module's metadata (HUB_ID, LICENSE, LANGUAGES, ABSENT_SPLITS,
    SPLIT_NOTES, CITATION) say about a dataset, for cards, eval_results.json and result records."""
    import importlib

    from dataset_builders import REGISTRY

    info = DatasetInfo(name=name, config=config)
    if name in REGISTRY:
        spec = REGISTRY[name]
        info.config = config or spec.config
        module = importlib.import_module(spec.builder.split(":")[0])
        info.citation = getattr(module, "CITATION", None)
        info.hub_id = getattr(module, "HUB_ID", None)
        info.license = getattr(module, "LICENSE", None)
        info.languages = list(getattr(module, "LANGUAGES", ["en"]))
        info.absent_splits = list(getattr(module, "ABSENT_SPLITS", []))
        info.split_notes = dict(getattr(module, "SPLIT_NOTES", {}))
        info.redistributable = bool(getattr(module, "REDISTRIBUTABLE", True))
    return info


@dataclass
class TaskData:
    train: Any                                  # datasets.Dataset (raw rows) or None
    eval: dict[str, Any]                        # split -> datasets.Dataset (raw rows)
    info: DatasetInfo
    extra: dict[str, Any] = field(default_factory=dict)   # family state: label names, label set, personas, ...


@dataclass
class SplitEvaluation:
    """One evaluated split: scalar metrics + what a result record needs (per-example values, no text)."""

    metrics: dict[str, float]
    num_examples: int
    fingerprint: str | None = None              # affectlab.results.fingerprint_rows of the evaluated rows
    y_true: Any = None                          # per-example references (class ids, 0/1 rows, values) or None
    y_pred: Any = None                          # per-example predictions, same shape
    scores: dict[str, list] | None = None       # per-example scores (e.g. SQuAD f1/exact) when y_true/y_pred do not apply
    label_names: list[str] | None = None
    details: dict[str, Any] = field(default_factory=dict)   # non-scalar results (per-label tables, ...)


@dataclass
class FitResult:
    trainer: Any
    train_metrics: dict[str, float] = field(default_factory=dict)
    train_rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Task:
    """Base of the task families; subclasses set the class attributes and implement the hooks."""

    name: ClassVar[str] = "task"                            # registry / CLI name (`affectlab train <name>`)
    arguments_class: ClassVar[type] = DataArguments
    training_arguments_class: ClassVar[type | None] = None  # default transformers.TrainingArguments
    model_arguments_class: ClassVar[type] = ModelArguments
    card_template: ClassVar[str] = "classifier.md"
    primary_metric: ClassVar[str] = "macro_f1"
    card_metrics: ClassVar[tuple[str, ...]] = ()            # metrics in the card's model-index (default: primary)
    task_type: ClassVar[str] = "text-classification"        # Hub task type (model-index, .eval_results)
    task_display: ClassVar[str] = "Text classification"
    record_task: ClassVar[str] = "text-classification"      # task name in result records / leaderboard tabs
    pipeline_tag: ClassVar[str] = "text-classification"
    tags: ClassVar[tuple[str, ...]] = ()
    mental_health: ClassVar[bool] = False                   # cards carry the not-for-diagnosis sections
    peft_task_type: ClassVar[str | None] = "SEQ_CLS"
    head_modules: ClassVar[tuple[str, ...]] = ()            # trained in full next to an adapter
    supports_peft: ClassVar[bool] = True
    supports_quantization: ClassVar[bool] = True
    description: ClassVar[str] = ""                         # one line for `affectlab train --help`
    widget_examples: ClassVar[tuple[dict, ...]] = ()        # the Hub widget's inputs (our own sentences, never data)

    def __init__(self, script_args, training_args, model_args):
        self.args = script_args
        self.training_args = training_args
        self.model_args = model_args

    # ---- parsing ----------------------------------------------------------------------------------
    @classmethod
    def dataclass_types(cls) -> tuple:
        from transformers import TrainingArguments

        return (cls.arguments_class, cls.training_arguments_class or TrainingArguments, cls.model_arguments_class)

    # ---- hooks ------------------------------------------------------------------------------------
    def check_options(self) -> None:
        """Refuse options this family cannot honour (one line each). Extend, then call super()."""
        from affectlab.models import check_model_options

        check_model_options(self.model_args, family=self.name, supports_quantization=self.supports_quantization,
                            supports_peft=self.supports_peft)

    def load_data(self) -> TaskData:
        raise NotImplementedError

    def build_model(self, data: TaskData):
        raise NotImplementedError

    def build_trainer(self, model, tokenizer, data: TaskData):
        raise NotImplementedError

    def peft_modules_to_save(self, model) -> list[str]:
        """Modules trained in full next to an adapter (the family's head; extend for more)."""
        return list(self.head_modules)

    def wrap_peft(self, model):
        """`affectlab.models.apply_peft` with this family's task type and modules to save."""
        from affectlab.models import apply_peft

        return apply_peft(model, self.model_args, task_type=self.peft_task_type,
                          modules_to_save=self.peft_modules_to_save(model),
                          gradient_checkpointing=bool(self.training_args.gradient_checkpointing))

    def fit(self, data: TaskData) -> FitResult:
        from affectlab.checkpointing import attach

        model, tokenizer = self.build_model(data)
        model = self.wrap_peft(model)
        trainer = attach(self.build_trainer(model, tokenizer, data))   # atomic checkpoints, exact resumes
        result = trainer.train(resume_from_checkpoint=self.training_args.resume_from_checkpoint)
        return FitResult(trainer=trainer, train_metrics=dict(result.metrics), train_rows=len(trainer.train_dataset))

    def evaluate(self, fit: FitResult, data: TaskData) -> dict[str, SplitEvaluation]:
        raise NotImplementedError

    def save_model(self, fit: FitResult, folder) -> None:
        """Weights (or adapter), config and tokenizer; called on every rank (Trainer saves on the main one)."""
        fit.trainer.save_model(str(folder))

    def save_artifacts(self, folder, fit: FitResult, data: TaskData, evaluations: dict[str, SplitEvaluation]) -> None:
        """Family files beside the model (reports, plots); main process only."""

    def extra_results(self, fit: FitResult, data: TaskData, evaluations: dict[str, SplitEvaluation]) -> dict:
        """Family entries at the top level of eval_results.json (never one of the schema's own keys)."""
        return {}

    def record_protocol(self, split: str) -> dict:
        """How `split` was evaluated beyond its name (e.g. the classifier's threshold policy): the result
        record's `protocol` (default: nothing to add)."""
        return {}

    def card_context(self, fit: FitResult, data: TaskData, evaluations: dict[str, SplitEvaluation]) -> dict:
        """Family variables for the card template."""
        return {}

    def report(self, evaluations: dict[str, SplitEvaluation]) -> str:
        """The text printed at the end of a run (default: every scalar metric per split)."""
        lines = []
        for split, ev in evaluations.items():
            shown = " | ".join(f"{k} {v:.4f}" for k, v in ev.metrics.items() if isinstance(v, float))
            lines.append(f"{split} ({ev.num_examples} rows): {shown}")
        return "\n".join(lines) + "\n"

    # ---- helpers the families share ---------------------------------------------------------------
    def early_stopping_callbacks(self) -> list:
        """`EarlyStoppingCallback` when asked for and possible (it needs load_best_model_at_end)."""
        from transformers import EarlyStoppingCallback

        if self.args.early_stopping_patience and self.training_args.load_best_model_at_end:
            return [EarlyStoppingCallback(early_stopping_patience=self.args.early_stopping_patience)]
        return []

    def limit_train(self, dataset):
        """`max_train_samples` rows of `dataset` (seeded shuffle), or all of it."""
        n = self.args.max_train_samples
        if n and n < len(dataset):
            return dataset.shuffle(seed=self.training_args.seed).select(range(n))
        return dataset

    def limit_eval(self, dataset, shuffle: bool = False):
        """The first `max_eval_samples` rows (or a seeded sample of them with `shuffle`), or all of it."""
        n = self.args.max_eval_samples
        if n and n < len(dataset):
            return (dataset.shuffle(seed=self.training_args.seed) if shuffle else dataset).select(range(n))
        return dataset

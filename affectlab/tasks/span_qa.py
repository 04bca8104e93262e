"""The evidence-span family: (DSM-5 criterion description, Reddit post) -> evidence spans, as extractive QA.

Data: `redsm5` config `evidence` through `dataset_builders.build_dataset` (the shared public sample, your
own copy via `dataset_data_dir`, or a SYNTHETIC corpus with `synthetic_posts` > 0, written into the
datasets cache, never into `output_dir`), turned into SQuAD examples (`affectlab.span_qa.to_squad`; no
evidence -> no-answer example, subsampled in train with `max_negatives_per_positive`). The datasets
cache is the default one: no row of ReDSM5 is ever written under `output_dir`.

Model: `custom_models.span_qa.SpanQAModel` (any encoder + a start/end head; Gemma checkpoints become the
bidirectional Gemma encoder), saved with its code for `AutoModelForQuestionAnswering` +
`trust_remote_code`. With `--use_peft true` only the LoRA/DoRA adapter and the QA head (`qa_outputs`)
are trained and saved.

Training: `SpanQATrainer`, a `transformers.Trainer` given the *examples* (like transformers'
`examples/pytorch/question-answering/trainer_qa.py`): it builds the stride windows itself, and its
`evaluate` runs the injected n-best / multi-span post-processing and the `evidence_squad` metric (SQuAD
EM/F1, sentence-level evidence P/R/F1); early stopping on validation F1. With `hp_search_trials` > 0,
`fit` first runs an Optuna search through `Trainer.hyperparameter_search` (learning rate, batch size,
epochs, warmup, doc_stride, max_length; the last two re-tokenize per trial), then retrains the best trial.

`SpanQATrainer` is a module attribute defined on first use (PEP 562): importing this module, and so a
refusal before any training, does not import `transformers.Trainer` (which pulls in peft/bitsandbytes).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from affectlab.configs import DataArguments
from affectlab.errors import ArgumentError
from affectlab.tasks.base import FitResult, SplitEvaluation, Task, TaskData, dataset_info

QA_PARAMS = ("max_length", "doc_stride")                  # searched, but not TrainingArguments fields
FEATURE_COLUMNS = ("example_id", "offset_mapping", "cls_index")
SEARCH_METRICS = ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "sentence_precision",
                  "sentence_recall", "sentence_f1")


def _floats(text: str) -> list[float]:
    return [float(x) for x in str(text).split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in str(text).split(",") if x.strip()]


@dataclass
class SpanQAArguments(DataArguments):
    """Windowing, post-processing and search options of the span-QA family (`affectlab train span-qa`)."""

    synthetic_posts: int = field(default=0, metadata={"help": "> 0: train on a SYNTHETIC ReDSM5-layout corpus of this many posts (written into the datasets cache)"})
    doc_stride: int = field(default=128, metadata={"help": "tokens of overlap between consecutive windows"})
    n_best_size: int = field(default=20, metadata={"help": "start and end candidates per window"})
    max_answer_length: int = field(default=64, metadata={"help": "longest predicted span in tokens"})
    null_score_diff_threshold: float = field(default=0.0, metadata={"help": "no answer when null - best span score exceeds this"})
    max_spans: int = field(default=3, metadata={"help": "evidence spans per example (top-k non-overlapping)"})
    span_score_diff_threshold: Optional[float] = field(default=None, metadata={"help": "extra spans need null - score <= this (default: null threshold)"})
    head_dropout: float = 0.1
    max_negatives_per_positive: Optional[float] = field(default=None, metadata={"help": "subsample no-answer train examples to this ratio (None: keep all)"})
    hp_search_trials: int = field(default=0, metadata={"help": "Optuna trials through Trainer.hyperparameter_search (0: no search)"})
    hp_learning_rate: str = field(default="1e-5,1e-4", metadata={"help": "log-uniform range 'low,high'"})
    hp_batch_sizes: str = field(default="8,16,32", metadata={"help": "per-device train batch sizes to choose from"})
    hp_epochs: str = field(default="1,4", metadata={"help": "integer range 'low,high'"})
    hp_warmup: str = field(default="0.0,0.2", metadata={"help": "warmup_steps as a ratio, range 'low,high'"})
    hp_doc_strides: str = field(default="64,128", metadata={"help": "doc_stride values to choose from"})
    hp_max_lengths: str = field(default="256,384", metadata={"help": "max_length values to choose from"})

    default_max_length = 384

    def __post_init__(self):
        super().__post_init__()
        if self.dataset_name is None:
            self.dataset_name = "redsm5"
        if self.dataset_name != "redsm5":
            raise ArgumentError("dataset_name", f"the span-qa family trains on 'redsm5' (config 'evidence'), got "
                                                f"{self.dataset_name!r}; point --dataset_data_dir at your ReDSM5 copy")
        if self.dataset_config is None:
            self.dataset_config = "evidence"
        if self.dataset_config != "evidence":
            raise ArgumentError("dataset_config", f"the span-qa family needs the 'evidence' config, got {self.dataset_config!r}")
        if self.synthetic_posts < 0:
            raise ArgumentError("synthetic_posts", f"must be >= 0, got {self.synthetic_posts}")
        if self.synthetic_posts and self.dataset_data_dir:
            raise ArgumentError("synthetic_posts", "and --dataset_data_dir are exclusive (synthetic data or your copy)")
        if not 0 <= self.doc_stride < self.max_length:
            raise ArgumentError("doc_stride", f"must be in [0, max_length={self.max_length}), got {self.doc_stride}")
        for name in ("n_best_size", "max_answer_length", "max_spans"):
            if getattr(self, name) < 1:
                raise ArgumentError(name, f"must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ArgumentError("head_dropout", f"must be in [0, 1), got {self.head_dropout}")
        if self.max_negatives_per_positive is not None and self.max_negatives_per_positive < 0:
            raise ArgumentError("max_negatives_per_positive", f"must be >= 0 (or unset), got {self.max_negatives_per_positive}")
        if self.hp_search_trials < 0:
            raise ArgumentError("hp_search_trials", f"must be >= 0, got {self.hp_search_trials}")
        self.search_space()  # validates the hp_* fields

    def search_space(self) -> dict:
        """The parsed hp_* fields: ranges as (low, high), choices as lists."""
        out = {}
        for name, parse, kind in (("hp_learning_rate", _floats, "range"), ("hp_epochs", _ints, "range"),
                                  ("hp_warmup", _floats, "range"), ("hp_batch_sizes", _ints, "choice"),
                                  ("hp_doc_strides", _ints, "choice"), ("hp_max_lengths", _ints, "choice")):
            try:
                values = parse(getattr(self, name))
            except ValueError:
                raise ArgumentError(name, f"must be comma-separated numbers, got {getattr(self, name)!r}") from None
            if kind == "range" and (len(values) != 2 or values[0] > values[1]):
                raise ArgumentError(name, f"must be a range 'low,high' with low <= high, got {getattr(self, name)!r}")
            if kind == "choice" and (not values or min(values) < (0 if name == "hp_doc_strides" else 1)):
                raise ArgumentError(name, f"must list {'non-negative' if name == 'hp_doc_strides' else 'positive'} "
                                          f"values, got {getattr(self, name)!r}")
            if name == "hp_learning_rate" and values[0] <= 0:
                raise ArgumentError(name, f"must be positive (log-uniform), got {getattr(self, name)!r}")
            out[name] = tuple(values) if kind == "range" else list(values)
        if self.hp_search_trials and min(out["hp_max_lengths"]) <= max(out["hp_doc_strides"]):
            raise ArgumentError("hp_doc_strides", f"every doc_stride must be smaller than every max_length "
                                                  f"({out['hp_doc_strides']} vs {out['hp_max_lengths']})")
        return out


# Backwards-compatible name (the script's arguments before the task registry).
SpanQAScriptArguments = SpanQAArguments


def make_hp_space(script_args):
    """The Optuna search space (`hp_space` of `Trainer.hyperparameter_search`) of the hp_* fields."""
    space = script_args.search_space()
    lr_lo, lr_hi = space["hp_learning_rate"]
    ep_lo, ep_hi = space["hp_epochs"]
    wu_lo, wu_hi = space["hp_warmup"]
    batches, strides, lengths = space["hp_batch_sizes"], space["hp_doc_strides"], space["hp_max_lengths"]

    def hp_space(trial):
        return {"learning_rate": trial.suggest_float("learning_rate", lr_lo, lr_hi, log=True),
                "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", batches),
                "num_train_epochs": trial.suggest_int("num_train_epochs", int(ep_lo), int(ep_hi)),
                "warmup_steps": trial.suggest_float("warmup_steps", wu_lo, wu_hi),
                "doc_stride": trial.suggest_categorical("doc_stride", strides),
                "max_length": trial.suggest_categorical("max_length", lengths)}

    return hp_space


# ---- data helpers -------------------------------------------------------------------------------------------
def synthetic_data_dir(num_posts: int, seed: int) -> Path:
    """Where the SYNTHETIC corpus of (`num_posts`, `seed`) lives: the datasets cache, never an output folder."""
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE) / "affectlab_synthetic" / f"redsm5_posts{num_posts}_seed{seed}"


def synthetic_corpus(num_posts: int, seed: int) -> Path:
    """Write (once, atomically) and return the SYNTHETIC ReDSM5-layout corpus of (`num_posts`, `seed`)."""
    from dataset_builders.redsm5.redsm5 import write_synthetic

    target = synthetic_data_dir(num_posts, seed)
    if (target / "README.md").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    write_synthetic(tmp, num_posts=num_posts, seed=seed)
    try:
        os.replace(tmp, target)
    except OSError:     # another process won the race: its copy is identical
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target


def score_predictions(predictions, examples) -> dict:
    """`evidence_squad` SQuAD + sentence scores of post-processed predictions against their examples."""
    from affectlab.metrics import metric_module
    from affectlab.span_qa import metric_inputs, references

    m = metric_module("evidence_squad")
    refs, rows = references(examples), metric_inputs(predictions)
    return {**m.squad_scores(rows, refs), **m.sentence_scores(rows, refs)}


def per_example_scores(predictions, examples) -> dict[str, list[float]]:
    """Per-example SQuAD `exact` and `f1` (percent, so their means are the split's metrics); no text."""
    from affectlab.metrics import metric_module

    m = metric_module("evidence_squad")
    exact, f1 = [], []
    for pred, ex in zip(predictions, examples):
        if str(pred["id"]) != str(ex["id"]):
            raise ValueError(f"prediction {pred['id']!r} is paired with example {ex['id']!r}")
        golds = m.gold_texts(ex["answers"])
        text = pred.get("prediction_text") or ""
        exact.append(100.0 * max(m.exact_match(g, text) for g in golds))
        f1.append(100.0 * max(m.token_f1(g, text) for g in golds))
    return {"exact": exact, "f1": f1}


# ---- the trainer (module attribute, defined on first use) --------------------------------------------------
def _define_trainer():
    from transformers import Trainer
    from transformers.trainer_utils import HPSearchBackend

    from affectlab.span_qa import prepare_eval_features, prepare_train_features

    class SpanQATrainer(Trainer):
        """Trainer whose `evaluate` post-processes window logits into evidence spans and scores them.

        Given the examples (not the windows): `featurize(max_length, doc_stride)` builds the train windows
        and the evaluation windows (kept with offsets for post-processing); an Optuna trial that samples
        `max_length` / `doc_stride` re-tokenizes before training. `post_process_function(examples,
        features, start_logits, end_logits)` turns logits into predictions and `score_function(predictions,
        examples)` scores them (as `post_process_function` / `compute_metrics` in trainer_qa.py).
        """

        def __init__(self, *args, train_examples, eval_examples: dict, tokenizer, max_length: int, doc_stride: int,
                     post_process_function, score_function, **kwargs):
            self.train_examples, self.eval_examples = train_examples, eval_examples
            self.qa_tokenizer = tokenizer
            self.post_process_function, self.score_function = post_process_function, score_function
            self.eval_features: dict = {}
            train, evals = self._features(max_length, doc_stride)
            super().__init__(*args, train_dataset=train, eval_dataset=evals["validation"], processing_class=tokenizer,
                             **kwargs)
            self.model_accepts_loss_kwargs = False  # the QA loss is a per-batch mean (see affectlab.trainer)
            self.qa_params = {"max_length": max_length, "doc_stride": doc_stride}

        def _features(self, max_length: int, doc_stride: int):
            tok = dict(tokenizer=self.qa_tokenizer, max_length=max_length, doc_stride=doc_stride)
            train = self.train_examples.map(prepare_train_features, batched=True, fn_kwargs=tok,
                                            remove_columns=self.train_examples.column_names, desc="Windows train")
            evals = {}
            for split, ex in self.eval_examples.items():
                self.eval_features[split] = ex.map(prepare_eval_features, batched=True, fn_kwargs=tok,
                                                   remove_columns=ex.column_names, desc=f"Windows {split}")
                evals[split] = self.eval_features[split].remove_columns(list(FEATURE_COLUMNS))
            return train, evals

        def featurize(self, max_length: int, doc_stride: int) -> None:
            self.train_dataset, evals = self._features(max_length, doc_stride)
            self.eval_dataset = evals["validation"]
            self.qa_params = {"max_length": max_length, "doc_stride": doc_stride}

        def _hp_search_setup(self, trial):
            if trial is None or self.hp_search_backend != HPSearchBackend.OPTUNA:
                return super()._hp_search_setup(trial)
            full = self.hp_space
            params = full(trial)
            qa = {k: int(params[k]) for k in QA_PARAMS if k in params}
            self.hp_space = lambda t: {k: v for k, v in full(t).items() if k not in QA_PARAMS}
            try:
                super()._hp_search_setup(trial)
            finally:
                self.hp_space = full
            if qa:
                self.featurize(qa.get("max_length", self.qa_params["max_length"]),
                               qa.get("doc_stride", self.qa_params["doc_stride"]))

        def _report_to_hp_search(self, trial, step, metrics):
            previous = getattr(self, "objective", None)
            super()._report_to_hp_search(trial, step, metrics)
            if previous is not None and self.objective is not None:  # a trial's objective: its best evaluation
                self.objective = max(previous, self.objective)

        def predict_split(self, split: str, metric_key_prefix: str | None = None):
            """(post-processed predictions, `<prefix>_<metric>` scores) of an evaluation split."""
            prefix = metric_key_prefix or split
            features = self.eval_features[split]
            inputs = features.remove_columns(list(FEATURE_COLUMNS))
            output = self.evaluation_loop(self.get_eval_dataloader(inputs), description=f"Evaluation {split}",
                                          prediction_loss_only=False, metric_key_prefix=prefix)
            start, end = output.predictions[:2] if isinstance(output.predictions, tuple) else output.predictions
            examples = self.eval_examples[split]
            preds = self.post_process_function(examples, features, start, end)
            metrics = {f"{prefix}_{k}": v for k, v in self.score_function(preds, examples).items()}
            metrics.update({k: v for k, v in output.metrics.items() if k.startswith(prefix)})
            return preds, metrics

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
            _, metrics = self.predict_split("validation", metric_key_prefix)
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    SpanQATrainer.__module__ = __name__
    SpanQATrainer.__qualname__ = "SpanQATrainer"
    return SpanQATrainer


def __getattr__(name: str):
    if name == "SpanQATrainer":
        cls = globals()["SpanQATrainer"] = _define_trainer()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- the family ---------------------------------------------------------------------------------------------
class SpanQATask(Task):
    name = "span-qa"
    arguments_class = SpanQAArguments
    card_template = "span_qa.md"
    primary_metric = "f1"
    card_metrics = ("exact", "f1", "sentence_precision", "sentence_recall", "sentence_f1")
    task_type = "question-answering"
    task_display = "Evidence-span extraction"
    record_task = "evidence-span-extraction"
    pipeline_tag = "question-answering"
    tags = ("evidence-extraction", "extractive-qa", "redsm5", "mental-health")
    mental_health = True
    peft_task_type = "QUESTION_ANS"
    head_modules = ("qa_outputs",)
    supports_quantization = False   # SpanQAModel.from_encoder copies the encoder's weights into a float model
    description = "evidence spans for DSM-5 criteria (extractive QA head, stride windows, n-best, Optuna search)"
    widget_examples = ({"text": "The writer feels tired, drained or without energy almost every day.",
                        "context": "I started a new job last month. I am exhausted all the time, even after sleeping. "
                                   "Thanks for reading."},)

    def check_options(self) -> None:
        super().check_options()
        targs = self.training_args
        metric = (targs.metric_for_best_model or "").removeprefix("eval_")
        if targs.load_best_model_at_end and metric not in SEARCH_METRICS:
            raise ArgumentError("metric_for_best_model", f"must be one of the evidence metrics {SEARCH_METRICS} (there "
                                                         f"is no evaluation loss), got {targs.metric_for_best_model!r}")

    @property
    def postprocess_kwargs(self) -> dict:
        a = self.args
        return dict(n_best_size=a.n_best_size, max_answer_length=a.max_answer_length,
                    null_score_diff_threshold=a.null_score_diff_threshold, max_spans=a.max_spans,
                    span_score_diff_threshold=a.span_score_diff_threshold)

    # ---- data -------------------------------------------------------------------------------------------
    def load_data(self) -> TaskData:
        import numpy as np

        from affectlab.paths import dataset_dir
        from affectlab.span_qa import to_squad
        from dataset_builders import build_dataset
        from dataset_builders.redsm5.redsm5 import alignment_report, find_files

        args, seed = self.args, self.training_args.seed
        synthetic = args.synthetic_posts > 0
        if synthetic:
            data_dir = synthetic_corpus(args.synthetic_posts, seed)
        else:
            data_dir = args.dataset_data_dir or dataset_dir("redsm5_sample")
            if data_dir is None:
                raise FileNotFoundError("no ReDSM5 folder: pass --dataset_data_dir or set AFFECTLAB_DATA")
        raw = build_dataset("redsm5", data_dir=data_dir, config="evidence")   # the default datasets cache
        out = {}
        for split, ds in raw.items():
            sq = ds.map(to_squad, remove_columns=ds.column_names, desc=f"SQuAD {split}")
            if split == "train" and args.max_negatives_per_positive is not None:
                pos = [i for i, a in enumerate(sq["answers"]) if a["text"]]
                neg = [i for i, a in enumerate(sq["answers"]) if not a["text"]]
                rng = np.random.default_rng(seed)
                keep = int(round(args.max_negatives_per_positive * len(pos)))
                neg = sorted(rng.choice(neg, size=min(keep, len(neg)), replace=False).tolist()) if neg else []
                sq = sq.select(sorted(pos + neg))
            limit = args.max_train_samples if split == "train" else args.max_eval_samples
            if limit:
                sq = sq.shuffle(seed=seed).select(range(min(limit, len(sq))))
            out[split] = sq
        source = "synthetic_posts" if synthetic else "dataset_data_dir"
        for split in ("train", "validation"):
            if split not in out:
                raise ArgumentError(source, f"{data_dir}: no post fell into the {split} split; add posts or change "
                                            "the split fractions")
        report = alignment_report(data_dir)
        sample = "sample" in Path(find_files(data_dir)[1]).name.lower()
        info = dataset_info("redsm5", "evidence")
        info.synthetic, info.split_notes = synthetic, self._split_notes(out, synthetic, sample)
        evals = {s: out[s] for s in ("validation", "test") if s in out}
        return TaskData(train=out["train"], eval=evals, info=info,
                        extra={"alignment": report, "num_examples": {k: len(v) for k, v in out.items()}, "sample": sample})

    def _split_notes(self, out: dict, synthetic: bool, sample: bool) -> dict:
        args = self.args
        if synthetic:
            source = (f"SYNTHETIC corpus ({args.synthetic_posts} generated posts in the ReDSM5 layout, seed "
                      f"{self.training_args.seed}); not real posts, not ReDSM5")
        elif sample:
            source = ("the official public ReDSM5 sample (17 paraphrased posts; evidence sentences aligned to the posts "
                      "exactly, after normalisation or fuzzily, see `alignment`)")
        else:
            source = "a local ReDSM5 copy (evidence sentences aligned to the posts, see `alignment`)"
        notes = {}
        for split, ds in out.items():
            note = (f"the posts whose post_id hash falls in the {split} share (80/10/10), one example per post and "
                    f"criterion; {source}")
            if split == "train" and args.max_negatives_per_positive is not None:
                note += f"; no-answer examples subsampled to {args.max_negatives_per_positive} per answerable one"
            limit = args.max_train_samples if split == "train" else args.max_eval_samples
            if limit:
                note += f"; at most {limit} examples (seeded sample)"
            notes[split] = f"{note} ({len(ds)} examples)."
        return notes

    # ---- model ------------------------------------------------------------------------------------------
    def load_tokenizer(self):
        from transformers import AutoTokenizer

        from affectlab.models import resolve_model_name

        self.model_name = resolve_model_name(self.model_args.model_name_or_path)
        return AutoTokenizer.from_pretrained(self.model_name, revision=self.model_args.model_revision,
                                             trust_remote_code=self.model_args.trust_remote_code)

    def build_model(self, data: TaskData):
        tokenizer = self.load_tokenizer()
        return self.model_init(), tokenizer

    def model_init(self, trial=None):
        """A fresh, seeded SpanQAModel (the encoder's weights + a new head), PEFT-wrapped when asked for."""
        from transformers import set_seed

        from affectlab.models import model_init_kwargs
        from custom_models.span_qa import SpanQAModel

        set_seed(self.training_args.seed)
        model = SpanQAModel.from_encoder(self.model_name, head_dropout=self.args.head_dropout,
                                         **model_init_kwargs(self.model_args, self.head_modules))
        return self.wrap_peft(model)

    def build_trainer(self, model, tokenizer, data: TaskData, args=None, max_length: int | None = None,
                      doc_stride: int | None = None):
        """A `SpanQATrainer` that re-creates the model with `model_init` (every trial, and the final run)."""
        from functools import partial

        from transformers import DataCollatorWithPadding

        from affectlab.span_qa import postprocess_predictions
        from affectlab.tasks.span_qa import SpanQATrainer

        args = args or self.training_args
        return SpanQATrainer(
            model_init=self.model_init, args=args, train_examples=data.train, eval_examples=data.eval,
            tokenizer=tokenizer, max_length=max_length or self.args.max_length,
            doc_stride=self.args.doc_stride if doc_stride is None else doc_stride,
            post_process_function=partial(postprocess_predictions, **self.postprocess_kwargs),
            score_function=score_predictions, data_collator=DataCollatorWithPadding(tokenizer),
            callbacks=self.early_stopping_callbacks())

    def fit(self, data: TaskData) -> FitResult:
        import dataclasses

        tokenizer = self.load_tokenizer()   # the trainers build their models with model_init
        final_args = copy.deepcopy(self.training_args)
        max_length, doc_stride = self.args.max_length, self.args.doc_stride
        search = None
        if self.args.hp_search_trials > 0:
            search = self.search(data, tokenizer)
            for key, value in search["best_params"].items():
                if key not in QA_PARAMS:
                    old = getattr(final_args, key)
                    setattr(final_args, key, type(old)(value) if old is not None else value)
            max_length = int(search["best_params"].get("max_length", max_length))
            doc_stride = int(search["best_params"].get("doc_stride", doc_stride))
            # what the card and the records describe is the retrained best trial
            self.training_args = final_args
            self.args = dataclasses.replace(self.args, max_length=max_length, doc_stride=doc_stride)
        trainer = self.build_trainer(None, tokenizer, data, final_args, max_length, doc_stride)
        from affectlab.checkpointing import attach

        trainer = attach(trainer)  # atomic checkpoints, exact resumes
        result = trainer.train(resume_from_checkpoint=final_args.resume_from_checkpoint)
        return FitResult(trainer=trainer, train_metrics=dict(result.metrics), train_rows=len(data.train),
                         extra={"search": search, "max_length": max_length, "doc_stride": doc_stride,
                                "train_windows": len(trainer.train_dataset)})

    def search(self, data: TaskData, tokenizer) -> dict:
        """Optuna through `Trainer.hyperparameter_search`, maximising each trial's best validation F1."""
        import shutil

        import optuna

        seed = self.training_args.seed
        search_args = copy.deepcopy(self.training_args)
        search_args.output_dir = str(Path(self.training_args.output_dir) / "hp_search")
        storage = optuna.storages.InMemoryStorage()
        trainer = self.build_trainer(None, tokenizer, data, search_args)
        best = trainer.hyperparameter_search(
            hp_space=make_hp_space(self.args), compute_objective=lambda m: m["eval_f1"],
            n_trials=self.args.hp_search_trials, direction="maximize", backend="optuna", study_name="span_qa",
            storage=storage, sampler=optuna.samplers.TPESampler(seed=seed))
        if trainer.is_world_process_zero():   # trial checkpoints are throwaway: the best trial is retrained
            shutil.rmtree(search_args.output_dir, ignore_errors=True)
        study = optuna.load_study(study_name="span_qa", storage=storage)
        trials = [{"trial": t.number, "state": t.state.name, "f1": t.value, **t.params} for t in study.trials]
        return {"best_trial": int(best.run_id), "best_f1": best.objective, "best_params": best.hyperparameters,
                "trials": trials, "direction": "maximize", "objective": "best validation SQuAD F1 of the trial"}

    # ---- evaluation -------------------------------------------------------------------------------------
    def evaluate(self, fit: FitResult, data: TaskData) -> dict[str, SplitEvaluation]:
        from affectlab.registry import is_known_metric
        from affectlab.results import fingerprint_rows

        self.predictions = {}
        out = {}
        for split, examples in data.eval.items():
            preds, metrics = fit.trainer.predict_split(split)
            metrics = {k[len(split) + 1:]: v for k, v in metrics.items()}
            self.predictions[split] = preds
            out[split] = SplitEvaluation(
                metrics={k: v for k, v in metrics.items() if is_known_metric(k)}, num_examples=len(examples),
                fingerprint=fingerprint_rows(examples["id"]), scores=per_example_scores(preds, examples))
        return out

    # ---- outputs ----------------------------------------------------------------------------------------
    def save_artifacts(self, folder, fit, data, evaluations) -> None:
        import csv

        import yaml

        from affectlab.io import atomic_write_json, atomic_write_text

        folder = Path(folder)
        for split, preds in self.predictions.items():   # local artifacts: they hold predicted post text
            lines = [json.dumps({"id": p["id"], "prediction_text": p["prediction_text"], "spans": p["spans"],
                                 "null_score": p["null_score"], "best_score": p["best_score"]}) for p in preds]
            atomic_write_text(folder / f"predictions_{split}.jsonl", "\n".join(lines) + "\n")
        with open(folder / "eval_summary.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["split", "exact", "f1", "sentence_precision", "sentence_recall", "sentence_f1", "total"])
            for split, ev in evaluations.items():
                m = ev.metrics
                w.writerow([split] + [round(m[k], 4) for k in ("exact", "f1", "sentence_precision", "sentence_recall",
                                                                 "sentence_f1")] + [m["total"]])
        search = fit.extra["search"]
        if search is not None:
            atomic_write_json(folder / "hp_search.json", search)
            trials = search["trials"]
            keys = sorted({k for t in trials for k in t})
            lines = [",".join(keys)] + [",".join("" if t.get(k) is None else str(t.get(k)) for k in keys) for t in trials]
            atomic_write_text(folder / "hp_trials.csv", "\n".join(lines) + "\n")
            best_config = {"model_name_or_path": self.model_args.model_name_or_path, "max_length": fit.extra["max_length"],
                           "doc_stride": fit.extra["doc_stride"],
                           **{k: v for k, v in search["best_params"].items() if k not in QA_PARAMS},
                           "seed": self.training_args.seed}
            atomic_write_text(folder / "best_config.yaml", "# best Optuna trial of the span-qa family (merge into "
                              "the recipe)\n" + yaml.safe_dump(best_config, sort_keys=True))

    def extra_results(self, fit, data, evaluations) -> dict:
        report = data.extra["alignment"]
        # the unaligned evidence sentences are named, never quoted (ReDSM5 text stays out of pushed files)
        unaligned = [{k: u[k] for k in ("post_id", "sentence_id", "symptom", "line")} for u in report["unaligned"]]
        return {"alignment": report["counts"], "unaligned": unaligned, "num_examples": data.extra["num_examples"],
                "train_windows": fit.extra["train_windows"], "max_length": fit.extra["max_length"],
                "doc_stride": fit.extra["doc_stride"], "postprocess": self.postprocess_kwargs,
                "synthetic": data.info.synthetic, "hp_search": fit.extra["search"]}

    def card_context(self, fit, data, evaluations) -> dict:
        from affectlab.models import hub_model_id, resolve_model_name

        a, targs = self.args, self.training_args
        if data.info.synthetic:
            desc = f"a SYNTHETIC corpus of {a.synthetic_posts} generated posts in the ReDSM5 layout"
        elif data.extra["sample"]:
            desc = "the public ReDSM5 sample (17 paraphrased Reddit posts)"
        else:
            desc = "ReDSM5 (`evidence` config)"
        search = fit.extra["search"]
        return dict(
            dataset_desc=desc, alignment=data.extra["alignment"]["counts"], max_length=fit.extra["max_length"],
            doc_stride=fit.extra["doc_stride"], postprocess=self.postprocess_kwargs, head_dropout=a.head_dropout,
            train_windows=fit.extra["train_windows"], negatives=a.max_negatives_per_positive,
            use_peft=bool(self.model_args.use_peft),
            encoder_id=hub_model_id(self.model_args.model_name_or_path) or resolve_model_name(self.model_args.model_name_or_path),
            search=search and {"trials": len(search["trials"]), "best_f1": search["best_f1"],
                               "best_params": search["best_params"]},
            best_checkpoint=targs.metric_for_best_model if targs.load_best_model_at_end else None,
            learning_rate=targs.learning_rate, epochs=targs.num_train_epochs,
            batch_size=targs.per_device_train_batch_size * targs.world_size, seed=targs.seed)

    def report(self, evaluations) -> str:
        return "\n".join(f"{s}: EM {ev.metrics['exact']:.2f} F1 {ev.metrics['f1']:.2f} sentence-F1 "
                         f"{ev.metrics['sentence_f1']:.2f} (n={ev.metrics['total']})"
                         for s, ev in evaluations.items()) + "\n"

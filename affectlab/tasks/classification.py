"""The text-classifier family: multi-label emotions (GoEmotions, SemEval-2018, mixtures) and single-label
sentiment (SST-2), fine-tuned with `ClassificationTrainer` (BCE / ASL / combined / CE).

Multi-label runs early-stop on validation macro-F1 and predict with one threshold per label, saved in the model
config (`label_thresholds`), which `affectlab.inference.TextClassifier` applies. Where the thresholds come from
is the `threshold_policy` (stated in the card, eval_results.json and every result record):

* `heldout_train`: a seeded fraction of the training rows (`threshold_heldout_fraction`) is held out, the model
  is trained without them, and the thresholds are tuned on them: no evaluated split is used, so every
  evaluated number is honest (the GoEmotions recipes' policy).
* `crossfit`: the validation split is cut in two seeded halves; thresholds tuned on one half predict the other,
  and the pooled predictions give the validation number. The shipped thresholds (and the test split's) are
  tuned on the whole validation split.
* `tuned_on_eval`: tuned on the validation split and reported on it: optimistic on validation (the default,
  kept for comparison; test numbers are not tuned on test).
* `global`: one global threshold (`threshold`), nothing tuned.

Whatever the policy, multi-label splits also report `macro_f1_tuned` / `micro_f1_tuned` (thresholds tuned on
that split itself: an optimistic reference) and `macro_f1_at_global_threshold`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from affectlab.configs import DataArguments, parse_mixture
from affectlab.errors import ArgumentError
from affectlab.losses import LOSSES
from affectlab.tasks.base import FitResult, SplitEvaluation, Task, TaskData, dataset_info  # noqa: F401


THRESHOLD_POLICIES = ("heldout_train", "crossfit", "tuned_on_eval", "global")


def heldout_indices(n_rows: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows to train on, rows to tune thresholds on): a seeded split of `range(n_rows)`, both sorted, disjoint."""
    if n_rows < 2:
        raise ArgumentError("threshold_heldout_fraction", f"{n_rows} training row(s): nothing to hold out for thresholds")
    n_tune = min(max(1, int(round(n_rows * fraction))), n_rows - 1)
    order = np.random.default_rng(seed).permutation(n_rows)
    return np.sort(order[n_tune:]), np.sort(order[:n_tune])


def crossfit_halves(n_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two seeded, disjoint halves of `range(n_rows)` covering every row (sorted)."""
    order = np.random.default_rng(seed).permutation(n_rows)
    return np.sort(order[: n_rows // 2]), np.sort(order[n_rows // 2:])


def crossfit_predictions(probs: np.ndarray, refs: np.ndarray, seed: int, tune, halves=None):
    """0/1 predictions of every row with thresholds tuned on the other half (`tune(probs, refs) -> thresholds`);
    returns (predictions, thresholds of half a, thresholds of half b, (a, b))."""
    a, b = halves if halves is not None else crossfit_halves(len(probs), seed)
    thr_a, thr_b = np.asarray(tune(probs[a], refs[a])), np.asarray(tune(probs[b], refs[b]))
    pred = np.zeros_like(refs, dtype=int)
    pred[b] = (probs[b] >= thr_a[None, :]).astype(int)
    pred[a] = (probs[a] >= thr_b[None, :]).astype(int)
    return pred, thr_a, thr_b, (a, b)


@dataclass
class ClassificationArguments(DataArguments):
    """Data, loss and threshold options of the classifier family (`affectlab train classifier`)."""

    dataset_name: Optional[str] = field(default="goemotions", metadata={"help": "registered dataset (see dataset_builders.REGISTRY) or a folder/Hub repo with Parquet"})
    dataset_mixture: Optional[str] = field(default=None, metadata={"help": "weighted training mixture, e.g. 'goemotions:0.8,semeval2018_ec:0.2' (evaluation stays on dataset_name)"})
    text_column: str = "text"
    text_pair_column: Optional[str] = field(default=None, metadata={"help": "second text for pair inputs"})
    label_column: str = "labels"
    loss: str = field(default="bce", metadata={"help": f"one of {LOSSES} ('ce' for single-label)"})
    asl_gamma_neg: float = 4.0
    asl_gamma_pos: float = 0.0
    asl_clip: float = 0.05
    bce_weight: float = field(default=0.5, metadata={"help": "weight of BCE in the 'combined' loss"})
    label_pos_weight: bool = field(default=False, metadata={"help": "BCE pos_weight per label from train frequencies"})
    pos_weight_max: float = 10.0
    threshold: float = field(default=0.5, metadata={"help": "global decision threshold before tuning"})
    tune_thresholds: bool = field(default=True, metadata={"help": "tune one threshold per label (where: threshold_policy); false: the global threshold"})
    threshold_policy: Optional[str] = field(default=None, metadata={"help": f"where multi-label thresholds are tuned: one of {THRESHOLD_POLICIES} (default: tuned_on_eval, or global with tune_thresholds false); heldout_train and crossfit never tune on the rows they report"})
    threshold_heldout_fraction: float = field(default=0.1, metadata={"help": "share of the training rows held out (not trained on) to tune thresholds with threshold_policy heldout_train"})
    validation_split: Optional[str] = field(default=None, metadata={"help": "split for early stopping and thresholds (default: 'validation', else the dataset's one held-out split that is not test, e.g. SST-2's local 'train_heldout')"})

    def __post_init__(self):
        super().__post_init__()
        if self.loss not in LOSSES:
            raise ArgumentError("loss", f"must be one of {LOSSES}, got {self.loss!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ArgumentError("threshold", f"must be in (0, 1), got {self.threshold}")
        self.mixture = parse_mixture(self.dataset_mixture)
        if self.threshold_policy is None:
            self.threshold_policy = "tuned_on_eval" if self.tune_thresholds else "global"
        if self.threshold_policy not in THRESHOLD_POLICIES:
            raise ArgumentError("threshold_policy", f"must be one of {THRESHOLD_POLICIES}, got {self.threshold_policy!r}")
        if not self.tune_thresholds and self.threshold_policy != "global":
            raise ArgumentError("threshold_policy", f"{self.threshold_policy!r} tunes thresholds but tune_thresholds is "
                                                    "false; drop one of them")
        if not 0.0 < self.threshold_heldout_fraction < 1.0:
            raise ArgumentError("threshold_heldout_fraction", f"must be in (0, 1), got {self.threshold_heldout_fraction}")


# Backwards-compatible name (the script's arguments before the task registry).
ClassificationScriptArguments = ClassificationArguments


class ClassifierTask(Task):
    name = "classifier"
    arguments_class = ClassificationArguments
    card_template = "classifier.md"
    primary_metric = "macro_f1"
    card_metrics = ("macro_f1", "micro_f1", "weighted_f1", "accuracy", "subset_accuracy", "hamming_loss")
    task_type = "text-classification"
    pipeline_tag = "text-classification"
    peft_task_type = "SEQ_CLS"
    head_modules = ("classifier", "score", "pooler")
    description = "multi-label emotions / single-label sentiment classifier (Trainer, BCE/ASL/CE, tuned thresholds)"
    widget_examples = ({"text": "I can't believe how kind you were, thank you so much!"},
                       {"text": "I waited two hours and nobody even said sorry."})

    # ---- data -------------------------------------------------------------------------------------
    def load_data(self) -> TaskData:
        from affectlab.data import is_multi_label, label_names_of, load_named_dataset, mix_train_splits

        args, seed = self.args, self.training_args.seed
        raw = load_named_dataset(args.dataset_name, args.dataset_config, args.dataset_data_dir)
        if "train" not in raw:
            raise ArgumentError("dataset_name", f"{args.dataset_name!r} has no train split (splits: {list(raw)})")
        if args.label_column not in raw["train"].column_names or args.text_column not in raw["train"].column_names:
            raise ArgumentError("dataset_name", f"{args.dataset_name!r} needs columns {args.text_column!r} and "
                                                f"{args.label_column!r}; it has {raw['train'].column_names}")
        label_names = label_names_of(raw["train"], args.label_column)
        multi_label = is_multi_label(raw["train"], args.label_column)
        train = raw["train"]
        if args.mixture:
            parts = {}
            for name in args.mixture:
                part = train if name == args.dataset_name else load_named_dataset(name)["train"]
                if label_names_of(part, args.label_column) != label_names:
                    raise ArgumentError("dataset_mixture", f"component {name!r} has other label names than {args.dataset_name!r}")
                parts[name] = part.select_columns([c for c in train.column_names])
            total = args.max_train_samples or len(train)
            train = mix_train_splits(parts, args.mixture, total, seed)
            self.mixture_counts = {k: int(v) for k, v in zip(*np.unique(train["source"], return_counts=True))}
            train = train.remove_columns("source")
        else:
            self.mixture_counts = None
            train = self.limit_train(train)
        self.policy = args.threshold_policy if multi_label else "argmax"
        threshold_rows, self.heldout = None, None
        if self.policy == "heldout_train":
            fit_idx, tune_idx = heldout_indices(len(train), args.threshold_heldout_fraction, seed)
            self.heldout = {"train_indices": fit_idx, "threshold_indices": tune_idx}
            threshold_rows, train = train.select(tune_idx), train.select(fit_idx)
        held_out = [s for s in raw if s not in ("train", "test")]
        self.validation_split = args.validation_split or ("validation" if "validation" in raw else
                                                          held_out[0] if len(held_out) == 1 else None)
        if self.validation_split not in raw:
            raise ArgumentError("validation_split", f"{args.dataset_name!r} has no split {self.validation_split!r} for early "
                                                    f"stopping and thresholds (splits: {list(raw)})")
        eval_splits = {s: self.limit_eval(raw[s]) for s in (self.validation_split, "test") if s in raw}
        info = dataset_info(args.dataset_name, args.dataset_config)
        info.components = [dataset_info(name) for name in (args.mixture or {}) if name != args.dataset_name]
        self.task_display = "Multi-label emotion classification" if multi_label else "Text classification"
        self.record_task = "emotion-multilabel" if multi_label else "text-classification"
        return TaskData(train=train, eval=eval_splits, info=info,
                        extra={"label_names": label_names, "multi_label": multi_label, "threshold_rows": threshold_rows})

    # ---- model ------------------------------------------------------------------------------------
    def build_model(self, data: TaskData):
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        from affectlab.models import model_init_kwargs, resolve_model_name

        model_args = self.model_args
        names, multi = data.extra["label_names"], data.extra["multi_label"]
        model_name = resolve_model_name(model_args.model_name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(model_name, revision=model_args.model_revision,
                                                  trust_remote_code=model_args.trust_remote_code)
        config = AutoConfig.from_pretrained(
            model_name, revision=model_args.model_revision, trust_remote_code=model_args.trust_remote_code,
            num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
            problem_type="multi_label_classification" if multi else "single_label_classification",
        )
        model = AutoModelForSequenceClassification.from_pretrained(
            model_name, config=config, **model_init_kwargs(self.model_args, self.head_modules))
        return model, tokenizer

    def tokenize(self, dataset, tokenizer, data: TaskData, desc: str):
        from affectlab.data import tokenize_for_classification

        args = self.args
        return tokenize_for_classification(
            dataset, tokenizer=tokenizer, text_column=args.text_column, label_column=args.label_column,
            num_labels=len(data.extra["label_names"]), multi_label=data.extra["multi_label"],
            max_length=args.max_length, text_pair_column=args.text_pair_column, desc=desc)

    def build_trainer(self, model, tokenizer, data: TaskData):
        from transformers import DataCollatorWithPadding

        from affectlab.callbacks import GradientHealthCallback
        from affectlab.losses import ClassificationLoss, LossConfig, positive_weights
        from affectlab.trainer import ClassificationTrainer

        args, multi = self.args, data.extra["multi_label"]
        with self.training_args.main_process_first(desc="tokenizing"):
            train_tok = self.tokenize(data.train, tokenizer, data, "Tokenizing train")
            self.eval_tok = {s: self.tokenize(d, tokenizer, data, f"Tokenizing {s}") for s, d in data.eval.items()}
            rows = data.extra.get("threshold_rows")
            self.threshold_tok = None if rows is None else self.tokenize(rows, tokenizer, data, "Tokenizing threshold rows")
        self.loss_name = args.loss if multi else "ce"
        pos_weight = None
        if multi and args.label_pos_weight:
            pos_weight = positive_weights(np.asarray(train_tok["labels"]), args.pos_weight_max)
        loss_fn = ClassificationLoss(LossConfig(self.loss_name, args.asl_gamma_neg, args.asl_gamma_pos, args.asl_clip,
                                                args.bce_weight), pos_weight)
        self.data = data
        return ClassificationTrainer(
            model=model, args=self.training_args, train_dataset=train_tok, eval_dataset=self.eval_tok[self.validation_split],
            processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=self.compute_metrics, callbacks=[GradientHealthCallback(), *self.early_stopping_callbacks()],
            loss_fn=loss_fn)

    # ---- metrics ----------------------------------------------------------------------------------
    @property
    def report_fn(self):
        from affectlab.metrics import metric_module

        return metric_module("multilabel_f1").multilabel_report

    def probabilities(self, logits):
        from affectlab.trainer import sigmoid, softmax

        logits = logits[0] if isinstance(logits, tuple) else logits
        return sigmoid(logits) if self.data.extra["multi_label"] else softmax(logits)

    def references(self, label_ids):
        if self.data.extra["multi_label"]:
            return label_ids.astype(int)
        return np.eye(len(self.data.extra["label_names"]), dtype=int)[label_ids.astype(int)]

    def compute_metrics(self, eval_pred):
        probs, refs = self.probabilities(eval_pred.predictions), self.references(eval_pred.label_ids)
        report, threshold = self.report_fn, self.args.threshold
        if not self.data.extra["multi_label"]:
            pred = np.eye(refs.shape[1], dtype=int)[probs.argmax(-1)]
            rep = report(pred.astype(float), refs, threshold=0.5)
            return {"accuracy": float((probs.argmax(-1) == refs.argmax(-1)).mean()), "macro_f1": rep["macro_f1"],
                    "micro_f1": rep["micro_f1"], "weighted_f1": rep["weighted_f1"]}
        rep = report(probs, refs, threshold=threshold)
        tuned = report(probs, refs, tune_thresholds=True, threshold=threshold)
        return {"macro_f1": rep["macro_f1"], "micro_f1": rep["micro_f1"], "macro_f1_tuned": tuned["macro_f1"],
                "micro_f1_tuned": tuned["micro_f1"], "subset_accuracy": rep["subset_accuracy"]}

    # ---- evaluation: thresholds by the threshold policy, then every split --------------------------
    def tune(self, probs, refs) -> list[float]:
        """One threshold per label maximising each label's F1 on (probs, refs)."""
        return self.report_fn(probs, refs, tune_thresholds=True, threshold=self.args.threshold)["thresholds"]

    def evaluate(self, fit: FitResult, data: TaskData) -> dict[str, SplitEvaluation]:
        from affectlab.results import fingerprint_rows

        args, trainer = self.args, fit.trainer
        names, multi = data.extra["label_names"], data.extra["multi_label"]
        report, policy, seed = self.report_fn, self.policy, self.training_args.seed
        predictions = {s: trainer.predict(d, metric_key_prefix=s) for s, d in self.eval_tok.items()}
        val_probs = self.probabilities(predictions[self.validation_split].predictions)
        val_refs = self.references(predictions[self.validation_split].label_ids)
        self.threshold_source = None
        if policy == "heldout_train":
            held = trainer.predict(self.threshold_tok, metric_key_prefix="threshold_rows")
            rows = data.extra["threshold_rows"]
            thresholds = self.tune(self.probabilities(held.predictions), self.references(held.label_ids))
            self.threshold_source = {"split": "train", "rows": len(rows), "fraction": args.threshold_heldout_fraction,
                                     "fingerprint": fingerprint_rows(rows[args.text_column]),
                                     "trained_on": False}
        elif policy in ("tuned_on_eval", "crossfit"):
            thresholds = self.tune(val_probs, val_refs)
            self.threshold_source = {"split": self.validation_split, "rows": int(len(val_refs))}
        else:
            thresholds = [args.threshold] * len(names)
        self.thresholds = [float(t) for t in thresholds]
        self.crossfit = None
        out = {}
        for split, pred in predictions.items():
            probs, refs = self.probabilities(pred.predictions), self.references(pred.label_ids)
            if multi and policy == "crossfit" and split == self.validation_split:
                y_pred, thr_a, thr_b, (a, b) = crossfit_predictions(probs, refs, seed, self.tune)
                rep = report(y_pred.astype(float), refs, threshold=0.5, label_names=names)
                for row, ta, tb in zip(rep["per_label"], thr_a, thr_b):
                    row["threshold"] = float((ta + tb) / 2)   # the mean of the two halves' thresholds
                self.crossfit = {"halves": [int(len(a)), int(len(b))], "seed": seed}
                y_true = refs
            elif multi:
                rep = report(probs, refs, thresholds=thresholds, label_names=names)
                y_pred = (probs >= np.asarray(thresholds)[None, :]).astype(int)
                y_true = refs
            else:
                rep = report(np.eye(len(names))[probs.argmax(-1)], refs, threshold=0.5, label_names=names)
                rep["accuracy"] = float((probs.argmax(-1) == refs.argmax(-1)).mean())
                y_pred, y_true = probs.argmax(-1), refs.argmax(-1)
            metrics = {k: v for k, v in rep.items() if k not in ("per_label", "thresholds")}
            if multi:
                metrics["macro_f1_at_global_threshold"] = report(probs, refs, threshold=args.threshold)["macro_f1"]
                if args.tune_thresholds:   # the optimistic reference: thresholds tuned on this very split
                    tuned = report(probs, refs, tune_thresholds=True, threshold=args.threshold)
                    metrics["macro_f1_tuned"], metrics["micro_f1_tuned"] = tuned["macro_f1"], tuned["micro_f1"]
            out[split] = SplitEvaluation(
                metrics=metrics, num_examples=int(len(refs)), fingerprint=fingerprint_rows(data.eval[split][args.text_column]),
                y_true=y_true, y_pred=y_pred, label_names=names, details={"per_label": rep["per_label"]})
        # the thresholds travel in the model config (the saved one: the base model's under PEFT)
        unwrapped = trainer.accelerator.unwrap_model(trainer.model)
        self.base_config = unwrapped.get_base_model().config if self.model_args.use_peft else unwrapped.config
        if multi:
            from custom_models.multilabel_pipeline import register

            self.base_config.label_thresholds = {n: t for n, t in zip(names, self.thresholds)}
            self.base_config.default_threshold = float(args.threshold)
            register(self.base_config)  # config.json declares the thresholded pipeline (file copied beside it)
        return out

    # ---- outputs ----------------------------------------------------------------------------------
    def save_model(self, fit: FitResult, folder) -> None:
        super().save_model(fit, folder)
        if self.model_args.use_peft and fit.trainer.is_world_process_zero():
            self.base_config.save_pretrained(str(folder))

    def save_artifacts(self, folder, fit, data, evaluations) -> None:
        import shutil

        import pandas as pd

        if data.extra["multi_label"]:
            # `pipeline(model=folder, trust_remote_code=True)` applies the tuned thresholds (custom pipeline)
            from custom_models import multilabel_pipeline

            source = Path(multilabel_pipeline.__file__).with_name("multilabel_pipeline.py")
            shutil.copyfile(source, folder / "multilabel_pipeline.py")

        for split, ev in evaluations.items():
            pd.DataFrame(ev.details["per_label"]).to_csv(folder / f"per_label_report_{split}.csv", index=False)

    def threshold_description(self, split: str) -> str:
        """How `split`'s predictions were thresholded, in words (the card, eval_results.json, result records)."""
        policy, val, src = self.policy, self.validation_split, self.threshold_source or {}
        if policy == "argmax":
            return "argmax over the classes"
        if policy == "global":
            return f"one global threshold {self.args.threshold}"
        if policy == "heldout_train":
            return (f"per-label thresholds tuned on {src.get('rows')} training rows held out of training "
                    f"({self.args.threshold_heldout_fraction:.0%} of train, seeded); no evaluated row was used")
        if split != val:
            return f"per-label thresholds tuned on {val} (never on {split})"
        if policy == "crossfit":
            return (f"per-label thresholds cross-fitted on {val}: each seeded half predicted with thresholds tuned "
                    "on the other half, predictions pooled")
        return f"per-label thresholds tuned on {val} itself (optimistic on {val})"

    def optimistic(self, split: str) -> bool:
        return self.policy == "tuned_on_eval" and split == self.validation_split

    def record_protocol(self, split: str) -> dict:
        return {"threshold_policy": self.policy, "threshold_description": self.threshold_description(split),
                "optimistic": self.optimistic(split)}

    def extra_results(self, fit, data, evaluations) -> dict:
        policy = {"name": self.policy, "tuned_on": self.threshold_source,
                  "splits": {s: {"description": self.threshold_description(s), "optimistic": self.optimistic(s)}
                             for s in evaluations}}
        if self.crossfit:
            policy["crossfit"] = self.crossfit
        return {"thresholds": dict(zip(data.extra["label_names"], self.thresholds)), "loss": self.loss_name,
                "multi_label": data.extra["multi_label"], "mixture": self.args.mixture,
                "mixture_counts": self.mixture_counts, "threshold_policy": policy}

    def card_context(self, fit, data, evaluations) -> dict:
        from dataset_builders import REGISTRY

        args, multi = self.args, data.extra["multi_label"]
        citations = []
        for name in [args.dataset_name, *(args.mixture or {})]:
            if name in REGISTRY:
                cite = getattr(__import__(REGISTRY[name].builder.split(":")[0], fromlist=["CITATION"]), "CITATION", None)
                block = f"```bibtex\n{cite}\n```" if cite else None
                if block and block not in citations:
                    citations.append(block)
        return dict(
            problem_desc="multi-label" if multi else "single-label", multi_label=multi,
            dataset_desc=f"`{args.dataset_name}`",
            thresholds_note=self.thresholds_note(evaluations) if multi else "", threshold_policy=self.policy,
            threshold_descriptions={s: self.threshold_description(s) for s in evaluations},
            per_label=evaluations[self.validation_split].details["per_label"], per_label_split=self.validation_split,
            loss=self.loss_name, max_length=args.max_length, learning_rate=self.training_args.learning_rate,
            batch_size=self.training_args.per_device_train_batch_size * self.training_args.world_size,
            epochs=self.training_args.num_train_epochs, seed=self.training_args.seed, train_rows=fit.train_rows,
            mixture=args.mixture, tuned=multi and args.tune_thresholds, threshold=args.threshold,
            citations="\n\n".join(citations))

    def thresholds_note(self, evaluations) -> str:
        lines = [f"Threshold policy `{self.policy}`:"]
        lines += [f"- {s}: {self.threshold_description(s)}." for s in evaluations]
        if any(self.optimistic(s) for s in evaluations):
            lines.append(f"\nThe {self.validation_split} numbers are therefore optimistic; `heldout_train` or "
                         "`crossfit` give honest ones.")
        elif self.policy in ("heldout_train", "crossfit") and self.args.tune_thresholds:
            lines.append("\n`macro_f1_tuned` in eval_results.json (thresholds tuned on the split itself) is the "
                         "optimistic figure, for comparison only.")
        return "\n".join(lines)

    def report(self, evaluations) -> str:
        multi = self.data.extra["multi_label"]
        val = evaluations[self.validation_split].details
        split = self.validation_split
        lines = [f"Per-label results on {split}" + (f" (threshold policy {self.policy}: {self.threshold_description(split)})"
                                                     if multi else ""),
                 f"{'label':<16} {'prec':>6} {'rec':>6} {'f1':>6} {'supp':>6} {'thr':>5}"]
        for row in sorted(val["per_label"], key=lambda r: -r["f1"]):
            lines.append(f"{row['label']:<16} {row['precision']:>6.3f} {row['recall']:>6.3f} {row['f1']:>6.3f} "
                         f"{row['support']:>6d} {row['threshold']:>5.2f}")
        lines.append("")
        for split, ev in evaluations.items():
            m = ev.metrics
            extra = (f" | macro-F1 at global threshold {m['macro_f1_at_global_threshold']:.4f}"
                     if "macro_f1_at_global_threshold" in m else "")
            if "macro_f1_tuned" in m and self.policy != "tuned_on_eval":
                extra += f" | macro-F1 tuned on {split} itself (optimistic) {m['macro_f1_tuned']:.4f}"
            lines.append(f"{split:<10} macro-F1 {m['macro_f1']:.4f} | micro-F1 {m['micro_f1']:.4f} | "
                         f"weighted-F1 {m['weighted_f1']:.4f} | subset acc {m['subset_accuracy']:.4f}{extra}")
        return "\n".join(lines) + "\n"

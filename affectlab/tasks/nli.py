"""The DSM-5 criterion-matching family: binary NLI over (post, criterion description) pairs (`affectlab train nli`).

Data is `redsm5` config `nli` (every post x the nine criteria; splits by post). With `num_folds` > 1 the
family runs k-fold cross-validation by post: each fold trains a fresh model (same seed) on the other
folds' non-test posts, early-stops on its own held-out posts, and is evaluated on them and on the fixed
test posts. Pairs are tokenized with the post truncated, never the criterion; the loss is cross-entropy
with class weights n / (2 * count_c) from the fold's train split (`class_weighted`).

What the results mean:

* `validation`: without CV, the fixed validation posts; with CV, the **mean over folds** of each fold's
  held-out posts (the per-fold figures are in eval_results.json `folds`, mean and sd in `summary`); the
  result record of that split carries the pooled out-of-fold predictions (every non-test pair once), so
  a metric recomputed from them is the pooled figure, close to but not equal to the mean over folds.
* `test`: the fixed test posts (the same in every fold), predicted by the saved model (the last fold's).

A plain Gemma / Gemma2 / Gemma3 checkpoint becomes the bidirectional encoder of `custom_models.gemma_encoder`
(`encoder: bidirectional`, the default): its backbone weights are loaded into
`GemmaEncoderForSequenceClassification` directly, and the saved model carries the code files and the
`auto_map`, so it reloads anywhere with `trust_remote_code=True`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from affectlab.configs import DataArguments
from affectlab.errors import ArgumentError
from affectlab.tasks.base import DatasetInfo, FitResult, SplitEvaluation, Task, TaskData, dataset_info

logger = logging.getLogger("affectlab.tasks.nli")

GEMMA_TYPES = ("gemma", "gemma2", "gemma3", "gemma3_text")
ENCODER_MODES = ("bidirectional", "none")
POOLING_MODES = ("mean", "cls", "last", "max", "attention")
BINARY_METRICS = ("accuracy", "macro_f1", "f1_present")


@dataclass
class NLIArguments(DataArguments):
    """Criterion-matching options (`affectlab train nli`); data, lengths and limits come from DataArguments."""

    dataset_name: Optional[str] = field(default="redsm5", metadata={"help": "'redsm5' (config 'nli'); point dataset_data_dir at your ReDSM5 copy (default: $AFFECTLAB_DATA/redsm5_sample)"})
    num_folds: int = field(default=0, metadata={"help": "k-fold CV by post when > 1 (each fold validates on 1/k of the non-test posts); 0: the fixed split"})
    class_weighted: bool = field(default=True, metadata={"help": "cross-entropy weights n/(2*count_c) from the train split"})
    encoder: str = field(default="bidirectional", metadata={"help": "'bidirectional': load Gemma checkpoints as the gemma_encoder; 'none': use the model as is"})
    pooling: str = field(default="mean", metadata={"help": f"gemma_encoder pooling: {' | '.join(POOLING_MODES)}"})

    default_max_length = 256

    def __post_init__(self):
        super().__post_init__()
        if self.dataset_name != "redsm5":
            raise ArgumentError("dataset_name", f"the nli family trains on 'redsm5' (config 'nli'), got {self.dataset_name!r}; "
                                                "use --dataset_data_dir for another copy of ReDSM5")
        if self.dataset_config not in (None, "nli"):
            raise ArgumentError("dataset_config", f"the nli family uses redsm5 config 'nli', got {self.dataset_config!r}")
        self.dataset_config = "nli"
        if self.num_folds < 0 or self.num_folds == 1:
            raise ArgumentError("num_folds", f"must be 0 (the fixed split) or >= 2 (k-fold CV by post), got {self.num_folds}")
        if self.encoder not in ENCODER_MODES:
            raise ArgumentError("encoder", f"must be one of {ENCODER_MODES}, got {self.encoder!r}")
        if self.pooling not in POOLING_MODES:
            raise ArgumentError("pooling", f"must be one of {POOLING_MODES}, got {self.pooling!r}")


class WeightedCE(torch.nn.Module):
    """Cross-entropy with class weights (a callable `loss(logits, labels)` for ClassificationTrainer)."""

    def __init__(self, weights=None):
        super().__init__()
        self.register_buffer("weight", None if weights is None else torch.as_tensor(weights, dtype=torch.float32),
                             persistent=False)

    def forward(self, logits, labels):
        w = None if self.weight is None else self.weight.to(logits.device)
        return torch.nn.functional.cross_entropy(logits.float(), labels.long(), weight=w)


# ---- metrics ------------------------------------------------------------------------------------------
def per_criterion_f1(pred, labels, symptoms, names) -> dict[str, float | None]:
    """F1 of the `present` class within each criterion's pairs (None where a criterion has no positive at all)."""
    out = {}
    for i, name in enumerate(names):
        sel = symptoms == i
        tp = int(((pred == 1) & (labels == 1) & sel).sum())
        fp = int(((pred == 1) & (labels == 0) & sel).sum())
        fn = int(((pred == 0) & (labels == 1) & sel).sum())
        out[name] = float(2 * tp / (2 * tp + fp + fn)) if (2 * tp + fp + fn) else float("nan")
    return {k: (None if np.isnan(v) else v) for k, v in out.items()}


def binary_metrics(logits, labels) -> dict[str, float]:
    """accuracy, macro-F1 over {absent, present} and F1 of `present`, from logits (argmax) and 0/1 labels."""
    pred = logits.argmax(-1)
    f1s = []
    for c in (0, 1):
        tp = int(((pred == c) & (labels == c)).sum())
        denom = 2 * tp + int(((pred == c) & (labels != c)).sum()) + int(((pred != c) & (labels == c)).sum())
        f1s.append(2 * tp / denom if denom else 0.0)
    return {"accuracy": float((pred == labels).mean()), "macro_f1": float(np.mean(f1s)), "f1_present": float(f1s[1])}


def summarise(fold_results: list[dict]) -> dict:
    """mean and sd (ddof=1 when > 1 fold) of every validation metric over folds."""
    out = {}
    for key in BINARY_METRICS:
        vals = np.array([r["validation"][key] for r in fold_results], dtype=float)
        out[key] = {"mean": float(vals.mean()), "sd": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}
    crit = {}
    for name in fold_results[0]["validation"]["per_criterion_f1"]:
        vals = np.array([r["validation"]["per_criterion_f1"][name] for r in fold_results
                         if r["validation"]["per_criterion_f1"][name] is not None], dtype=float)
        crit[name] = {"mean": float(vals.mean()) if len(vals) else None,
                      "sd": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0, "folds": int(len(vals))}
    out["per_criterion_f1"] = crit
    return out


# ---- the Gemma encoder ----------------------------------------------------------------------------------
def gemma_encoder_classes():
    """`(GemmaEncoderConfig, GemmaEncoderForSequenceClassification)`, marked so `save_pretrained` writes the
    code files and the auto_map next to the weights (reload with `trust_remote_code=True`)."""
    from custom_models.gemma_encoder import GemmaEncoderConfig, GemmaEncoderForSequenceClassification, GemmaEncoderModel

    GemmaEncoderConfig.register_for_auto_class()
    GemmaEncoderModel.register_for_auto_class("AutoModel")
    GemmaEncoderForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
    return GemmaEncoderConfig, GemmaEncoderForSequenceClassification


def redsm5_info(data_dir) -> DatasetInfo:
    """What the card and the records say about the ReDSM5 copy that was read (never its text)."""
    from dataset_builders.redsm5.redsm5 import find_files, read_corpus

    posts_file, _ = find_files(data_dir)
    corpus = read_corpus(data_dir)
    synthetic = any(pid.startswith("synthetic_") for pid in corpus.posts)
    sample = "sample" in posts_file.name or "sample" in posts_file.parent.name
    what = (f"SYNTHETIC data in the ReDSM5 layout ({len(corpus.posts)} posts): a pipeline check, not ReDSM5"
            if synthetic else
            f"the public ReDSM5 SAMPLE ({len(corpus.posts)} posts, paraphrased for release), not the full "
            "1,484-post data set: figures are a pipeline check, not a benchmark result" if sample else
            f"a local copy of ReDSM5 ({len(corpus.posts)} posts)")
    notes = {
        "train": f"Data: {what}. No official splits: a post goes to train / validation / test by sha256 of its "
                 "post_id (80/10/10), so a post never spans two splits; each post is paired with all nine criteria. "
                 "With k-fold CV, train is the non-test posts of the other folds.",
        "validation": "Without CV, the 10% validation posts. With k-fold CV, each fold's held-out non-test posts; "
                      "the metrics are the MEAN over folds (sd in eval_results.json `summary`), the result record's "
                      "predictions are the pooled out-of-fold ones.",
        "test": "The 10% test posts (the same in every fold), predicted by the saved model (the last fold's with CV).",
    }
    info = dataset_info("redsm5", "nli")
    info.split_notes, info.synthetic = notes, synthetic
    return info


class NLITask(Task):
    name = "nli"
    arguments_class = NLIArguments
    card_template = "nli.md"
    primary_metric = "macro_f1"
    card_metrics = BINARY_METRICS
    task_type = "text-classification"
    task_display = "DSM-5 criterion matching"
    record_task = "dsm5-criterion-matching"
    pipeline_tag = "text-classification"
    tags = ("nli", "dsm-5", "redsm5", "mental-health")
    mental_health = True
    peft_task_type = "SEQ_CLS"
    head_modules = ("classifier", "score", "pooler")
    description = "DSM-5 criterion matching on ReDSM5 as (post, criterion) pairs (k-fold CV, class-weighted CE, Gemma encoder)"

    # ---- options ----------------------------------------------------------------------------------
    def check_options(self) -> None:
        super().check_options()
        resume = self.training_args.resume_from_checkpoint
        if self.args.num_folds > 1 and resume and str(resume).lower() != "false":
            raise ArgumentError("resume_from_checkpoint", "cannot resume a k-fold CV run (every fold trains a new "
                                                          "model); rerun it, or use --num_folds 0")

    # ---- data -------------------------------------------------------------------------------------
    def fold_ids(self) -> list[int | None]:
        k = self.args.num_folds
        return list(range(k)) if k > 1 else [None]

    def load_data(self) -> TaskData:
        from affectlab.paths import dataset_dir
        from dataset_builders import build_dataset, get_spec
        from dataset_builders.redsm5.redsm5 import NLI_LABELS, SYMPTOMS

        args = self.args
        data_dir = args.dataset_data_dir or dataset_dir(get_spec("redsm5").local_dir)
        if data_dir is None:
            raise ArgumentError("dataset_data_dir", "ReDSM5 is licensed by its authors and not on the Hub: point it "
                                                    "at a folder with the posts and annotations CSV files")
        folds = []
        for fold in self.fold_ids():
            kwargs = {"num_folds": args.num_folds, "fold": fold} if fold is not None else {}
            raw = build_dataset("redsm5", data_dir=data_dir, config="nli", **kwargs)
            for split in ("train", "validation"):
                if split not in raw or len(raw[split]) == 0:
                    raise ArgumentError("dataset_data_dir", f"fold {fold}: no {split} posts in {data_dir} "
                                                            f"(splits: {list(raw)}); use fewer folds or more posts")
            folds.append({"fold": fold, "train": self.limit_train(raw["train"]),
                          "eval": {s: self.limit_eval(raw[s]) for s in ("validation", "test") if s in raw}})
        last = folds[-1]
        return TaskData(train=last["train"], eval=last["eval"], info=redsm5_info(data_dir),
                        extra={"folds": folds, "label_names": list(NLI_LABELS), "symptoms": list(SYMPTOMS)})

    # ---- model ------------------------------------------------------------------------------------
    def build_model(self, data: TaskData):
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        from affectlab.models import model_init_kwargs, resolve_model_name

        args, model_args = self.args, self.model_args
        names = data.extra["label_names"]
        model_name = resolve_model_name(model_args.model_name_or_path)
        trust = model_args.trust_remote_code
        if args.encoder == "bidirectional":
            gemma_encoder_classes()  # registers gemma_encoder, so a saved encoder folder loads without remote code
        base_config = AutoConfig.from_pretrained(model_name, revision=model_args.model_revision, trust_remote_code=trust)
        labels = dict(num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
                      problem_type="single_label_classification")
        kwargs = model_init_kwargs(model_args, self.head_modules)
        self.gemma_encoder = args.encoder == "bidirectional" and base_config.model_type in GEMMA_TYPES + ("gemma_encoder",)
        tokenizer = AutoTokenizer.from_pretrained(model_name, revision=model_args.model_revision, trust_remote_code=trust)
        if self.gemma_encoder:
            config_cls, model_cls = gemma_encoder_classes()
            if base_config.model_type == "gemma_encoder":
                config = config_cls.from_pretrained(model_name, revision=model_args.model_revision, pooling=args.pooling, **labels)
            else:
                config = config_cls(text_config=base_config, pooling=args.pooling, **labels)
            kwargs.pop("trust_remote_code", None)
            model = model_cls.from_pretrained(model_name, config=config, **kwargs)
        else:
            if args.pooling != "mean":
                logger.warning("--pooling %s applies to the Gemma encoder only; %s (%s) keeps its own pooling",
                               args.pooling, model_name, base_config.model_type)
            config = AutoConfig.from_pretrained(model_name, revision=model_args.model_revision, trust_remote_code=trust,
                                                **labels)
            model = AutoModelForSequenceClassification.from_pretrained(model_name, config=config, **kwargs)
        return model, tokenizer

    def tokenize(self, dataset, tokenizer, desc: str):
        from affectlab.data import tokenize_for_classification

        return tokenize_for_classification(dataset, tokenizer=tokenizer, text_column="text", text_pair_column="criterion",
                                           label_column="labels", num_labels=2, multi_label=False,
                                           max_length=self.args.max_length, desc=desc)

    def build_trainer(self, model, tokenizer, fold: dict):
        """The Trainer of one fold (`fold`: {"fold", "train", "eval"} from load_data)."""
        from transformers import DataCollatorWithPadding

        from affectlab.trainer import ClassificationTrainer
        from dataset_builders.redsm5.redsm5 import class_weights

        with self.training_args.main_process_first(desc="tokenizing"):
            train_tok = self.tokenize(fold["train"], tokenizer, "Tokenizing train")
            fold["eval_tok"] = {s: self.tokenize(d, tokenizer, f"Tokenizing {s}") for s, d in fold["eval"].items()}
        weights = class_weights(fold["train"]) if self.args.class_weighted else None
        fold["class_weights"] = None if weights is None else [float(w) for w in weights]
        logger.info("fold %s: %d train pairs (%.1f%% present), class weights %s", fold["fold"], len(fold["train"]),
                    100 * float(np.mean(fold["train"]["labels"])), fold["class_weights"])
        return ClassificationTrainer(
            model=model, args=self.training_args, train_dataset=train_tok, eval_dataset=fold["eval_tok"]["validation"],
            processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=self.compute_metrics, callbacks=self.early_stopping_callbacks(), loss_fn=WeightedCE(weights))

    @staticmethod
    def compute_metrics(p):
        logits = p.predictions[0] if isinstance(p.predictions, tuple) else p.predictions
        return binary_metrics(logits, p.label_ids)

    # ---- k-fold fit: one fresh model per fold; the last fold's trainer is the one saved ------------
    def fit(self, data: TaskData) -> FitResult:
        import gc

        from transformers import set_seed

        from affectlab.checkpointing import attach

        trainer, result, runs = None, None, []
        folds = data.extra["folds"]
        for fold in folds:
            if trainer is not None:
                del trainer
                gc.collect()
            set_seed(self.training_args.seed)  # every fold starts from the same seed (as a single run does)
            model, tokenizer = self.build_model(data)
            model = self.wrap_peft(model)
            trainer = attach(self.build_trainer(model, tokenizer, fold))  # atomic checkpoints, exact resumes
            resume = self.training_args.resume_from_checkpoint if len(folds) == 1 else None
            result = trainer.train(resume_from_checkpoint=resume)
            runs.append(self.predict_fold(trainer, fold, data))
        self.class_weights = folds[-1]["class_weights"]
        return FitResult(trainer=trainer, train_metrics=dict(result.metrics), train_rows=len(folds[-1]["train"]),
                         extra={"runs": runs})

    def predict_fold(self, trainer, fold: dict, data: TaskData) -> dict:
        """Every eval split of one fold: metrics (incl. per-criterion F1), row ids, labels and predictions."""
        out = {}
        for split, ds in fold["eval_tok"].items():
            pred = trainer.predict(ds, metric_key_prefix=split)
            logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
            labels = np.asarray(pred.label_ids).astype(int)
            metrics = binary_metrics(logits, labels)
            metrics["per_criterion_f1"] = per_criterion_f1(logits.argmax(-1), labels, np.asarray(fold["eval"][split]["symptom"]),
                                                           data.extra["symptoms"])
            metrics["num_examples"] = int(len(ds))
            out[split] = {"metrics": metrics, "ids": list(fold["eval"][split]["id"]), "y_true": labels,
                          "y_pred": logits.argmax(-1).astype(int)}
        return out

    # ---- evaluation: validation = mean over folds (CV) or the fixed split; test = the saved model --
    def evaluate(self, fit: FitResult, data: TaskData) -> dict[str, SplitEvaluation]:
        from affectlab.results import fingerprint_rows

        runs, names = fit.extra["runs"], data.extra["label_names"]
        self.fold_results = [{s: r["metrics"] for s, r in run.items()} for run in runs]
        self.summary = summarise(self.fold_results)
        out = {}
        if len(runs) > 1:
            ids = [i for run in runs for i in run["validation"]["ids"]]
            y_true = np.concatenate([run["validation"]["y_true"] for run in runs])
            y_pred = np.concatenate([run["validation"]["y_pred"] for run in runs])
            crit = self.summary["per_criterion_f1"]
            out["validation"] = SplitEvaluation(
                metrics={k: self.summary[k]["mean"] for k in BINARY_METRICS}, num_examples=len(ids),
                fingerprint=fingerprint_rows(ids), y_true=y_true, y_pred=y_pred, label_names=names,
                details={"per_criterion_f1": {k: v["mean"] for k, v in crit.items()},
                         "per_criterion_f1_sd": {k: v["sd"] for k, v in crit.items()},
                         "aggregation": f"mean over {len(runs)} folds (each fold's held-out posts); predictions "
                                        "are the pooled out-of-fold ones"})
        splits = [s for s in runs[-1] if s not in out]
        for split in splits:
            r = runs[-1][split]
            out[split] = SplitEvaluation(
                metrics={k: r["metrics"][k] for k in BINARY_METRICS}, num_examples=r["metrics"]["num_examples"],
                fingerprint=fingerprint_rows(r["ids"]), y_true=r["y_true"], y_pred=r["y_pred"], label_names=names,
                details={"per_criterion_f1": r["metrics"]["per_criterion_f1"]})
        return {s: out[s] for s in ("validation", "test") if s in out}

    # ---- outputs ----------------------------------------------------------------------------------
    def save_model(self, fit: FitResult, folder) -> None:
        """Weights (or adapter), config, tokenizer; under PEFT also the base config (and the encoder's code),
        which the adapter needs to be loaded onto the right model."""
        super().save_model(fit, folder)
        trainer = fit.trainer
        if self.model_args.use_peft and trainer.is_world_process_zero():
            from transformers.dynamic_module_utils import custom_object_save

            base = trainer.accelerator.unwrap_model(trainer.model).get_base_model()
            base.config.save_pretrained(str(folder))
            if self.gemma_encoder:
                custom_object_save(base, str(folder), config=base.config)
                base.config.save_pretrained(str(folder))

    def save_artifacts(self, folder, fit, data, evaluations) -> None:
        import pandas as pd

        rows = [{"criterion": k, **v} for k, v in self.summary["per_criterion_f1"].items()]
        pd.DataFrame(rows).to_csv(folder / "per_criterion_f1.csv", index=False)

    def extra_results(self, fit, data, evaluations) -> dict:
        return {"folds": self.fold_results, "summary": self.summary, "num_folds": len(self.fold_results),
                "class_weights": self.class_weights, "encoder": "gemma_encoder" if self.gemma_encoder else None,
                "pooling": self.args.pooling if self.gemma_encoder else None}

    def card_context(self, fit, data, evaluations) -> dict:
        from dataset_builders.redsm5.redsm5 import CRITERIA

        args, training_args = self.args, self.training_args
        k = len(self.fold_results)
        crit_split = "validation"
        if k > 1:
            rows = [{"criterion": name, "f1": v["mean"], "sd": v["sd"], "folds": v["folds"]}
                    for name, v in self.summary["per_criterion_f1"].items()]
        else:
            rows = [{"criterion": name, "f1": v, "sd": None, "folds": 1}
                    for name, v in evaluations[crit_split].details["per_criterion_f1"].items()]
        test_crit = evaluations["test"].details["per_criterion_f1"] if "test" in evaluations else None
        for row in rows:
            row["test_f1"] = None if test_crit is None else test_crit.get(row["criterion"])
        return dict(num_folds=k, summary=self.summary, per_criterion=rows, has_test="test" in evaluations,
                    class_weights=self.class_weights, class_weighted=args.class_weighted,
                    gemma_encoder=self.gemma_encoder, pooling=args.pooling, use_peft=bool(self.model_args.use_peft),
                    criteria=CRITERIA, max_length=args.max_length, label_names=data.extra["label_names"],
                    learning_rate=training_args.learning_rate, epochs=training_args.num_train_epochs,
                    seed=training_args.seed, train_rows=fit.train_rows,
                    base_model_id=self.base_model_ref())

    def base_model_ref(self) -> str:
        """How the card's usage snippet names the base model (the Hub id when known)."""
        from affectlab.models import hub_model_id

        return hub_model_id(self.model_args.model_name_or_path) or str(self.model_args.model_name_or_path)

    def report(self, evaluations) -> str:
        k = len(self.fold_results)
        lines = [f"Per-criterion F1 on validation ({'mean +- sd over %d folds' % k if k > 1 else 'one split'})",
                 f"{'criterion':<18} {'F1 mean':>8} {'sd':>6}"]
        for name, v in self.summary["per_criterion_f1"].items():
            lines.append(f"{name:<18} {v['mean'] if v['mean'] is not None else float('nan'):>8.3f} {v['sd']:>6.3f}")
        m = self.summary["macro_f1"]
        lines.append(f"validation macro-F1 {m['mean']:.4f} +- {m['sd']:.4f} over {k} fold(s)")
        for split, ev in evaluations.items():
            shown = " | ".join(f"{key} {ev.metrics[key]:.4f}" for key in BINARY_METRICS)
            lines.append(f"{split:<10} ({ev.num_examples} pairs): {shown}")
        return "\n".join(lines) + "\n"

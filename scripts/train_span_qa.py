"""Evidence-span extraction as extractive QA on ReDSM5: (criterion description, post) -> evidence spans.

    python scripts/train_span_qa.py --config recipes/span_qa_minilm_cpu.yaml [--hp_search_trials 3 ...]

Builds `redsm5` config `evidence` (the shared sample, your own copy via `dataset_data_dir`, or a
SYNTHETIC corpus with `synthetic_posts` > 0), turns it into SQuAD examples (`affectlab.span_qa.to_squad`;
no evidence -> no-answer example, optionally subsampled in train with `max_negatives_per_positive`),
tokenizes into stride windows and trains `custom_models/span_qa` (any encoder; Gemma checkpoints become
the bidirectional Gemma encoder) with `SpanQATrainer`, a `transformers.Trainer` whose `evaluate` runs
the n-best / multi-span post-processing and the `evidence_squad` metric (SQuAD EM/F1, sentence-level
evidence P/R/F1). Early stopping on validation F1. With `hp_search_trials` > 0, an Optuna search through
`Trainer.hyperparameter_search` (learning rate, batch size, epochs, warmup, doc_stride, max_length;
the last two re-tokenize the data per trial) writes `hp_search.json`, `hp_trials.csv` and
`best_config.yaml`, then the best trial is retrained. Outputs: the model, `eval_results.json`
(validation/test metrics, alignment counts), `predictions_<split>.jsonl`.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QA_PARAMS = ("max_length", "doc_stride")
FEATURE_COLUMNS = ("example_id", "offset_mapping", "cls_index")


@dataclass
class SpanQAScriptArguments:
    """Data, windowing, post-processing and search options of `scripts/train_span_qa.py`."""

    dataset_data_dir: Optional[str] = field(default=None, metadata={"help": "ReDSM5 folder (default: $AFFECTLAB_DATA/redsm5_sample)"})
    synthetic_posts: int = field(default=0, metadata={"help": "> 0: write and use a SYNTHETIC ReDSM5-layout corpus of this many posts"})
    max_length: int = field(default=384, metadata={"help": "tokens per window (question + context)"})
    doc_stride: int = field(default=128, metadata={"help": "tokens of overlap between consecutive windows"})
    n_best_size: int = 20
    max_answer_length: int = field(default=64, metadata={"help": "longest predicted span in tokens"})
    null_score_diff_threshold: float = field(default=0.0, metadata={"help": "no answer when null - best span score exceeds this"})
    max_spans: int = field(default=3, metadata={"help": "evidence spans per example (top-k non-overlapping)"})
    span_score_diff_threshold: Optional[float] = field(default=None, metadata={"help": "extra spans need null - score <= this (default: null threshold)"})
    head_dropout: float = 0.1
    max_negatives_per_positive: Optional[float] = field(default=None, metadata={"help": "subsample no-answer train examples to this ratio (None: keep all)"})
    max_train_samples: Optional[int] = None
    max_eval_samples: Optional[int] = None
    early_stopping_patience: Optional[int] = 3
    hp_search_trials: int = field(default=0, metadata={"help": "Optuna trials through Trainer.hyperparameter_search (0: no search)"})
    hp_learning_rate: str = field(default="1e-5,1e-4", metadata={"help": "log-uniform range 'low,high'"})
    hp_batch_sizes: str = "8,16,32"
    hp_epochs: str = field(default="1,4", metadata={"help": "integer range 'low,high'"})
    hp_warmup: str = field(default="0.0,0.2", metadata={"help": "warmup_steps as a ratio, range 'low,high'"})
    hp_doc_strides: str = "64,128"
    hp_max_lengths: str = "256,384"


def _floats(text: str) -> list[float]:
    return [float(x) for x in str(text).split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in str(text).split(",") if x.strip()]


def make_hp_space(script_args):
    lr_lo, lr_hi = _floats(script_args.hp_learning_rate)
    ep_lo, ep_hi = _ints(script_args.hp_epochs)
    wu_lo, wu_hi = _floats(script_args.hp_warmup)
    batches, strides, lengths = _ints(script_args.hp_batch_sizes), _ints(script_args.hp_doc_strides), _ints(script_args.hp_max_lengths)

    def hp_space(trial):
        return {"learning_rate": trial.suggest_float("learning_rate", lr_lo, lr_hi, log=True),
                "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", batches),
                "num_train_epochs": trial.suggest_int("num_train_epochs", ep_lo, ep_hi),
                "warmup_steps": trial.suggest_float("warmup_steps", wu_lo, wu_hi),
                "doc_stride": trial.suggest_categorical("doc_stride", strides),
                "max_length": trial.suggest_categorical("max_length", lengths)}

    return hp_space


def load_examples(script_args, seed: int, output_dir: Path):
    """SQuAD-style DatasetDict (train/validation/test) from the ReDSM5 evidence config + alignment report."""
    import datasets

    from affectlab.paths import dataset_dir
    from affectlab.span_qa import to_squad
    from dataset_builders.redsm5.redsm5 import ReDSM5, alignment_report, write_synthetic

    if script_args.synthetic_posts > 0:
        data_dir = write_synthetic(output_dir / "synthetic_data", num_posts=script_args.synthetic_posts, seed=seed)
    else:
        data_dir = script_args.dataset_data_dir or dataset_dir("redsm5_sample")
        if data_dir is None:
            raise FileNotFoundError("no ReDSM5 folder: pass dataset_data_dir or set AFFECTLAB_DATA")
    builder = ReDSM5(config_name="evidence", data_dir=str(data_dir), cache_dir=str(output_dir / "hf_cache"))
    builder.download_and_prepare()
    raw = builder.as_dataset()
    out = {}
    for split, ds in raw.items():
        sq = ds.map(to_squad, remove_columns=ds.column_names, desc=f"SQuAD {split}")
        if split == "train" and script_args.max_negatives_per_positive is not None:
            pos = [i for i, a in enumerate(sq["answers"]) if a["text"]]
            neg = [i for i, a in enumerate(sq["answers"]) if not a["text"]]
            import numpy as np

            rng = np.random.default_rng(seed)
            keep = int(round(script_args.max_negatives_per_positive * len(pos)))
            neg = sorted(rng.choice(neg, size=min(keep, len(neg)), replace=False).tolist()) if neg else []
            sq = sq.select(sorted(pos + neg))
        limit = script_args.max_train_samples if split == "train" else script_args.max_eval_samples
        if limit:
            sq = sq.shuffle(seed=seed).select(range(min(limit, len(sq))))
        out[split] = sq
    if "validation" not in out:
        raise ValueError(f"{data_dir}: no post fell into the validation split; add posts or change the split fractions")
    return datasets.DatasetDict(out), alignment_report(data_dir)


def _span_qa_trainer_class():
    from transformers import Trainer
    from transformers.trainer_utils import HPSearchBackend

    from affectlab.metrics import metric_module
    from affectlab.span_qa import postprocess_predictions, prepare_eval_features, prepare_train_features

    class SpanQATrainer(Trainer):
        """Trainer whose `evaluate` post-processes window logits into evidence spans and scores them.

        The examples (not the windows) are given: `featurize(max_length, doc_stride)` builds the train
        windows and the evaluation windows (kept with offsets for post-processing); an Optuna trial that
        samples `max_length` / `doc_stride` re-tokenizes before training.
        """

        def __init__(self, *args, train_examples, eval_examples: dict, tokenizer, max_length: int, doc_stride: int,
                     postprocess_kwargs: dict, **kwargs):
            self.train_examples, self.eval_examples = train_examples, eval_examples
            self.qa_tokenizer, self.postprocess_kwargs = tokenizer, dict(postprocess_kwargs)
            self.eval_features: dict = {}
            train, evals = self._features(max_length, doc_stride)
            super().__init__(*args, train_dataset=train, eval_dataset=evals["validation"], processing_class=tokenizer, **kwargs)
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
                self.featurize(qa.get("max_length", self.qa_params["max_length"]), qa.get("doc_stride", self.qa_params["doc_stride"]))

        def _report_to_hp_search(self, trial, step, metrics):
            previous = getattr(self, "objective", None)
            super()._report_to_hp_search(trial, step, metrics)
            if previous is not None and self.objective is not None:  # a trial's objective: its best evaluation
                self.objective = max(previous, self.objective)

        def predict_split(self, split: str, metric_key_prefix: str | None = None):
            """(post-processed predictions, metrics) of an evaluation split."""
            prefix = metric_key_prefix or split
            features = self.eval_features[split]
            inputs = features.remove_columns(list(FEATURE_COLUMNS))
            compute_metrics, self.compute_metrics = self.compute_metrics, None
            try:
                output = self.evaluation_loop(self.get_eval_dataloader(inputs), description=f"Evaluation {split}",
                                              prediction_loss_only=False, metric_key_prefix=prefix)
            finally:
                self.compute_metrics = compute_metrics
            start, end = output.predictions[:2] if isinstance(output.predictions, tuple) else output.predictions
            examples = self.eval_examples[split]
            preds = postprocess_predictions(examples, features, start, end, **self.postprocess_kwargs)
            metrics = score(preds, examples)
            metrics = {f"{prefix}_{k}": v for k, v in metrics.items()}
            metrics.update({k: v for k, v in output.metrics.items() if k.startswith(prefix)})
            return preds, metrics

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
            _, metrics = self.predict_split("validation", metric_key_prefix)
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    def score(preds, examples) -> dict:
        from affectlab.span_qa import metric_inputs, references

        m = metric_module("evidence_squad")
        refs = references(examples)
        rows = metric_inputs(preds)
        return {**m.squad_scores(rows, refs), **m.sentence_scores(rows, refs)}

    return SpanQATrainer


def main(script_args, training_args, model_args):
    import csv
    import json
    import logging

    import yaml
    from transformers import AutoTokenizer, DataCollatorWithPadding, EarlyStoppingCallback, set_seed

    from affectlab.hub import claim_push, publish_finished_run
    from affectlab.io import atomic_write_json, atomic_write_text
    from affectlab.paths import resolve_model_name
    from custom_models.span_qa import SpanQAModel

    push_wanted = claim_push(training_args)

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logger = logging.getLogger("train_span_qa")
    out = Path(training_args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(training_args.seed)
    raw, report = load_examples(script_args, training_args.seed, out)
    logger.info("examples: %s; alignment %s", {k: len(v) for k, v in raw.items()}, report["counts"])
    model_name = resolve_model_name(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(model_name, trust_remote_code=model_args.trust_remote_code)
    dtype = model_args.dtype if model_args.dtype not in (None, "auto") else None

    def model_init(trial=None):
        set_seed(training_args.seed)
        kw = {"dtype": dtype} if dtype else {}
        return SpanQAModel.from_encoder(model_name, head_dropout=script_args.head_dropout,
                                        trust_remote_code=model_args.trust_remote_code, **kw)

    postprocess_kwargs = dict(n_best_size=script_args.n_best_size, max_answer_length=script_args.max_answer_length,
                              null_score_diff_threshold=script_args.null_score_diff_threshold, max_spans=script_args.max_spans,
                              span_score_diff_threshold=script_args.span_score_diff_threshold)
    trainer_cls = _span_qa_trainer_class()
    eval_examples = {s: raw[s] for s in ("validation", "test") if s in raw}

    def make_trainer(args, max_length, doc_stride):
        callbacks = []
        if script_args.early_stopping_patience and args.load_best_model_at_end:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=script_args.early_stopping_patience))
        return trainer_cls(model_init=model_init, args=args, train_examples=raw["train"], eval_examples=eval_examples,
                           tokenizer=tokenizer, max_length=max_length, doc_stride=doc_stride,
                           postprocess_kwargs=postprocess_kwargs, data_collator=DataCollatorWithPadding(tokenizer),
                           callbacks=callbacks)

    search = None
    final_args = copy.deepcopy(training_args)
    max_length, doc_stride = script_args.max_length, script_args.doc_stride
    if script_args.hp_search_trials > 0:
        import optuna

        search_args = copy.deepcopy(training_args)
        search_args.output_dir = str(out / "hp_search")
        storage = optuna.storages.InMemoryStorage()
        trainer = make_trainer(search_args, max_length, doc_stride)
        best = trainer.hyperparameter_search(
            hp_space=make_hp_space(script_args), compute_objective=lambda m: m["eval_f1"],
            n_trials=script_args.hp_search_trials, direction="maximize", backend="optuna", study_name="span_qa",
            storage=storage, sampler=optuna.samplers.TPESampler(seed=training_args.seed))
        study = optuna.load_study(study_name="span_qa", storage=storage)
        trials = [{"trial": t.number, "state": t.state.name, "f1": t.value, **t.params} for t in study.trials]
        search = {"best_trial": int(best.run_id), "best_f1": best.objective, "best_params": best.hyperparameters,
                  "trials": trials, "direction": "maximize", "objective": "best validation SQuAD F1 of the trial"}
        atomic_write_json(out / "hp_search.json", search)
        keys = sorted({k for t in trials for k in t})
        lines = [",".join(keys)] + [",".join("" if t.get(k) is None else str(t.get(k)) for k in keys) for t in trials]
        atomic_write_text(out / "hp_trials.csv", "\n".join(lines) + "\n")
        for key, value in best.hyperparameters.items():
            if key in QA_PARAMS:
                continue
            old = getattr(final_args, key)
            setattr(final_args, key, type(old)(value) if old is not None else value)
        max_length = int(best.hyperparameters.get("max_length", max_length))
        doc_stride = int(best.hyperparameters.get("doc_stride", doc_stride))
        best_config = {"model_name_or_path": model_args.model_name_or_path, "max_length": max_length, "doc_stride": doc_stride,
                       **{k: v for k, v in best.hyperparameters.items() if k not in QA_PARAMS}, "seed": training_args.seed}
        atomic_write_text(out / "best_config.yaml", "# best Optuna trial of scripts/train_span_qa.py (merge into the recipe)\n"
                          + yaml.safe_dump(best_config, sort_keys=True))
        logger.info("best trial %s: F1 %.2f %s; retraining", best.run_id, best.objective, best.hyperparameters)

    trainer = make_trainer(final_args, max_length, doc_stride)
    trainer.train()
    results = {}
    for split in eval_examples:
        preds, metrics = trainer.predict_split(split)
        results[split] = {k[len(split) + 1:]: v for k, v in metrics.items()}
        lines = [json.dumps({"id": p["id"], "prediction_text": p["prediction_text"], "spans": p["spans"],
                             "null_score": p["null_score"], "best_score": p["best_score"]}) for p in preds]
        atomic_write_text(out / f"predictions_{split}.jsonl", "\n".join(lines) + "\n")
    trainer.save_model(str(out))
    payload = {"results": results, "alignment": report["counts"], "unaligned": report["unaligned"],
               "num_examples": {k: len(v) for k, v in raw.items()}, "max_length": max_length, "doc_stride": doc_stride,
               "postprocess": postprocess_kwargs, "base_model": model_args.model_name_or_path, "seed": training_args.seed,
               "synthetic": script_args.synthetic_posts > 0, "hp_search": search}
    atomic_write_json(out / "eval_results.json", payload)
    with open(out / "eval_summary.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["split", "exact", "f1", "sentence_precision", "sentence_recall", "sentence_f1", "total"])
        for split, m in results.items():
            w.writerow([split] + [round(m[k], 4) for k in ("exact", "f1", "sentence_precision", "sentence_recall", "sentence_f1")] + [m["total"]])
    print("\n".join(f"{s}: EM {m['exact']:.2f} F1 {m['f1']:.2f} sentence-F1 {m['sentence_f1']:.2f} (n={m['total']})"
                    for s, m in results.items()), flush=True)
    if trainer.is_world_process_zero():
        publish_finished_run(out, training_args, push_wanted)
    return payload


if __name__ == "__main__":
    from transformers import TrainingArguments
    from trl import TrlParser

    from affectlab.configs import ModelArguments, parse_script_args

    main(*parse_script_args(TrlParser((SpanQAScriptArguments, TrainingArguments, ModelArguments))))

"""Fine-tune a text classifier (multi-label or single-label) with `transformers.Trainer`.

    accelerate launch --config_file accelerate_configs/cpu.yaml scripts/train_classifier.py \
        --config recipes/goemotions_minilm_demo.yaml [--learning_rate 1e-4 ...]

Builds the dataset (or a weighted mixture), tokenizes without padding, trains with BCE / ASL /
combined loss, early-stops on validation macro-F1, tunes per-label thresholds on validation only and
saves them in the model config, evaluates validation (and test when present), and writes the model,
tokenizer, `eval_results.json`, a per-label report and a model card to `output_dir`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affectlab.configs import ClassificationScriptArguments  # noqa: E402


def main(script_args, training_args, model_args):
    import json
    import logging
    import os
    import shutil

    import numpy as np
    import torch
    import transformers
    from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              EarlyStoppingCallback, set_seed)

    from affectlab.callbacks import GradientHealthCallback
    from affectlab.cards import eval_results_for, render_model_card
    from affectlab.hub import claim_push
    from affectlab.data import (is_multi_label, label_names_of, load_named_dataset, mix_train_splits,
                                tokenize_for_classification)
    from affectlab.io import atomic_write_json, atomic_write_text
    from affectlab.losses import ClassificationLoss, LossConfig, positive_weights
    from affectlab.metrics import metric_module
    from affectlab.paths import resolve_model_name
    from affectlab.trainer import ClassificationTrainer, sigmoid, softmax

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logger = logging.getLogger("train_classifier")
    transformers.utils.logging.set_verbosity_warning()
    set_seed(training_args.seed)
    push_wanted = claim_push(training_args)
    report_fn = metric_module("multilabel_f1").multilabel_report

    # ---- data (validated before anything is written) -------------------------------------------
    raw = load_named_dataset(script_args.dataset_name, script_args.dataset_config, script_args.dataset_data_dir)
    label_names = label_names_of(raw["train"], script_args.label_column)
    multi_label = is_multi_label(raw["train"], script_args.label_column)
    num_labels = len(label_names)
    train = raw["train"]
    if script_args.mixture:
        parts = {}
        for name in script_args.mixture:
            part = train if name == script_args.dataset_name else load_named_dataset(name)["train"]
            if label_names_of(part, script_args.label_column) != label_names:
                raise ValueError(f"mixture component {name!r} has other label names than {script_args.dataset_name!r}")
            parts[name] = part.select_columns([c for c in train.column_names])
        total = script_args.max_train_samples or len(train)
        train = mix_train_splits(parts, script_args.mixture, total, training_args.seed)
        logger.info("training mixture: %s", {k: int(v) for k, v in zip(*np.unique(train["source"], return_counts=True))})
        train = train.remove_columns("source")
    elif script_args.max_train_samples:
        train = train.shuffle(seed=training_args.seed).select(range(min(script_args.max_train_samples, len(train))))
    eval_splits = {s: raw[s] for s in ("validation", "test") if s in raw}
    if "validation" not in eval_splits:
        raise ValueError(f"dataset {script_args.dataset_name!r} has no validation split (needed for early stopping and thresholds)")
    if script_args.max_eval_samples:
        eval_splits = {s: d.select(range(min(script_args.max_eval_samples, len(d)))) for s, d in eval_splits.items()}

    # ---- model ----------------------------------------------------------------------------------
    model_name = resolve_model_name(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(model_name, revision=model_args.model_revision,
                                              trust_remote_code=model_args.trust_remote_code)
    config = AutoConfig.from_pretrained(
        model_name, revision=model_args.model_revision, trust_remote_code=model_args.trust_remote_code,
        num_labels=num_labels, id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
    )
    model = AutoModelForSequenceClassification.from_pretrained(
        model_name, config=config, revision=model_args.model_revision, trust_remote_code=model_args.trust_remote_code,
        attn_implementation=model_args.attn_implementation,
    )
    if model_args.use_peft:
        from peft import get_peft_model
        from trl import get_peft_config

        if model_args.lora_task_type == "CAUSAL_LM":
            model_args.lora_task_type = "SEQ_CLS"
        model = get_peft_model(model, get_peft_config(model_args))
        model.print_trainable_parameters()

    tok = dict(tokenizer=tokenizer, text_column=script_args.text_column, label_column=script_args.label_column,
               num_labels=num_labels, multi_label=multi_label, max_length=script_args.max_length,
               text_pair_column=script_args.text_pair_column)
    with training_args.main_process_first(desc="tokenizing"):
        train_tok = tokenize_for_classification(train, desc="Tokenizing train", **tok)
        eval_tok = {s: tokenize_for_classification(d, desc=f"Tokenizing {s}", **tok) for s, d in eval_splits.items()}

    loss_name = script_args.loss if multi_label else "ce"
    pos_weight = None
    if multi_label and script_args.label_pos_weight:
        pos_weight = positive_weights(np.asarray(train_tok["labels"]), script_args.pos_weight_max)
    loss_fn = ClassificationLoss(LossConfig(loss_name, script_args.asl_gamma_neg, script_args.asl_gamma_pos,
                                            script_args.asl_clip, script_args.bce_weight), pos_weight)

    def probabilities(logits):
        logits = logits[0] if isinstance(logits, tuple) else logits
        return sigmoid(logits) if multi_label else softmax(logits)

    def references(label_ids):
        return label_ids.astype(int) if multi_label else np.eye(num_labels, dtype=int)[label_ids.astype(int)]

    def compute_metrics(eval_pred):
        probs, refs = probabilities(eval_pred.predictions), references(eval_pred.label_ids)
        if not multi_label:
            pred = np.eye(num_labels, dtype=int)[probs.argmax(-1)]
            rep = report_fn(pred.astype(float), refs, threshold=0.5)
            return {"accuracy": float((probs.argmax(-1) == refs.argmax(-1)).mean()), "macro_f1": rep["macro_f1"],
                    "micro_f1": rep["micro_f1"], "weighted_f1": rep["weighted_f1"]}
        rep = report_fn(probs, refs, threshold=script_args.threshold)
        tuned = report_fn(probs, refs, tune_thresholds=True, threshold=script_args.threshold)
        return {"macro_f1": rep["macro_f1"], "micro_f1": rep["micro_f1"], "macro_f1_tuned": tuned["macro_f1"],
                "micro_f1_tuned": tuned["micro_f1"], "subset_accuracy": rep["subset_accuracy"]}

    callbacks = [GradientHealthCallback()]
    if script_args.early_stopping_patience and training_args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=script_args.early_stopping_patience))

    output_dir = Path(training_args.output_dir)
    state: dict = {}

    def write_card(folder):
        if not state:
            return
        card = render_model_card(script_args.card_template, **state["card"])
        card.save(str(Path(folder) / "README.md"))

    trainer = ClassificationTrainer(
        model=model, args=training_args, train_dataset=train_tok, eval_dataset=eval_tok["validation"],
        processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics,
        callbacks=callbacks, loss_fn=loss_fn, card_renderer=write_card,
    )
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)

    # ---- thresholds on validation only, then final evaluation ------------------------------------
    predictions = {s: trainer.predict(d, metric_key_prefix=s) for s, d in eval_tok.items()}
    val_probs = probabilities(predictions["validation"].predictions)
    val_refs = references(predictions["validation"].label_ids)
    if multi_label and script_args.tune_thresholds:
        thresholds = report_fn(val_probs, val_refs, tune_thresholds=True, threshold=script_args.threshold)["thresholds"]
    else:
        thresholds = [script_args.threshold] * num_labels
    results, reports = {}, {}
    for split, pred in predictions.items():
        probs, refs = probabilities(pred.predictions), references(pred.label_ids)
        if multi_label:
            rep = report_fn(probs, refs, thresholds=thresholds, label_names=label_names)
        else:
            rep = report_fn(np.eye(num_labels)[probs.argmax(-1)], refs, threshold=0.5, label_names=label_names)
            rep["accuracy"] = float((probs.argmax(-1) == refs.argmax(-1)).mean())
        reports[split] = rep
        results[split] = {k: v for k, v in rep.items() if k not in ("per_label", "thresholds")}
        results[split]["num_examples"] = int(len(refs))
        if multi_label:
            results[split]["macro_f1_at_global_threshold"] = report_fn(probs, refs, threshold=script_args.threshold)["macro_f1"]

    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    base_config = unwrapped.get_base_model().config if model_args.use_peft else unwrapped.config
    if multi_label:
        base_config.label_thresholds = {name: float(t) for name, t in zip(label_names, thresholds)}
        base_config.default_threshold = float(script_args.threshold)

    citations = []
    for name in [script_args.dataset_name, *(script_args.mixture or {})]:
        try:
            from dataset_builders import get_spec
            mod = __import__(get_spec(name).builder.split(":")[0], fromlist=["CITATION"])
            if getattr(mod, "CITATION", None) and f"```bibtex\n{mod.CITATION}\n```" not in citations:
                citations.append(f"```bibtex\n{mod.CITATION}\n```")
        except KeyError:
            pass
    run_name = output_dir.name
    state["card"] = dict(
        model_name=run_name, base_model=model_args.model_name_or_path, datasets=[script_args.dataset_name],
        eval_results=eval_results_for(results, "text-classification", "Multi-label emotion classification" if multi_label
                                      else "Text classification", script_args.dataset_name, script_args.dataset_name,
                                      script_args.dataset_config),
        pipeline_tag="text-classification", tags=["emotion" if multi_label else "sentiment", "text-classification"],
        problem_desc="multi-label" if multi_label else "single-label",
        base_model_display=model_args.model_name_or_path or "default (all-MiniLM-L6-v2)",
        dataset_desc=f"`{script_args.dataset_name}`", results=results,
        thresholds_note="Thresholds were tuned per label on the validation split, so validation numbers are optimistic; "
                        "test numbers (when present) are not." if multi_label and script_args.tune_thresholds else "",
        per_label=reports["validation"]["per_label"], per_label_split="validation",
        repo_id=training_args.hub_model_id or f"<user>/{run_name}", loss=loss_name, max_length=script_args.max_length,
        learning_rate=training_args.learning_rate, batch_size=training_args.per_device_train_batch_size * training_args.world_size,
        epochs=training_args.num_train_epochs, seed=training_args.seed, train_rows=len(train_tok),
        mixture=script_args.mixture, tuned=multi_label and script_args.tune_thresholds, threshold=script_args.threshold,
        citations="\n\n".join(citations),
    )

    # ---- write outputs: each file lands by rename; eval_results.json is written last -------------
    staging = output_dir / ".final-staging"
    if trainer.is_world_process_zero() and staging.exists():
        shutil.rmtree(staging)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staging))
    if trainer.is_world_process_zero():
        if model_args.use_peft:
            base_config.save_pretrained(str(staging))
        write_card(staging)
        import pandas as pd

        for split, rep in reports.items():
            pd.DataFrame(rep["per_label"]).to_csv(staging / f"per_label_report_{split}.csv", index=False)
        with open(staging / "train_results.json", "w", encoding="utf-8") as fh:
            json.dump({**train_result.metrics, "world_size": training_args.world_size,
                       "train_rows": len(train_tok), "loss": loss_name,
                       "log_history": trainer.state.log_history}, fh, indent=2)
        for item in staging.iterdir():
            os.replace(item, output_dir / item.name)
        staging.rmdir()
        atomic_write_json(output_dir / "eval_results.json", {"results": results, "thresholds": dict(zip(label_names, thresholds)),
                                                            "dataset": script_args.dataset_name, "base_model": model_args.model_name_or_path,
                                                            "seed": training_args.seed})
        if script_args.print_report:
            text = format_report(reports, results, label_names, multi_label)
            atomic_write_text(output_dir / "report.txt", text)
            print(text, flush=True)
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        publish(output_dir, run_name, script_args, training_args, model_args, predictions, reports, label_names,
                eval_splits, probabilities, references, thresholds, multi_label, push_wanted)
    return results


def publish(output_dir, run_name, script_args, training_args, model_args, predictions, reports, label_names,
            eval_splits, probabilities, references, thresholds, multi_label, push_wanted):
    """Push the run (affectlab.hub.push_run) when asked, then append one leaderboard record per split."""
    import numpy as np

    from affectlab.hub import publish_finished_run, result_record, save_result

    pushed = publish_finished_run(output_dir, training_args, push_wanted)
    repo_id = pushed.repo_id if pushed else training_args.hub_model_id or f"local/{run_name}"
    revision = pushed.revision if pushed else None
    if not script_args.save_results:
        return
    for split, pred in predictions.items():
        probs, refs = probabilities(pred.predictions), references(pred.label_ids)
        y_pred = (probs >= np.asarray(thresholds)[None, :]).astype(int) if multi_label else probs.argmax(-1)
        y_true = refs if multi_label else refs.argmax(-1)
        metrics = {k: v for k, v in reports[split].items() if isinstance(v, float)}
        record = result_record(
            model_repo=repo_id, revision=revision, task="emotion-multilabel" if multi_label else "text-classification",
            dataset=script_args.dataset_name, dataset_config=script_args.dataset_config, split=split, metrics=metrics,
            y_true=y_true, y_pred=y_pred, dataset_rows=eval_splits[split]["text"], base_model=model_args.model_name_or_path,
            seed=training_args.seed, config={"script": vars(script_args), "training": training_args.to_dict()},
            primary_metric="macro_f1", label_names=label_names)
        print(f"result record: {save_result(record, script_args.results_location)}")


def format_report(reports: dict, results: dict, label_names: list[str], multi_label: bool) -> str:
    lines = []
    val = reports["validation"]
    lines.append("Per-label results on validation" + (" (thresholds tuned on validation)" if multi_label else ""))
    lines.append(f"{'label':<16} {'prec':>6} {'rec':>6} {'f1':>6} {'supp':>6} {'thr':>5}")
    for row in sorted(val["per_label"], key=lambda r: -r["f1"]):
        lines.append(f"{row['label']:<16} {row['precision']:>6.3f} {row['recall']:>6.3f} {row['f1']:>6.3f} "
                     f"{row['support']:>6d} {row['threshold']:>5.2f}")
    lines.append("")
    for split, m in results.items():
        extra = f" | macro-F1 at global threshold {m['macro_f1_at_global_threshold']:.4f}" if "macro_f1_at_global_threshold" in m else ""
        lines.append(f"{split:<10} macro-F1 {m['macro_f1']:.4f} | micro-F1 {m['micro_f1']:.4f} | "
                     f"weighted-F1 {m['weighted_f1']:.4f} | subset acc {m['subset_accuracy']:.4f}{extra}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from transformers import TrainingArguments
    from trl import TrlParser

    from affectlab.configs import ModelArguments, parse_script_args

    parser = TrlParser((ClassificationScriptArguments, TrainingArguments, ModelArguments))
    main(*parse_script_args(parser))

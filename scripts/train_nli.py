"""DSM-5 criterion matching as binary NLI: (post, criterion description) -> does the post show it?

    python scripts/train_nli.py --config recipes/redsm5_nli_cpu.yaml [--num_folds 5 ...]

Builds `redsm5` config `nli` (splits by post; with `num_folds` > 1, k-fold CV by post), tokenizes the
pairs (the post is truncated, never the criterion), trains with class-weighted cross-entropy (weights
from the train split) through affectlab's `ClassificationTrainer`, early-stops on validation macro-F1,
and reports accuracy, macro-F1 and per-criterion F1 (mean +- sd over folds with CV). A plain Gemma /
Gemma2 / Gemma3 checkpoint is wrapped as the bidirectional `gemma_encoder` (custom_models/) unless
`encoder: none`. Outputs: the model (last fold), `eval_results.json`, `per_criterion_f1.csv`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GEMMA_TYPES = ("gemma", "gemma2", "gemma3", "gemma3_text")


@dataclass
class NLIScriptArguments:
    """Data and evaluation options of `scripts/train_nli.py`."""

    dataset_name: str = "redsm5"
    dataset_data_dir: Optional[str] = field(default=None, metadata={"help": "folder with the posts/annotations CSVs (default: $AFFECTLAB_DATA/redsm5_sample)"})
    num_folds: int = field(default=0, metadata={"help": "k-fold CV by post when > 1 (each fold validates on 1/k of the non-test posts)"})
    max_length: int = field(default=256, metadata={"help": "pair length in tokens; the post is truncated"})
    class_weighted: bool = field(default=True, metadata={"help": "cross-entropy weights n/(2*count_c) from the train split"})
    early_stopping_patience: Optional[int] = 3
    encoder: str = field(default="bidirectional", metadata={"help": "'bidirectional': wrap Gemma checkpoints as gemma_encoder; 'none': use the model as is"})
    pooling: str = field(default="mean", metadata={"help": "gemma_encoder pooling: mean | cls | last | max | attention"})
    max_train_samples: Optional[int] = None


class WeightedCE:
    """Cross-entropy with class weights (a callable `loss(logits, labels)` for ClassificationTrainer)."""

    def __new__(cls, weights=None):
        import torch

        class _Loss(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("weight", None if weights is None else torch.as_tensor(weights, dtype=torch.float32),
                                     persistent=False)

            def forward(self, logits, labels):
                w = None if self.weight is None else self.weight.to(logits.device)
                return torch.nn.functional.cross_entropy(logits.float(), labels.long(), weight=w)

        return _Loss()


def prepare_encoder_dir(base: str, out_dir: Path, pooling: str = "mean", revision: str | None = None) -> Path:
    """A folder that loads `base` (a Gemma-family checkpoint) as the bidirectional gemma_encoder.

    Writes the encoder config + code files and links the checkpoint's weights and tokenizer files; no
    weights are copied or converted (multimodal Gemma3 keys are renamed at load time).
    """
    import shutil

    from transformers import AutoConfig

    from custom_models.gemma_encoder import GemmaEncoderConfig

    src = Path(base)
    if not src.is_dir():
        from huggingface_hub import snapshot_download

        src = Path(snapshot_download(base, revision=revision, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    GemmaEncoderConfig(text_config=AutoConfig.from_pretrained(src), pooling=pooling).save_pretrained(out_dir)
    code = REPO / "custom_models" / "gemma_encoder"
    for name in ("configuration_gemma_encoder.py", "modeling_gemma_encoder.py"):
        shutil.copy(code / name, out_dir / name)
    for item in src.iterdir():
        if item.name == "config.json" or item.name.startswith("."):
            continue
        if item.suffix in (".safetensors", ".json", ".model", ".txt") and not (out_dir / item.name).exists():
            (out_dir / item.name).symlink_to(item.resolve())
    return out_dir


def per_criterion_f1(pred, labels, symptoms, names) -> dict[str, float]:
    import numpy as np

    out = {}
    for i, name in enumerate(names):
        sel = symptoms == i
        tp = int(((pred == 1) & (labels == 1) & sel).sum())
        fp = int(((pred == 1) & (labels == 0) & sel).sum())
        fn = int(((pred == 0) & (labels == 1) & sel).sum())
        out[name] = float(2 * tp / (2 * tp + fp + fn)) if (2 * tp + fp + fn) else float("nan")
    return {k: (None if np.isnan(v) else v) for k, v in out.items()}


def binary_metrics(logits, labels) -> dict[str, float]:
    import numpy as np

    pred = logits.argmax(-1)
    f1s = []
    for c in (0, 1):
        tp = int(((pred == c) & (labels == c)).sum())
        denom = 2 * tp + int(((pred == c) & (labels != c)).sum()) + int(((pred != c) & (labels == c)).sum())
        f1s.append(2 * tp / denom if denom else 0.0)
    return {"accuracy": float((pred == labels).mean()), "macro_f1": float(np.mean(f1s)), "f1_present": float(f1s[1])}


def run_fold(script_args, training_args, model_args, fold: int | None, logger):
    import numpy as np
    from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              EarlyStoppingCallback, set_seed)

    from affectlab.data import tokenize_for_classification
    from affectlab.paths import dataset_dir, resolve_model_name
    from affectlab.trainer import ClassificationTrainer
    from dataset_builders.redsm5.redsm5 import NLI_LABELS, SYMPTOMS, ReDSM5, class_weights

    set_seed(training_args.seed)
    data_dir = script_args.dataset_data_dir or dataset_dir("redsm5_sample")
    kwargs = {"num_folds": script_args.num_folds, "fold": fold} if fold is not None else {}
    builder = ReDSM5(config_name="nli", data_dir=str(data_dir), **kwargs)
    builder.download_and_prepare()
    raw = builder.as_dataset()
    train = raw["train"]
    if script_args.max_train_samples:
        train = train.shuffle(seed=training_args.seed).select(range(min(script_args.max_train_samples, len(train))))

    model_name = resolve_model_name(model_args.model_name_or_path)
    trust = model_args.trust_remote_code
    base_type = AutoConfig.from_pretrained(model_name, trust_remote_code=trust).model_type
    if script_args.encoder == "bidirectional" and base_type in GEMMA_TYPES:
        model_name = str(prepare_encoder_dir(model_name, Path(training_args.output_dir) / "encoder_init", script_args.pooling,
                                             model_args.model_revision))
        trust = True
    tokenizer = AutoTokenizer.from_pretrained(model_name, trust_remote_code=trust)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_name, trust_remote_code=trust, num_labels=2, id2label=dict(enumerate(NLI_LABELS)),
        label2id={n: i for i, n in enumerate(NLI_LABELS)}, problem_type="single_label_classification",
        attn_implementation=model_args.attn_implementation, dtype=model_args.dtype if model_args.dtype not in (None, "auto") else None)
    if model_args.use_peft:
        from affectlab.peft_utils import add_adapter, encoder_lora_config

        model = add_adapter(model, encoder_lora_config(model_args.lora_r, model_args.lora_alpha, model_args.lora_dropout,
                                                       use_dora=model_args.use_dora),
                            gradient_checkpointing=training_args.gradient_checkpointing)

    tok = dict(tokenizer=tokenizer, text_column="text", text_pair_column="criterion", label_column="labels",
               num_labels=2, multi_label=False, max_length=script_args.max_length)
    train_tok = tokenize_for_classification(train, desc="Tokenizing train", **tok)
    eval_tok = {s: tokenize_for_classification(raw[s], desc=f"Tokenizing {s}", **tok) for s in raw if s != "train"}
    weights = class_weights(train) if script_args.class_weighted else None
    logger.info("fold %s: %d train pairs (%.1f%% present), class weights %s", fold, len(train),
                100 * float(np.mean(train["labels"])), weights)

    def compute_metrics(p):
        logits = p.predictions[0] if isinstance(p.predictions, tuple) else p.predictions
        return binary_metrics(logits, p.label_ids)

    callbacks = []
    if script_args.early_stopping_patience and training_args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=script_args.early_stopping_patience))
    trainer = ClassificationTrainer(model=model, args=training_args, train_dataset=train_tok,
                                    eval_dataset=eval_tok["validation"], processing_class=tokenizer,
                                    data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics,
                                    callbacks=callbacks, loss_fn=WeightedCE(weights))
    trainer.train()
    results = {}
    for split, ds in eval_tok.items():
        pred = trainer.predict(ds, metric_key_prefix=split)
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        metrics = binary_metrics(logits, pred.label_ids)
        metrics["per_criterion_f1"] = per_criterion_f1(logits.argmax(-1), pred.label_ids, np.asarray(raw[split]["symptom"]), SYMPTOMS)
        metrics["num_examples"] = int(len(ds))
        results[split] = metrics
    return trainer, results, weights


def summarise(fold_results: list[dict]) -> dict:
    """mean and sd (ddof=1 when > 1 fold) of every validation metric over folds."""
    import numpy as np

    out = {}
    for key in ("accuracy", "macro_f1", "f1_present"):
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


def main(script_args, training_args, model_args):
    import logging

    import pandas as pd

    from affectlab.hub import claim_push, publish_finished_run
    from affectlab.io import atomic_write_json

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logger = logging.getLogger("train_nli")
    push_wanted = claim_push(training_args)
    folds = list(range(script_args.num_folds)) if script_args.num_folds > 1 else [None]
    fold_results, trainer, weights = [], None, None
    for fold in folds:
        trainer, results, weights = run_fold(script_args, training_args, model_args, fold, logger)
        fold_results.append(results)
    out = Path(training_args.output_dir)
    trainer.save_model(str(out))
    summary = summarise(fold_results)
    rows = [{"criterion": k, **v} for k, v in summary["per_criterion_f1"].items()]
    pd.DataFrame(rows).to_csv(out / "per_criterion_f1.csv", index=False)
    payload = {"folds": fold_results, "summary": summary, "num_folds": len(folds),
               "class_weights": None if weights is None else [float(w) for w in weights],
               "base_model": model_args.model_name_or_path, "seed": training_args.seed}
    atomic_write_json(out / "eval_results.json", payload)
    lines = [f"{'criterion':<18} {'F1 mean':>8} {'sd':>6}"]
    lines += [f"{r['criterion']:<18} {r['mean'] if r['mean'] is not None else float('nan'):>8.3f} {r['sd']:>6.3f}" for r in rows]
    lines.append(f"validation macro-F1 {summary['macro_f1']['mean']:.4f} +- {summary['macro_f1']['sd']:.4f} over {len(folds)} fold(s)")
    print("\n".join(lines), flush=True)
    if trainer.is_world_process_zero():
        publish_finished_run(out, training_args, push_wanted)
    return payload


if __name__ == "__main__":
    from transformers import TrainingArguments
    from trl import TrlParser

    from affectlab.configs import ModelArguments

    parser = TrlParser((NLIScriptArguments, TrainingArguments, ModelArguments))
    main(*parser.parse_args_and_config())

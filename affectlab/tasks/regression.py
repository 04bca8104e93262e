"""The persona regression family: an encoder + `custom_models/regression_head` (one output per emotion
dimension), trained with `transformers.Trainer` in one of the encoder persona modes and split protocols
of `affectlab.personas` (`affectlab train regression`, `scripts/train_regression.py`).

Data: a registered persona dataset (`emobank`, through `dataset_builders.build_dataset`), the SYNTHETIC
medical preset (`synthetic_medical`) or a JSON Lines file of contract records (`affectlab.personas.data`).
Persona modes: `non_personalized`, `persona_token` (one special token per persona, embeddings resized,
tokenizer saved with them), `personalized_desc` (the text and the persona description as a pair; only
the text is ever truncated, see `affectlab.personas.views.tokenize_view`). Splits: `predefined`,
`random` (grouped by text), `lolo`, `lopo` (`--held_out`).

`--use_peft true` trains a LoRA/DoRA adapter on the encoder's attention projections plus the regression
head in full (and the input embeddings in `persona_token` mode, where the new persona tokens must learn);
the output folder then holds the merged model (loads like a full fine-tune) and the adapter in `adapter/`.
Quantized weights are refused: the head model copies the encoder's weights into a fresh module.
A Gemma / Gemma2 / Gemma3 checkpoint (e.g. `gemma-3-270m`) becomes the bidirectional encoder of
`custom_models.gemma_encoder` under the head (`--encoder bidirectional`, the default; `none` loads it as
`AutoModel` does, causal); a saved model then needs `custom_models.gemma_encoder` importable to reload.

Trained and evaluated by `affectlab.trainer.ClassificationTrainer` with the head's own loss (`RegressionLoss`):
evaluation runs in length-sorted batches and comes back in dataset order (Trainer's `group_by_length` evaluation
sampler returned predictions shuffled, mispairing them with the rows of `predictions_<split>.jsonl` and the
per-persona / per-language breakdowns), and the loss is a plain batch mean under DDP.

Outputs beside the model: `personas.json`, `label_set.json`, `predictions_<split>.jsonl` (ids, persona,
language, labels and predictions; no text), `reliability_<split>.png`, `report.md`; eval_results.json
carries the family entries `persona_mode`, `split_strategy`, `held_out`, `split_sizes`, `label_set` and
`reports` (the full regression report per split, with per-persona / per-language breakdowns).
Primary metric: validation macro Pearson r.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from affectlab.errors import ArgumentError
from affectlab.personas.data import PersonaDataArguments
from affectlab.personas.views import ENCODER_MODES
from affectlab.tasks.base import FitResult, SplitEvaluation, Task, TaskData

POOLINGS = ("mean", "cls", "max")
ENCODERS = ("bidirectional", "none")
REGRESSION_LOSSES = ("mse", "huber")
MACRO_KEYS = ("macro_pearson", "macro_spearman", "macro_r2", "macro_mae", "macro_rmse", "macro_ece")


@dataclass
class RegressionArguments(PersonaDataArguments):
    """Persona mode, head and evaluation options of the regression family (`affectlab train regression`)."""

    persona_mode: str = field(default="non_personalized", metadata={"help": f"one of {ENCODER_MODES}"})
    encoder: str = field(default="bidirectional", metadata={"help": "'bidirectional': load Gemma checkpoints as the "
                                                                    "bidirectional gemma_encoder; 'none': as AutoModel does"})
    pooling: str = field(default="mean", metadata={"help": f"one of {POOLINGS}"})
    output_scaling: bool = field(default=True, metadata={"help": "squash outputs into the label range (sigmoid)"})
    loss: str = field(default="mse", metadata={"help": f"one of {REGRESSION_LOSSES}"})
    huber_delta: float = 1.0
    head_dropout: float = 0.1
    n_bins: int = field(default=10, metadata={"help": "calibration bins of the regression report"})
    validation_note: Optional[str] = field(default=None, metadata={
        "help": "appended to the validation split's note in the card and eval_results.json (e.g. that the "
                "hyper-parameters were tuned on it)"})

    default_max_length = 128

    def __post_init__(self):
        if self.persona_mode not in ENCODER_MODES:
            hint = (" (personalized_instruction is for LLMs: affectlab train sft / scripts/sft_emotions.py)"
                    if self.persona_mode == "personalized_instruction" else "")
            raise ArgumentError("persona_mode", f"must be one of {ENCODER_MODES}, got {self.persona_mode!r}{hint}")
        super().__post_init__()
        if self.pooling not in POOLINGS:
            raise ArgumentError("pooling", f"must be one of {POOLINGS}, got {self.pooling!r}")
        if self.loss not in REGRESSION_LOSSES:
            raise ArgumentError("loss", f"must be one of {REGRESSION_LOSSES}, got {self.loss!r}")
        if self.encoder not in ENCODERS:
            raise ArgumentError("encoder", f"must be one of {ENCODERS}, got {self.encoder!r}")


# The script's arguments before the task registry.
RegressionScriptArguments = RegressionArguments


def finite_or_none(value):
    """A metric value for eval_results.json: NaN / inf (e.g. Pearson r of a constant column) -> None."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def persona_dataset_info(args, splits, raw_splits):
    """`DatasetInfo` of a persona dataset: the registry's metadata plus the split protocol's notes."""
    from affectlab.personas.data import SYNTHETIC_MEDICAL, split_notes
    from affectlab.tasks.base import DatasetInfo
    from affectlab.tasks.classification import dataset_info
    from dataset_builders import REGISTRY

    if args.dataset_name in REGISTRY:
        info = dataset_info(args.dataset_name, args.dataset_config)
    else:
        info = DatasetInfo(name=args.dataset_name if args.dataset_name == SYNTHETIC_MEDICAL else Path(args.dataset_name).name,
                           config=args.dataset_config, languages=sorted({x for d in splits.values() for x in set(d["lang"])}))
        info.synthetic = args.dataset_name == SYNTHETIC_MEDICAL
    if args.split_strategy == "predefined" and "test" not in raw_splits \
            and not any(s.split(" ")[0] == "test" for s in info.absent_splits):   # the builder may describe it already
        info.absent_splits = sorted(set(info.absent_splits) | {"test"})
    info.split_notes = {**split_notes(args, splits), **{k: v for k, v in info.split_notes.items()
                                                         if args.split_strategy == "predefined" and k in splits}}
    note = getattr(args, "validation_note", None)
    if note and "validation" in info.split_notes:
        info.split_notes["validation"] = f"{info.split_notes['validation']}; {note}"
    return info


def load_persona_data(task) -> TaskData:
    """Records -> kept personas -> split protocol -> sample limits; shared by the regression and SFT families."""
    from affectlab.personas.data import load_records, prepare_splits, used_personas

    args, seed = task.args, task.training_args.seed
    raw, label_set, registry = load_records(args, seed)
    splits = prepare_splits(raw, args, seed, registry)
    personas = used_personas(splits, registry)
    train = task.limit_train(splits["train"])
    evals = {s: task.limit_eval(splits[s], shuffle=True) for s in ("validation", "test") if s in splits}
    info = persona_dataset_info(args, splits, raw)
    sizes = {"train": len(train), **{s: len(d) for s, d in evals.items()}}
    return TaskData(train=train, eval=evals, info=info,
                    extra={"label_set": label_set, "personas": personas, "registry": registry, "split_sizes": sizes})


def gemma_regression_model(model_name, base_config, dims, model_args, **head_kwargs):
    """`RegressionHeadModel` over the bidirectional Gemma encoder (`custom_models.gemma_encoder`) of a Gemma checkpoint,
    its head initialised to zero."""
    import torch

    from affectlab.models import model_init_kwargs
    from affectlab.tasks.nli import gemma_encoder_classes
    from custom_models.gemma_encoder import GemmaEncoderModel
    from custom_models.regression_head import RegressionHeadConfig, RegressionHeadModel

    config_cls, _ = gemma_encoder_classes()     # also registers gemma_encoder with AutoConfig / AutoModel
    kwargs = model_init_kwargs(model_args)
    kwargs.pop("trust_remote_code", None)
    encoder = GemmaEncoderModel.from_pretrained(model_name, config=config_cls(text_config=base_config,
                                                                              pooling=head_kwargs["pooling"]), **kwargs)
    enc_dict = encoder.config.to_dict()
    for key in ("architectures", "_name_or_path", "transformers_version", "dtype", "torch_dtype"):
        enc_dict.pop(key, None)
    model = RegressionHeadModel(RegressionHeadConfig(encoder_config=enc_dict, label_names=list(dims), **head_kwargs))
    model.encoder.load_state_dict(encoder.state_dict())
    # Gemma's pooled states have norms of ~80 (MiniLM's: a few): a std-0.02 head starts at |z| ~ 4-7, where the
    # output sigmoid saturates at the range's ends. A zero head starts every output at the middle of the range.
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    return model.to(encoder.dtype)


def regression_loss(args):
    """The head's loss (MSE, or Huber with `huber_delta`) as a module for `ClassificationTrainer`."""
    import torch

    class RegressionLoss(torch.nn.Module):
        def forward(self, pred, labels):
            labels = labels.to(pred.dtype)
            if args.loss == "huber":
                return torch.nn.functional.huber_loss(pred, labels, delta=args.huber_delta)
            return torch.nn.functional.mse_loss(pred, labels)

    return RegressionLoss()


def parameter_counts(model) -> dict[str, int]:
    """Trainable and total parameters (train_results.json: what `--use_peft` really trained)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable_parameters": int(trainable), "total_parameters": int(sum(p.numel() for p in model.parameters()))}


def input_embedding_module(model) -> str:
    """The short name of `model`'s input-embedding module (e.g. `word_embeddings`, `embed_tokens`)."""
    emb = model.get_input_embeddings()
    for name, module in model.named_modules():
        if module is emb:
            return name.rsplit(".", 1)[-1]
    raise ArgumentError("persona_mode", f"cannot find the input embeddings of {type(model).__name__}")


def persona_modules_to_save(task, model) -> list[str]:
    """The head, and in `persona_token` mode the input embeddings too (the new persona tokens must learn)."""
    modules = list(task.head_modules)
    if task.args.persona_mode == "persona_token" and task.model_args.use_peft:
        modules.append(input_embedding_module(model))
    return modules


class RegressionTask(Task):
    name = "regression"
    arguments_class = RegressionArguments
    card_template = "regression.md"
    primary_metric = "macro_pearson"
    card_metrics = ("macro_pearson", "macro_spearman", "macro_r2", "macro_mae")
    task_type = "text-classification"          # the Hub has no text-regression task type
    task_display = "Emotion regression"
    record_task = "emotion-regression"
    pipeline_tag = "text-classification"
    tags = ("emotion", "regression", "persona")
    peft_task_type = "SEQ_CLS"
    head_modules = ("head",)                   # custom_models/regression_head: the linear head
    supports_quantization = False
    description = "persona-conditioned emotion regression (encoder + regression head; persona modes, LOLO/LOPO)"

    # ---- data -------------------------------------------------------------------------------------
    def load_data(self) -> TaskData:
        return load_persona_data(self)

    # ---- model ------------------------------------------------------------------------------------
    def build_model(self, data: TaskData):
        from transformers import AutoConfig, AutoTokenizer

        from affectlab.models import model_init_kwargs, resolve_model_name
        from affectlab.personas.views import add_persona_tokens
        from affectlab.tasks.nli import GEMMA_TYPES
        from custom_models.regression_head import RegressionHeadModel

        args, model_args, label_set = self.args, self.model_args, data.extra["label_set"]
        model_name = resolve_model_name(model_args.model_name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(model_name, revision=model_args.model_revision,
                                                  trust_remote_code=model_args.trust_remote_code)
        head = dict(pooling=args.pooling, output_scaling=args.output_scaling, label_min=label_set.low,
                    label_max=label_set.high, loss=args.loss, huber_delta=args.huber_delta, head_dropout=args.head_dropout)
        base_type = AutoConfig.from_pretrained(model_name, revision=model_args.model_revision,
                                               trust_remote_code=model_args.trust_remote_code).model_type
        self.gemma_encoder = args.encoder == "bidirectional" and base_type in GEMMA_TYPES
        if self.gemma_encoder:
            base_config = AutoConfig.from_pretrained(model_name, revision=model_args.model_revision)
            model = gemma_regression_model(model_name, base_config, label_set.dimensions, model_args, **head)
        else:
            model = RegressionHeadModel.from_encoder(model_name, list(label_set.dimensions), **model_init_kwargs(model_args),
                                                     **head)
        if args.persona_mode == "persona_token":
            add_persona_tokens(tokenizer, data.extra["personas"], model)
            if self.gemma_encoder:   # the Gemma encoder keeps its vocabulary size in text_config
                enc = dict(model.config.encoder_config)
                enc["text_config"] = {**enc["text_config"], "vocab_size": enc.pop("vocab_size")}
                model.config.encoder_config = enc
        model.config.persona_mode = args.persona_mode
        model.config.label_set = label_set.to_dict()
        return model, tokenizer

    def peft_modules_to_save(self, model) -> list[str]:
        return persona_modules_to_save(self, model)

    def build_trainer(self, model, tokenizer, data: TaskData):
        from transformers import DataCollatorWithPadding

        from affectlab.trainer import ClassificationTrainer

        from affectlab.callbacks import GradientHealthCallback
        from affectlab.personas.views import persona_view, tokenize_view

        args, label_set, personas = self.args, data.extra["label_set"], data.extra["personas"]
        splits = {"train": data.train, **data.eval}
        with self.training_args.main_process_first(desc="tokenizing"):
            views = {s: persona_view(d, args.persona_mode, personas, label_set) for s, d in splits.items()}
            self.tok = {s: tokenize_view(v, tokenizer, args.persona_mode, args.max_length, desc=f"Tokenizing {s}")
                        for s, v in views.items()}
        if self.training_args.label_names is None:
            self.training_args.label_names = ["labels"]     # also under a PeftModel, whose forward hides them
        self.data = data
        return ClassificationTrainer(model=model, args=self.training_args, train_dataset=self.tok["train"],
                                     eval_dataset=self.tok.get("validation"), processing_class=tokenizer,
                                     data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=self.compute_metrics,
                                     callbacks=[GradientHealthCallback(), *self.early_stopping_callbacks()],
                                     loss_fn=regression_loss(self.args))

    def fit(self, data: TaskData) -> FitResult:
        fit = super().fit(data)
        fit.train_metrics.update(parameter_counts(fit.trainer.model))
        return fit

    # ---- metrics ----------------------------------------------------------------------------------
    @property
    def report_fn(self):
        from affectlab.metrics import metric_module

        return metric_module("regression_report").regression_report

    def compute_metrics(self, eval_pred):
        label_set = self.data.extra["label_set"]
        preds = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        rep = self.report_fn(preds, eval_pred.label_ids, label_names=list(label_set.dimensions),
                             value_range=(label_set.low, label_set.high), n_bins=self.args.n_bins)
        out = {k: rep[k] for k in MACRO_KEYS}
        out.update({f"pearson_{row['label']}": row["pearson"] for row in rep["per_dimension"]})
        return out

    def evaluate(self, fit: FitResult, data: TaskData) -> dict[str, SplitEvaluation]:
        from affectlab.results import fingerprint_rows

        label_set, trainer = data.extra["label_set"], fit.trainer
        dims = list(label_set.dimensions)
        self.reports, self.predictions, out = {}, {}, {}
        for split in [s for s in ("validation", "test") if s in self.tok]:
            pred = trainer.predict(self.tok[split], metric_key_prefix=split)
            values = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
            rows = data.eval[split]
            rep = self.report_fn(values, pred.label_ids, label_names=dims, personas=rows["persona_id"], langs=rows["lang"],
                                 value_range=(label_set.low, label_set.high), n_bins=self.args.n_bins)
            self.reports[split], self.predictions[split] = rep, values
            metrics = {k: v for k, v in rep.items() if k.startswith("macro_")}
            metrics.update({f"{m}_{row['label']}": row[m] for row in rep["per_dimension"] for m in ("pearson", "r2", "mae")})
            out[split] = SplitEvaluation(
                metrics={k: finite_or_none(float(v)) for k, v in metrics.items()}, num_examples=int(rep["num_examples"]),
                fingerprint=fingerprint_rows({"id": i, "persona_id": p, "text": t}
                                             for i, p, t in zip(rows["id"], rows["persona_id"], rows["text"])),
                y_true=np.asarray(pred.label_ids, dtype=float), y_pred=np.asarray(values, dtype=float), label_names=dims,
                details={"per_dimension": rep["per_dimension"]})
        return out

    # ---- outputs ----------------------------------------------------------------------------------
    def save_model(self, fit: FitResult, folder) -> None:
        """Full fine-tune: the model. With `--use_peft`: the merged model (loads like a full fine-tune) and
        the adapter + head in `adapter/`."""
        if not self.model_args.use_peft:
            return super().save_model(fit, folder)
        import copy

        trainer = fit.trainer
        folder = Path(folder)
        trainer.save_model(str(folder / "adapter"))
        if trainer.is_world_process_zero():
            merged = copy.deepcopy(trainer.accelerator.unwrap_model(trainer.model)).merge_and_unload()
            merged.save_pretrained(str(folder))
            trainer.processing_class.save_pretrained(str(folder))

    def save_artifacts(self, folder, fit, data, evaluations) -> None:
        from affectlab.io import atomic_write_json
        from affectlab.metrics import metric_module

        label_set, dims = data.extra["label_set"], list(data.extra["label_set"].dimensions)
        data.extra["personas"].save(folder / "personas.json")
        atomic_write_json(folder / "label_set.json", label_set.to_dict())
        plot = metric_module("regression_report").reliability_plot
        for split, rep in self.reports.items():
            plot(rep["calibration"], folder / f"reliability_{split}.png", (label_set.low, label_set.high),
                 title=f"Reliability ({split})")
            lines = [json.dumps({"id": row["id"], "persona_id": row["persona_id"], "lang": row["lang"],
                                 "labels": row["labels"], "predicted": {d: float(v) for d, v in zip(dims, values)}},
                                ensure_ascii=False)
                     for row, values in zip(data.eval[split], self.predictions[split])]
            (folder / f"predictions_{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (folder / "report.md").write_text(self.report(evaluations), encoding="utf-8")

    def extra_results(self, fit, data, evaluations) -> dict:
        args = self.args
        return {"persona_mode": args.persona_mode, "split_strategy": args.split_strategy, "held_out": args.held_out,
                "split_sizes": data.extra["split_sizes"], "label_set": data.extra["label_set"].to_dict(),
                "personas": data.extra["personas"].ids,
                "reports": {s: {k: v for k, v in r.items() if k != "calibration"} for s, r in self.reports.items()}}

    def card_context(self, fit, data, evaluations) -> dict:
        from affectlab.personas.views import persona_description, persona_token

        args, personas = self.args, data.extra["personas"]
        example = next(iter(personas))
        return dict(dims=list(data.extra["label_set"].dimensions), label_set=data.extra["label_set"].to_dict(),
                    reports=self.reports, persona_mode=args.persona_mode, split_strategy=args.split_strategy,
                    held_out=args.held_out, loss=args.loss, pooling=args.pooling, max_length=args.max_length,
                    synthetic=data.info.synthetic, persona_ids=personas.ids, example_persona=example.id,
                    example_token_literal=repr(persona_token(example.id) + " "),   # Python literals for the snippet
                    example_description_literal=repr(persona_description(example)),
                    use_peft=bool(self.model_args.use_peft))

    def report(self, evaluations) -> str:
        args = self.args
        lines = [f"# Regression report — persona mode `{args.persona_mode}`, split `{args.split_strategy}`"
                 + (f" (held out: `{args.held_out}`)" if args.held_out else ""), ""]
        for split, rep in self.reports.items():
            lines += [f"## {split} ({rep['num_examples']} rows)", "",
                      "| dimension | Pearson r | Spearman ρ | R² | MAE | RMSE | ECE |", "|---|---|---|---|---|---|---|"]
            for row in rep["per_dimension"]:
                lines.append(f"| {row['label']} | {row['pearson']:.4f} | {row['spearman']:.4f} | {row['r2']:.4f} | "
                             f"{row['mae']:.4f} | {row['rmse']:.4f} | {row['ece']:.4f} |")
            lines.append(f"| **macro** | {rep['macro_pearson']:.4f} | {rep['macro_spearman']:.4f} | {rep['macro_r2']:.4f} | "
                         f"{rep['macro_mae']:.4f} | {rep['macro_rmse']:.4f} | {rep['macro_ece']:.4f} |")
            for key, title in (("by_persona", "persona"), ("by_lang", "language")):
                groups = rep.get(key) or {}
                if len(groups) > 1:
                    lines += ["", f"By {title}: " + "; ".join(
                        f"`{g}` (n={v['n']}) r={v['macro_pearson']:.3f} MAE={v['macro_mae']:.3f}" for g, v in groups.items())]
            lines += ["", f"![reliability](reliability_{split}.png)", ""]
        return "\n".join(lines) + "\n"

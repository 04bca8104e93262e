"""The LLM SFT family: persona-conditioned emotion intensities answered as JSON by a causal LM, fine-tuned
with TRL's `SFTTrainer` (`affectlab train sft`, `scripts/sft_emotions.py`).

Every record becomes a chat (`affectlab.personas.chat_messages`): a system turn set by the persona mode, a
user turn with the text and the task, and an assistant turn that is a JSON object with every dimension.
The loss is computed on the assistant turn only (`assistant_only_loss`; the chat template needs
`{% generation %}` markers, which TRL patches into the common templates). Templates without a system
role (Gemma) get the system turn folded into the user turn.

The model goes the one road of `affectlab.models` (`model_init_kwargs`; `--use_peft` wraps it with the
LoRA/DoRA adapter of `Task.wrap_peft` before the trainer sees it; `--load_in_4bit` / `--load_in_8bit` need
CUDA and `--use_peft`, i.e. QLoRA). In `persona_token` mode the persona tokens are added to the
tokenizer, the embeddings resized, and the input embeddings trained next to the adapter.

Generation evaluation runs the same prompts (`max_eval_samples` rows of `eval_split`) before training
(`baseline`, unless `--skip_baseline`) and after (`finetuned`): greedy answers are parsed robustly
(`affectlab.personas.parse_answer`) and scored: parse rate, schema-valid rate, usable rate, out-of-range
rate, and the regression report (`metrics/regression_report`) on the usable answers.

**Primary metric: `usable_rate`**, the share of prompts whose answer gives a number for every dimension.
It is defined for every model (also one that never answers in JSON), so runs always rank; the regression
metrics (macro Pearson r, MAE, ...) are computed on the usable answers only and must be read together
with it (a model with a 5% usable rate and r = 0.9 has answered almost nothing).

Outputs beside the model / adapter: `generations_{baseline,finetuned}.jsonl` (the answers and their
parses), `personas.json`, `label_set.json`, `comparison.png`, `reliability_finetuned.png`, `report.md`;
eval_results.json carries the family entries `baseline`, `finetuned` (the scores before / after),
`persona_mode`, `eval_split`, `max_new_tokens`. The result record of the evaluated split holds per-example
scores (`parsed`, `schema_valid`, `usable`, `abs_error`), never text.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from affectlab.errors import ArgumentError
from affectlab.personas.data import PersonaDataArguments
from affectlab.personas.views import PERSONA_MODES
from affectlab.tasks.base import FitResult, SplitEvaluation, Task, TaskData
from affectlab.tasks.regression import finite_or_none, load_persona_data, parameter_counts, persona_modules_to_save

logger = logging.getLogger("affectlab.tasks.sft")
N_BINS = 10     # calibration bins of the regression report on usable answers


@dataclass
class SFTArguments(PersonaDataArguments):
    """Persona mode and generation-evaluation options of the SFT family (`affectlab train sft`)."""

    persona_mode: str = field(default="personalized_instruction", metadata={"help": f"one of {PERSONA_MODES}"})
    max_eval_samples: Optional[int] = field(default=200, metadata={"help": "rows of eval_split answered by generation (before and after training)"})
    eval_split: str = field(default="validation", metadata={"help": "split used for the generation evaluation"})
    answer_decimals: int = field(default=2, metadata={"help": "decimals of the values in the training answers"})
    max_new_tokens: Optional[int] = field(default=None, metadata={"help": "default: 1.5 x the longest answer + 8"})
    generation_batch_size: int = 8
    skip_baseline: bool = field(default=False, metadata={"help": "skip the before-training generation pass"})

    default_max_length = 1024      # TRL's SFTConfig default

    def __post_init__(self):
        if self.persona_mode not in PERSONA_MODES:
            raise ArgumentError("persona_mode", f"must be one of {PERSONA_MODES}, got {self.persona_mode!r}")
        super().__post_init__()
        if self.eval_split not in ("validation", "test"):
            raise ArgumentError("eval_split", f"must be 'validation' or 'test', got {self.eval_split!r}")
        if self.generation_batch_size < 1:
            raise ArgumentError("generation_batch_size", f"must be >= 1, got {self.generation_batch_size}")


# The script's arguments before the task registry.
SFTScriptArguments = SFTArguments


def _sft_config_base():
    from trl import SFTConfig

    return SFTConfig


@dataclass
class AffectSFTConfig(_sft_config_base()):
    """TRL's `SFTConfig` without the two fields affectlab's shared arguments own: `max_length` comes from
    `--max_length` (DataArguments) and `trust_remote_code` from ModelArguments; `SFTTask` copies both in.
    (`init=False`: HfArgumentParser does not add them a second time.)

    Two of TRL's defaults are resolved without deprecated names or a GPU: activation checkpointing is on
    unless `--activation_checkpointing` / `--gradient_checkpointing` say otherwise (TRL's default, set
    through the current name so nothing warns), and bf16 mixed precision defaults to off without CUDA
    (bf16 on a CPU is far slower than float32; `--bf16 true` still asks for it)."""

    max_length: Optional[int] = field(init=False, default=1024, metadata={"help": "set from --max_length"})
    trust_remote_code: bool = field(init=False, default=False, metadata={"help": "set from --trust_remote_code"})
    gradient_checkpointing: Optional[bool] = field(default=None, metadata={"help": "deprecated alias of activation_checkpointing"})

    def __post_init__(self):
        import torch

        if self.activation_checkpointing is None and self.gradient_checkpointing is None:
            self.activation_checkpointing = True
        if self.bf16 is None and not self.fp16 and not torch.cuda.is_available():
            self.bf16 = False
        try:
            super().__post_init__()
        except ValueError as err:  # transformers' "Your setup doesn't support bf16/gpu": the user's to fix
            if "bf16" in str(err) or "fp16" in str(err):
                raise ArgumentError("bf16" if self.bf16 else "fp16", f"mixed precision needs a GPU here: {err} "
                                                                      "(use --bf16 false on a CPU)") from None
            raise


# ---------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------

def stop_token_ids(model, tokenizer) -> list[int]:
    """The ids that end an answer: the tokenizer's eos and the generation config's (a chat template's end-of-turn
    token, e.g. Gemma's `<end_of_turn>`, is there: `affectlab.pretrained`)."""
    ids = [tokenizer.eos_token_id]
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids += list(configured) if isinstance(configured, (list, tuple)) else [configured]
    return list(dict.fromkeys(int(i) for i in ids if i is not None))


def generate_answers(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy answers to chat prompts (left padding, batched)."""
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    eos = stop_token_ids(model, tokenizer)
    answers = []
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(model.device) for k, v in enc.items()}
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)
            new = out[:, enc["input_ids"].shape[1]:]
            answers += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return answers


def comparison_plots(baseline: dict | None, finetuned: dict, dims: list[str], folder: Path) -> list[str]:
    """`comparison.png`: answer-format rates and per-dimension Pearson r, baseline vs fine-tuned."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    runs = [("baseline", baseline), ("fine-tuned", finetuned)] if baseline else [("fine-tuned", finetuned)]
    rate_keys = ["parse_rate", "schema_valid_rate", "usable_rate"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    width = 0.8 / len(runs)
    for k, (name, res) in enumerate(runs):
        x = np.arange(len(rate_keys)) + k * width
        axes[0].bar(x, [res["scores"][r] for r in rate_keys], width, label=name)
        vals = [res["scores"].get(f"pearson_{d}", np.nan) for d in dims]
        axes[1].bar(np.arange(len(dims)) + k * width, np.nan_to_num(vals), width, label=name)
    axes[0].set_xticks(np.arange(len(rate_keys)) + width * (len(runs) - 1) / 2, ["parse", "schema-valid", "usable"])
    axes[0].set_ylim(0, 1.05)
    axes[0].set_title("Answer format")
    axes[1].set_xticks(np.arange(len(dims)) + width * (len(runs) - 1) / 2, dims, rotation=45 if len(dims) > 6 else 0, fontsize=8)
    axes[1].set_title("Pearson r on usable answers")
    axes[1].axhline(0, color="grey", lw=0.8)
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(folder) / "comparison.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path.name]


def format_report(baseline, finetuned, args, dims, model_name, train_rows, plots) -> str:
    lines = [f"# SFT emotions: baseline vs fine-tuned — `{model_name}`", "",
             f"Dataset `{args.dataset_name}`{f' ({args.dataset_config})' if args.dataset_config else ''}, persona mode "
             f"`{args.persona_mode}`, split `{args.split_strategy}`, {train_rows} training chats, "
             f"{finetuned['scores']['num_prompts']} evaluation prompts from `{args.eval_split}` (same prompts before and after).", "",
             "| metric | baseline | fine-tuned |", "|---|---|---|"]
    keys = ["parse_rate", "schema_valid_rate", "usable_rate", "out_of_range_rate", "macro_pearson", "macro_spearman",
            "macro_mae", "macro_rmse", "macro_r2", "macro_ece"] + [f"pearson_{d}" for d in dims]

    def fmt(res, key):
        if res is None or key not in res["scores"]:
            return "—"
        value = res["scores"][key]
        return f"{value:.4f}" if value == value else "n/a"

    for key in keys:
        lines.append(f"| {key} | {fmt(baseline, key)} | {fmt(finetuned, key)} |")
    lines += ["", "Regression metrics are computed on usable answers only (every dimension present and numeric; "
              "out-of-range values clipped); read them together with the usable rate. n/a: the correlation is "
              "undefined (the answers, or the labels, are constant on the usable rows: a model answering the same "
              "value for every text); macro_* average the dimensions where it is defined.", ""]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _jsonl(records) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


# ---------------------------------------------------------------------------------------------------
# The family
# ---------------------------------------------------------------------------------------------------

class SFTTask(Task):
    name = "sft"
    arguments_class = SFTArguments
    training_arguments_class = AffectSFTConfig
    card_template = "sft.md"
    primary_metric = "usable_rate"
    card_metrics = ("usable_rate", "parse_rate", "schema_valid_rate", "macro_pearson", "macro_mae")
    task_type = "text-generation"
    task_display = "Emotion intensities as JSON answers"
    record_task = "emotion-regression-llm"
    pipeline_tag = "text-generation"
    tags = ("emotion", "regression", "persona", "sft", "trl")
    peft_task_type = "CAUSAL_LM"
    head_modules = ()
    description = "LLM SFT answering persona-conditioned emotion intensities in JSON (TRL SFTTrainer, LoRA/QLoRA)"

    def __init__(self, script_args, training_args, model_args):
        super().__init__(script_args, training_args, model_args)
        # the shared arguments own these; SFTTrainer reads them from its config
        training_args.max_length = script_args.max_length
        training_args.trust_remote_code = bool(model_args.trust_remote_code)
        training_args.assistant_only_loss = True

    # ---- data -------------------------------------------------------------------------------------
    def load_data(self) -> TaskData:
        data = load_persona_data(self)
        split = self.args.eval_split
        if split not in data.eval:
            raise ArgumentError("eval_split", f"{split!r} is not among the splits {['train', *data.eval]} "
                                              f"of {self.args.dataset_name!r} under split_strategy={self.args.split_strategy}")
        data.eval = {split: data.eval[split]}
        data.extra["split_sizes"] = {"train": len(data.train), split: len(data.eval[split])}
        return data

    # ---- model ------------------------------------------------------------------------------------
    def build_model(self, data: TaskData):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from affectlab.models import model_init_kwargs, resolve_model_name
        from affectlab.personas.views import add_persona_tokens

        model_args = self.model_args
        model_name = resolve_model_name(model_args.model_name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(model_name, revision=model_args.model_revision,
                                                  trust_remote_code=model_args.trust_remote_code)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(model_name, **model_init_kwargs(model_args))
        if self.args.persona_mode == "persona_token":
            add_persona_tokens(tokenizer, data.extra["personas"], model)
        return model, tokenizer

    def peft_modules_to_save(self, model) -> list[str]:
        return persona_modules_to_save(self, model)

    def messages(self, row, personas, label_set, with_answer: bool, system_ok: bool) -> list[dict]:
        from affectlab.personas.views import chat_messages, fold_system

        msgs = chat_messages(row["text"], personas[row["persona_id"]], self.args.persona_mode, label_set,
                             row["labels"] if with_answer else None, self.args.answer_decimals)
        return msgs if system_ok else fold_system(msgs)

    def fit(self, data: TaskData) -> FitResult:
        """Model -> baseline generation -> adapter -> SFTTrainer -> train."""
        import datasets
        from trl import SFTTrainer

        from affectlab.callbacks import GradientHealthCallback
        from affectlab.personas.answers import score_generations
        from affectlab.personas.views import supports_system_role

        args, label_set, personas = self.args, data.extra["label_set"], data.extra["personas"]
        model, tokenizer = self.build_model(data)
        system_ok = supports_system_role(tokenizer)
        self.eval_rows = data.eval[args.eval_split].to_list()
        train_chats = datasets.Dataset.from_list([{"messages": self.messages(r, personas, label_set, True, system_ok)}
                                                  for r in data.train])
        eval_chats = datasets.Dataset.from_list([{"messages": self.messages(r, personas, label_set, True, system_ok)}
                                                 for r in self.eval_rows])
        self.prompts = [self.messages(r, personas, label_set, False, system_ok) for r in self.eval_rows]
        if args.max_new_tokens:
            self.max_new = args.max_new_tokens
        else:
            longest = max(len(tokenizer(m["messages"][-1]["content"], add_special_tokens=False)["input_ids"])
                          for m in eval_chats)
            self.max_new = int(longest * 1.5) + 8

        baseline = baseline_records = None
        if not args.skip_baseline:
            logger.info("baseline generation on %d prompts", len(self.prompts))
            answers = generate_answers(model, tokenizer, self.prompts, self.max_new, args.generation_batch_size)
            baseline, baseline_records = score_generations(answers, self.eval_rows, label_set, N_BINS)
            logger.info("baseline: %s", baseline["scores"])

        model = self.wrap_peft(model)
        trainer = SFTTrainer(model=model, args=self.training_args, train_dataset=train_chats,
                             eval_dataset=eval_chats if self.training_args.eval_strategy != "no" else None,
                             processing_class=tokenizer,
                             callbacks=[GradientHealthCallback(), *self.early_stopping_callbacks()])
        from affectlab.checkpointing import attach

        trainer = attach(trainer)  # atomic checkpoints, exact resumes
        result = trainer.train(resume_from_checkpoint=self.training_args.resume_from_checkpoint)
        metrics = {**result.metrics, **parameter_counts(trainer.model)}
        return FitResult(trainer=trainer, train_metrics=metrics, train_rows=len(train_chats),
                         extra={"baseline": baseline, "baseline_records": baseline_records, "system_ok": system_ok})

    # ---- evaluation -------------------------------------------------------------------------------
    def evaluate(self, fit: FitResult, data: TaskData) -> dict[str, SplitEvaluation]:
        from affectlab.personas.answers import answer_scores, score_generations
        from affectlab.results import fingerprint_rows

        label_set, trainer, split = data.extra["label_set"], fit.trainer, self.args.eval_split
        answers = generate_answers(trainer.model, trainer.processing_class, self.prompts, self.max_new,
                                   self.args.generation_batch_size)
        self.finetuned, self.finetuned_records = score_generations(answers, self.eval_rows, label_set, N_BINS)
        self.baseline, self.train_rows = fit.extra["baseline"], fit.train_rows
        logger.info("fine-tuned: %s", self.finetuned["scores"])
        scores = self.finetuned["scores"]
        metrics = {k: finite_or_none(float(v)) for k, v in scores.items() if k != "num_prompts"}
        report = self.finetuned["report"]
        rows = self.eval_rows
        return {split: SplitEvaluation(
            metrics=metrics,
            num_examples=int(scores["num_prompts"]),
            fingerprint=fingerprint_rows({"id": r["id"], "persona_id": r["persona_id"], "text": r["text"]} for r in rows),
            scores=answer_scores(self.finetuned["parses"], rows, label_set), label_names=list(label_set.dimensions),
            details={"per_dimension": report["per_dimension"]} if report else {})}

    # ---- outputs ----------------------------------------------------------------------------------
    def plots(self) -> list[str]:
        return ["comparison.png"] + (["reliability_finetuned.png"] if self.finetuned["report"] is not None else [])

    def save_artifacts(self, folder, fit, data, evaluations) -> None:
        from affectlab.io import atomic_write_json
        from affectlab.metrics import metric_module

        label_set = data.extra["label_set"]
        folder = Path(folder)
        if fit.extra["baseline_records"] is not None:
            (folder / "generations_baseline.jsonl").write_text(_jsonl(fit.extra["baseline_records"]), encoding="utf-8")
        (folder / "generations_finetuned.jsonl").write_text(_jsonl(self.finetuned_records), encoding="utf-8")
        data.extra["personas"].save(folder / "personas.json")
        atomic_write_json(folder / "label_set.json", label_set.to_dict())
        comparison_plots(fit.extra["baseline"], self.finetuned, list(label_set.dimensions), folder)
        if self.finetuned["report"] is not None:
            metric_module("regression_report").reliability_plot(
                self.finetuned["report"]["calibration"], folder / "reliability_finetuned.png",
                (label_set.low, label_set.high), title="Reliability (fine-tuned, usable answers)")
        (folder / "report.md").write_text(self.report(evaluations), encoding="utf-8")

    def extra_results(self, fit, data, evaluations) -> dict:
        baseline = fit.extra["baseline"]
        return {"baseline": baseline["scores"] if baseline else None, "finetuned": self.finetuned["scores"],
                "persona_mode": self.args.persona_mode, "eval_split": self.args.eval_split,
                "split_strategy": self.args.split_strategy, "held_out": self.args.held_out,
                "split_sizes": data.extra["split_sizes"], "max_new_tokens": self.max_new,
                "label_set": data.extra["label_set"].to_dict(), "personas": data.extra["personas"].ids}

    def card_context(self, fit, data, evaluations) -> dict:
        from affectlab.local_models import LOCAL_MODELS
        from affectlab.personas.views import chat_messages, fold_system

        args, personas, label_set = self.args, data.extra["personas"], data.extra["label_set"]
        example = next(iter(personas))
        messages = chat_messages("The nurse stayed with me the whole night.", example, args.persona_mode, label_set)
        if not fit.extra["system_ok"]:
            messages = fold_system(messages)
        baseline = fit.extra["baseline"]
        return dict(dims=list(label_set.dimensions), label_set=label_set.to_dict(), persona_mode=args.persona_mode,
                    eval_split=args.eval_split, baseline=baseline["scores"] if baseline else None,
                    finetuned=self.finetuned["scores"], max_new_tokens=self.max_new, persona_ids=personas.ids,
                    example_messages_literal=json.dumps(messages, ensure_ascii=False, indent=4), use_peft=bool(self.model_args.use_peft), synthetic=data.info.synthetic,
                    split_strategy=args.split_strategy, held_out=args.held_out,
                    local_random_base=self.model_args.model_name_or_path in LOCAL_MODELS)

    def report(self, evaluations) -> str:
        dims = list(next(iter(evaluations.values())).label_names)
        return format_report(self.baseline, self.finetuned, self.args, dims, self.model_args.model_name_or_path,
                             self.train_rows, self.plots())

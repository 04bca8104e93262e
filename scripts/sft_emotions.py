"""LLM supervised fine-tuning for persona-conditioned emotion intensities with JSON answers (TRL `SFTTrainer`).

    python scripts/sft_emotions.py --config recipes/sft_qwen2_1.5b_emobank.yaml [--persona_mode personalized_desc ...]

Every record becomes a chat (`messages`): a system turn set by the persona mode, a user turn with the
text and the task, and an assistant turn that is a JSON object with every dimension. Training uses
LoRA (peft, `--use_peft`) and optionally 4-/8-bit weights (bitsandbytes, CUDA only) and computes the
loss on the assistant turn only (`assistant_only_loss`; the chat template needs `{% generation %}`
markers — TRL patches the common templates).

Generation evaluation runs the same prompts before (baseline) and after training: greedy answers are
parsed robustly (`parse_answer`: code fences, text around the object, single quotes, trailing commas,
missing keys, out-of-range values) and scored: parse rate, schema-valid rate, usable rate, and the
regression report (`metrics/regression_report`) on usable answers. `output_dir` gets the adapter /
model, `generations_{baseline,finetuned}.jsonl`, `eval_results.json` and `report.md` with plots.

Persona modes for the LLM: `personalized_instruction` (the persona's instruction as system prompt),
`personalized_desc` (the persona's name and description), `persona_token` (a special token per persona,
embeddings resized) and `non_personalized` (a generic system prompt).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affectlab.personas import PERSONA_MODES  # noqa: E402

GENERIC_SYSTEM = "You rate the emotions of texts."


@dataclass
class SFTScriptArguments:
    """Data, persona mode and generation-evaluation options of `scripts/sft_emotions.py`."""

    dataset_name: str = field(default="emobank", metadata={"help": "registered builder, 'synthetic_medical', or a .jsonl of contract records"})
    dataset_config: Optional[str] = None
    dataset_data_dir: Optional[str] = None
    personas_file: Optional[str] = None
    label_set_file: Optional[str] = None
    keep_personas: Optional[str] = field(default=None, metadata={"help": "comma-separated persona ids to keep"})
    persona_mode: str = field(default="personalized_instruction", metadata={"help": f"one of {PERSONA_MODES}"})
    split_strategy: str = field(default="predefined", metadata={"help": "predefined | random | lolo | lopo"})
    held_out: Optional[str] = None
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    synthetic_texts: int = 400
    synthetic_personas_per_text: int = 4
    max_train_samples: Optional[int] = None
    max_eval_samples: Optional[int] = field(default=200, metadata={"help": "rows of the evaluation split used for generation"})
    eval_split: str = field(default="validation", metadata={"help": "split used for the generation evaluation"})
    answer_decimals: int = 2
    max_new_tokens: Optional[int] = field(default=None, metadata={"help": "default: enough for the JSON answer"})
    generation_batch_size: int = 8
    skip_baseline: bool = field(default=False, metadata={"help": "skip the before-training generation pass"})
    print_report: bool = True

    def __post_init__(self):
        if self.persona_mode not in PERSONA_MODES:
            raise ValueError(f"persona_mode must be one of {PERSONA_MODES}, got {self.persona_mode!r}")


# ---------------------------------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------------------------------

def chat_messages(text: str, persona, mode: str, label_set, answer=None, decimals: int = 2) -> list[dict]:
    """System / user (/ assistant JSON) messages of one record under a persona mode."""
    from affectlab.personas import instruction_messages, persona_token

    messages = instruction_messages(text, persona, label_set, answer, decimals)
    if mode == "non_personalized":
        messages[0]["content"] = GENERIC_SYSTEM
    elif mode == "persona_token":
        messages[0]["content"] = f"{GENERIC_SYSTEM} Persona: {persona_token(persona.id)}"
    elif mode == "personalized_desc":
        messages[0]["content"] = f"{GENERIC_SYSTEM} You rate them as: {persona.name}. {persona.description}"
    return messages


def supports_system_role(tokenizer) -> bool:
    try:
        tokenizer.apply_chat_template([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
                                      tokenize=False)
    except Exception:  # Gemma-style templates raise on a system turn
        return False
    return True


def fold_system(messages: list[dict]) -> list[dict]:
    """Merge a system turn into the first user turn (for templates without a system role)."""
    if not messages or messages[0]["role"] != "system":
        return messages
    first, rest = messages[0], [dict(m) for m in messages[1:]]
    rest[0]["content"] = f"{first['content']}\n\n{rest[0]['content']}"
    return rest


# ---------------------------------------------------------------------------------------------------
# Robust JSON parsing of answers
# ---------------------------------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.S)
_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


class _DupDict(dict):
    """A dict that remembers keys seen more than once (JSON allows them; the answer schema does not)."""

    def __init__(self, pairs):
        super().__init__(pairs)
        keys = [k for k, _ in pairs]
        self.duplicates = sorted({k for k in keys if keys.count(k) > 1})


def _candidates(text: str):
    """Texts to try, most specific first: fenced blocks, then the whole text."""
    for m in _FENCE.finditer(text):
        yield m.group(1)
    yield text


def _first_object(text: str):
    """The first `{...}` that decodes to a dict (strict JSON, then light repairs); None if there is none."""
    decoder = json.JSONDecoder(object_pairs_hook=_DupDict)
    starts = [m.start() for m in re.finditer(r"\{", text)]
    for start in starts:
        try:
            obj, _ = decoder.raw_decode(text[start:])
            if isinstance(obj, dict):
                return obj, "json"
        except json.JSONDecodeError:
            pass
    for start in starts:
        end = text.find("}", start)
        chunk = text[start:end + 1] if end >= 0 else text[start:].rstrip().rstrip(",") + "}"
        repaired = re.sub(r",\s*}", "}", chunk.replace("'", '"'))
        repaired = re.sub(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_ ]*)\s*:", r'\1"\2":', repaired)  # unquoted keys
        try:
            obj = json.loads(repaired, object_pairs_hook=_DupDict)
            if isinstance(obj, dict):
                return obj, "repaired"
        except json.JSONDecodeError:
            continue
    return None, None


def parse_answer(text: str, label_set) -> dict:
    """Parse a generated answer into the label set.

    Returns `{"parsed", "schema_valid", "usable", "values", "missing", "extra", "out_of_range",
    "non_numeric", "how"}`: `parsed` when a JSON object was found (possibly after repairs),
    `schema_valid` when it matches `answer_schema(label_set)` exactly (all keys, numbers, in range,
    nothing else, no duplicate keys, no repairs needed), `usable` when every dimension has a number — `values` then holds
    them clipped into the range (keys matched case-insensitively; numeric strings accepted).
    """
    out = {"parsed": False, "schema_valid": False, "usable": False, "values": None, "missing": list(label_set.dimensions),
           "extra": [], "out_of_range": [], "non_numeric": [], "duplicates": [], "how": None}
    obj, how = None, None
    for candidate in _candidates(text or ""):
        obj, how = _first_object(candidate)
        if obj is not None:
            break
    if obj is None:
        return out
    out["parsed"], out["how"] = True, how
    out["duplicates"] = list(getattr(obj, "duplicates", []))
    lookup = {str(k).strip().lower(): v for k, v in obj.items()}
    dims = {d.lower(): d for d in label_set.dimensions}
    out["extra"] = sorted(str(k) for k in obj if str(k).strip().lower() not in dims)
    values, missing, non_numeric, out_of_range = {}, [], [], []
    strict = how == "json"
    for key, dim in dims.items():
        if key not in lookup:
            missing.append(dim)
            continue
        v = lookup[key]
        if isinstance(v, bool) or v is None:
            non_numeric.append(dim)
            continue
        if isinstance(v, str):
            strict = False
            if not _NUMBER.match(v):
                non_numeric.append(dim)
                continue
            v = float(v)
        if not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
            non_numeric.append(dim)
            continue
        if not label_set.low <= v <= label_set.high:
            out_of_range.append(dim)
        values[dim] = min(max(float(v), label_set.low), label_set.high)
    if any(str(k) not in label_set.dimensions for k in obj if str(k).strip().lower() in dims):
        strict = False  # keys only matched case-insensitively / with spaces
    out.update(missing=missing, non_numeric=non_numeric, out_of_range=out_of_range)
    out["usable"] = not missing and not non_numeric
    out["values"] = values if out["usable"] else None
    out["schema_valid"] = out["usable"] and strict and not out_of_range and not out["extra"] and not out["duplicates"]
    return out


# ---------------------------------------------------------------------------------------------------
# Generation evaluation
# ---------------------------------------------------------------------------------------------------

def generate_answers(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy answers to chat prompts (left padding, batched)."""
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    answers = []
    model.eval()
    try:
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(model.device) for k, v in enc.items()}
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            new = out[:, enc["input_ids"].shape[1]:]
            answers += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return answers


def score_generations(answers: list[str], rows, label_set, n_bins: int = 10) -> tuple[dict, list[dict]]:
    """Parse answers and compute rates + the regression report on usable answers."""
    import numpy as np

    from affectlab.metrics import metric_module

    dims = list(label_set.dimensions)
    parsed = [parse_answer(a, label_set) for a in answers]
    n = len(parsed)
    scores = {
        "num_prompts": n,
        "parse_rate": sum(p["parsed"] for p in parsed) / n,
        "schema_valid_rate": sum(p["schema_valid"] for p in parsed) / n,
        "usable_rate": sum(p["usable"] for p in parsed) / n,
        "out_of_range_rate": sum(bool(p["out_of_range"]) for p in parsed) / n,
    }
    usable = [i for i, p in enumerate(parsed) if p["usable"]]
    report = None
    if len(usable) >= 2:
        pred = np.array([[parsed[i]["values"][d] for d in dims] for i in usable])
        gold = np.array([[rows[i]["labels"][d] for d in dims] for i in usable])
        report = metric_module("regression_report").regression_report(
            pred, gold, label_names=dims, personas=[rows[i]["persona_id"] for i in usable],
            langs=[rows[i]["lang"] for i in usable], value_range=(label_set.low, label_set.high), n_bins=n_bins)
        scores.update({k: report[k] for k in ("macro_pearson", "macro_spearman", "macro_r2", "macro_mae", "macro_rmse", "macro_ece")})
        scores.update({f"pearson_{row['label']}": row["pearson"] for row in report["per_dimension"]})
    records = [{"id": rows[i]["id"], "persona_id": rows[i]["persona_id"], "answer": answers[i],
                **{k: parsed[i][k] for k in ("parsed", "schema_valid", "usable", "values", "missing", "out_of_range", "how")},
                "labels": rows[i]["labels"]} for i in range(n)]
    return {"scores": scores, "report": report}, records


def comparison_plots(baseline: dict | None, finetuned: dict, dims: list[str], folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    files = []
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
    path = folder / "comparison.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    files.append(path.name)
    return files


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
        return f"{value:.4f}" if value == value else "nan"

    for key in keys:
        lines.append(f"| {key} | {fmt(baseline, key)} | {fmt(finetuned, key)} |")
    lines += ["", "Regression metrics are computed on usable answers only (every dimension present and numeric; "
              "out-of-range values clipped); read them together with the usable rate.", ""]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------

def main(script_args, training_args, model_args):
    import logging
    import os
    import shutil

    import datasets
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTTrainer, get_peft_config, get_quantization_config

    from affectlab.callbacks import GradientHealthCallback
    from affectlab.hub import claim_push, publish_finished_run
    from affectlab.io import atomic_write_json
    from affectlab.paths import resolve_model_name
    from affectlab.personas import PersonaRegistry, add_persona_tokens
    from scripts.train_regression import load_records, prepare_splits

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logger = logging.getLogger("sft_emotions")
    push_wanted = claim_push(training_args)
    transformers.utils.logging.set_verbosity_warning()
    set_seed(training_args.seed)

    # ---- data -----------------------------------------------------------------------------------
    raw, label_set, registry = load_records(script_args, training_args.seed)
    splits = prepare_splits(raw, script_args, training_args.seed)
    if script_args.eval_split not in splits:
        raise ValueError(f"eval_split {script_args.eval_split!r} not in splits {list(splits)}")
    used = sorted(set().union(*(set(d["persona_id"]) for d in splits.values())))
    personas = PersonaRegistry([p for p in registry if p.id in used], source=registry.source)
    train = splits["train"]
    if script_args.max_train_samples:
        train = train.shuffle(seed=training_args.seed).select(range(min(script_args.max_train_samples, len(train))))
    eval_rows = splits[script_args.eval_split]
    if script_args.max_eval_samples:
        eval_rows = eval_rows.shuffle(seed=training_args.seed).select(range(min(script_args.max_eval_samples, len(eval_rows))))
    eval_rows = eval_rows.to_list()

    # ---- model and tokenizer --------------------------------------------------------------------
    # SFTConfig carries `trust_remote_code` itself (so the CLI uses trl.ModelConfig); accept either place.
    trust = bool(getattr(model_args, "trust_remote_code", False) or getattr(training_args, "trust_remote_code", False))
    model_name = resolve_model_name(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(model_name, revision=model_args.model_revision, trust_remote_code=trust)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    quantization = None
    if model_args.load_in_4bit or model_args.load_in_8bit:
        if not torch.cuda.is_available():
            raise ValueError("4-/8-bit loading (bitsandbytes) needs CUDA; drop --load_in_4bit/--load_in_8bit on CPU")
        quantization = get_quantization_config(model_args)
    dtype = model_args.dtype if model_args.dtype in ("auto", None) else getattr(torch, model_args.dtype)
    if not torch.cuda.is_available():
        dtype = torch.float32  # bf16 matmuls are very slow on most CPUs
    model = AutoModelForCausalLM.from_pretrained(
        model_name, revision=model_args.model_revision, trust_remote_code=trust,
        attn_implementation=model_args.attn_implementation, dtype=dtype, quantization_config=quantization,
        device_map={"": torch.cuda.current_device()} if quantization is not None else None,
    )
    if script_args.persona_mode == "persona_token":
        add_persona_tokens(tokenizer, personas, model)
    system_ok = supports_system_role(tokenizer)

    def to_messages(row, with_answer):
        msgs = chat_messages(row["text"], personas[row["persona_id"]], script_args.persona_mode, label_set,
                             row["labels"] if with_answer else None, script_args.answer_decimals)
        return msgs if system_ok else fold_system(msgs)

    train_chats = datasets.Dataset.from_list([{"messages": to_messages(r, True)} for r in train])
    eval_chats = datasets.Dataset.from_list([{"messages": to_messages(r, True)} for r in eval_rows])
    prompts = [to_messages(r, False) for r in eval_rows]
    if script_args.max_new_tokens:
        max_new = script_args.max_new_tokens
    else:
        longest = max(len(tokenizer(m["messages"][-1]["content"], add_special_tokens=False)["input_ids"]) for m in eval_chats)
        max_new = int(longest * 1.5) + 8

    dims = list(label_set.dimensions)
    output_dir = Path(training_args.output_dir)
    staging = output_dir / ".final-staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)

    baseline = None
    if not script_args.skip_baseline:
        logger.info("baseline generation on %d prompts", len(prompts))
        answers = generate_answers(model, tokenizer, prompts, max_new, script_args.generation_batch_size)
        baseline, records = score_generations(answers, eval_rows, label_set)
        (staging / "generations_baseline.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        logger.info("baseline: %s", baseline["scores"])

    # ---- training -------------------------------------------------------------------------------
    training_args.assistant_only_loss = True
    peft_config = get_peft_config(model_args)
    if peft_config is not None and script_args.persona_mode == "persona_token":
        peft_config.modules_to_save = list(peft_config.modules_to_save or []) + ["embed_tokens"]
    trainer = SFTTrainer(model=model, args=training_args, train_dataset=train_chats,
                         eval_dataset=eval_chats if training_args.eval_strategy != "no" else None,
                         processing_class=tokenizer, peft_config=peft_config, callbacks=[GradientHealthCallback()])
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)

    answers = generate_answers(trainer.model, tokenizer, prompts, max_new, script_args.generation_batch_size)
    finetuned, records = score_generations(answers, eval_rows, label_set)
    logger.info("fine-tuned: %s", finetuned["scores"])

    # ---- outputs --------------------------------------------------------------------------------
    trainer.save_model(str(staging))
    if trainer.is_world_process_zero():
        (staging / "generations_finetuned.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        personas.save(staging / "personas.json")
        atomic_write_json(staging / "label_set.json", label_set.to_dict())
        plots = comparison_plots(baseline, finetuned, dims, staging)
        if finetuned["report"] is not None:
            from affectlab.metrics import metric_module

            metric_module("regression_report").reliability_plot(
                finetuned["report"]["calibration"], staging / "reliability_finetuned.png", (label_set.low, label_set.high),
                title="Reliability (fine-tuned, usable answers)")
            plots.append("reliability_finetuned.png")
        text = format_report(baseline, finetuned, script_args, dims, model_args.model_name_or_path, len(train_chats), plots)
        (staging / "report.md").write_text(text, encoding="utf-8")
        with open(staging / "train_results.json", "w", encoding="utf-8") as fh:
            json.dump({**train_result.metrics, "train_rows": len(train_chats), "log_history": trainer.state.log_history}, fh, indent=2)
        for item in staging.iterdir():
            os.replace(item, output_dir / item.name)
        staging.rmdir()
        results = {"baseline": baseline["scores"] if baseline else None, "finetuned": finetuned["scores"],
                   "persona_mode": script_args.persona_mode, "dataset": script_args.dataset_name,
                   "dataset_config": script_args.dataset_config, "model": model_args.model_name_or_path,
                   "max_new_tokens": max_new, "seed": training_args.seed}
        atomic_write_json(output_dir / "eval_results.json", results)
        if script_args.print_report:
            print(text, flush=True)
        publish_finished_run(output_dir, training_args, push_wanted)
    return {"baseline": baseline["scores"] if baseline else None, "finetuned": finetuned["scores"]}


if __name__ == "__main__":
    from trl import ModelConfig, SFTConfig, TrlParser

    # not affectlab.configs.ModelArguments: its extra `trust_remote_code` clashes with SFTConfig's own
    parser = TrlParser((SFTScriptArguments, SFTConfig, ModelConfig))
    main(*parser.parse_args_and_config())

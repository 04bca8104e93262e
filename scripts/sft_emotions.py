"""LLM SFT for persona-conditioned emotion intensities answered in JSON (TRL SFTTrainer): `affectlab train sft`.

    python scripts/sft_emotions.py --config recipes/sft_qwen2_1.5b_emobank.yaml [--persona_mode personalized_desc ...]

The family (`affectlab.tasks.sft`) turns every record into a chat whose answer is a JSON object, measures
greedy answers before (baseline) and after training (parse / schema-valid / usable rates, the regression
report on usable answers) and trains with LoRA / QLoRA (`--use_peft`, `--load_in_4bit` on CUDA); the run
life-cycle (`affectlab.run.run_task`) writes the adapter, eval_results.json, the card and the result record.
"""

from affectlab.run import parse_task_args, run_task
from affectlab.tasks.sft import AffectSFTConfig, SFTArguments, SFTScriptArguments, SFTTask  # noqa: F401


def main(script_args, training_args, model_args):
    """The scores before (`baseline`, None with --skip_baseline) and after (`finetuned`) training."""
    payload = run_task(SFTTask, script_args, training_args, model_args).eval_results
    return {"baseline": payload.get("baseline"), "finetuned": payload.get("finetuned")}


if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(lambda: main(*parse_task_args(SFTTask)))

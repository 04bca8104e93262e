"""Persona-conditioned emotion regression (encoder + regression head): `affectlab train regression`.

    accelerate launch --config_file accelerate_configs/cpu.yaml scripts/train_regression.py \
        --config recipes/emobank_minilm.yaml [--persona_mode persona_token --split_strategy lopo --held_out reader]

The family (`affectlab.tasks.regression`) loads EmoBank, the SYNTHETIC medical preset or a JSON Lines file
of contract records, applies the persona mode and the split protocol (predefined / random / LOLO / LOPO)
and trains `custom_models/regression_head` (or a LoRA adapter + the head with `--use_peft true`); the run
life-cycle (`affectlab.run.run_task`) writes the model, eval_results.json, the card and the result records.
"""

from affectlab.run import parse_task_args, run_task
from affectlab.tasks.regression import RegressionArguments, RegressionScriptArguments, RegressionTask  # noqa: F401


def main(script_args, training_args, model_args):
    return run_task(RegressionTask, script_args, training_args, model_args).results


if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(lambda: main(*parse_task_args(RegressionTask)))

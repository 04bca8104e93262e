"""Fine-tune a text classifier (multi-label emotions or single-label sentiment): `affectlab train classifier`.

    accelerate launch --config_file accelerate_configs/cpu.yaml scripts/train_classifier.py \
        --config recipes/goemotions_minilm_demo.yaml [--learning_rate 1e-4 ...]

The family (`affectlab.tasks.classification`) builds the dataset or a weighted mixture, trains with
BCE / ASL / combined / CE, tunes per-label thresholds on validation only; the run life-cycle
(`affectlab.run.run_task`) writes the model, eval_results.json, the card and the result records.
"""

from affectlab.run import parse_task_args, run_task
from affectlab.tasks.classification import ClassificationArguments, ClassifierTask  # noqa: F401


def main(script_args, training_args, model_args):
    return run_task(ClassifierTask, script_args, training_args, model_args).results


if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(lambda: main(*parse_task_args(ClassifierTask)))

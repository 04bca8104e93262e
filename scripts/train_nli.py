"""DSM-5 criterion matching as binary NLI: (post, criterion description) -> does the post show it? `affectlab train nli`.

    python scripts/train_nli.py --config recipes/redsm5_nli_cpu.yaml [--num_folds 5 --dataset_data_dir <ReDSM5> ...]

The family (`affectlab.tasks.nli`) builds `redsm5` config `nli` (splits by post; k-fold CV by post with
`num_folds` > 1), trains with class-weighted cross-entropy, early-stops on validation macro-F1 and reports
accuracy, macro-F1 and per-criterion F1 (mean +- sd over folds with CV); a plain Gemma / Gemma2 / Gemma3
checkpoint is trained as the bidirectional `gemma_encoder` unless `encoder: none`. The run life-cycle
(`affectlab.run.run_task`) writes the model (the last fold's), eval_results.json, per_criterion_f1.csv,
the card and one result record per evaluated split.
"""

from affectlab.run import parse_task_args, run_task
from affectlab.tasks.nli import NLIArguments, NLITask, binary_metrics, per_criterion_f1  # noqa: F401


def main(script_args, training_args, model_args):
    return run_task(NLITask, script_args, training_args, model_args).eval_results


if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(lambda: main(*parse_task_args(NLITask)))

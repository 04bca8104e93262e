"""Evidence-span extraction as extractive QA on ReDSM5: `affectlab train span-qa`.

    python scripts/train_span_qa.py --config recipes/span_qa_minilm_cpu.yaml [--hp_search_trials 3 ...]

The family (`affectlab.tasks.span_qa`) builds `redsm5` config `evidence` (the shared sample, your copy via
`dataset_data_dir`, or SYNTHETIC data with `synthetic_posts` > 0) as SQuAD examples, trains the span-QA
head with `SpanQATrainer` (stride windows, n-best / multi-span post-processing, `evidence_squad` metric),
optionally after an Optuna search (`hp_search.json`, `hp_trials.csv`, `best_config.yaml`); the run
life-cycle (`affectlab.run.run_task`) writes the model, eval_results.json, the card and the result records.
"""

from affectlab.run import parse_task_args, run_task
from affectlab.tasks.span_qa import SpanQAArguments, SpanQAScriptArguments, SpanQATask, make_hp_space  # noqa: F401


def main(script_args, training_args, model_args):
    return run_task(SpanQATask, script_args, training_args, model_args).eval_results


if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(lambda: main(*parse_task_args(SpanQATask)))

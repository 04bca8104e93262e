"""Training/evaluation throughput: affectlab's default pipeline vs the transformers-example default.

    python scripts/bench_training.py [--rows 2048 --steps 40 --batch_size 32]

Both pipelines fine-tune the same model (packaged MiniLM by default) on the same GoEmotions rows in
one process, one after the other, with the same batch size and the same `Trainer`:
- baseline: `run_classification.py` defaults, every example padded to 128 tokens, random order;
- affectlab: dynamic padding + length-grouped batches (`train_sampling_strategy=group_by_length`).
Prints samples/s for training and evaluation, their ratios, and model FLOPs utilisation: FLOPs on
non-pad tokens (6 x non-embedding params per token + attention) per second, as a fraction of the
fp32 matmul peak measured at the start of the same run (`affectlab.speed_benchmarks`).
"""

import argparse
import functools

from affectlab.speed_benchmarks import TrainingBenchConfig, training_report, training_throughput


def main(argv=None) -> dict:
    d = TrainingBenchConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=d.model)
    for name in ("rows", "eval_rows", "batch_size", "eval_batch_size", "steps", "warmup", "seed"):
        parser.add_argument(f"--{name}", type=int, default=getattr(d, name))
    parser.add_argument("--workdir", default=d.workdir)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    json_path = vars(args).pop("json")
    result = training_throughput(TrainingBenchConfig(**vars(args)), log=functools.partial(print, flush=True))
    print(training_report(result), flush=True)
    if json_path:
        from affectlab.io import atomic_write_json

        atomic_write_json(json_path, result)
    return result


if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(lambda: main())

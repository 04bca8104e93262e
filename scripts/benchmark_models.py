"""Sentiment benchmark across many models (`affectlab benchmark`): fine-tune, measure quality and speed, rank,
test significance, report.

    python scripts/benchmark_models.py --config recipes/sentiment_benchmark_cpu.yaml [--models minilm,tiny-bert]
        [--output_dir outputs/bench] [--max_train_samples 2000] [--device auto] [--dtype float32]

Everything lives in `affectlab.sentiment_benchmark` (its `main` parses these flags; `--help` lists them).
"""

import sys

from affectlab.sentiment_benchmark import main

if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(lambda: main(sys.argv[1:]))

"""Gemma 3 270M as an encoder, compared on the same data, steps and seed: bidirectional vs causal, LoRA vs DoRA,
mean vs last-token pooling, and MiniLM as the baseline (`affectlab.encoder_comparison`).

    python scripts/compare_gemma_encoder.py --dataset redsm5 --max_steps 12 --max_length 128
    python scripts/compare_gemma_encoder.py --dataset sst2 --max_steps 12 --max_length 64 --max_train_samples 96 --max_eval_samples 200

Writes outputs/gemma_encoder_comparison/<dataset>/comparison.md (the table and this command) and comparison.json.
"""

import sys

from affectlab.encoder_comparison import main

if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(lambda: main(sys.argv[1:]))

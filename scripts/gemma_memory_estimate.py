"""Print a GPU memory estimate (parameters, activations, optimizer) for fine-tuning the Gemma 3 text
encoders (1B / 4B / 12B) as classifiers: full fine-tuning, LoRA/DoRA (bf16 frozen base) and QLoRA (4-bit).

    python scripts/gemma_memory_estimate.py [--batch 8 --seq 512 --rank 16]

Parameter counts are exact: each model is instantiated on the `meta` device from its published text
config (no weights downloaded). Bytes: bf16 weights 2 B/param, NF4 ~0.5 B/param (+ double-quantised
scales), gradients bf16, AdamW fp32 m and v (8 B/trainable param) plus an fp32 master copy in full
fine-tuning. Activations (bf16) follow Korthikanti et al. (2022) per layer, s*b*h*(34 + 5*a*s/h) bytes,
with the MLP term scaled to Gemma's intermediate size; with gradient checkpointing only each layer's
input (2*s*b*h) is kept plus one layer's activations during recomputation. Estimates, not measurements:
allocator overhead and CUDA context (~1-2 GiB) come on top. (`affectlab.speed_benchmarks`)
"""

import argparse

from affectlab.speed_benchmarks import GEMMA3, gemma_memory_rows, gemma_memory_table


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--models", nargs="+", default=list(GEMMA3), choices=list(GEMMA3))
    a = p.parse_args(argv)
    rows = [r for m in a.models for r in gemma_memory_rows(m, a.batch, a.seq, a.rank)]
    print(gemma_memory_table(rows, a.batch, a.seq, a.rank))
    return rows


if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(lambda: main())

"""DoRA vs LoRA on a small random Gemma3 encoder classifier: training step time and memory.

    python scripts/bench_dora_lora.py [--steps 10 --batch 8 --seq 128 --hidden 256 --layers 4]

Memory is measured device-independently as the bytes autograd saves for backward in one step
(`torch.autograd.graph.saved_tensors_hooks`) plus trainable parameters and their AdamW states; on
CUDA the peak allocated memory is reported as well (`affectlab.speed_benchmarks`). Prints one JSON
line per method and the ratios.
"""

import argparse

from affectlab.speed_benchmarks import AdapterBenchConfig, compare_dora_lora, dora_lora_report


def main(argv=None):
    import torch

    d = AdapterBenchConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("steps", "batch", "seq", "hidden", "layers", "rank"):
        p.add_argument(f"--{name}", type=int, default=getattr(d, name))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    cfg = AdapterBenchConfig(**vars(p.parse_args(argv)))
    lora, dora, ratio = compare_dora_lora(cfg)
    print(dora_lora_report(cfg, lora, dora, ratio), flush=True)
    return lora, dora, ratio


if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(lambda: main())

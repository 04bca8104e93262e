"""Training/evaluation throughput: affectlab's default pipeline vs the transformers-example default.

    python scripts/bench_training.py [--rows 2048 --steps 40 --batch_size 32]

Both pipelines fine-tune the same model (packaged MiniLM by default) on the same GoEmotions rows in
one process, one after the other, with the same batch size and the same `Trainer`:
- baseline: `run_classification.py` defaults, every example padded to 128 tokens, random order;
- affectlab: dynamic padding + length-grouped batches (`train_sampling_strategy=group_by_length`).
Prints samples/s for training and evaluation, their ratios, and model FLOPs utilisation: FLOPs on
non-pad tokens (6 x non-embedding params per token + attention) per second, as a fraction of the
fp32 matmul peak measured at the start of the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def matmul_peak_gflops(n: int = 2048, seconds: float = 3.0) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def model_flops_per_example(lengths, non_embedding_params: int, layers: int, hidden: int, train: bool):
    """Matmul FLOPs on real tokens: dense 2N per token fwd + attention 4*L*h per token per layer fwd; x3 to train."""
    import numpy as np

    lengths = np.asarray(lengths, dtype=np.float64)
    fwd = 2 * non_embedding_params * lengths + 4 * layers * hidden * lengths**2
    return fwd * (3 if train else 1)


def run_pipeline(name, model_path, train_rows, eval_rows, tokenizer, pad_to_max: bool, args):
    import numpy as np
    import torch
    from transformers import (AutoModelForSequenceClassification, DataCollatorWithPadding, TrainerCallback,
                              TrainingArguments, default_data_collator, set_seed)

    from affectlab.data import tokenize_for_classification
    from affectlab.losses import ClassificationLoss, LossConfig
    from affectlab.trainer import ClassificationTrainer

    set_seed(args.seed)
    tok_kwargs = dict(text_column="text", label_column="labels", num_labels=28, multi_label=True, max_length=128)
    if pad_to_max:
        def encode(batch):
            enc = tokenizer(batch["text"], padding="max_length", truncation=True, max_length=128)
            y = np.zeros((len(batch["labels"]), 28), dtype=np.float32)
            for i, ls in enumerate(batch["labels"]):
                y[i, ls] = 1
            enc["labels"] = y.tolist()
            return enc
        train = train_rows.map(encode, batched=True, remove_columns=train_rows.column_names)
        evald = eval_rows.map(encode, batched=True, remove_columns=eval_rows.column_names)
        collator, strategy = default_data_collator, "random"
    else:
        train = tokenize_for_classification(train_rows, tokenizer, **tok_kwargs)
        evald = tokenize_for_classification(eval_rows, tokenizer, **tok_kwargs)
        collator, strategy = DataCollatorWithPadding(tokenizer), "group_by_length"

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times, self.t0 = [], None

        def on_step_begin(self, a, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            self.times.append(time.perf_counter() - self.t0)

    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=28, problem_type="multi_label_classification")
    timer = StepTimer()
    targs = TrainingArguments(output_dir=str(Path(args.workdir) / name), per_device_train_batch_size=args.batch_size,
                              per_device_eval_batch_size=args.eval_batch_size, max_steps=args.warmup + args.steps,
                              learning_rate=5e-5, report_to="none", save_strategy="no", logging_strategy="no",
                              train_sampling_strategy=strategy, seed=args.seed, use_cpu=True, disable_tqdm=True)
    trainer = ClassificationTrainer(model=model, args=targs, train_dataset=train, eval_dataset=evald, data_collator=collator,
                                    processing_class=tokenizer, loss_fn=ClassificationLoss(LossConfig("bce")), callbacks=[timer])
    trainer.train()
    steps = timer.times[args.warmup:]
    train_sps = args.batch_size * len(steps) / sum(steps)
    start = time.perf_counter()
    trainer.predict(evald)
    eval_sps = len(evald) / (time.perf_counter() - start)

    cfg = model.config
    non_embed = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    real_lengths = [len(x) for x in tokenizer(list(train_rows["text"]), truncation=True, max_length=128)["input_ids"]]
    flops_per_ex = float(model_flops_per_example(real_lengths, non_embed, cfg.num_hidden_layers, cfg.hidden_size, True).mean())
    return {"train_samples_per_s": train_sps, "eval_samples_per_s": eval_sps,
            "train_gflops_per_s": train_sps * flops_per_ex / 1e9, "mean_real_tokens": float(sum(real_lengths) / len(real_lengths))}


def main(argv=None):
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--eval_rows", type=int, default=1024)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--eval_batch_size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--workdir", default="outputs/bench_training")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from affectlab.paths import resolve_model_name
    from dataset_builders import build_dataset

    model_path = resolve_model_name(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    ds = build_dataset("goemotions")
    train_rows = ds["train"].shuffle(seed=args.seed).select(range(args.rows))
    eval_rows = ds["validation"].select(range(args.eval_rows))
    print(f"torch threads: {torch.get_num_threads()}; measuring fp32 matmul peak ...", flush=True)
    peak = matmul_peak_gflops()
    print(f"fp32 matmul peak: {peak:.1f} GFLOP/s", flush=True)
    base = run_pipeline("baseline_pad128", model_path, train_rows, eval_rows, tokenizer, True, args)
    ours = run_pipeline("affectlab", model_path, train_rows, eval_rows, tokenizer, False, args)
    result = {
        "model": args.model, "batch_size": args.batch_size, "rows": args.rows, "matmul_peak_gflops": peak,
        "baseline_pad128": base, "affectlab": ours,
        "train_speedup": ours["train_samples_per_s"] / base["train_samples_per_s"],
        "eval_speedup": ours["eval_samples_per_s"] / base["eval_samples_per_s"],
        "train_mfu": ours["train_gflops_per_s"] / peak, "baseline_train_mfu": base["train_gflops_per_s"] / peak,
    }
    print()
    print(f"{'pipeline':<18} {'train samples/s':>16} {'eval samples/s':>15} {'GFLOP/s (real tokens)':>22}")
    for name, r in (("pad-to-128 (base)", base), ("affectlab", ours)):
        print(f"{name:<18} {r['train_samples_per_s']:>16.1f} {r['eval_samples_per_s']:>15.1f} {r['train_gflops_per_s']:>22.1f}")
    print(f"\nmean real tokens per example: {ours['mean_real_tokens']:.1f} (of 128 padded)")
    print(f"training speed-up vs pad-to-128: {result['train_speedup']:.2f}x  (target >= 6x)")
    print(f"evaluation speed-up vs pad-to-128: {result['eval_speedup']:.2f}x")
    print(f"training model FLOPs utilisation: {100 * result['train_mfu']:.1f}% of the measured fp32 matmul peak "
          f"(target >= 60%); baseline {100 * result['baseline_train_mfu']:.1f}%")
    if args.json:
        from affectlab.io import atomic_write_json

        atomic_write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()

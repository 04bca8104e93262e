"""DoRA vs LoRA on a small random Gemma3 encoder classifier: training step time and memory.

    python scripts/bench_dora_lora.py [--steps 10 --batch 8 --seq 128 --hidden 256 --layers 4]

Memory is measured device-independently as the bytes autograd saves for backward in one step
(`torch.autograd.graph.saved_tensors_hooks`) plus trainable parameters and their AdamW states; on
CUDA the peak allocated memory is reported as well. Prints one JSON line per method and the ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build(args, use_dora: bool):
    import torch
    from transformers import Gemma3TextConfig

    from affectlab.peft_utils import add_adapter, encoder_lora_config
    from custom_models.gemma_encoder import GemmaEncoderConfig, GemmaEncoderForSequenceClassification

    torch.manual_seed(1337)
    text = Gemma3TextConfig(vocab_size=1024, hidden_size=args.hidden, intermediate_size=4 * args.hidden,
                            num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2,
                            head_dim=args.hidden // 4, max_position_embeddings=args.seq, pad_token_id=0,
                            layer_types=["full_attention"] * args.layers)
    model = GemmaEncoderForSequenceClassification._from_config(GemmaEncoderConfig(text_config=text, num_labels=2),
                                                              attn_implementation="sdpa")
    return add_adapter(model.to(args.device), encoder_lora_config(r=args.rank, alpha=2 * args.rank, dropout=0.0, use_dora=use_dora))


def run(args, use_dora: bool) -> dict:
    import torch

    model = build(args, use_dora).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 1024, (args.batch, args.seq), generator=gen).to(args.device)
    labels = torch.randint(0, 2, (args.batch,), generator=gen).to(args.device)
    saved = [0]

    def pack(t):
        saved[0] += t.numel() * t.element_size()
        return t

    def step(count=False):
        if count:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = model(input_ids=ids, labels=labels).loss
        else:
            loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up (also creates the optimizer states)
    step(count=True)
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / args.steps
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"method": "dora" if use_dora else "lora", "step_s": seconds, "saved_activation_MiB": saved[0] / 2**20,
            "trainable_params": trainable, "train_state_MiB": trainable * 4 * 4 / 2**20,  # weights, grads, Adam m, v
            "peak_cuda_MiB": torch.cuda.max_memory_allocated() / 2**20 if cuda else None}


def main(argv=None):
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    lora, dora = run(args, False), run(args, True)
    ratio = {"step_time_ratio": dora["step_s"] / lora["step_s"],
             "activation_memory_ratio": dora["saved_activation_MiB"] / lora["saved_activation_MiB"]}
    if lora["peak_cuda_MiB"]:
        ratio["peak_cuda_memory_ratio"] = dora["peak_cuda_MiB"] / lora["peak_cuda_MiB"]
    for row in (lora, dora, {"dora_over_lora": ratio, "device": args.device, "config": vars(args)}):
        print(json.dumps(row), flush=True)
    return lora, dora, ratio


if __name__ == "__main__":
    main()

"""Print a GPU memory estimate (parameters, activations, optimizer) for fine-tuning the Gemma 3 text
encoders (1B / 4B / 12B) as classifiers: full fine-tuning, LoRA/DoRA (bf16 frozen base) and QLoRA (4-bit).

    python scripts/gemma_memory_estimate.py [--batch 8 --seq 512 --rank 16]

Parameter counts are exact: each model is instantiated on the `meta` device from its published text
config (no weights downloaded). Bytes: bf16 weights 2 B/param, NF4 ~0.5 B/param (+ double-quantised
scales), gradients bf16, AdamW fp32 m and v (8 B/trainable param) plus an fp32 master copy in full
fine-tuning. Activations (bf16) follow Korthikanti et al. (2022) per layer, s*b*h*(34 + 5*a*s/h) bytes,
with the MLP term scaled to Gemma's intermediate size; with gradient checkpointing only each layer's
input (2*s*b*h) is kept plus one layer's activations during recomputation. Estimates, not measurements:
allocator overhead and CUDA context (~1-2 GiB) come on top.
"""

from __future__ import annotations

import argparse

# Text configs of google/gemma-3-{1b,4b,12b}-it (public config.json values).
GEMMA3 = {
    "1B": dict(vocab_size=262144, hidden_size=1152, intermediate_size=6912, num_hidden_layers=26, num_attention_heads=4,
               num_key_value_heads=1, head_dim=256),
    "4B": dict(vocab_size=262208, hidden_size=2560, intermediate_size=10240, num_hidden_layers=34, num_attention_heads=8,
               num_key_value_heads=4, head_dim=256),
    "12B": dict(vocab_size=262208, hidden_size=3840, intermediate_size=15360, num_hidden_layers=48, num_attention_heads=16,
                num_key_value_heads=8, head_dim=256),
}
GIB = 1024 ** 3


def count_params(spec: dict) -> tuple[int, int]:
    """(total parameters, embedding parameters) of the text model, built on the meta device."""
    import torch
    from transformers import Gemma3TextConfig, Gemma3TextModel

    with torch.device("meta"):
        model = Gemma3TextModel(Gemma3TextConfig(**spec))
    total = sum(p.numel() for p in model.parameters())
    return total, model.embed_tokens.weight.numel()


def adapter_params(spec: dict, rank: int, dora: bool) -> int:
    h, hd = spec["hidden_size"], spec["head_dim"]
    q, kv = spec["num_attention_heads"] * hd, spec["num_key_value_heads"] * hd
    shapes = [(h, q), (h, kv), (h, kv), (q, h)]  # (in, out) of q, k, v, o
    per_layer = sum(rank * (i + o) + (o if dora else 0) for i, o in shapes)
    return per_layer * spec["num_hidden_layers"]


def activation_bytes(spec: dict, batch: int, seq: int, checkpointing: bool) -> float:
    h, a, L = spec["hidden_size"], spec["num_attention_heads"], spec["num_hidden_layers"]
    mlp_scale = spec["intermediate_size"] / (4 * h)
    per_layer = seq * batch * h * (10 + 24 * mlp_scale + 5 * a * seq / h)
    if checkpointing:
        return L * 2 * seq * batch * h + per_layer
    return L * per_layer


def estimate(name: str, batch: int, seq: int, rank: int) -> list[dict]:
    spec = GEMMA3[name]
    total, embed = count_params(spec)
    rows = []
    for method in ("full", "lora", "dora", "qlora-dora"):
        trainable = total if method == "full" else adapter_params(spec, rank, "dora" in method) + spec["hidden_size"] * 2
        if method == "qlora-dora":  # linear layers NF4 (+ double-quantised scales), embeddings stay bf16
            weights = embed * 2 + (total - embed) * (0.5 + 1 / 64 + 4 / (64 * 256))
        else:
            weights = total * 2
        grads = trainable * 2
        optimizer = trainable * (8 + (4 if method == "full" else 0))
        act = activation_bytes(spec, batch, seq, checkpointing=True)
        rows.append({"model": name, "method": method, "params_B": total / 1e9, "trainable_M": trainable / 1e6,
                     "weights_GiB": weights / GIB, "grads_GiB": grads / GIB, "optimizer_GiB": optimizer / GIB,
                     "activations_GiB": act / GIB, "total_GiB": (weights + grads + optimizer + act) / GIB})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--models", nargs="+", default=list(GEMMA3))
    a = p.parse_args(argv)
    rows = [r for m in a.models for r in estimate(m, a.batch, a.seq, a.rank)]
    print(f"Gemma 3 text encoder, batch {a.batch} x seq {a.seq}, bf16, gradient checkpointing, LoRA/DoRA rank {a.rank}")
    print(f"{'model':<5} {'method':<11} {'params':>7} {'trainable':>10} {'weights':>8} {'grads':>7} {'optim':>7} {'activ':>7} {'total':>7}")
    for r in rows:
        print(f"{r['model']:<5} {r['method']:<11} {r['params_B']:>6.2f}B {r['trainable_M']:>9.1f}M {r['weights_GiB']:>7.2f}G "
              f"{r['grads_GiB']:>6.2f}G {r['optimizer_GiB']:>6.2f}G {r['activations_GiB']:>6.2f}G {r['total_GiB']:>6.1f}G")
    return rows


if __name__ == "__main__":
    main()

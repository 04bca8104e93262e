"""Training-speed and memory benchmarks behind `scripts/bench_training.py`, `scripts/bench_dora_lora.py` and
`scripts/gemma_memory_estimate.py` (the scripts parse flags and call these functions).

* **Training throughput** (`training_throughput`): affectlab's default pipeline (dynamic padding +
  length-grouped batches) against the transformers-example default (every example padded to 128 tokens, random
  order) on the same GoEmotions rows, model, batch size and `Trainer`; samples/s for training and evaluation and
  model FLOPs utilisation (FLOPs on non-pad tokens per second, as a fraction of the fp32 matmul peak measured in
  the same run, `matmul_peak_gflops`).
* **DoRA vs LoRA** (`compare_dora_lora`): training step time and memory of a small random Gemma3 encoder
  classifier; memory is the bytes autograd saves for backward in one step (`saved_tensors_hooks`) plus trainable
  parameters and their AdamW states (and the peak allocated memory on CUDA).
* **Gemma 3 memory estimate** (`gemma_memory_rows`): GPU memory of fine-tuning the Gemma 3 text encoders
  (1B / 4B / 12B) as classifiers (full, LoRA, DoRA, QLoRA-DoRA): exact parameter counts from the published text
  configs on the `meta` device; activations after Korthikanti et al. (2022) with gradient checkpointing.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

GIB = 1024 ** 3


# ---------------------------------------------------------------------------------------------------------
# training throughput: affectlab pipeline vs pad-to-128
# ---------------------------------------------------------------------------------------------------------
@dataclass
class TrainingBenchConfig:
    model: str = "default"
    rows: int = 4096
    eval_rows: int = 1024
    batch_size: int = 32
    eval_batch_size: int = 128
    steps: int = 30
    warmup: int = 5
    seed: int = 1337
    workdir: str = "outputs/bench_training"


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


def run_pipeline(name: str, model_path: str, train_rows, eval_rows, tokenizer, pad_to_max: bool,
                 cfg: TrainingBenchConfig) -> dict:
    """Train `cfg.warmup + cfg.steps` steps (the warm-up steps untimed) and predict the evaluation rows."""
    import numpy as np
    from transformers import (AutoModelForSequenceClassification, DataCollatorWithPadding, TrainerCallback,
                              TrainingArguments, default_data_collator, set_seed)

    from affectlab.data import tokenize_for_classification
    from affectlab.losses import ClassificationLoss, LossConfig
    from affectlab.trainer import ClassificationTrainer

    set_seed(cfg.seed)
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

    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=28,
                                                               problem_type="multi_label_classification")
    timer = StepTimer()
    targs = TrainingArguments(output_dir=str(Path(cfg.workdir) / name), per_device_train_batch_size=cfg.batch_size,
                              per_device_eval_batch_size=cfg.eval_batch_size, max_steps=cfg.warmup + cfg.steps,
                              learning_rate=5e-5, report_to="none", save_strategy="no", logging_strategy="no",
                              train_sampling_strategy=strategy, seed=cfg.seed, use_cpu=True, disable_tqdm=True)
    trainer = ClassificationTrainer(model=model, args=targs, train_dataset=train, eval_dataset=evald,
                                    data_collator=collator, processing_class=tokenizer,
                                    loss_fn=ClassificationLoss(LossConfig("bce")), callbacks=[timer])
    trainer.train()
    steps = timer.times[cfg.warmup:]
    train_sps = cfg.batch_size * len(steps) / sum(steps)
    start = time.perf_counter()
    trainer.predict(evald)
    eval_sps = len(evald) / (time.perf_counter() - start)

    mcfg = model.config
    non_embed = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    real_lengths = [len(x) for x in tokenizer(list(train_rows["text"]), truncation=True, max_length=128)["input_ids"]]
    flops_per_ex = float(model_flops_per_example(real_lengths, non_embed, mcfg.num_hidden_layers, mcfg.hidden_size,
                                                 True).mean())
    eval_lengths = [len(x) for x in tokenizer(list(eval_rows["text"]), truncation=True, max_length=128)["input_ids"]]
    eval_flops_per_ex = float(model_flops_per_example(eval_lengths, non_embed, mcfg.num_hidden_layers,
                                                      mcfg.hidden_size, False).mean())
    return {"train_samples_per_s": train_sps, "eval_samples_per_s": eval_sps,
            "train_gflops_per_s": train_sps * flops_per_ex / 1e9,
            "eval_gflops_per_s": eval_sps * eval_flops_per_ex / 1e9,
            "mean_real_tokens": float(sum(real_lengths) / len(real_lengths))}


def training_throughput(cfg: TrainingBenchConfig, log=print) -> dict:
    """Both pipelines on the same rows, one after the other, with the fp32 matmul peak measured first."""
    import torch
    from transformers import AutoTokenizer

    from affectlab.paths import resolve_model_name
    from dataset_builders import build_dataset

    model_path = resolve_model_name(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    ds = build_dataset("goemotions")
    train_rows = ds["train"].shuffle(seed=cfg.seed).select(range(cfg.rows))
    eval_rows = ds["validation"].select(range(cfg.eval_rows))
    log(f"torch threads: {torch.get_num_threads()}; measuring fp32 matmul peak ...")
    peak = matmul_peak_gflops()
    log(f"fp32 matmul peak: {peak:.1f} GFLOP/s")
    base = run_pipeline("baseline_pad128", model_path, train_rows, eval_rows, tokenizer, True, cfg)
    ours = run_pipeline("affectlab", model_path, train_rows, eval_rows, tokenizer, False, cfg)
    return {
        "model": cfg.model, "batch_size": cfg.batch_size, "rows": cfg.rows, "matmul_peak_gflops": peak,
        "baseline_pad128": base, "affectlab": ours,
        "train_speedup": ours["train_samples_per_s"] / base["train_samples_per_s"],
        "eval_speedup": ours["eval_samples_per_s"] / base["eval_samples_per_s"],
        "train_mfu": ours["train_gflops_per_s"] / peak, "baseline_train_mfu": base["train_gflops_per_s"] / peak,
        "eval_mfu": ours["eval_gflops_per_s"] / peak, "baseline_eval_mfu": base["eval_gflops_per_s"] / peak,
    }


def training_report(result: dict) -> str:
    lines = ["", f"{'pipeline':<18} {'train samples/s':>16} {'eval samples/s':>15} {'train GFLOP/s':>14} "
                 f"{'eval GFLOP/s':>13}  (FLOPs on real tokens)"]
    for name, r in (("pad-to-128 (base)", result["baseline_pad128"]), ("affectlab", result["affectlab"])):
        lines.append(f"{name:<18} {r['train_samples_per_s']:>16.1f} {r['eval_samples_per_s']:>15.1f} "
                     f"{r['train_gflops_per_s']:>14.1f} {r.get('eval_gflops_per_s', float('nan')):>13.1f}")
    eval_mfu = result.get("eval_mfu")
    lines += [f"\nfp32 matmul peak (measured in this run): {result['matmul_peak_gflops']:.1f} GFLOP/s",
              f"mean real tokens per example: {result['affectlab']['mean_real_tokens']:.1f} (of 128 padded)",
              f"training speed-up vs pad-to-128: {result['train_speedup']:.2f}x  (target >= 7x)",
              f"evaluation speed-up vs pad-to-128: {result['eval_speedup']:.2f}x",
              f"training model FLOPs utilisation: {100 * result['train_mfu']:.1f}% of the measured fp32 matmul peak "
              f"(target >= 70%); baseline {100 * result['baseline_train_mfu']:.1f}%"]
    if eval_mfu is not None:
        lines.append(f"evaluation model FLOPs utilisation: {100 * eval_mfu:.1f}% of the measured fp32 matmul peak "
                     f"(target >= 70%); baseline {100 * result['baseline_eval_mfu']:.1f}%")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# DoRA vs LoRA on a small random Gemma3 encoder
# ---------------------------------------------------------------------------------------------------------
@dataclass
class AdapterBenchConfig:
    steps: int = 10
    batch: int = 8
    seq: int = 128
    hidden: int = 256
    layers: int = 4
    rank: int = 16
    device: str = "cpu"


def build_adapter_model(cfg: AdapterBenchConfig, use_dora: bool):
    import torch
    from transformers import Gemma3TextConfig

    from affectlab.peft_utils import add_adapter, encoder_lora_config
    from custom_models.gemma_encoder import GemmaEncoderConfig, GemmaEncoderForSequenceClassification

    torch.manual_seed(1337)
    text = Gemma3TextConfig(vocab_size=1024, hidden_size=cfg.hidden, intermediate_size=4 * cfg.hidden,
                            num_hidden_layers=cfg.layers, num_attention_heads=4, num_key_value_heads=2,
                            head_dim=cfg.hidden // 4, max_position_embeddings=cfg.seq, pad_token_id=0,
                            layer_types=["full_attention"] * cfg.layers)
    model = GemmaEncoderForSequenceClassification._from_config(GemmaEncoderConfig(text_config=text, num_labels=2),
                                                              attn_implementation="sdpa")
    return add_adapter(model.to(cfg.device), encoder_lora_config(r=cfg.rank, alpha=2 * cfg.rank, dropout=0.0,
                                                                 use_dora=use_dora))


def adapter_step_stats(cfg: AdapterBenchConfig, use_dora: bool) -> dict:
    """Mean training step time, saved-activation bytes of one step, trainable parameters and their state."""
    import torch

    model = build_adapter_model(cfg, use_dora).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 1024, (cfg.batch, cfg.seq), generator=gen).to(cfg.device)
    labels = torch.randint(0, 2, (cfg.batch,), generator=gen).to(cfg.device)
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
    cuda = cfg.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(cfg.steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / cfg.steps
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"method": "dora" if use_dora else "lora", "step_s": seconds, "saved_activation_MiB": saved[0] / 2**20,
            "trainable_params": trainable, "train_state_MiB": trainable * 4 * 4 / 2**20,  # weights, grads, Adam m, v
            "peak_cuda_MiB": torch.cuda.max_memory_allocated() / 2**20 if cuda else None}


def compare_dora_lora(cfg: AdapterBenchConfig) -> tuple[dict, dict, dict]:
    """(LoRA stats, DoRA stats, DoRA / LoRA ratios)."""
    lora, dora = adapter_step_stats(cfg, False), adapter_step_stats(cfg, True)
    ratio = {"step_time_ratio": dora["step_s"] / lora["step_s"],
             "activation_memory_ratio": dora["saved_activation_MiB"] / lora["saved_activation_MiB"]}
    if lora["peak_cuda_MiB"]:
        ratio["peak_cuda_memory_ratio"] = dora["peak_cuda_MiB"] / lora["peak_cuda_MiB"]
    return lora, dora, ratio


def dora_lora_report(cfg: AdapterBenchConfig, lora: dict, dora: dict, ratio: dict) -> str:
    """One JSON line per method and one with the ratios, the device and the settings."""
    rows = (lora, dora, {"dora_over_lora": ratio, "device": cfg.device, "config": asdict(cfg)})
    return "\n".join(json.dumps(row) for row in rows)


# ---------------------------------------------------------------------------------------------------------
# Gemma 3 fine-tuning memory estimate
# ---------------------------------------------------------------------------------------------------------
# Text configs of google/gemma-3-{1b,4b,12b}-it (public config.json values).
GEMMA3 = {
    "1B": dict(vocab_size=262144, hidden_size=1152, intermediate_size=6912, num_hidden_layers=26, num_attention_heads=4,
               num_key_value_heads=1, head_dim=256),
    "4B": dict(vocab_size=262208, hidden_size=2560, intermediate_size=10240, num_hidden_layers=34, num_attention_heads=8,
               num_key_value_heads=4, head_dim=256),
    "12B": dict(vocab_size=262208, hidden_size=3840, intermediate_size=15360, num_hidden_layers=48, num_attention_heads=16,
                num_key_value_heads=8, head_dim=256),
}


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
    """bf16 activations per layer s*b*h*(34 + 5*a*s/h) (MLP term scaled to Gemma's intermediate size); with
    gradient checkpointing only each layer's input (2*s*b*h) plus one layer recomputed."""
    h, a, L = spec["hidden_size"], spec["num_attention_heads"], spec["num_hidden_layers"]
    mlp_scale = spec["intermediate_size"] / (4 * h)
    per_layer = seq * batch * h * (10 + 24 * mlp_scale + 5 * a * seq / h)
    if checkpointing:
        return L * 2 * seq * batch * h + per_layer
    return L * per_layer


def gemma_memory_rows(name: str, batch: int, seq: int, rank: int) -> list[dict]:
    """GiB of weights, gradients, optimizer states and activations per method for Gemma 3 `name` (1B/4B/12B)."""
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


def gemma_memory_table(rows: list[dict], batch: int, seq: int, rank: int) -> str:
    lines = [f"Gemma 3 text encoder, batch {batch} x seq {seq}, bf16, gradient checkpointing, LoRA/DoRA rank {rank}",
             f"{'model':<5} {'method':<11} {'params':>7} {'trainable':>10} {'weights':>8} {'grads':>7} {'optim':>7} "
             f"{'activ':>7} {'total':>7}"]
    for r in rows:
        lines.append(f"{r['model']:<5} {r['method']:<11} {r['params_B']:>6.2f}B {r['trainable_M']:>9.1f}M "
                     f"{r['weights_GiB']:>7.2f}G {r['grads_GiB']:>6.2f}G {r['optimizer_GiB']:>6.2f}G "
                     f"{r['activations_GiB']:>6.2f}G {r['total_GiB']:>6.1f}G")
    return "\n".join(lines)

"""Measurement and comparison machinery of the model benchmark (`affectlab.sentiment_benchmark`).

* **Device handling**: `detect_device` (CUDA, Apple MPS, CPU) and `check_device_options`, which refuses
  options a device cannot use (bf16/fp16 on CPU, 4-bit/QLoRA anywhere but CUDA, a CUDA request without
  CUDA) with a `DeviceOptionError` that says what to use instead; nothing is ever silently changed.
* **Speed**, measured the way optimum-benchmark does: `timed_runs` does warm-up calls, then keeps calling
  until it has at least `min_iterations` timings AND at least `min_seconds` of measured time (device
  synchronised around every call); `latency_stats` gives p50/p90/p99; `measure_latency` (batch 1),
  `measure_throughput` (samples/s and non-padding tokens/s at a chosen batch), `measure_ttft` (time to the
  first generated token of a causal LM) and `MemoryTracker` (peak RSS on CPU, peak allocated and reserved
  on CUDA).
* **Quality** lives in `affectlab.stats` (re-exported here): `classification_metrics`, percentile bootstrap
  CIs (`bootstrap_ci`), paired bootstrap CIs of differences (`bootstrap_diff_ci`) and `mcnemar`.
* **Comparison**: `rank_table` ranks by quality by default (the primary metric; models whose 95% CIs overlap
  are tied and ordered by speed: `quality_ranks`); the weighted composite (`minmax_normalise`,
  `composite_scores`: default 30% accuracy, 30% macro-F1, 20% throughput, 20% latency; whether higher is
  better comes from `affectlab.registry`) is computed beside it and is the ranking with `by="composite"`;
  `pareto_front` (max quality, min latency).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from affectlab.errors import UserError
from affectlab.stats import (QUALITY_METRICS, bootstrap_ci, bootstrap_diff_ci,  # noqa: F401  (re-exported)
                             classification_metrics, mcnemar)

DEFAULT_WEIGHTS = {"accuracy": 0.3, "macro_f1": 0.3, "throughput": 0.2, "latency_p50_ms": 0.2}


# ---------------------------------------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------------------------------------
class DeviceOptionError(UserError):
    """An option the chosen device cannot use; the message says which and what to use instead."""


def available_devices() -> dict[str, bool]:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return {"cuda": torch.cuda.is_available(), "mps": bool(mps is not None and mps.is_available()), "cpu": True}


def detect_device(requested: str = "auto", available: dict[str, bool] | None = None) -> str:
    """`auto` -> cuda, else mps, else cpu; an explicit device that is not there is refused."""
    available = available or available_devices()
    requested = (requested or "auto").lower()
    if requested == "auto":
        return next(d for d in ("cuda", "mps", "cpu") if available.get(d))
    if requested not in ("cuda", "mps", "cpu"):
        raise DeviceOptionError(f"unknown device {requested!r}; use auto, cuda, mps or cpu")
    if not available.get(requested):
        have = [d for d, ok in available.items() if ok]
        raise DeviceOptionError(f"device {requested!r} was requested but is not available here (available: {have}); "
                                "pass --device auto or one of those")
    return requested


def check_device_options(device: str, dtype: str = "float32", method: str = "full",
                         bf16_supported_on_cuda: bool | None = None) -> None:
    """Refuse (never adjust) what `device` cannot run: half precision on CPU, 4-bit / QLoRA off CUDA, ..."""
    dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(dtype, dtype)
    if dtype not in ("float32", "bfloat16", "float16"):
        raise DeviceOptionError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
    if method not in ("full", "lora", "qlora"):
        raise DeviceOptionError(f"unknown method {method!r}; use full, lora or qlora")
    if method == "qlora" and device != "cuda":
        raise DeviceOptionError(f"method 'qlora' (4-bit NF4 weights through bitsandbytes) is refused on {device}: "
                                "4-bit training is only supported on CUDA here; use method 'lora' (or 'full') on "
                                f"{device}, or run on a CUDA GPU")
    if device == "cpu" and dtype != "float32":
        raise DeviceOptionError(f"dtype {dtype} is refused on CPU: this benchmark trains and measures CPU models in "
                                "float32 only (CPU half-precision kernels would change both accuracy and speed); "
                                "use --dtype float32 or a CUDA device")
    if device == "mps" and dtype == "bfloat16":
        raise DeviceOptionError("dtype bfloat16 is refused on MPS; use float32 or float16")
    if device == "cuda" and dtype == "bfloat16":
        if bf16_supported_on_cuda is None:
            import torch

            bf16_supported_on_cuda = torch.cuda.is_bf16_supported()
        if not bf16_supported_on_cuda:
            raise DeviceOptionError("dtype bfloat16 is refused: this CUDA GPU does not support bf16; use float16 "
                                    "or float32")


def synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


# ---------------------------------------------------------------------------------------------------------
# speed
# ---------------------------------------------------------------------------------------------------------
@dataclass
class SpeedConfig:
    """Warm-up calls, then >= `min_iterations` timed calls and >= `min_seconds` of timed calls."""

    warmup: int = 5
    min_iterations: int = 50
    min_seconds: float = 5.0
    batch_size: int = 32          # throughput batch
    max_length: int = 64
    repeats: int = 2              # independent latency measurements (their p50s show the stability)
    max_iterations: int = 100_000

    def __post_init__(self):
        if self.warmup < 0 or self.min_iterations < 1 or self.min_seconds < 0 or self.batch_size < 1:
            raise ValueError(f"invalid speed settings: {self}")


def timed_runs(fn: Callable[[int], object], warmup: int, min_iterations: int, min_seconds: float,
               sync: Callable[[], None] | None = None, clock: Callable[[], float] = time.perf_counter,
               max_iterations: int = 100_000, on_step: Callable[[], None] | None = None) -> np.ndarray:
    """Call `fn(i)` `warmup` times untimed, then until both >= `min_iterations` calls and >= `min_seconds` of
    timed calls (capped at `max_iterations`). Returns the per-call durations in seconds."""
    sync = sync or (lambda: None)
    for i in range(warmup):
        fn(i)
    sync()
    times: list[float] = []
    total = 0.0
    i = 0
    while (len(times) < min_iterations or total < min_seconds) and len(times) < max_iterations:
        start = clock()
        fn(warmup + i)
        sync()
        elapsed = clock() - start
        times.append(elapsed)
        total += elapsed
        i += 1
        if on_step is not None:
            on_step()
    return np.asarray(times, dtype=float)


def latency_stats(seconds: Sequence[float]) -> dict:
    """p50/p90/p99/mean/std in milliseconds (linear-interpolated percentiles) and the number of timings."""
    ms = np.asarray(seconds, dtype=float) * 1000.0
    if ms.size == 0:
        raise ValueError("no timings")
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "mean_ms": float(ms.mean()),
            "std_ms": float(ms.std()), "n": int(ms.size), "total_s": float(ms.sum() / 1000.0)}


def current_rss_mb() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


class MemoryTracker:
    """Peak memory while measuring: sampled RSS on CPU/MPS (plus the process high-water mark), allocated and
    reserved peaks on CUDA (reset at start)."""

    def __init__(self, device: str):
        self.device = device
        self.peak_rss_mb = 0.0

    def __enter__(self):
        if self.device == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
        self.sample()
        return self

    def sample(self) -> None:
        self.peak_rss_mb = max(self.peak_rss_mb, current_rss_mb())

    def __exit__(self, *exc):
        self.sample()
        return False

    def result(self) -> dict:
        out = {"peak_rss_mb": round(self.peak_rss_mb, 1)}
        try:
            import resource

            out["process_max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        except ImportError:  # pragma: no cover - not on Windows
            pass
        if self.device == "cuda":
            import torch

            out["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            out["cuda_max_reserved_mb"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
        return out


def _encode(tokenizer, texts, max_length, device):
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return {k: v.to(device) for k, v in enc.items()}


def measure_latency(model, tokenizer, texts: Sequence[str], cfg: SpeedConfig, device: str,
                    tracker: MemoryTracker | None = None) -> tuple[dict, np.ndarray]:
    """Batch-1 forward latency, cycling through `texts` (tokenisation excluded). Returns (stats, seconds)."""
    import torch

    inputs = [_encode(tokenizer, [t], cfg.max_length, device) for t in texts]

    def call(i):
        with torch.inference_mode():
            model(**inputs[i % len(inputs)])

    times = timed_runs(call, cfg.warmup, cfg.min_iterations, cfg.min_seconds, sync=lambda: synchronize(device),
                       max_iterations=cfg.max_iterations, on_step=tracker.sample if tracker else None)
    return latency_stats(times), times


def measure_throughput(model, tokenizer, texts: Sequence[str], cfg: SpeedConfig, device: str,
                       tracker: MemoryTracker | None = None) -> dict:
    """Samples/s and (non-padding) tokens/s at batch `cfg.batch_size`, cycling through `texts`."""
    import torch

    b = cfg.batch_size
    texts = list(texts)
    while len(texts) < b:
        texts = texts + texts
    batches = [_encode(tokenizer, texts[i:i + b], cfg.max_length, device) for i in range(0, len(texts) - b + 1, b)]
    tokens = [int(x["attention_mask"].sum()) for x in batches]

    def call(i):
        with torch.inference_mode():
            model(**batches[i % len(batches)])

    # batches are ~batch_size times longer than batch-1 calls: fewer iterations, same minimum time
    w, iters = min(cfg.warmup, 2), max(1, cfg.min_iterations // 5)
    times = timed_runs(call, w, iters, cfg.min_seconds, sync=lambda: synchronize(device),
                       max_iterations=cfg.max_iterations, on_step=tracker.sample if tracker else None)
    timed_tokens = sum(tokens[(w + j) % len(batches)] for j in range(len(times)))
    total = float(times.sum())
    return {"batch_size": b, "samples_s": len(times) * b / total, "tokens_s": timed_tokens / total,
            "n": int(len(times)), "total_s": total}


def measure_ttft(causal_lm, tokenizer, texts: Sequence[str], cfg: SpeedConfig, device: str,
                 tracker: MemoryTracker | None = None) -> dict:
    """Time to first token at batch 1: `generate(max_new_tokens=1)` (prefill + first decoding step)."""
    import torch

    inputs = [_encode(tokenizer, [t], cfg.max_length, device) for t in texts]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def call(i):
        with torch.inference_mode():
            out = causal_lm.generate(**inputs[i % len(inputs)], max_new_tokens=1, min_new_tokens=1, do_sample=False,
                                     pad_token_id=pad_id)
        assert out.shape[1] == inputs[i % len(inputs)]["input_ids"].shape[1] + 1

    times = timed_runs(call, cfg.warmup, cfg.min_iterations, cfg.min_seconds, sync=lambda: synchronize(device),
                       max_iterations=cfg.max_iterations, on_step=tracker.sample if tracker else None)
    return latency_stats(times)


def relative_spread(values: Sequence[float]) -> float:
    """(max - min) / min of repeated measurements (0.1 = the runs agree within 10%)."""
    v = np.asarray(values, dtype=float)
    return float((v.max() - v.min()) / v.min())


# ---------------------------------------------------------------------------------------------------------
# comparison
# ---------------------------------------------------------------------------------------------------------
def minmax_normalise(values: Sequence[float], higher_is_better: bool = True) -> np.ndarray:
    """Scale to [0, 1] with 1 = best. When all values are equal nobody is better: every row gets 1."""
    v = np.asarray(values, dtype=float)
    lo, hi = np.nanmin(v), np.nanmax(v)
    if hi == lo:
        return np.ones_like(v)
    s = (v - lo) / (hi - lo)
    return s if higher_is_better else 1.0 - s


def composite_scores(rows: Sequence[dict], weights: dict[str, float] | None = None,
                     directions: dict[str, bool] | None = None) -> np.ndarray:
    """Weighted sum of min-max normalised criteria (weights renormalised to sum 1). Whether higher is better:
    `directions[key]` when given, else `affectlab.registry.higher_is_better(key)`."""
    from affectlab.registry import higher_is_better, is_known_metric

    weights = dict(weights or DEFAULT_WEIGHTS)
    directions = dict(directions or {})
    if not rows:
        return np.zeros(0)
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {weights}")
    total = sum(weights.values())
    score = np.zeros(len(rows))
    for key, w in weights.items():
        if key not in directions:
            if not is_known_metric(key):
                raise KeyError(f"no direction known for criterion {key!r}: add it to affectlab.registry.METRICS "
                               f"or pass directions={{{key!r}: True/False}}")
            directions[key] = higher_is_better(key)
        missing = [i for i, r in enumerate(rows) if r.get(key) is None]
        if missing:
            raise KeyError(f"criterion {key!r} missing from row(s) {missing}")
        score += (w / total) * minmax_normalise([r[key] for r in rows], directions[key])
    return score


RANK_BY = ("quality", "composite")


def _ci_bounds(row: dict, key: str) -> tuple[float, float]:
    """(low, high) of `row["ci"][key]` when the row has that CI, else the point value twice."""
    ci = (row.get("ci") or {}).get(key) or {}
    value = float(row[key])
    return float(ci.get("ci_low", value)), float(ci.get("ci_high", value))


def quality_ranks(rows: Sequence[dict], quality: str = "accuracy", higher: bool | None = None) -> list[int]:
    """Rank by `quality` where overlapping 95% CIs tie: 1 + the number of rows whose CI lies entirely on the
    better side of this row's CI (rows without a CI count as their point value)."""
    from affectlab.registry import higher_is_better

    higher = higher_is_better(quality) if higher is None else higher
    bounds = [_ci_bounds(r, quality) for r in rows]
    ranks = []
    for lo, hi in bounds:
        better = sum(1 for lo_j, hi_j in bounds if (lo_j > hi if higher else hi_j < lo))
        ranks.append(1 + better)
    return ranks


def rank_table(rows: Sequence[dict], weights: dict[str, float] | None = None,
               directions: dict[str, bool] | None = None, by: str = "quality", quality: str = "accuracy",
               speed: str = "latency_p50_ms") -> list[dict]:
    """Rows best first, each with `rank` (the headline, by `by`), `quality_rank`, `composite` and
    `composite_rank` (ties share the better rank).

    * `by="quality"` (the headline): rank by the primary metric `quality`; rows whose 95% CIs
      (`row["ci"][quality]`) overlap are tied (`quality_ranks`), and tied rows are ordered by `speed`
      (faster first), then by quality.
    * `by="composite"`: the weighted sum of min-max normalised criteria (`composite_scores`).

    The composite is computed whenever every row has every weighted criterion (else it is None)."""
    from affectlab.registry import higher_is_better

    if by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {RANK_BY}, got {by!r}")
    if not rows:
        return []
    directions = dict(directions or {})
    weights = dict(weights or DEFAULT_WEIGHTS)
    if by == "composite" or all(r.get(k) is not None for r in rows for k in weights):
        scores = [float(s) for s in composite_scores(rows, weights, directions)]
    else:
        scores = [None] * len(rows)
    out = [dict(r, composite=s) for r, s in zip(rows, scores)]
    if scores[0] is not None:
        for r in out:
            r["composite_rank"] = 1 + sum(1 for o in out if o["composite"] > r["composite"] + 1e-12)
    else:
        for r in out:
            r["composite_rank"] = None
    higher_q = directions.get(quality, higher_is_better(quality))
    for r, qr in zip(out, quality_ranks(out, quality, higher_q)):
        r["quality_rank"] = qr
    if by == "composite":
        out.sort(key=lambda r: -r["composite"])
        for r in out:
            r["rank"] = r["composite_rank"]
        return out
    higher_s = directions.get(speed, higher_is_better(speed) if speed else True)

    def speed_key(r):
        v = r.get(speed) if speed else None
        return float("inf") if v is None else (-v if higher_s else v)

    out.sort(key=lambda r: (r["quality_rank"], speed_key(r), -r[quality] if higher_q else r[quality]))
    for r in out:
        r["rank"] = r["quality_rank"]
    return out


def pareto_front(quality: Sequence[float], latency: Sequence[float]) -> list[int]:
    """Indices of the points no other point dominates (quality >= and latency <=, one strictly), by latency."""
    q, lat = np.asarray(quality, dtype=float), np.asarray(latency, dtype=float)
    front = []
    for i in range(len(q)):
        dominated = np.any((q >= q[i]) & (lat <= lat[i]) & ((q > q[i]) | (lat < lat[i])))
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (lat[i], -q[i]))

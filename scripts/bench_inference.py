"""CPU inference throughput, latency, memory and F1: transformers pipeline() vs affectlab's predictor.

    python scripts/bench_inference.py [--model outputs/goemotions_minilm_demo] [--threads 2] [--json out.json]

On GoEmotions validation with the `make demo` model (a short run of its recipe is trained when it is absent),
in one run, each backend in a fresh process: `pipeline()` at its default batch size, our length-sorted
token-budget predictor on PyTorch fp32, on ONNX Runtime fp32 and int8 (`affectlab export --quantize int8`, done
here when the export is missing or stale; `onnx-int8-blk`: the export's other int8 scheme, `--int8_scheme
blockwise`), and PyTorch dynamic int8. Prints samples/s batched and at batch 1,
p50/p99 batch-1 latency, peak RSS, macro-F1 with the model's saved thresholds, agreement with PyTorch fp32, the
ratios and the targets (`affectlab.inference_bench`). Timings on a shared machine are noisy: compare the
ratios within one run and check the load average printed with them.
"""

import argparse
import functools

from affectlab.inference_bench import BACKENDS, InferenceBenchConfig, inference_report, run_inference_bench


def main(argv=None) -> dict:
    d = InferenceBenchConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=d.model)
    parser.add_argument("--onnx_dir", default=None, help="default: <model>-onnx")
    parser.add_argument("--backends", default=",".join(BACKENDS), help=f"comma-separated subset of {BACKENDS}")
    for name in ("rows", "threads", "max_tokens", "batch_size"):
        parser.add_argument(f"--{name}", type=int, default=getattr(d, name))
    for name in ("latency_rows", "repeats", "short_train_rows"):
        parser.add_argument(f"--{name}", type=int, default=getattr(d, name))
    parser.add_argument("--workdir", default=d.workdir)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    json_path = vars(args).pop("json")
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        from affectlab.errors import ArgumentError

        raise ArgumentError("backends", f"unknown {unknown}; choose from {BACKENDS}")
    cfg = InferenceBenchConfig(**{**vars(args), "backends": backends})
    result = run_inference_bench(cfg, log=functools.partial(print, flush=True))
    print(inference_report(result), flush=True)
    if json_path:
        from affectlab.io import atomic_write_json

        atomic_write_json(json_path, result)
    return result


if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(lambda: main())

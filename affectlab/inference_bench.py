"""CPU inference benchmark behind `make bench-inference` (`scripts/bench_inference.py`).

One run, GoEmotions validation, the `make demo` model (`outputs/goemotions_minilm_demo`; when it is absent a
short MiniLM run of the same recipe is trained first, see `ensure_model`), each backend in its own fresh process
(so its peak RSS is its own and no runtime warms another's caches):

    pipeline      transformers `pipeline(model=..., trust_remote_code=True)` at its default batch size (the
                  thresholded multi-label pipeline the run ships), one text after another
    torch-fp32    `affectlab.inference.TextClassifier`, PyTorch fp32: length-sorted batches under a token budget,
                  linear layers through oneDNN where that is faster (`onednn_by_default`: AMD x86 CPUs)
    torch-fp32-stock  the same predictor on torch's stock kernels (MKL; `onednn=False`)
    onnx-fp32     the same predictor on ONNX Runtime, `affectlab export` fp32 graph (fused for CPU)
    onnx-int8     the same predictor on the export's int8 graph (the default `dynamic` scheme: ONNX Runtime
                  dynamic quantization of the matmuls and the attention's Q/K/V projection, one activation scale per
                  batch tensor, the first token apart) with the export's calibrated guard: rows within its logit
                  margin of a decision are scored again by the fp32 graph (`affectlab.inference.Int8Guard`)
    onnx-int8-pure  the same int8 graph without the guard
    onnx-int8-blk the same predictor on the other int8 scheme, `--int8_scheme blockwise` (ONNX Runtime
                  `MatMulNBits`, int8 weights and per-token int8 activations in blocks of 32 features), written
                  into the bench's workdir
    torch-int8    PyTorch dynamic int8 (`torch.ao.quantization.quantize_dynamic` of the Linear layers), for
                  comparison with ONNX Runtime's int8

Per backend: samples/s over every validation row (the best of `repeats` passes; pipeline: one pass) and at
batch 1, p50 / p99 batch-1 latency, peak RSS, macro-F1 with the model's saved thresholds, and the share of rows
whose label set equals PyTorch fp32's. The report prints the table, the ratios and the issue's targets (int8:
>= 2.5x our fp32 predictor batched, macro-F1 within 0.005 of fp32, the same label set as fp32 on >= 99% of
rows, batch-1 p50 <= 3 ms).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEMO_MODEL = "outputs/goemotions_minilm_demo"
DEMO_RECIPE = "recipes/goemotions_minilm_demo.yaml"
BACKENDS = ("pipeline", "torch-fp32", "torch-fp32-stock", "onnx-fp32", "onnx-int8", "onnx-int8-pure", "onnx-int8-blk",
            "torch-int8")
TARGETS = {"batched_vs_pipeline": 4.0, "int8_vs_torch_fp32": 2.5, "int8_macro_f1_drop": 0.005, "int8_p50_ms": 3.0,
           "int8_same_label_sets": 0.99}
OTHER_INT8_FILE = "model_quantized_blockwise.onnx"  # in the workdir


@dataclass
class InferenceBenchConfig:
    model: str = DEMO_MODEL
    onnx_dir: str | None = None          # default: <model>-onnx, exported (with int8) when absent
    backends: tuple[str, ...] = BACKENDS
    rows: int | None = None              # validation rows (None: all)
    latency_rows: int = 300              # batch-1 calls timed per backend
    repeats: int = 2                     # batched passes per backend (the best counts)
    threads: int | None = None           # intra-op threads (None: the physical cores, as the runtimes do)
    max_tokens: int | None = None        # predictor token budget (None: its default)
    batch_size: int | None = None        # predictor rows per batch (None: its default)
    short_train_rows: int = 8000         # the short run trained when `model` is the absent demo model
    workdir: str = "outputs/bench_inference"
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------
# model preparation
# ---------------------------------------------------------------------------------------------------------
def ensure_model(cfg: InferenceBenchConfig, log=print) -> str:
    """The model to measure: `cfg.model`, or, when that is the absent demo model, a short run of its recipe."""
    if (Path(cfg.model) / "config.json").is_file():
        return cfg.model
    if cfg.model != DEMO_MODEL:
        from affectlab.errors import ModelNotFoundError

        raise ModelNotFoundError(f"--model: {cfg.model} has no config.json")
    short = Path(cfg.workdir) / "minilm_short"
    if (short / "config.json").is_file():
        log(f"{DEMO_MODEL} not found (`make demo` trains it, about 10 minutes); using the short run in {short}")
        return str(short)
    log(f"{DEMO_MODEL} not found (`make demo` trains it, about 10 minutes); training a short run of "
        f"{DEMO_RECIPE} on {cfg.short_train_rows} rows into {short} ...")
    cmd = [sys.executable, "-m", "affectlab.cli", "train", "classifier", "--config", DEMO_RECIPE,
           "--output_dir", str(short), "--max_train_samples", str(cfg.short_train_rows),
           "--results_location", str(Path(cfg.workdir) / "results")]
    subprocess.run(cmd, check=True)
    return str(short)


def ensure_onnx(model: str, onnx_dir: str | None, log=print) -> str:
    """The model's ONNX export with int8 (`<model>-onnx`), exported again when missing or older than the model."""
    out = Path(onnx_dir or f"{model.rstrip('/')}-onnx")
    config = out / "config.json"
    weights = [p for p in Path(model).glob("*.safetensors")] + [Path(model) / "config.json"]
    fresh = config.is_file() and all(config.stat().st_mtime >= p.stat().st_mtime for p in weights if p.exists())
    quantization = json.loads(config.read_text(encoding="utf-8")).get("onnx", {}).get("quantization") or {} \
        if config.is_file() else {}
    from affectlab.export import DEFAULT_INT8_SCHEME
    from affectlab.inference import GUARD_KEY

    guarded = config.is_file() and bool(json.loads(config.read_text(encoding="utf-8"))["onnx"].get(GUARD_KEY))
    if fresh and guarded and quantization.get("scheme") == DEFAULT_INT8_SCHEME and "quantized_attention" in quantization:
        return str(out)
    from affectlab.export import export

    export(model, out, quantize="int8", log=log)
    return str(out)


def ensure_blockwise_int8(onnx_dir: str, workdir: str, log=print) -> str:
    """The `blockwise` int8 scheme of the export's fp32 graph, in `workdir` (made again when older than the graph)."""
    from affectlab.export import FP32_FILE, PADDING_MASK_ONLY, _quiet, encoder_type, quantize_int8, read_config

    source, target = Path(onnx_dir) / FP32_FILE, Path(workdir) / OTHER_INT8_FILE
    if not target.is_file() or target.stat().st_mtime < source.stat().st_mtime:
        log(f"quantizing {source} with the blockwise int8 scheme into {target} ...")
        with _quiet():
            quantize_int8(source, target, scheme="blockwise",
                          split_first_token=encoder_type(read_config(Path(onnx_dir))) in PADDING_MASK_ONLY)
    return str(target)


# ---------------------------------------------------------------------------------------------------------
# one backend, in a child process
# ---------------------------------------------------------------------------------------------------------
def validation(rows: int | None):
    from affectlab.data import multi_hot
    from dataset_builders import build_dataset

    val = build_dataset("goemotions")["validation"]
    if rows:
        val = val.select(range(min(rows, len(val))))
    return list(val["text"]), multi_hot(val["labels"], 28).astype(int)


def _label_matrix(label_sets, names):
    import numpy as np

    index = {n: j for j, n in enumerate(names)}
    out = np.zeros((len(label_sets), len(names)), dtype=int)
    for i, labels in enumerate(label_sets):
        out[i, [index[n] for n in labels]] = 1
    return out


def peak_rss_mib() -> float:
    """This process's peak resident memory: VmHWM (getrusage's ru_maxrss keeps the parent's peak across exec)."""
    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_backend(name: str, model: str, onnx_dir: str, cfg: dict) -> dict:
    """Throughput, latency, F1 and peak RSS of one backend (run in a fresh process by `run_backend`)."""
    import numpy as np

    from affectlab.metrics import metric_module

    threads = cfg.get("threads")
    texts, refs = validation(cfg.get("rows"))
    report = metric_module("multilabel_f1").multilabel_report
    out = {"backend": name, "rows": len(texts)}
    if name == "pipeline":
        import torch
        from transformers import pipeline

        if threads:
            torch.set_num_threads(threads)
        pipe = pipeline(model=model, trust_remote_code=True, device="cpu")
        names = [pipe.model.config.id2label[i] for i in range(pipe.model.config.num_labels)]
        pipe(texts[:8])
        start = time.perf_counter()
        results = pipe(texts)
        out["batched_sps"] = len(texts) / (time.perf_counter() - start)
        label_sets = [[d["label"] for d in row] for row in results]

        def one(text):
            return pipe(text)
    else:
        from affectlab.inference import TextClassifier

        kwargs = {k: cfg[k] for k in ("max_tokens", "batch_size") if cfg.get(k)}
        if name in ("torch-fp32", "torch-fp32-stock", "torch-int8"):
            clf = TextClassifier.from_pretrained(model, num_threads=threads, onednn=None if name == "torch-fp32" else False,
                                                 **kwargs)
            out["onednn_linears"] = clf.backend.onednn_linears
            if name == "torch-int8":
                import warnings

                import torch

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated (torchao replaces it)
                    quantized = torch.ao.quantization.quantize_dynamic(clf.model, {torch.nn.Linear}, dtype=torch.qint8)
                clf = TextClassifier(quantized, clf.tokenizer, config=clf.model.config, **kwargs)
        elif name == "onnx-int8-blk":
            from transformers import AutoTokenizer

            from affectlab.inference import OnnxBackend, read_config

            backend = OnnxBackend.load(cfg["workdir"], OTHER_INT8_FILE, threads)
            clf = TextClassifier(backend, AutoTokenizer.from_pretrained(onnx_dir), config=read_config(onnx_dir),
                                 **kwargs)
        else:
            file = "onnx/model.onnx" if name == "onnx-fp32" else "onnx/model_quantized.onnx"
            clf = TextClassifier.from_pretrained(onnx_dir, backend="onnx", onnx_file=file, num_threads=threads,
                                                 int8_guard=name == "onnx-int8", **kwargs)
            if name == "onnx-int8" and clf.guard is None:
                raise RuntimeError(f"{onnx_dir} has no calibrated int8 guard")
        names = clf.labels
        clf.predict_proba(texts[:256])  # warm-up
        best, probs = 0.0, None
        for _ in range(max(1, cfg.get("repeats", 1))):
            start = time.perf_counter()
            probs = clf.predict_proba(texts)
            best = max(best, len(texts) / (time.perf_counter() - start))
        out["batched_sps"] = best
        label_sets = clf.spec.decide(probs)
        if clf.guard is not None:
            out["guard_margin"], out["rechecked_share"] = clf.guard.margin, clf.guard.recheck_rate

        def one(text):
            return clf.predict_proba([text])
    latencies = []
    for text in texts[:cfg.get("latency_rows", 300)]:
        start = time.perf_counter()
        one(text)
        latencies.append(time.perf_counter() - start)
    lat = np.asarray(latencies) * 1e3
    out.update(batch1_sps=1e3 / lat.mean(), p50_ms=float(np.percentile(lat, 50)), p99_ms=float(np.percentile(lat, 99)),
               macro_f1=float(report(_label_matrix(label_sets, names).astype(float), refs, threshold=0.5)["macro_f1"]),
               peak_rss_mib=peak_rss_mib(), label_sets=label_sets)
    return out


def run_backend(name: str, model: str, onnx_dir: str, cfg: InferenceBenchConfig) -> dict:
    """`measure_backend` in a fresh interpreter (thread settings before torch / ONNX Runtime load)."""
    options = {k: v for k, v in asdict(cfg).items() if k in ("threads", "rows", "latency_rows", "repeats",
                                                              "max_tokens", "batch_size", "workdir")}
    env = dict(os.environ)
    if cfg.threads:
        env["OMP_NUM_THREADS"] = str(cfg.threads)
    out_file = Path(cfg.workdir) / f"{name}.json"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    code = ("import json, sys; from affectlab.inference_bench import measure_backend; "
            f"r = measure_backend({name!r}, {model!r}, {onnx_dir!r}, {options!r}); "
            f"open({str(out_file)!r}, 'w').write(json.dumps(r))")
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    return json.loads(out_file.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------------
# the run and its report
# ---------------------------------------------------------------------------------------------------------
def run_inference_bench(cfg: InferenceBenchConfig, log=print) -> dict:
    model = ensure_model(cfg, log)
    onnx_dir = ensure_onnx(model, cfg.onnx_dir, log)
    if "onnx-int8-blk" in cfg.backends:
        ensure_blockwise_int8(onnx_dir, cfg.workdir, log)
    load = os.getloadavg()
    log(f"model {model} (ONNX: {onnx_dir}); threads {cfg.threads or 'runtime default'}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    results, failed = {}, []
    for name in cfg.backends:
        log(f"measuring {name} ...")
        try:
            results[name] = run_backend(name, model, onnx_dir, cfg)
        except subprocess.CalledProcessError as err:  # one backend failing (e.g. torch.ao gone) leaves the others
            log(f"{name} failed (exit code {err.returncode}); left out of the table")
            failed.append(name)
    reference = results.get("torch-fp32", {}).get("label_sets")
    for r in results.values():
        sets = r.pop("label_sets")
        if reference is not None:
            r["same_labels_as_torch_fp32"] = sum(sorted(a) == sorted(b) for a, b in zip(sets, reference)) / len(sets)
    return {"model": model, "onnx_dir": onnx_dir, "threads": cfg.threads, "cpu_count": os.cpu_count(),
            "load_average_start": load, "load_average_end": os.getloadavg(), "results": results,
            "failed": failed, "ratios": ratios(results)}


def ratios(results: dict) -> dict:
    def r(a, b, key="batched_sps"):
        return results[a][key] / results[b][key] if a in results and b in results else None

    out = {f"{name}_vs_pipeline": r(name, "pipeline") for name in results if name != "pipeline"}
    out.update({f"{name}_vs_torch_fp32": r(name, "torch-fp32") for name in results
                if name not in ("torch-fp32", "pipeline")})
    out.update({f"{name}_vs_torch_fp32_stock": r(name, "torch-fp32-stock") for name in results
                if name.startswith("onnx-int8")})
    out["batch1_int8_vs_torch_fp32"] = r("onnx-int8", "torch-fp32", "batch1_sps")
    if "onnx-int8" in results and "torch-fp32" in results:
        out["int8_macro_f1_drop"] = results["torch-fp32"]["macro_f1"] - results["onnx-int8"]["macro_f1"]
    return {k: v for k, v in out.items() if v is not None}


def second_look(row: dict) -> str:
    """The share of rows the int8 guard scored again in fp32 ('' for the backends without a guard)."""
    share = row.get("rechecked_share")
    return "" if share is None else f"{100 * share:.1f}%"


def inference_report(result: dict) -> str:
    res, rat = result["results"], result["ratios"]
    head = (f"{'backend':<13} {'batched/s':>10} {'batch-1/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'peak RSS':>9} "
            f"{'macro-F1':>9} {'= fp32':>8} {'fp32 2nd look':>13}")
    lines = ["", f"GoEmotions validation ({next(iter(res.values()))['rows']} rows), model {result['model']}, "
                 f"threads {result['threads'] or 'default'} of {result['cpu_count']} CPUs, load average "
                 f"{result['load_average_start'][0]:.2f} -> {result['load_average_end'][0]:.2f}", head]
    for name, r in res.items():
        same = r.get("same_labels_as_torch_fp32")
        lines.append(f"{name:<13} {r['batched_sps']:>10.1f} {r['batch1_sps']:>10.1f} {r['p50_ms']:>7.2f} "
                     f"{r['p99_ms']:>7.2f} {r['peak_rss_mib']:>6.0f}MiB {r['macro_f1']:>9.4f} "
                     f"{'' if same is None else f'{100 * same:.2f}%':>8} {second_look(r):>13}")
    lines.append("")
    lines += [f"{k.replace('_', ' ')}: " + (f"{v:+.4f}" if "f1" in k else f"{v:.2f}x") for k, v in rat.items()]
    lines.append("")

    def check(ok, text):
        return f"[{'PASS' if ok else 'FAIL'}] {text}"

    if "torch-fp32_vs_pipeline" in rat:
        best = max(v for k, v in rat.items() if k.endswith("_vs_pipeline"))
        lines.append(check(rat["torch-fp32_vs_pipeline"] >= TARGETS["batched_vs_pipeline"],
                           f"batched predictor (PyTorch fp32) >= {TARGETS['batched_vs_pipeline']:.0f}x pipeline(): "
                           f"{rat['torch-fp32_vs_pipeline']:.2f}x (best backend {best:.2f}x)"))
    for name in ("onnx-int8", "onnx-int8-pure"):
        for key, baseline in (("torch_fp32_stock", "our PyTorch fp32 predictor on torch's stock kernels"),
                              ("torch_fp32", "our PyTorch fp32 predictor with oneDNN linears (its default here)")):
            if f"{name}_vs_{key}" in rat:
                lines.append(check(rat[f"{name}_vs_{key}"] >= TARGETS["int8_vs_torch_fp32"],
                                   f"{name} >= {TARGETS['int8_vs_torch_fp32']}x {baseline}: "
                                   f"{rat[f'{name}_vs_{key}']:.2f}x"))
    if "int8_macro_f1_drop" in rat:
        lines.append(check(abs(rat["int8_macro_f1_drop"]) <= TARGETS["int8_macro_f1_drop"],
                           f"int8 macro-F1 within {TARGETS['int8_macro_f1_drop']} of fp32: "
                           f"{res['onnx-int8']['macro_f1']:.4f} vs {res['torch-fp32']['macro_f1']:.4f}"))
    for name in ("onnx-int8", "onnx-int8-pure"):
        same = res.get(name, {}).get("same_labels_as_torch_fp32")
        if same is not None:
            guard = res[name].get("rechecked_share")
            lines.append(check(same >= TARGETS["int8_same_label_sets"],
                               f"{name} label sets equal to PyTorch fp32's on >= "
                               f"{100 * TARGETS['int8_same_label_sets']:.0f}% of rows: {100 * same:.2f}%"
                               + (f" (guard: {100 * guard:.1f}% of rows scored again in fp32)" if guard is not None
                                  else "")))
    if "onnx-int8" in res:
        lines.append(check(res["onnx-int8"]["p50_ms"] <= TARGETS["int8_p50_ms"],
                           f"batch-1 p50 <= {TARGETS['int8_p50_ms']:.0f} ms (int8): {res['onnx-int8']['p50_ms']:.2f} ms"))
    return "\n".join(lines)

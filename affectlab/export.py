"""`affectlab export`: a trained classifier, NLI or regression model as a Hub-ready ONNX folder (optionally int8).

    affectlab export --model outputs/goemotions_minilm_demo --output_dir outputs/goemotions_minilm_demo-onnx \\
        --format onnx --quantize int8

The model (a folder or a Hub id; custom-code models such as `custom_models/regression_head` and
`custom_models/gemma_encoder` with `--trust_remote_code`) is exported with transformers' `OnnxExporter`
(`torch.export` -> ONNX, dynamic batch and sequence axes) with eager attention, so ONNX Runtime's CPU fusions
turn every layer into its fused `Attention` / `SkipLayerNormalization` / `BiasGelu` kernels; in models that pool
the first token ([CLS]), the last layer's output projection and feed-forward then run on that token only
(`first_token_tail`, exact). `--quantize int8` adds an int8 graph, by default ONNX Runtime's `quantize_dynamic`
(`--int8_scheme dynamic`: per-channel int8 weights of the matmuls over weights and of the fused attention's Q/K/V
projection (`QAttention`), one uint8 activation scale per batch tensor, the first token quantized apart; the
[CLS]-only tail, softmax, pooler and classifier stay fp32; see `quantize_int8`), or with `--int8_scheme
blockwise` ONNX Runtime's `MatMulNBits` at 8 bits: int8 weights with one scale per output channel and block of 32
input features, and each token's activations quantized to int8 per block of 32 features at run time
(`accuracy_level` 4).

The int8 guard. Rounding to int8 moves logits by ~0.01-0.07; on a model whose probabilities crowd its tuned
thresholds (the ASL-trained demo model: 6% of validation rows have a label within 0.01 logits of its threshold)
that changes ~4% of label sets. So an int8 export of a classifier also carries `config.onnx["int8_guard"]`: a logit
margin calibrated on `--calibration_rows` (2,000) rows of the model's *training* split (`--calibration_dataset`,
default the dataset its eval_results.json names; `none`: no guard) as the smallest margin with which int8 plus an
fp32 second look at every row within the margin of a decision gives the fp32 graph's decisions on `--guard_target`
(99.5%) of them (`calibrate_int8_guard`). `TextClassifier` / `affectlab predict` apply it
(`affectlab.inference.Int8Guard`); `pipeline()` through `modeling_onnx.py` runs the default graph alone.

`make bench-inference` (2-core AMD EPYC with AVX-512 VNNI, onnxruntime 1.32, GoEmotions validation, the `make demo`
model, 2026-12-07, load average 1.35): batched samples/s, `pipeline()` 104.8; our PyTorch fp32 predictor 588.6 with
oneDNN linears (its default on this CPU), 342.0 on torch's stock kernels; ONNX fp32 627.8; int8 with the guard
870.0 (12.2% of rows scored again in fp32; 2.54x the stock-kernel predictor, 1.48x the oneDNN one), int8 alone
1,137.1 (3.33x / 1.93x), blockwise 602.4; batch-1 p50 7.11 / 11.14 / 3.59 / 2.77 / 2.94 / 3.20 ms; the same label
sets as PyTorch fp32 on 100% (fp32 graph) / 99.63% (guarded) / 96.33% (int8 alone) / 99.13% (blockwise) of rows.

Earlier measurements of the int8 schemes alone (before QAttention and the guard), GoEmotions validation (5,426
rows), int8 graph vs the fp32 graph (which gives PyTorch fp32's label set on every row), saved thresholds:

    model (demo recipe)              scheme                      same label sets   macro-F1 change
    full train split (14:18 run)     the export (dynamic, bench)   96.74%              -0.0004
                                     blockwise, the same (bench)   99.13%              +0.0013
    full train split (09:43 run)     dynamic, first token apart   97.40% (141 rows)   -0.0040
                                     blockwise, block 32           99.23% (42 rows)    -0.0003
                                     the export: blockwise 32 and
                                     the [CLS]-only tail fp32      99.30% (38 rows)    -0.0004
                                     blockwise, block 16           99.47%              -0.0007
                                     blockwise, block 64           98.91%              -0.0012
                                     int8 weights only (fp32 act.) 99.61%              -0.0002
    16,000 train rows                dynamic, first token apart   94.69% (288 rows)   -0.0005
                                     the export (dynamic and the
                                     [CLS]-only tail fp32, bench)  95.08%              -0.0009
                                     blockwise, the same (bench)   98.27%              -0.0008
                                     blockwise, block 32           98.12% (102 rows)   -0.00003
                                     int8 weights only (fp32 act.) 98.71%              -0.0012
                                     feed-forward outputs kept fp32 98.82%             -0.0001
                                     last layer kept fp32 (= the
                                     export's [CLS]-only tail)     98.27%              -0.0008

No scheme alone reached both 99% and a speed-up: the blockwise one (99.13%) runs no faster than fp32 here, and no
single matmul dominates the error (keeping any one layer, or all feed-forward outputs, in fp32 recovers at most 0.7
points). Hence the guard: the fast dynamic graph where its decision cannot change, fp32 where it could.

The folder holds everything to use the model and nothing to train it:

    onnx/model.onnx               fp32 graph (fused for CPU)
    onnx/model_quantized.onnx     int8 graph (with --quantize int8; then the folder's default)
    config.json                   the model's config (labels, `label_thresholds`, `problem_type`) + `onnx`
                                  (files, default, inputs, checks) + `auto_map` -> modeling_onnx.py
    modeling_onnx.py              `OnnxModelForSequenceClassification` (ONNX Runtime behind transformers' API)
    multilabel_pipeline.py        multi-label models: the thresholded text-classification pipeline
    configuration_*.py            custom-code models: their config class
    tokenizer files, README.md (+ an ONNX section), eval_results.json, label_set.json, personas.json

and loads with `TextClassifier.from_pretrained(folder_or_repo, backend="onnx")`,
`pipeline(model=folder, trust_remote_code=True)` (multi-label: the tuned thresholds applied) and
`AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)`. Every export is checked
before it is written: the ONNX logits against PyTorch's on sentences and sentence pairs (`config.onnx["checks"]`).
Push it with `affectlab push <folder> --repo <org>/<name> --extra 'onnx/*'` (the code files go by themselves).

"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from affectlab.errors import ArgumentError, ModelNotFoundError, UserError

FP32_FILE = "onnx/model.onnx"
INT8_FILE = "onnx/model_quantized.onnx"
PROBLEM_TYPES = ("multi_label_classification", "single_label_classification", "regression")
COPIED_FILES = ("README.md", "eval_results.json", "label_set.json", "personas.json")
FP32_TOLERANCE = 1e-3  # max |logit difference| ONNX fp32 vs PyTorch fp32 before an export is refused
EXTERNAL_DATA_BYTES = 1_800_000_000
# Bidirectional encoders whose attention bias is the padding mask and nothing else (no windows, no relative bias
# in the mask): their fused attention takes the raw mask (`prepare_attention`).
PADDING_MASK_ONLY = ("bert", "roberta", "xlm-roberta", "distilbert", "electra", "camembert", "mpnet", "modernbert")  # larger graphs keep their weights in `<file>_data` (protobuf's 2 GB limit)

# Sentences (and pairs) the export is checked on: short and long, plain and emotional.
CHECK_TEXTS = [
    "thank you so much, this made my day!",
    "I can't believe they did that to us. Absolutely furious.",
    "ok",
    "I'm not sure how I feel about the new policy; it seems fine but I worry about what comes next for my team.",
    "Wow, that was unexpected!! 😮",
    "I miss her every single day.",
    "This is the worst service I have ever had, and I have been a customer for more than ten years, "
    "through three address changes and two billing disputes that were never resolved to my satisfaction.",
    "lol same",
    "Could you explain why this happens?",
    "I'm so proud of you, you worked so hard for this.",
    "ugh, Mondays.",
    "I have not slept properly in weeks and nothing I used to enjoy feels worth doing anymore.",
]
CHECK_PAIRS = ["Depressed mood most of the day, nearly every day.", "Markedly diminished interest or pleasure.",
               "Insomnia or hypersomnia nearly every day.", "Feelings of worthlessness or excessive guilt."]


class ExportError(UserError):
    """The model cannot be exported as asked (wrong kind of model, missing packages, a failed check)."""


# ---------------------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------------------
def source_folder(model: str, revision: str | None = None) -> Path:
    """A local folder with the model's config, code and card files (a Hub model's small files are downloaded)."""
    from affectlab.paths import resolve_model_name

    model = resolve_model_name(model)
    if Path(model).is_dir():
        return Path(model)
    if Path(model).exists() or model.startswith((".", "/")) or model.count("/") > 1:
        raise ModelNotFoundError(f"--model: {model} is not a model folder")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, revision=revision,
                                      allow_patterns=["*.json", "*.py", "*.txt", "*.model", "README.md", "*.jinja"]))
    except Exception as err:  # noqa: BLE001 - offline, missing repo, gated: one line for the user
        raise ModelNotFoundError(f"--model: {model} is neither a folder nor a Hub model that can be had "
                                 f"({type(err).__name__})") from None


def read_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        hint = " (a PEFT adapter: merge it first, see affectlab.peft_utils.merge_for_inference)" \
            if (folder / "adapter_config.json").is_file() else ""
        raise ModelNotFoundError(f"--model: {folder} has no config.json{hint}")
    return json.loads(path.read_text(encoding="utf-8"))


def check_exportable(config: dict, trust_remote_code: bool) -> str:
    """The model's problem type, or an ExportError saying why it is not a classifier / NLI / regression model."""
    problem = config.get("problem_type")
    if problem not in PROBLEM_TYPES:
        if config.get("id2label") and problem is None:
            problem = "single_label_classification"
        else:
            raise ExportError(f"--model: only classifier, NLI and regression models export to ONNX "
                              f"(problem_type one of {PROBLEM_TYPES}); this config has problem_type={problem!r}")
    if config.get("auto_map") and not trust_remote_code:
        raise ArgumentError("trust_remote_code", "the model ships its own code (auto_map in config.json); "
                                                 "pass --trust_remote_code to export it")
    return problem


def encoder_type(config: dict) -> str | None:
    """The transformer's model_type (a custom head's encoder: `encoder_config.model_type`)."""
    inner = config.get("encoder_config") or config.get("text_config")
    return inner.get("model_type") if isinstance(inner, dict) and inner.get("model_type") else config.get("model_type")


def use_eager_attention(model) -> None:
    """Eager attention everywhere (nested encoders too): the form ONNX Runtime's CPU attention fusion matches."""
    from transformers import PreTrainedModel

    for module in model.modules():
        if isinstance(module, PreTrainedModel) and getattr(module.config, "_attn_implementation", None) != "eager":
            try:
                module.set_attn_implementation("eager")
            except Exception:  # noqa: BLE001 - a model without switchable attention exports as it is
                pass


def load_model(name_or_folder: str, trust_remote_code: bool, revision: str | None = None):
    """The PyTorch model (eager attention) and tokenizer from a folder or a Hub id (weights downloaded)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    kwargs = dict(trust_remote_code=trust_remote_code, revision=revision)
    tokenizer = AutoTokenizer.from_pretrained(name_or_folder, **kwargs)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(name_or_folder, attn_implementation="eager",
                                                                   **kwargs)
    except (ValueError, TypeError):
        model = AutoModelForSequenceClassification.from_pretrained(name_or_folder, **kwargs)
    use_eager_attention(model)
    return model.eval(), tokenizer


def forward_inputs(model) -> set[str]:
    params = inspect.signature(model.forward).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return {"input_ids", "attention_mask", "token_type_ids"}
    return set(params)


def encode(tokenizer, texts, pairs=None, names=None, max_length: int = 128) -> dict:
    enc = tokenizer(list(texts), list(pairs) if pairs is not None else None, padding=True, truncation=True,
                    max_length=max_length, return_tensors="np")
    keep = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc and (names is None or k in names)]
    return {k: enc[k].astype(np.int64) for k in keep}


# ---------------------------------------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------------------------------------
def require_onnx() -> None:
    missing = []
    for module in ("onnx", "onnxruntime", "onnxscript"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ExportError(f"--format onnx needs {', '.join(missing)}: pip install 'affectlab[onnx]'")


class _quiet:
    """Silence the exporter's per-op registration warnings and progress lines (errors still raise)."""

    def __enter__(self):
        self.levels = {name: logging.getLogger(name).level for name in (
            "", "torch.onnx", "torch.export", "torch._dynamo", "transformers.exporters", "onnxscript")}
        for name in self.levels:
            logging.getLogger(name).setLevel(logging.ERROR)
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.simplefilter("ignore")
        self.stdout = contextlib.redirect_stdout(io.StringIO())  # torch.onnx's progress lines
        self.stdout.__enter__()
        return self

    def __exit__(self, *exc):
        self.stdout.__exit__(*exc)
        self.warnings.__exit__(*exc)
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)


def export_graph(model, sample: dict, path: Path, fuse: bool = True, padding_mask_only: bool = False) -> dict:
    """Export `model` to `path` (dynamic batch / sequence axes); ONNX Runtime CPU fusions unless `fuse=False`."""
    import onnx_ir
    import torch
    from transformers.exporters import OnnxConfig, OnnxExporter
    from transformers.utils import logging as hf_logging

    inputs = {k: torch.from_numpy(v) for k, v in sample.items()}
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with _quiet(), torch.no_grad():
            try:
                exported = OnnxExporter().export(model, dict(inputs), config=OnnxConfig(
                    dynamic=True, ort_fusions="cpu" if fuse else None))
            except Exception:  # noqa: BLE001 - a fusion the graph trips over: the unfused graph still runs
                if not fuse:
                    raise
                fuse = False
                exported = OnnxExporter().export(model, dict(inputs), config=OnnxConfig(dynamic=True))
    finally:
        hf_logging.set_verbosity(verbosity)
    program = exported.program
    fold_weights(program)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = sum(v.const_value.nbytes for v in program.graph.initializers.values() if v.const_value is not None)
    if size > EXTERNAL_DATA_BYTES:
        onnx_ir.save(program, str(path), external_data=f"{path.name}_data")
    else:
        onnx_ir.save(program, str(path))
    rewritten = prepare_attention(path, padding_mask_only) if fuse else 0
    tail = first_token_tail(path) if fuse else 0
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    ops: dict[str, int] = {}
    for node in proto.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"exporter": "transformers.exporters.OnnxExporter", "ort_fusions": "cpu" if fuse else None,
            "inputs": [v.name for v in proto.graph.input], "outputs": [v.name for v in proto.graph.output],
            "opset": next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None),
            "attention_mask_index": rewritten, "first_token_tail": tail, "ops": dict(sorted(ops.items()))}


def fold_weights(program) -> None:
    """Fold constant subgraphs over weights (the fused attention's Q|K|V concatenation) into initializers, which
    the int8 quantizer needs; then drop what no longer feeds anything."""
    from onnx_ir.passes.common import RemoveUnusedNodesPass
    from onnxscript.optimizer import fold_constants

    fold_constants(program, input_size_limit=1 << 34, output_size_limit=1 << 34)
    RemoveUnusedNodesPass()(program)


def prepare_attention(path: Path, padding_mask_only: bool) -> int:
    """ONNX Runtime's fused `Attention` nodes in the form its fastest CPU kernels (and its int8 `QAttention`) take:
    equal Q/K/V sizes without the `qkv_hidden_sizes` attribute, and, for encoders whose attention bias is only the
    padding mask (`padding_mask_only`), the raw 2-D mask as `mask_index` instead of an additive bias computed in
    the graph. Returns how many nodes took the mask; the export check compares the result with PyTorch."""
    import onnx
    from onnx import TensorProto, helper

    proto = onnx.load(str(path), load_external_data=False)
    graph = proto.graph
    has_mask = any(i.name == "attention_mask" for i in graph.input)
    mask_index, rewritten = "attention_mask_index", 0
    for node in graph.node:
        if node.op_type != "Attention" or node.domain != "com.microsoft":
            continue
        sizes = [a for a in node.attribute if a.name == "qkv_hidden_sizes"]
        if sizes and len(set(sizes[0].ints)) == 1:
            node.attribute.remove(sizes[0])
        ins = list(node.input) + [""] * max(0, 6 - len(node.input))
        if padding_mask_only and has_mask and ins[5] and not ins[3] and not ins[4] and not any(ins[6:]):
            del node.input[:]
            node.input.extend([*ins[:3], mask_index])
            rewritten += 1
    if rewritten:
        graph.node.insert(0, helper.make_node("Cast", ["attention_mask"], [mask_index], to=TensorProto.INT32,
                                              name="attention_mask_index_cast"))
        remove_dead_nodes(graph)
    onnx.save(proto, str(path))
    return rewritten


PER_TOKEN_OPS = ("MatMul", "Add", "SkipLayerNormalization", "LayerNormalization", "SkipSimplifiedLayerNormalization",
                 "BiasGelu", "Gelu", "FastGelu")


def first_token_tail(path: Path) -> int:
    """Classifiers that pool the first token ([CLS], a `Gather` of index 0 on the sequence axis): the nodes between
    the last attention and that gather work token by token (projection, residual layer norms, feed-forward), so
    only the first token's row of them is ever used. Slice their inputs from outside to the first token (`[:, :1]`):
    the last layer's output projection and feed-forward then run on one token per text instead of all of them.
    Exact; the export check compares the logits with PyTorch's. Returns how many nodes now run on the first token
    (0: the graph has no such tail, left as it is)."""
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load(str(path), load_external_data=False)
    graph = proto.graph
    consts = {t.name for t in graph.initializer}
    index = {t.name: t for t in graph.initializer if len(t.dims) <= 1}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}

    def first_token_gather(node) -> bool:
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
        idx = index.get(node.input[1]) if len(node.input) > 1 else None
        return node.op_type == "Gather" and axis == 1 and idx is not None and \
            numpy_helper.to_array(idx).reshape(-1).tolist() == [0]

    gathers = [node for node in graph.node if first_token_gather(node)]
    if len(gathers) != 1:
        return 0
    gather, region = gathers[0], []
    members = {id(gathers[0])}
    for node in reversed(list(graph.node)):  # reverse topological order: consumers before producers
        if node.op_type not in PER_TOKEN_OPS or any(o in outputs for o in node.output) or (
                node.op_type == "MatMul" and node.input[1] not in consts):  # a product of two activations mixes tokens
            continue
        used = [c for o in node.output if o for c in consumers.get(o, [])]
        if used and all(id(c) in members for c in used):
            members.add(id(node))
            region.append(node)
    if not region or producer.get(gather.input[0]) not in region:
        return 0
    made = {o for node in region for o in node.output}
    boundary = sorted({i for node in region for i in node.input if i and i not in consts and i not in made})
    if not boundary or any(producer.get(t) is None or producer[t].output[0] != t or producer[t].op_type not in (
            "Attention", "SkipLayerNormalization", "LayerNormalization", "SkipSimplifiedLayerNormalization")
            for t in boundary):
        return 0
    sliced = {}
    for t in boundary:
        sliced[t] = f"{t}_first_token"
        graph.node.append(helper.make_node("Slice", [t, "first_token_0", "first_token_1", "first_token_1"],
                                           [sliced[t]], name=f"{t}_first_token_slice"))
    for node in region:
        for k, name in enumerate(node.input):
            if name in sliced:
                node.input[k] = sliced[name]
    graph.initializer.extend([numpy_helper.from_array(np.array([0], dtype=np.int64), "first_token_0"),
                              numpy_helper.from_array(np.array([1], dtype=np.int64), "first_token_1")])
    stale = [v for v in graph.value_info if v.name in made]
    for v in stale:  # their sequence axis is now 1
        graph.value_info.remove(v)
    ordered = topological(graph)
    del graph.node[:]
    graph.node.extend(ordered)
    onnx.save(proto, str(path))
    return len(region)


def topological(graph) -> list:
    """The graph's nodes in an order where every input is made before it is used."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ExportError("the ONNX graph has a cycle or an input nothing makes")
        pending = rest
    return ordered


def remove_dead_nodes(graph) -> None:
    """Drop nodes (and initializers) nothing reachable from the graph outputs uses."""
    needed = {o.name for o in graph.output}
    live = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            live.append(node)
            needed.update(i for i in node.input if i)
    live.reverse()
    del graph.node[:]
    graph.node.extend(live)
    unused = [t for t in graph.initializer if t.name not in needed]
    for t in unused:
        graph.initializer.remove(t)


DYNAMIC_OP_TYPES = ("MatMul", "Attention")  # Attention -> QAttention: measured 1,038 -> 1,407 samples/s (demo model)
INT8_SCHEMES = ("dynamic", "blockwise")
DEFAULT_INT8_SCHEME = "dynamic"
INT8_BLOCK_SIZE = 32      # blockwise scheme: input features per weight / activation scale
INT8_ACCURACY_LEVEL = 4   # MatMulNBits accuracy_level 4: int8 activations, int8 x int8 dot products (VNNI)


def quantize_int8(source: Path, target: Path, scheme: str = DEFAULT_INT8_SCHEME, split_first_token: bool = False,
                  block_size: int = INT8_BLOCK_SIZE, keep_fp32: tuple[str, ...] = ()) -> dict:
    """The int8 graph of the fp32 graph at `source`, written to `target`; returns its `quantization` metadata.

    Both schemes quantize the matmuls over weights (the feed-forward layers and the attention output projection);
    `dynamic` also the fused attention's Q/K/V projection (`QAttention`; the softmax stays fp32), `blockwise` keeps
    the fused attention fp32; the pooler and classifier stay fp32 in both. `keep_fp32` names matmul nodes left in
    fp32.

    `dynamic` (default): `onnxruntime.quantization.quantize_dynamic` of `DYNAMIC_OP_TYPES`, int8 weights per
    output channel, activations uint8 with one scale per tensor computed from the whole batch at run time;
    `split_first_token` runs each matmul after a layer norm or a GELU twice (first token, the rest) so the first
    token's large activations get their own scale. The fast one (3.33x our stock-kernel PyTorch fp32 predictor
    batched, ONNX fp32 1.84x; module docstring).

    `blockwise`: ONNX Runtime's `MatMulNBits` with 8-bit weights, symmetric, one scale per output channel and block
    of `block_size` input features, run at `accuracy_level` 4: each token's activations are quantized to int8 per
    block of the same features at run time. A token's scale depends on its own activations only, so an outlier
    token ([CLS]) or feature no longer coarsens the rounding of every other one, and the result does not depend on
    the batch a text lands in: far fewer label sets change (module docstring), but on this CPU (AVX-512 VNNI,
    onnxruntime 1.32) it ran slower than the fp32 graph (1.85x vs 1.97x our PyTorch fp32 predictor), so it is
    not the default.
    """
    import onnx

    if scheme not in INT8_SCHEMES:
        raise ArgumentError("int8_scheme", f"must be one of {INT8_SCHEMES}, got {scheme!r}")
    with tempfile.TemporaryDirectory() as tmp:
        proto = onnx.load(str(source))
        # initializers' stale value_info trips the quantizer's shape inference when it transposes Gemm weights
        initializers = {init.name for init in proto.graph.initializer}
        kept = [info for info in proto.graph.value_info if info.name not in initializers]
        del proto.graph.value_info[:]
        proto.graph.value_info.extend(kept)
        unknown = sorted(set(keep_fp32) - set(weight_matmuls(proto.graph)))
        if unknown:
            raise ArgumentError("keep_fp32", f"not matmuls over a weight in {source}: {', '.join(unknown)}")
        # the last layer's matmuls that run on the first token only (`first_token_tail`) cost nothing in fp32
        keep_fp32 = tuple(dict.fromkeys([*keep_fp32, *first_token_matmuls(proto.graph)]))
        large = proto.ByteSize() > EXTERNAL_DATA_BYTES
        target.parent.mkdir(parents=True, exist_ok=True)
        if scheme == "blockwise":
            return quantize_blockwise(proto, target, block_size, keep_fp32, large)
        split = split_first_token_matmuls(proto, skip=set(keep_fp32)) if split_first_token else 0
        staged = Path(tmp) / "model.onnx"
        onnx.save(proto, str(staged), save_as_external_data=large)
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(staged), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=list(DYNAMIC_OP_TYPES), use_external_data_format=large,
                         nodes_to_exclude=list(keep_fp32),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        attention = sum(node.op_type == "QAttention" for node in onnx.load(str(target), load_external_data=False).graph.node)
    return {"scheme": "dynamic", "method": "onnxruntime.quantization.quantize_dynamic",
            "weights": "int8 per output channel",
            "activations": "uint8, dynamic per tensor" + (", first token apart" if split else ""),
            "quantized": "MatMul and the fused Attention's Q/K/V projection (QAttention; softmax fp32)",
            "quantized_attention": attention, "first_token_split_matmuls": split,
            "fp32_matmuls": sorted(keep_fp32)}


def first_token_matmuls(graph) -> list[str]:
    """Names of the weight matmuls downstream of a `first_token_tail` slice (they run on one token per text)."""
    tails = {o for node in graph.node if node.op_type == "Slice" and node.name.endswith("_first_token_slice")
             for o in node.output}
    weights, names = set(weight_matmuls(graph)), []
    for node in graph.node:  # topological order
        if any(i in tails for i in node.input):
            tails.update(node.output)
            if node.name in weights:
                names.append(node.name)
    return names


def weight_matmuls(graph) -> list[str]:
    """Names of the MatMul nodes whose second input is a 2-D weight initializer (what the schemes quantize)."""
    weights = {t.name: t for t in graph.initializer}
    return [node.name for node in graph.node if node.op_type == "MatMul" and len(node.input) == 2
            and node.input[1] in weights and len(weights[node.input[1]].dims) == 2]


def quantize_blockwise(proto, target: Path, block_size: int, keep_fp32, large: bool) -> dict:
    """`MatMulNBits` int8 (see `quantize_int8`) for every weight matmul of `proto` not in `keep_fp32`."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    for node in proto.graph.node:  # the quantizer tells nodes by name
        if not node.name:
            node.name = f"{node.op_type}_{id(node)}"
    logger = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, bits=8,
                                              accuracy_level=INT8_ACCURACY_LEVEL, op_types_to_quantize=("MatMul",))
        quantizer = MatMulNBitsQuantizer(proto, bits=8, block_size=block_size, is_symmetric=True,
                                         accuracy_level=INT8_ACCURACY_LEVEL, nodes_to_exclude=list(keep_fp32),
                                         op_types_to_quantize=("MatMul",), algo_config=config)
        quantizer.process()
        quantized = sum(node.op_type == "MatMulNBits" for node in quantizer.model.model.graph.node)
        quantizer.model.save_model_to_file(str(target), use_external_data_format=large)
    finally:
        logger.setLevel(level)
    return {"scheme": "blockwise", "method": "onnxruntime MatMulNBits (bits 8, accuracy_level 4)",
            "weights": f"int8 symmetric, one scale per output channel and block of {block_size} input features",
            "activations": f"int8 per token and block of {block_size} features, computed at run time",
            "block_size": block_size, "accuracy_level": INT8_ACCURACY_LEVEL, "quantized_matmuls": quantized,
            "quantized": "MatMul (attention, pooler and classifier fp32)", "fp32_matmuls": sorted(keep_fp32)}


SPLIT_AFTER = ("SkipLayerNormalization", "LayerNormalization", "SkipSimplifiedLayerNormalization", "BiasGelu", "Gelu",
               "FastGelu")


def split_first_token_matmuls(proto, skip=frozenset()) -> int:
    """Rewrite `Y = X @ W` (W an initializer, X of shape [batch, sequence, features] coming out of a layer norm or a
    GELU) as `Y = concat(X[:, :1] @ W, X[:, 1:] @ W)`: the same product, quantized with one activation scale per
    part. Returns how many matmuls were split."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = proto.graph
    weights = {t.name: t for t in graph.initializer}
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in [*graph.value_info, *graph.input, *graph.output]
             if v.type.tensor_type.HasField("shape")}
    producer = {out: node.op_type for node in graph.node for out in node.output}
    consts = {"split_first_token_0": 0, "split_first_token_1": 1, "split_first_token_end": 2 ** 62}
    count, nodes = 0, []
    for node in graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        # the matmuls after a layer norm or a GELU (where the first token's activations stand out); not the
        # attention output projection, whose input has no such outlier
        if weight is None or len(weight.dims) != 2 or ranks.get(node.input[0]) != 3 \
                or producer.get(node.input[0]) not in SPLIT_AFTER or node.name in skip:
            nodes.append(node)
            continue
        name, x, y = node.name or f"matmul_{count}", node.input[0], node.output[0]
        nodes += [
            helper.make_node("Slice", [x, "split_first_token_0", "split_first_token_1", "split_first_token_1"],
                             [f"{name}_first_in"], name=f"{name}_first_slice"),
            helper.make_node("Slice", [x, "split_first_token_1", "split_first_token_end", "split_first_token_1"],
                             [f"{name}_rest_in"], name=f"{name}_rest_slice"),
            helper.make_node("MatMul", [f"{name}_first_in", node.input[1]], [f"{name}_first_out"],
                             name=f"{name}_first"),
            helper.make_node("MatMul", [f"{name}_rest_in", node.input[1]], [f"{name}_rest_out"], name=f"{name}_rest"),
            helper.make_node("Concat", [f"{name}_first_out", f"{name}_rest_out"], [y], name=f"{name}_concat", axis=1),
        ]
        count += 1
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
        graph.initializer.extend(numpy_helper.from_array(np.array([v], dtype=np.int64), k) for k, v in consts.items())
    return count


GUARD_TARGET = 0.995       # share of calibration rows on which int8 + the fp32 second look must give fp32's decision
CALIBRATION_ROWS = 2000    # training rows the guard is calibrated on
CALIBRATION_SEED = 1337


def calibration_rows(source: Path, dataset: str | None, rows: int = CALIBRATION_ROWS, log=print):
    """(texts, text pairs or None, description) to calibrate the int8 guard on, or None (no guard).

    `dataset`: `none` (no guard), `NAME` or `NAME:SPLIT` (a registered builder, default split `train`), or None:
    the dataset the model's eval_results.json names, its `train` split. `rows` rows are drawn at random (seeded);
    a `criterion` column makes them pairs (NLI models). Never the split the model is evaluated on, unless asked."""
    if dataset is not None and dataset.lower() == "none":
        return None
    split = "train"
    config_name = None
    if dataset is None:
        info = source / "eval_results.json"
        named = json.loads(info.read_text(encoding="utf-8")).get("dataset", {}) if info.is_file() else {}
        dataset, config_name = named.get("name"), named.get("config")
        if not dataset:
            log("int8 guard: not calibrated (the model names no dataset; give --calibration_dataset NAME)")
            return None
    else:
        dataset, _, given_split = dataset.partition(":")
        split = given_split or split
    from dataset_builders import REGISTRY, build_dataset

    if dataset not in REGISTRY:
        raise ArgumentError("calibration_dataset", f"unknown dataset {dataset!r}; registered: {sorted(REGISTRY)}")
    try:
        with _quiet():
            built = build_dataset(dataset, config=config_name)
    except Exception as err:  # noqa: BLE001 - no local copy and no Hub: export without a guard, said once
        log(f"int8 guard: not calibrated ({dataset} could not be built here: {type(err).__name__}: {err})")
        return None
    if split not in built:
        raise ArgumentError("calibration_dataset", f"{dataset} has no split {split!r} (splits: {list(built)})")
    data = built[split]
    if "text" not in data.column_names:
        log(f"int8 guard: not calibrated ({dataset} has no text column)")
        return None
    data = data.shuffle(seed=CALIBRATION_SEED).select(range(min(rows, len(data))))
    pairs = list(data["criterion"]) if "criterion" in data.column_names else None
    return list(data["text"]), pairs, f"{dataset}{'/' + config_name if config_name else ''} {split}, {len(data)} rows"


def calibrate_int8_guard(fp32, int8, logits_config: dict, tokenizer, texts, pairs=None, target: float = GUARD_TARGET,
                         max_length: int = 128) -> dict:
    """The smallest logit margin with which the int8 graph's decisions, scored again by the fp32 graph on every row
    within the margin of a decision (`affectlab.inference.Int8Guard`), equal the fp32 graph's on `target` of the
    calibration rows; `fp32` / `int8` are `OnnxBackend`s, batched as the predictor batches."""
    import math

    from affectlab.inference import TextClassifier

    def logits(backend):
        return TextClassifier(backend, tokenizer, max_length=max_length, config=logits_config).logits(texts, pairs)

    clf = TextClassifier(fp32, tokenizer, max_length=max_length, config=logits_config)
    reference, quantized = logits(fp32), logits(int8)
    spec = clf.spec
    if spec.multi_label:
        t = np.log(spec.thresholds / (1 - spec.thresholds))
        changed = ((reference >= t) != (quantized >= t)).any(-1)
    else:
        changed = reference.argmax(-1) != quantized.argmax(-1)
    distance = spec.decision_distance(quantized)
    n = len(texts)
    allowed = int(math.floor((1 - target) * n + 1e-9))     # changed rows the guard may leave unseen
    missed = np.sort(distance[changed])[::-1]                # the farthest changes are the hardest to catch
    if len(missed) <= allowed:
        margin = 0.0
    else:  # catch every changed row nearer than the (allowed+1)-th farthest one
        margin = float(np.nextafter(np.float32(missed[allowed]), np.float32(np.inf)))
    caught = changed & (distance >= margin)
    return {"logit_margin": margin, "target": target, "calibration_rows": n,
            "int8_same_decisions": float(1 - changed.mean()),
            "guarded_same_decisions": float(1 - caught.mean()),
            "rechecked_share": float((distance < margin).mean()),
            "max_abs_logit_diff": float(np.abs(reference - quantized).max())}


def compare(model, onnx_path: Path, tokenizer, input_names, problem: str) -> dict:
    """ONNX vs PyTorch on the check sentences and sentence pairs: max |logit diff| and the share of equal predictions."""
    import torch

    from affectlab.onnx_model import inference_session, onnx_feed

    session = inference_session(str(onnx_path))
    names = [i.name for i in session.get_inputs()]
    diffs, same = [], []
    n = len(CHECK_PAIRS)
    for texts, pairs in ((CHECK_TEXTS, None), (CHECK_TEXTS[:n], CHECK_PAIRS)):
        batch = encode(tokenizer, texts, pairs, input_names)
        with torch.no_grad():
            ref = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.float().numpy()
        got = session.run(None, onnx_feed(names, batch["input_ids"], batch.get("attention_mask"),
                                          batch.get("token_type_ids")))[0]
        diffs.append(float(np.abs(got - ref).max()))
        if problem == "multi_label_classification":
            same.extend(((got > 0) == (ref > 0)).all(-1).tolist())
        elif problem == "single_label_classification":
            same.extend((got.argmax(-1) == ref.argmax(-1)).tolist())
    out = {"max_abs_logit_diff": max(diffs), "rows": len(CHECK_TEXTS) + n}
    if same:
        out["same_prediction"] = float(np.mean(same))
    return out


# ---------------------------------------------------------------------------------------------------------
# the folder
# ---------------------------------------------------------------------------------------------------------
def modeling_source(config: dict) -> str:
    """`modeling_onnx.py`: affectlab.onnx_model, bound to the exported config's class (what the Auto classes check)."""
    from affectlab import onnx_model

    source = Path(onnx_model.__file__).read_text(encoding="utf-8")
    ref = (config.get("auto_map") or {}).get("AutoConfig")
    if ref and "--" not in ref:
        module, _, cls = ref.rpartition(".")
        binding = f"from .{module} import {cls} as _ExportedConfig  # noqa: E402"
    else:
        from transformers import AutoConfig

        cls = type(AutoConfig.for_model(config["model_type"])).__name__
        binding = f"from transformers import {cls} as _ExportedConfig  # noqa: E402"
    return (source.rstrip() + "\n\n\n# Written by `affectlab export`: the config class of the exported model.\n"
            + binding + "\n\nOnnxModelForSequenceClassification.config_class = _ExportedConfig\n")


def exported_config(config: dict, problem: str, onnx_meta: dict) -> dict:
    out = dict(config)
    auto_map = {k: v for k, v in (config.get("auto_map") or {}).items() if k == "AutoConfig"}
    for auto in ("AutoModel", "AutoModelForSequenceClassification"):
        auto_map[auto] = "modeling_onnx.OnnxModelForSequenceClassification"
    out["auto_map"] = auto_map
    out["architectures"] = ["OnnxModelForSequenceClassification"]
    out["problem_type"] = problem
    out["onnx"] = onnx_meta
    if problem == "multi_label_classification":
        from custom_models.multilabel_pipeline.multilabel_pipeline import CLASS, MODULE, TASK

        out.setdefault("custom_pipelines", {})[TASK] = {
            "impl": f"{MODULE}.{CLASS}", "pt": ["AutoModelForSequenceClassification"], "tf": [], "type": "text"}
    return out


def write_card(source: Path, target: Path, model_name: str, onnx_meta: dict) -> None:
    from huggingface_hub import ModelCard, ModelCardData

    card = ModelCard.load(source / "README.md") if (source / "README.md").is_file() else \
        ModelCard.from_template(ModelCardData(library_name="transformers"), model_id=Path(model_name).name)
    card.data.tags = sorted(set(card.data.tags or []) | {"onnx", "affectlab"})
    files = "\n".join(f"| `{path}` | {kind} |" for kind, path in onnx_meta["files"].items())
    checks = onnx_meta["checks"]
    guard = onnx_meta.get("int8_guard")
    guard_note = "" if not guard else (
        f"\nint8 guard: `TextClassifier` and `affectlab predict` score every row with the int8 graph and the rows whose "
        f"logits lie within {guard['logit_margin']:.4f} of a decision again with the fp32 graph, calibrated on "
        f"{guard['calibrated_on']}: the same decisions as fp32 on {100 * guard['guarded_same_decisions']:.2f}% of "
        f"them (int8 alone: {100 * guard['int8_same_decisions']:.2f}%), {100 * guard['rechecked_share']:.1f}% of rows "
        f"scored twice. `pipeline()` runs the int8 graph alone.\n")
    lines = [f"- {kind}: max |logit difference| vs PyTorch {c['max_abs_logit_diff']:.2g}"
             + (f", same prediction on {100 * c['same_prediction']:.0f}% of {c['rows']} check inputs"
                if "same_prediction" in c else "") for kind, c in checks.items()]
    card.text = card.text.rstrip() + f"""

## ONNX export

Exported from `{model_name}` with `affectlab export` (transformers' `OnnxExporter`, ONNX Runtime CPU fusions).
The default file is `{onnx_meta['default']}`.

| file | precision |
|---|---|
{files}

```python
from affectlab.inference import TextClassifier
clf = TextClassifier.from_pretrained("<this repo or folder>", backend="onnx")
clf.predict(["thank you so much!"])
# or with transformers alone (ONNX Runtime behind the model class in modeling_onnx.py)
from transformers import pipeline
pipeline(model="<this repo or folder>", trust_remote_code=True)("thank you so much!")
```

Checks at export time:
{chr(10).join(lines)}
{guard_note}"""
    card.save(target / "README.md")


def export(model: str, output_dir: str | Path, quantize: str | None = None, trust_remote_code: bool = False,
           revision: str | None = None, fuse: bool = True, int8_scheme: str = DEFAULT_INT8_SCHEME,
           calibration_dataset: str | None = None, calibration_rows_n: int = CALIBRATION_ROWS,
           guard_target: float = GUARD_TARGET, log=print) -> dict:
    """Export `model` to an ONNX folder at `output_dir`; returns `config.onnx` (files, default, inputs, checks)."""
    require_onnx()
    if quantize not in (None, "int8"):
        raise ArgumentError("quantize", f"must be int8 (or left out), got {quantize!r}")
    if int8_scheme not in INT8_SCHEMES:
        raise ArgumentError("int8_scheme", f"must be one of {INT8_SCHEMES}, got {int8_scheme!r}")
    source = source_folder(model, revision)
    config = read_config(source)
    problem = check_exportable(config, trust_remote_code)
    out = Path(output_dir)
    if out.resolve() == source.resolve():
        raise ArgumentError("output_dir", "must differ from the model folder")
    from affectlab.paths import resolve_model_name

    name = resolve_model_name(model)
    # the guard's calibration rows first: a bad --calibration_dataset is refused before anything is exported
    rows = calibration_rows(source, calibration_dataset, calibration_rows_n, log) \
        if quantize == "int8" and problem != "regression" else None
    torch_model, tokenizer = load_model(str(source) if Path(name).is_dir() else name, trust_remote_code, revision)
    input_names = forward_inputs(torch_model)
    sample = encode(tokenizer, CHECK_TEXTS[:2], None, input_names)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    staging.chmod(0o755)
    try:
        log(f"exporting {model} to ONNX ...")
        graph = export_graph(torch_model, sample, staging / FP32_FILE, fuse=fuse,
                             padding_mask_only=encoder_type(config) in PADDING_MASK_ONLY)
        checks = {"fp32": compare(torch_model, staging / FP32_FILE, tokenizer, input_names, problem)}
        if checks["fp32"]["max_abs_logit_diff"] > FP32_TOLERANCE:
            raise ExportError(f"the ONNX graph of {model} does not reproduce PyTorch (max |logit difference| "
                              f"{checks['fp32']['max_abs_logit_diff']:.3g} > {FP32_TOLERANCE}); try --no_fuse")
        files, quantization, guard = {"fp32": FP32_FILE}, None, None
        if quantize == "int8":
            log(f"quantizing to int8 ({int8_scheme} scheme) ...")
            with _quiet():
                quantization = quantize_int8(staging / FP32_FILE, staging / INT8_FILE, scheme=int8_scheme,
                                             split_first_token=encoder_type(config) in PADDING_MASK_ONLY)
            checks["int8"] = compare(torch_model, staging / INT8_FILE, tokenizer, input_names, problem)
            files["int8"] = INT8_FILE
            if rows is not None:
                from affectlab.inference import OnnxBackend
                from affectlab.onnx_model import inference_session

                texts, pairs, described = rows
                log(f"calibrating the int8 guard on {described} ...")
                guard = calibrate_int8_guard(
                    OnnxBackend(inference_session(str(staging / FP32_FILE))),
                    OnnxBackend(inference_session(str(staging / INT8_FILE))),
                    {**config, "problem_type": problem}, tokenizer, texts, pairs, target=guard_target)
                guard.update(int8_file=INT8_FILE, reference_file=FP32_FILE, calibrated_on=described)
        meta = {"default": files.get("int8", FP32_FILE), "files": files, "inputs": graph["inputs"],
                "first_token_tail": graph["first_token_tail"],
                "quantization": quantization,
                "outputs": graph["outputs"], "opset": graph["opset"], "exporter": graph["exporter"],
                "ort_fusions": graph["ort_fusions"], "source": str(model), "checks": checks}
        if guard is not None:
            from affectlab.inference import GUARD_KEY

            meta[GUARD_KEY] = guard
        (staging / "config.json").write_text(json.dumps(exported_config(config, problem, meta), indent=2,
                                                        sort_keys=True) + "\n", encoding="utf-8")
        (staging / "modeling_onnx.py").write_text(modeling_source(config), encoding="utf-8")
        for path in source.glob("*.py"):
            if path.name != "modeling_onnx.py":
                shutil.copyfile(path, staging / path.name)
        if problem == "multi_label_classification" and not (staging / "multilabel_pipeline.py").is_file():
            from custom_models.multilabel_pipeline import multilabel_pipeline

            shutil.copyfile(multilabel_pipeline.__file__, staging / "multilabel_pipeline.py")
        tokenizer.save_pretrained(str(staging))
        for name in COPIED_FILES[1:]:
            if (source / name).is_file():
                shutil.copyfile(source / name, staging / name)
        write_card(source, staging, str(model), meta)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    for kind, check in checks.items():
        same = f", same prediction {100 * check['same_prediction']:.1f}%" if "same_prediction" in check else ""
        log(f"{kind}: {files[kind]} (max |logit diff| vs PyTorch {check['max_abs_logit_diff']:.2g}{same})")
    from affectlab.inference import GUARD_KEY

    if meta.get(GUARD_KEY):
        g = meta[GUARD_KEY]
        log(f"int8 guard: rows within {g['logit_margin']:.4f} (logits) of a decision are scored again in fp32 "
            f"({100 * g['rechecked_share']:.1f}% of {g['calibration_rows']} calibration rows; same decisions as fp32 "
            f"{100 * g['int8_same_decisions']:.2f}% -> {100 * g['guarded_same_decisions']:.2f}%)")
    log(f"wrote {out} (default {meta['default']}); push it with: affectlab push {out} --repo <org>/<name> "
        f"--extra 'onnx/*'")
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="affectlab export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_pos", nargs="?", metavar="MODEL", help="same as --model")
    parser.add_argument("--model", default=None, help="a trained model folder or Hub id")
    parser.add_argument("--output_dir", default=None, help="default: <model folder>-onnx")
    parser.add_argument("--format", default="onnx", choices=["onnx"])
    parser.add_argument("--quantize", default=None, choices=["int8"], help="also write an int8 graph (the default one)")
    parser.add_argument("--int8_scheme", default=DEFAULT_INT8_SCHEME, choices=list(INT8_SCHEMES),
                        help="dynamic (default): one activation scale per batch tensor, the fast one; blockwise: int8 "
                             "per token and block of 32 features (MatMulNBits): fewer label sets change, but no "
                             "faster than fp32 on the CPUs measured")
    parser.add_argument("--calibration_dataset", default=None,
                        help="NAME or NAME:SPLIT of a registered dataset whose rows calibrate the int8 guard (default: "
                             "the dataset the model's eval_results.json names, train split); none: no guard")
    parser.add_argument("--calibration_rows", type=int, default=CALIBRATION_ROWS, help="rows drawn for the guard")
    parser.add_argument("--guard_target", type=float, default=GUARD_TARGET,
                        help="share of calibration rows on which the guarded int8 must give fp32's decision")
    parser.add_argument("--trust_remote_code", action="store_true", help="needed for custom-code models")
    parser.add_argument("--revision", default=None)
    parser.add_argument("--no_fuse", action="store_true", help="skip ONNX Runtime's CPU fusions")
    args = parser.parse_args(argv)
    model = args.model or args.model_pos
    if not model:
        raise ArgumentError("model", "give the model folder or Hub id to export")
    output_dir = args.output_dir or f"{str(model).rstrip('/')}-onnx"
    if not Path(model).is_dir() and args.output_dir is None:
        output_dir = str(Path("outputs") / f"{Path(model).name}-onnx")
    if args.calibration_rows < 1:
        raise ArgumentError("calibration_rows", f"must be >= 1, got {args.calibration_rows}")
    if not 0 < args.guard_target <= 1:
        raise ArgumentError("guard_target", f"must be in (0, 1], got {args.guard_target}")
    export(model, output_dir, quantize=args.quantize, trust_remote_code=args.trust_remote_code,
           revision=args.revision, fuse=not args.no_fuse, int8_scheme=args.int8_scheme,
           calibration_dataset=args.calibration_dataset, calibration_rows_n=args.calibration_rows,
           guard_target=args.guard_target)
    return 0


if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(lambda: main())

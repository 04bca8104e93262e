"""Inference that applies what training saved in the config: per-label thresholds for multi-label models
(`config.label_thresholds`), argmax for single-label ones (classifier, NLI), raw outputs for regression.

    clf = TextClassifier.from_pretrained("outputs/goemotions_minilm_demo")                 # PyTorch fp32
    clf = TextClassifier.from_pretrained("outputs/goemotions_minilm_demo-onnx", backend="onnx")  # ONNX Runtime
    clf.predict(["thank you so much!", "ugh"])          # -> [["gratitude"], ["annoyance"]]
    clf.predict_proba(texts)                             # -> (n, labels) probabilities, in the input order

The predictor tokenizes without padding, sorts the texts by length and cuts batches under a token budget
(`max_tokens` padded tokens, at most `batch_size` rows; 2,048 / 64 on PyTorch, 1,024 / 32 on ONNX Runtime), so a
batch pads only to its own longest text; results come back in the input order. Backends: `torch` (the saved
PyTorch model, `torch.inference_mode`; `from_pretrained` runs its fp32 linear layers through oneDNN where torch's
stock BLAS is slower, `onednn_by_default`: AMD x86 CPUs, where MKL takes its AVX2 path) and `onnx` (an
`affectlab export` folder run by ONNX Runtime: `onnx/model_quantized.onnx` when it was exported with
`--quantize int8`, else `onnx/model.onnx`; `onnx_file=` picks another). fp32 results do not depend on how texts
are batched (to ~1e-6). The default int8 graph's can, slightly (`--int8_scheme dynamic`): it computes each
batch's activation scale from the whole batch, so a text's int8 scores move by up to ~1e-2 with its batch mates
(batch_size=1 reproduces `pipeline()`); the `--int8_scheme blockwise` graph quantizes each token on its own
scales and gives the same scores in any batch (bit for bit on the demo model).

int8 guard: an int8 export carries a margin calibrated on training rows (`config.onnx["int8_guard"]`,
`affectlab.export.calibrate_int8_guard`); the ONNX backend then scores every row in int8 and the rows whose int8
logits lie within that margin of a decision (a threshold, or the runner-up class) again in fp32 (`Int8Guard`), so
the label sets equal fp32's on the target share of rows at a fraction of fp32's cost (`int8_guard=False`: int8
alone). Regression outputs have no decision to guard.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

BACKENDS = ("torch", "onnx")
DEFAULT_MAX_TOKENS = 2048   # padded tokens per batch, PyTorch (CPU: 2k-token batches measured fastest)
DEFAULT_BATCH_SIZE = 64     # rows per batch at most, PyTorch
# ONNX Runtime: the int8 graph ran ~10% faster in 1k-token batches than in 2k (1,396 vs 1,291 samples/s on the demo
# model; fp32 the same either way), and its per-batch activation scales then mix fewer texts
ONNX_MAX_TOKENS = 1024
ONNX_BATCH_SIZE = 32


# ---------------------------------------------------------------------------------------------------------
# batching
# ---------------------------------------------------------------------------------------------------------
def length_sorted_batches(lengths: Sequence[int], max_tokens: int = DEFAULT_MAX_TOKENS,
                          batch_size: int = DEFAULT_BATCH_SIZE) -> list[np.ndarray]:
    """Indices of `lengths` cut into batches, longest texts first: each batch holds at most `batch_size` rows and
    `rows x its longest length <= max_tokens` padded tokens (a single text longer than the budget goes alone)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)  # descending: the first row is the batch's longest
        rows = max(1, min(batch_size, max_tokens // longest))
        batches.append(order[start:start + rows])
        start += rows
    return batches


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int, left: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(ids, attention mask) as int64 arrays padded to the longest sequence."""
    longest = max(len(s) for s in sequences)
    ids = np.full((len(sequences), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), longest), dtype=np.int64)
    for row, seq in enumerate(sequences):
        if left:
            ids[row, longest - len(seq):], mask[row, longest - len(seq):] = seq, 1
        else:
            ids[row, :len(seq)], mask[row, :len(seq)] = seq, 1
    return ids, mask


# ---------------------------------------------------------------------------------------------------------
# backends: logits for a padded batch of numpy arrays
# ---------------------------------------------------------------------------------------------------------
ONEDNN_MIN_ROWS = 64  # token rows from which a oneDNN matmul beats the stock one on the CPUs measured (below: overhead)


def onednn_by_default() -> bool:
    """Whether fp32 linear layers run faster through oneDNN than through torch's stock BLAS here: on AMD x86 CPUs,
    where torch's MKL takes its AVX2 path (measured on a 2-core AVX-512 EPYC: a 2048^2 matmul 176 GFLOP/s with MKL,
    271 with oneDNN; the demo MiniLM predictor 351 -> 548 samples/s). Elsewhere the stock BLAS stays."""
    import platform

    import torch

    if platform.machine().lower() not in ("x86_64", "amd64") or not torch.backends.mkldnn.is_available():
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return any(line.startswith("vendor_id") and "AuthenticAMD" in line for line in handle)
    except OSError:
        return False


def _onednn_linear_class():
    import torch

    class OneDNNLinear(torch.nn.Module):
        """A frozen `nn.Linear` for inference that runs large inputs through oneDNN (`torch._C._nn.mkldnn_linear`,
        the op behind `torch.utils.mkldnn.MkldnnLinear`, weights packed once) and small inputs, gradients and other
        dtypes through the stock kernel; the same function to fp32 rounding (~1e-6)."""

        def __init__(self, linear: torch.nn.Linear, min_rows: int = ONEDNN_MIN_ROWS):
            super().__init__()
            self.in_features, self.out_features, self.min_rows = linear.in_features, linear.out_features, min_rows
            self.weight, self.bias = linear.weight, linear.bias
            self.packed_weight = linear.weight.detach().to_mkldnn()
            self.packed_bias = linear.bias.detach().to_mkldnn() if linear.bias is not None else None

        def forward(self, x):
            if x.dtype != torch.float32 or x.numel() // self.in_features < self.min_rows or torch.is_grad_enabled():
                return torch.nn.functional.linear(x, self.weight, self.bias)
            y = torch._C._nn.mkldnn_linear(x.contiguous().to_mkldnn(), self.packed_weight, self.packed_bias)
            return y.to_dense()

    return OneDNNLinear


def use_onednn_linears(model, min_rows: int = ONEDNN_MIN_ROWS) -> int:
    """Swap every fp32 `nn.Linear` of a CPU model (in eval mode) for `OneDNNLinear`; returns how many."""
    import torch

    cls, count = _onednn_linear_class(), 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is torch.nn.Linear and child.weight.dtype == torch.float32 and child.weight.device.type == "cpu":
                setattr(module, name, cls(child, min_rows))
                count += 1
    return count


class TorchBackend:
    name = "torch"

    def __init__(self, model, onednn: bool | None = False):
        """`onednn`: run the model's fp32 linear layers through oneDNN (weights packed once, so only for a model that
        is no longer trained; None: where that is faster, `onednn_by_default`; only fp32 models on the CPU)."""
        self.model = model.eval()
        import inspect

        import torch

        params = inspect.signature(model.forward).parameters
        accepts_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
        self.input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if accepts_any or n in params]
        on_cpu_fp32 = model.device.type == "cpu" and model.dtype == torch.float32
        self.onednn_linears = use_onednn_linears(model) if on_cpu_fp32 and \
            (onednn_by_default() if onednn is None else onednn) else 0

    def __call__(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        device = self.model.device
        with torch.inference_mode():
            batch = {k: torch.from_numpy(v).to(device) for k, v in feed.items() if k in self.input_names}
            return self.model(**batch).logits.float().cpu().numpy()


class OnnxBackend:
    name = "onnx"

    def __init__(self, session, file_name: str = ""):
        self.session = session
        self.file_name = file_name
        self.input_names = [i.name for i in session.get_inputs()]

    @classmethod
    def load(cls, path: str, file_name: str, num_threads: int | None = None, **hub_kwargs) -> "OnnxBackend":
        from affectlab.onnx_model import inference_session, resolve_file

        return cls(inference_session(resolve_file(path, file_name, **hub_kwargs), num_threads), file_name)

    def __call__(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        from affectlab.onnx_model import onnx_feed

        return self.session.run(None, onnx_feed(self.input_names, feed["input_ids"], feed.get("attention_mask"),
                                                feed.get("token_type_ids")))[0]


# ---------------------------------------------------------------------------------------------------------
# the classifier
# ---------------------------------------------------------------------------------------------------------
@dataclass
class LabelSpec:
    """What the outputs mean, from a model config (an object or the config.json dict)."""
    labels: list[str]
    problem_type: str
    thresholds: np.ndarray

    @classmethod
    def from_config(cls, cfg) -> "LabelSpec":
        get = (lambda k, d=None: cfg.get(k, d)) if isinstance(cfg, dict) else (lambda k, d=None: getattr(cfg, k, d))
        id2label = {int(k): v for k, v in (get("id2label") or {}).items()}
        names = get("label_names")
        if names:
            labels = list(names)
        else:
            n = int(get("num_labels", None) or len(id2label) or 2)
            labels = [id2label.get(i, f"LABEL_{i}") for i in range(n)]
        problem = get("problem_type") or "single_label_classification"
        saved = get("label_thresholds") or {}
        default = float(get("default_threshold", 0.5) or 0.5)
        return cls(labels, problem, np.array([float(saved.get(name, default)) for name in labels]))

    @property
    def multi_label(self) -> bool:
        return self.problem_type == "multi_label_classification"

    @property
    def regression(self) -> bool:
        return self.problem_type == "regression"

    def scores(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities (sigmoid for multi-label, softmax otherwise) or, for regression, the outputs themselves."""
        logits = logits.astype(np.float32, copy=False)
        if self.regression:
            return logits
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
        z = np.exp(logits - logits.max(-1, keepdims=True))
        return z / z.sum(-1, keepdims=True)

    def decision_distance(self, logits: np.ndarray) -> np.ndarray:
        """Per row, how far its logits are from changing the decision: multi-label, the smallest |logit - logit of
        the label's threshold|; single-label, the gap between the two largest logits; regression: infinity."""
        logits = logits.astype(np.float64, copy=False)
        if self.regression or len(logits) == 0:
            return np.full(len(logits), np.inf)
        if self.multi_label:
            t = np.clip(self.thresholds.astype(np.float64), 1e-12, 1 - 1e-12)
            return np.abs(logits - np.log(t / (1 - t))).min(-1)
        if logits.shape[-1] < 2:
            return np.full(len(logits), np.inf)
        top = np.sort(logits, axis=-1)
        return top[:, -1] - top[:, -2]

    def decide(self, scores: np.ndarray) -> list:
        """Label sets (multi-label, saved thresholds), labels (single-label) or {name: value} (regression)."""
        if self.regression:
            return [dict(zip(self.labels, map(float, row))) for row in scores]
        if self.multi_label:
            return [[self.labels[j] for j in np.flatnonzero(row >= self.thresholds)] for row in scores]
        return [self.labels[j] for j in scores.argmax(-1)]


GUARD_KEY = "int8_guard"  # the `config.onnx` entry of an export's calibrated guard (affectlab.export)


@dataclass
class Int8Guard:
    """int8 decisions with an fp32 second look where int8 rounding could change them.

    The int8 graph scores every row; a row whose int8 logits lie within `margin` of a decision (a label's threshold,
    or the runner-up class: `LabelSpec.decision_distance`) is scored again by the fp32 graph (`reference`), and the
    fp32 logits are kept for it. `margin` is calibrated when the model is exported (`affectlab.export
    .calibrate_int8_guard`): the smallest margin with which int8 + second look gives fp32's decisions on the
    export's target share of calibration rows (training rows, never the evaluated split). Counts of rows seen and
    scored again accumulate in `rows_seen` / `rows_rechecked`."""
    reference: "OnnxBackend | TorchBackend"
    margin: float
    rows_seen: int = 0
    rows_rechecked: int = 0

    def uncertain(self, logits: np.ndarray, spec: LabelSpec) -> np.ndarray:
        rows = np.flatnonzero(spec.decision_distance(logits) < self.margin)
        self.rows_seen += len(logits)
        self.rows_rechecked += len(rows)
        return rows

    @property
    def recheck_rate(self) -> float:
        return self.rows_rechecked / self.rows_seen if self.rows_seen else 0.0


class TextClassifier:
    """Length-sorted, token-budget batched predictions of a classifier / NLI / regression model."""

    def __init__(self, model, tokenizer, max_length: int = 128, *, config=None, max_tokens: int | None = None,
                 batch_size: int | None = None, guard: Int8Guard | None = None):
        """`model`: a transformers model (PyTorch) or a backend (`OnnxBackend` / `TorchBackend`); `config`
        defaults to `model.config`; `guard`: an `Int8Guard` whose fp32 graph scores the rows near a decision again."""
        self.guard = guard
        # a model with parameters is run by TorchBackend; anything else is a backend already (feed -> logits)
        self.backend = TorchBackend(model) if hasattr(model, "parameters") else model
        self.model = getattr(self.backend, "model", None)
        self.tokenizer = tokenizer
        self.max_length = max_length
        onnx = isinstance(self.backend, OnnxBackend)  # batch budgets default by runtime (measured, see above)
        self.max_tokens = max_tokens or (ONNX_MAX_TOKENS if onnx else DEFAULT_MAX_TOKENS)
        self.batch_size = batch_size or (ONNX_BATCH_SIZE if onnx else DEFAULT_BATCH_SIZE)
        self.spec = LabelSpec.from_config(config if config is not None else self.model.config)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.left_pad = getattr(tokenizer, "padding_side", "right") == "left"

    # what the config says
    labels = property(lambda self: self.spec.labels)
    thresholds = property(lambda self: self.spec.thresholds)
    multi_label = property(lambda self: self.spec.multi_label)
    problem_type = property(lambda self: self.spec.problem_type)

    @classmethod
    def from_pretrained(cls, path: str, backend: str = "torch", *, onnx_file: str | None = None,
                        num_threads: int | None = None, max_length: int = 128, max_tokens: int | None = None,
                        batch_size: int | None = None, trust_remote_code: bool = False,
                        revision: str | None = None, onednn: bool | None = None, int8_guard: bool = True,
                        **model_kwargs) -> "TextClassifier":
        """A model folder or Hub id. `backend="onnx"` reads an `affectlab export` folder (no PyTorch weights needed,
        no remote code run: the labels and thresholds come from config.json); `backend="auto"` picks ONNX when the
        folder has an `onnx` entry in its config. `onednn` (PyTorch backend): fp32 linear layers through oneDNN
        (None: where that is faster, `onednn_by_default`). `int8_guard` (ONNX int8 graph of an export that has a
        calibrated guard): rows whose int8 logits lie within the guard's margin of a decision are scored again by
        the fp32 graph (`Int8Guard`)."""
        from transformers import AutoTokenizer

        from affectlab.paths import resolve_model_name

        path = resolve_model_name(path)
        config = read_config(path, revision)
        if backend == "auto":
            backend = "onnx" if config.get("onnx") else "torch"
        if backend not in BACKENDS:
            from affectlab.errors import ArgumentError

            raise ArgumentError("backend", f"must be one of {BACKENDS} or auto, got {backend!r}")
        tokenizer = AutoTokenizer.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)
        kwargs = dict(max_length=max_length, max_tokens=max_tokens, batch_size=batch_size)
        if backend == "onnx":
            from affectlab.onnx_model import onnx_file_name

            if not config.get("onnx") and onnx_file is None:
                from affectlab.errors import ArgumentError

                raise ArgumentError("backend", f"{path} is not an ONNX export (no `onnx` entry in config.json): "
                                               f"run `affectlab export --model {path} --format onnx` first")
            name = onnx_file_name(config, onnx_file)
            model = OnnxBackend.load(path, name, num_threads, revision=revision)
            guard = (config["onnx"].get(GUARD_KEY) or {}) if int8_guard else {}
            if guard.get("int8_file") == name and guard.get("logit_margin"):  # calibrated for this very graph
                reference = OnnxBackend.load(path, guard["reference_file"], num_threads, revision=revision)
                kwargs["guard"] = Int8Guard(reference, float(guard["logit_margin"]))
            return cls(model, tokenizer, config=config, **kwargs)
        if config.get("onnx"):
            from affectlab.errors import ArgumentError

            raise ArgumentError("backend", f"{path} is an ONNX export (no PyTorch weights): use backend='onnx'")
        from transformers import AutoModelForSequenceClassification

        if num_threads:
            import torch

            torch.set_num_threads(int(num_threads))
        model = AutoModelForSequenceClassification.from_pretrained(path, revision=revision,
                                                                   trust_remote_code=trust_remote_code, **model_kwargs)
        return cls(TorchBackend(model, onednn=onednn), tokenizer, config=model.config, **kwargs)

    # ---- batching ---------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> dict[str, list]:
        """Token ids (and token types) per text, truncated to `max_length`, unpadded."""
        kwargs = dict(truncation="only_first" if text_pairs is not None else True, max_length=self.max_length,
                      padding=False, return_attention_mask=False)
        return dict(self.tokenizer(list(texts), list(text_pairs) if text_pairs is not None else None, **kwargs))

    def batches(self, encoded: dict[str, list]) -> Iterable[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """(row indices, padded feed) per length-sorted batch under the token budget."""
        ids = encoded["input_ids"]
        types = encoded.get("token_type_ids")
        for index in length_sorted_batches([len(x) for x in ids], self.max_tokens, self.batch_size):
            rows = [ids[i] for i in index]
            input_ids, mask = pad_batch(rows, self.pad_id, self.left_pad)
            feed = {"input_ids": input_ids, "attention_mask": mask}
            if types is not None:
                feed["token_type_ids"] = pad_batch([types[i] for i in index], 0, self.left_pad)[0]
            yield index, feed

    def logits(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> np.ndarray:
        texts = [str(t) for t in texts]  # also accepts a datasets Column or any iterable of strings
        if text_pairs is not None:
            text_pairs = [str(t) for t in text_pairs]
            if len(text_pairs) != len(texts):
                raise ValueError(f"{len(texts)} texts but {len(text_pairs)} text pairs")
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if not texts:
            return out
        encoded = self.encode(texts, text_pairs)
        for index, feed in self.batches(encoded):
            out[index] = self.backend(feed)
        if self.guard is not None:
            rows = self.guard.uncertain(out, self.spec)
            if len(rows):
                subset = {key: [values[i] for i in rows] for key, values in encoded.items()}
                for index, feed in self.batches(subset):
                    out[rows[index]] = self.guard.reference(feed)
        return out

    # ---- predictions --------------------------------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None,
                      text_pairs: Sequence[str] | None = None) -> np.ndarray:
        """(n, labels) probabilities in the input order (regression: the predicted values)."""
        if batch_size is not None and batch_size != self.batch_size:
            saved, self.batch_size = self.batch_size, batch_size
            try:
                return self.spec.scores(self.logits(texts, text_pairs))
            finally:
                self.batch_size = saved
        return self.spec.scores(self.logits(texts, text_pairs))

    def predict(self, texts: Sequence[str], batch_size: int | None = None,
                text_pairs: Sequence[str] | None = None) -> list:
        """Label sets (multi-label: the saved per-label thresholds), labels (single-label) or {output: value}
        (regression), in the input order."""
        return self.spec.decide(self.predict_proba(texts, batch_size, text_pairs))


def read_config(path: str, revision: str | None = None) -> dict:
    """config.json of a folder or Hub repository as a dict (no code run)."""
    local = Path(path) / "config.json"
    if Path(path).is_dir():
        if not local.is_file():
            from affectlab.errors import ModelNotFoundError

            raise ModelNotFoundError(f"{path} has no config.json")
        return json.loads(local.read_text(encoding="utf-8"))
    if Path(path).exists() or str(path).startswith((".", os.sep)):
        from affectlab.errors import ModelNotFoundError

        raise ModelNotFoundError(f"{path} is not a model folder")
    from huggingface_hub import hf_hub_download

    try:
        return json.loads(Path(hf_hub_download(path, "config.json", revision=revision)).read_text(encoding="utf-8"))
    except Exception as err:  # noqa: BLE001 - offline, missing or gated repo: one line for the user
        from affectlab.errors import ModelNotFoundError

        raise ModelNotFoundError(f"{path} is neither a folder nor a Hub model that can be had "
                                 f"({type(err).__name__})") from None

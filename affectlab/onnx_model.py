"""`OnnxModelForSequenceClassification`: an exported affectlab model (classifier, NLI or regression) run by ONNX
Runtime behind transformers' model interface, so the stock Auto classes and pipelines load an ONNX folder:

    pipeline(model="org/goemotions-minilm-onnx", trust_remote_code=True)   # thresholds applied (multi-label)
    AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)(**batch).logits

Self-contained (numpy, torch, transformers and onnxruntime): `affectlab export` copies this file into the
exported folder as `modeling_onnx.py` and points the config's `auto_map` at it. The ONNX file is the one named
by `config.onnx["default"]` (`onnx/model.onnx`, fp32) unless `file_name=` (e.g. `onnx/model_quantized.onnx`)
says otherwise; `num_threads=` sets ONNX Runtime's intra-op threads.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

DEFAULT_FILE = "onnx/model.onnx"


def onnx_file_name(config, file_name: str | None = None) -> str:
    """The ONNX file to run: `file_name`, else the export's default, else `onnx/model.onnx`."""
    if file_name:
        return file_name
    meta = (config.get("onnx") if isinstance(config, dict) else getattr(config, "onnx", None)) or {}
    return meta.get("default", DEFAULT_FILE) if isinstance(meta, dict) else DEFAULT_FILE


def resolve_file(path_or_repo: str, file_name: str, **hub_kwargs) -> str:
    """A local path for `file_name` in a folder or a Hub repository (downloaded into the Hub cache)."""
    local = os.path.join(str(path_or_repo), file_name)
    if os.path.isdir(str(path_or_repo)):
        if not os.path.isfile(local):
            raise FileNotFoundError(f"{file_name} not found in {path_or_repo}")
        return local
    from huggingface_hub import hf_hub_download

    keep = {k: v for k, v in hub_kwargs.items() if k in ("revision", "cache_dir", "token", "local_files_only")}
    return hf_hub_download(str(path_or_repo), file_name, **keep)


def inference_session(path: str, num_threads: int | None = None):
    """An ONNX Runtime CPU session with every graph optimization on."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if num_threads:
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def onnx_feed(input_names, input_ids, attention_mask=None, token_type_ids=None) -> dict:
    """The session's inputs as int64 arrays; a missing attention mask is all ones, missing token types all zeros."""
    input_ids = np.asarray(input_ids, dtype=np.int64)
    given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
    feed = {}
    for name in input_names:
        value = given.get(name)
        if value is None:
            value = np.ones_like(input_ids) if name == "attention_mask" else np.zeros_like(input_ids)
        feed[name] = np.asarray(value, dtype=np.int64)
    return feed


class OnnxModelForSequenceClassification(PreTrainedModel):
    """Sequence classification / regression logits computed by ONNX Runtime (CPU); no torch weights."""

    base_model_prefix = "onnx"
    main_input_name = "input_ids"
    _supports_sdpa = True

    def __init__(self, config, session=None, file_name: str | None = None):
        super().__init__(config)
        self.session = session
        self.file_name = file_name
        self.input_names = [i.name for i in session.get_inputs()] if session is not None else []

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, file_name=None,
                        num_threads=None, **kwargs):
        from transformers import AutoConfig

        hub_kwargs = {k: kwargs.get(k) for k in ("revision", "cache_dir", "token", "local_files_only") if kwargs.get(k)}
        if config is None:
            config = AutoConfig.from_pretrained(pretrained_model_name_or_path,
                                                trust_remote_code=kwargs.get("trust_remote_code"), **hub_kwargs)
        name = onnx_file_name(config, file_name)
        session = inference_session(resolve_file(pretrained_model_name_or_path, name, **hub_kwargs), num_threads)
        model = cls(config, session=session, file_name=name)
        model.name_or_path = str(pretrained_model_name_or_path)
        return model.eval()

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def _init_weights(self, module):
        pass

    def get_input_embeddings(self):
        return None

    def to(self, *args, **kwargs):
        return self  # ONNX Runtime on the CPU: nothing to move

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, return_dict=None,
                **kwargs):
        def array(t):
            return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t

        feed = onnx_feed(self.input_names, array(input_ids), array(attention_mask), array(token_type_ids))
        logits = torch.from_numpy(np.ascontiguousarray(self.session.run(None, feed)[0]))
        return SequenceClassifierOutput(logits=logits)

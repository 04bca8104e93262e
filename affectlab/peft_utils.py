"""PEFT helpers for encoder classifiers: LoRA / DoRA adapters, 4-bit (QLoRA) loading, merge, adapter save.

Adapters go on the attention projections (`q_proj,k_proj,v_proj,o_proj`, optionally the MLP
`gate_proj,up_proj,down_proj`); the pooler and the classification head (`pooler`, `score`) are trained
in full and saved with the adapter (`modules_to_save`). `merge_for_inference` folds the adapter into
the base weights; `save_adapter` writes (and optionally pushes) the adapter alone. 4-bit NF4 loading
keeps the head and pooler unquantised; bitsandbytes also runs it on CPU (layers need >= 64 inputs).
"""

from __future__ import annotations

from pathlib import Path

import torch

ATTENTION_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP_MODULES = ["gate_proj", "up_proj", "down_proj"]
HEAD_MODULES = ["pooler", "score"]


def encoder_lora_config(r: int = 16, alpha: int = 32, dropout: float = 0.05, use_dora: bool = False,
                        include_mlp: bool = False, modules_to_save=tuple(HEAD_MODULES)):
    """A `peft.LoraConfig` (DoRA with `use_dora=True`) for a sequence classifier."""
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, use_dora=use_dora, task_type="SEQ_CLS",
                      target_modules=ATTENTION_MODULES + (MLP_MODULES if include_mlp else []),
                      modules_to_save=list(modules_to_save))


def quantization_config_4bit(compute_dtype: torch.dtype | None = None, skip_modules=tuple(HEAD_MODULES)):
    """NF4 + double quantisation (QLoRA); compute in bf16 on CUDA, fp32 otherwise; head/pooler kept full."""
    from transformers import BitsAndBytesConfig

    if compute_dtype is None:
        compute_dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype, llm_int8_skip_modules=list(skip_modules))


def qlora_config_if_cuda():
    """The 4-bit config when CUDA is present (the recipes' QLoRA switch), else None."""
    return quantization_config_4bit() if torch.cuda.is_available() else None


def load_4bit(model_cls, path: str | Path, **kwargs):
    """Load `model_cls.from_pretrained(path)` with 4-bit NF4 weights (CPU or GPU)."""
    kwargs.setdefault("quantization_config", quantization_config_4bit())
    kwargs.setdefault("dtype", torch.float32 if not torch.cuda.is_available() else torch.bfloat16)
    kwargs.setdefault("device_map", "cuda" if torch.cuda.is_available() else "cpu")
    return model_cls.from_pretrained(path, **kwargs)


def add_adapter(model, lora_config=None, quantized: bool | None = None, gradient_checkpointing: bool = False):
    """Wrap `model` with a LoRA/DoRA adapter; 4-bit models are first prepared for k-bit training."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    if quantized is None:
        quantized = bool(getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False))
    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return get_peft_model(model, lora_config or encoder_lora_config())


def merge_for_inference(peft_model):
    """Fold the adapter into the base weights and return the plain model (no PEFT layers left)."""
    return peft_model.merge_and_unload()


def save_adapter(peft_model, out_dir: str | Path, push_to_hub: bool = False, repo_id: str | None = None) -> Path:
    """Save only the adapter (+ `modules_to_save` weights); optionally push it to `repo_id` on the Hub."""
    out_dir = Path(out_dir)
    peft_model.save_pretrained(str(out_dir))
    if push_to_hub:
        if not repo_id:
            raise ValueError("push_to_hub needs repo_id")
        peft_model.push_to_hub(repo_id)
    return out_dir


def trainable_parameter_names(model) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]

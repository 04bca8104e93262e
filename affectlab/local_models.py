"""Models built locally from a seeded config (no download): tiny random models for smoke runs and tests.

`LOCAL_MODELS` maps a name to a builder `fn(folder: Path, seed: int) -> None` that saves a model and its
tokenizer into `folder`. `local_model_path(name)` builds it once into `$AFFECTLAB_CACHE/local_models/<name>-<seed>`
(default `~/.cache/affectlab`) and returns the folder; `affectlab.models.resolve_model_name` resolves
these names, so a recipe can say `model_name_or_path: <name>`. They are random: pipeline checks only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

LOCAL_MODELS: dict[str, Callable[[Path, int], None]] = {}


def register_local_model(name: str):
    def wrap(fn):
        LOCAL_MODELS[name] = fn
        return fn

    return wrap


def cache_root() -> Path:
    return Path(os.environ.get("AFFECTLAB_CACHE") or Path.home() / ".cache" / "affectlab")


def local_model_path(name: str, seed: int = 1337) -> Path:
    """The folder of local model `name`, built on first use (atomically: a failed build leaves nothing)."""
    from affectlab.io import atomic_dir

    if name not in LOCAL_MODELS:
        raise KeyError(f"unknown local model {name!r}; one of {sorted(LOCAL_MODELS)}")
    folder = cache_root() / "local_models" / f"{name}-{seed}"
    if not (folder / "config.json").is_file():
        with atomic_dir(folder) as tmp:
            LOCAL_MODELS[name](tmp, seed)
    return folder


# ---------------------------------------------------------------------------------------------------
# tiny-chat-lm: a tiny random Qwen2 with a ChatML template, for the SFT family's smoke run and tests
# ---------------------------------------------------------------------------------------------------

# ChatML with `{% generation %}` markers around the assistant turn (TRL's assistant_only_loss needs them).
CHATML_TEMPLATE = (  # transformers renders with trim_blocks/lstrip_blocks
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|im_start|>assistant\n{% generation %}{{ message['content'] }}<|im_end|>{% endgeneration %}\n"
    "{% else %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_chat_lm(folder: Path, corpus, torch_seed: int = 0, vocab_size: int = 1200,
                       initializer_range: float = 0.2) -> Path:
    """A tiny random Qwen2 (2 layers, hidden 64, tied embeddings) + a byte-level BPE tokenizer trained on
    `corpus` (an iterable of strings) with the ChatML template above, saved into `folder`.

    The initializer range is larger than usual so that a LoRA adapter on this random model can move the
    (tied) output logits within a few hundred steps."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<pad>")
    fast.chat_template = CHATML_TEMPLATE
    fast.save_pretrained(folder)
    torch.manual_seed(torch_seed)
    config = Qwen2Config(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                         bos_token_id=None, initializer_range=initializer_range)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return Path(folder)


def persona_chat_corpus(seed: int, n_chats: int = 600) -> list[str]:
    """Seeded chats in the persona families' format (every persona mode, the EmoBank VAD and the medical label
    sets, synthetic EN/PL texts, JSON answers with random values): the tokenizer corpus of `tiny-chat-lm`.
    Built from code only (no dataset is read)."""
    import numpy as np

    from affectlab.personas import (MEDICAL_LABEL_SET, MEDICAL_PERSONAS, PERSONA_MODES, chat_messages,
                                    dataset_contract, synthetic_medical_records)

    rng = np.random.default_rng(seed)
    vad, vad_personas = dataset_contract("emobank")
    texts = [r["text"] for r in synthetic_medical_records(n_texts=max(60, n_chats // 4), personas_per_text=1, seed=seed)]
    corpus = []
    for i in range(n_chats):
        label_set, personas = (vad, vad_personas) if i % 2 == 0 else (MEDICAL_LABEL_SET, MEDICAL_PERSONAS)
        persona = list(personas)[int(rng.integers(len(personas)))]
        answer = {d: float(rng.uniform(label_set.low, label_set.high)) for d in label_set.dimensions}
        mode = PERSONA_MODES[i % len(PERSONA_MODES)]
        corpus += [m["content"] for m in chat_messages(texts[i % len(texts)], persona, mode, label_set, answer)]
    return corpus


@register_local_model("tiny-chat-lm")
def tiny_chat_lm(folder: Path, seed: int) -> None:
    """A tiny RANDOM chat LM (Qwen2, 2 layers, hidden 64, ChatML with generation markers): pipeline checks
    of the SFT family only; its answers mean nothing before fine-tuning."""
    build_tiny_chat_lm(folder, persona_chat_corpus(seed), torch_seed=seed)

"""Persona views: the same contract records seen by an encoder (inputs) or an LLM (chat messages).

**Persona modes** (`persona_view`): `non_personalized` (text only), `persona_token` (a special token per
persona in front of the text; `add_persona_tokens` adds them to the tokenizer and resizes the
embeddings), `personalized_desc` (the text and the persona's `"<name>. <description>"` as a pair) and
`personalized_instruction` (a chat prompt whose answer is a JSON object with every dimension).

Encoders tokenize a view with `tokenize_view`, which goes through the one pair-tokenization helper of
affectlab (`affectlab.data.tokenize_for_classification`, `truncation="only_first"`): the **text** is the
first sequence and the only one ever truncated; the persona description (second sequence) is never cut,
so every example keeps its whole persona. `encoder_columns(mode)` names the (text, pair) columns.

LLMs get chat messages (`chat_messages`): a system turn set by the persona mode, a user turn with the
text and the task, and (for training) an assistant turn with the JSON answer; `fold_system` merges the
system turn into the user turn for chat templates without a system role (Gemma).
"""

from __future__ import annotations

import json
from typing import Mapping

from affectlab.personas.contract import LabelSet, Persona, PersonaRegistry

PERSONA_MODES = ("non_personalized", "persona_token", "personalized_desc", "personalized_instruction")
ENCODER_MODES = ("non_personalized", "persona_token", "personalized_desc")
GENERIC_SYSTEM = "You rate the emotions of texts."


def persona_token(persona_id: str) -> str:
    return f"[PERSONA:{persona_id}]"


def add_persona_tokens(tokenizer, personas: PersonaRegistry, model=None) -> list[str]:
    """Add one special token per persona to `tokenizer` (and resize `model`'s embeddings); returns the tokens.

    The tokens are additional special tokens, so they are never split and are saved with the tokenizer.
    """
    tokens = [persona_token(pid) for pid in personas.ids]
    tokenizer.add_special_tokens({"extra_special_tokens": tokens}, replace_extra_special_tokens=False)
    if model is not None:
        model.resize_token_embeddings(len(tokenizer))
    return tokens


def instruction_messages(text: str, persona: Persona, label_set: LabelSet, answer: Mapping[str, float] | None = None,
                         decimals: int = 2) -> list[dict]:
    """Chat messages for the LLM: system = persona instruction, user = task + text, assistant = JSON answer."""
    dims = ", ".join(label_set.dimensions)
    system = f"{persona.instruction}"
    user = (f"Text: {text}\n\nAnswer with one JSON object only, with exactly these keys: {dims}. "
            f"Each value is a number from {label_set.low:g} to {label_set.high:g}.")
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    if answer is not None:
        messages.append({"role": "assistant", "content": format_answer(answer, label_set, decimals)})
    return messages


def format_answer(labels: Mapping[str, float], label_set: LabelSet, decimals: int = 2) -> str:
    return json.dumps({d: round(float(labels[d]), decimals) for d in label_set.dimensions}, ensure_ascii=False)


def persona_view(dataset, mode: str, personas: PersonaRegistry, label_set: LabelSet, with_answer: bool = True):
    """A `datasets.Dataset` of contract records seen through one persona mode.

    Adds `label_values` (floats in `label_set` order) and, by mode: `input_text` (for `personalized_desc`
    the persona description, with the text in `input_pair`; `encoder_columns` gives the order an encoder
    reads them in), or `messages` (chat with the JSON answer when `with_answer`) and `prompt` (the chat
    without the answer) for `personalized_instruction`. The original columns are kept.
    """
    label_set = LabelSet.coerce(label_set)
    personas = PersonaRegistry.coerce(personas)
    if mode not in PERSONA_MODES:
        raise ValueError(f"unknown persona mode {mode!r}; choose one of {PERSONA_MODES}")
    dims = list(label_set.dimensions)

    def convert(row):
        labels = row["labels"]
        out = {"label_values": [float(labels[d]) for d in dims]}
        persona = personas[row["persona_id"]]
        if mode == "non_personalized":
            out["input_text"] = row["text"]
        elif mode == "persona_token":
            out["input_text"] = f"{persona_token(persona.id)} {row['text']}"
        elif mode == "personalized_desc":
            out["input_text"] = persona_description(persona)
            out["input_pair"] = row["text"]
        else:
            prompt = instruction_messages(row["text"], persona, label_set)
            out["prompt"] = prompt
            out["messages"] = instruction_messages(row["text"], persona, label_set, labels) if with_answer else prompt
        return out

    return dataset.map(convert, desc=f"persona view {mode}")


def persona_description(persona: Persona) -> str:
    """What `personalized_desc` shows an encoder about a persona: `"<name>. <description>"`."""
    return f"{persona.name}. {persona.description}"


def encoder_columns(mode: str) -> tuple[str, str | None]:
    """(text column, pair column) of an encoder view: the text always first (the truncated side), the
    persona description second (never truncated) for `personalized_desc`."""
    if mode not in ENCODER_MODES:
        raise ValueError(f"persona mode {mode!r} is not an encoder mode; choose one of {ENCODER_MODES}")
    return ("input_pair", "input_text") if mode == "personalized_desc" else ("input_text", None)


def tokenize_view(view, tokenizer, mode: str, max_length: int, desc: str = "Tokenizing"):
    """Tokenize an encoder view (`persona_view`) without padding: `input_ids`..., `labels` (the label values
    in label-set order) and `length`, through `affectlab.data.tokenize_for_classification` (only the text
    is truncated, see the module docstring)."""
    from affectlab.data import tokenize_for_classification

    text_column, pair_column = encoder_columns(mode)
    num_labels = len(view[0]["label_values"]) if len(view) else 0
    return tokenize_for_classification(view, tokenizer=tokenizer, text_column=text_column, label_column="label_values",
                                       num_labels=num_labels, multi_label=False, max_length=max_length,
                                       text_pair_column=pair_column, desc=desc)


# ---------------------------------------------------------------------------------------------------
# Chat messages for LLMs
# ---------------------------------------------------------------------------------------------------

def chat_messages(text: str, persona: Persona, mode: str, label_set: LabelSet, answer=None, decimals: int = 2) -> list[dict]:
    """System / user (/ assistant JSON) messages of one record under a persona mode.

    `personalized_instruction`: the persona's instruction is the system turn; `personalized_desc`: a generic
    system turn with the persona's name and description; `persona_token`: a generic system turn naming the
    persona's special token; `non_personalized`: the generic system turn alone.
    """
    if mode not in PERSONA_MODES:
        raise ValueError(f"unknown persona mode {mode!r}; choose one of {PERSONA_MODES}")
    messages = instruction_messages(text, persona, label_set, answer, decimals)
    if mode == "non_personalized":
        messages[0]["content"] = GENERIC_SYSTEM
    elif mode == "persona_token":
        messages[0]["content"] = f"{GENERIC_SYSTEM} Persona: {persona_token(persona.id)}"
    elif mode == "personalized_desc":
        messages[0]["content"] = f"{GENERIC_SYSTEM} You rate them as: {persona.name}. {persona.description}"
    return messages


def supports_system_role(tokenizer) -> bool:
    """Whether the tokenizer's chat template accepts a system turn (Gemma-style templates raise on one)."""
    try:
        tokenizer.apply_chat_template([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
                                      tokenize=False)
    except Exception:  # noqa: BLE001 - any template error means "no system role"
        return False
    return True


def fold_system(messages: list[dict]) -> list[dict]:
    """Merge a system turn into the first user turn (for templates without a system role)."""
    if not messages or messages[0]["role"] != "system":
        return messages
    first, rest = messages[0], [dict(m) for m in messages[1:]]
    rest[0]["content"] = f"{first['content']}\n\n{rest[0]['content']}"
    return rest

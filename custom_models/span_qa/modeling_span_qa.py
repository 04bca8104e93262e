"""`SpanQAModel`: an encoder + dropout + a start/end linear head for extractive QA (evidence spans).

The backbone is any `AutoModel` encoder (BERT family: BERT, RoBERTa, MiniLM, SpanBERT, DeBERTa...) or
the bidirectional Gemma encoder (`encoder_config["model_type"] == "gemma_encoder"`). Outputs a
`QuestionAnsweringModelOutput` (`start_logits`, `end_logits`, and the loss of
`BertForQuestionAnswering` when `start_positions` / `end_positions` are given: mean of the start and
end cross-entropies, positions outside the sequence ignored), so `AutoModelForQuestionAnswering`
consumers (Trainer, the question-answering pipeline, run_qa-style post-processing) work unchanged.

Self-contained: torch, transformers and the files beside it (`configuration_span_qa.py`, and
`configuration_gemma_encoder.py` / `modeling_gemma_encoder.py`, real copies of
`custom_models/gemma_encoder/` marked `# Copied from` and kept equal by `affectlab.testing.check_copies`),
so this folder alone, or a saved model folder, loads with `trust_remote_code=True`. Inside the repository
(package `custom_models.span_qa`) the encoder comes from `custom_models.gemma_encoder` itself, so one
process holds one class identity: `isinstance(model.encoder, custom_models.gemma_encoder.GemmaEncoderModel)`.
`SpanQAModel.from_encoder(name_or_path)` wraps pretrained encoder weights with a fresh head.
"""

import importlib

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.modeling_outputs import QuestionAnsweringModelOutput

from .configuration_span_qa import SpanQAConfig

if __package__ == "custom_models.span_qa":
    # The repository: the canonical module (its copies beside this file stay unimported). Imported by name
    # so that transformers' import check of a saved folder does not ask for a `custom_models` package.
    _gemma = importlib.import_module("custom_models.gemma_encoder.modeling_gemma_encoder")
    GemmaEncoderConfig, GemmaEncoderModel = _gemma.GemmaEncoderConfig, _gemma.GemmaEncoderModel
else:
    # A saved or Hub folder (trust_remote_code), or this folder on its own: the copies beside this file.
    # `save_pretrained` ships them because of these relative imports.
    from .configuration_gemma_encoder import GemmaEncoderConfig
    from .modeling_gemma_encoder import GemmaEncoderModel

GEMMA_TYPES = ("gemma", "gemma2", "gemma3", "gemma3_text")
_DROP_KEYS = ("architectures", "auto_map", "_name_or_path", "transformers_version", "dtype", "torch_dtype")


def _build_encoder(encoder_config: dict):
    enc = dict(encoder_config)
    model_type = enc.pop("model_type")
    if model_type == "gemma_encoder":
        return GemmaEncoderModel(GemmaEncoderConfig(**enc))
    config = AutoConfig.for_model(model_type, **enc)
    try:
        return AutoModel.from_config(config, add_pooling_layer=False)  # BERT family: no unused pooler
    except TypeError:
        return AutoModel.from_config(config)


def _config_dict(config) -> dict:
    out = config.to_dict()
    for key in _DROP_KEYS:
        out.pop(key, None)
    out["model_type"] = config.model_type
    return out


class SpanQAModel(PreTrainedModel):
    config_class = SpanQAConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: SpanQAConfig):
        super().__init__(config)
        if not config.encoder_config:
            raise ValueError("SpanQAConfig.encoder_config is empty: build with SpanQAModel.from_encoder(...)")
        self.encoder = _build_encoder(config.encoder_config)
        hidden = self.encoder.config.hidden_size
        self.dropout = nn.Dropout(config.head_dropout)
        self.qa_outputs = nn.Linear(hidden, 2)
        self.post_init()

    @classmethod
    def from_encoder(cls, encoder_name_or_path, **config_kwargs):
        """Wrap a pretrained encoder (its weights are kept, the head is new). A plain Gemma / Gemma2 /
        Gemma3 checkpoint becomes the bidirectional Gemma encoder."""
        trust = config_kwargs.pop("trust_remote_code", False)
        load = {k: config_kwargs.pop(k) for k in ("revision", "dtype", "attn_implementation") if k in config_kwargs}
        base = AutoConfig.from_pretrained(encoder_name_or_path, trust_remote_code=trust, revision=load.get("revision"))
        if base.model_type in GEMMA_TYPES:
            enc_config = GemmaEncoderConfig(text_config=base, pooling="mean")
            encoder = GemmaEncoderModel.from_pretrained(encoder_name_or_path, config=enc_config, **load)
        else:
            encoder = AutoModel.from_pretrained(encoder_name_or_path, trust_remote_code=trust, **load)
        model = cls(SpanQAConfig(encoder_config=_config_dict(encoder.config), **config_kwargs))
        missing, _unexpected = model.encoder.load_state_dict(encoder.state_dict(), strict=False)
        if missing:
            raise ValueError(f"{encoder_name_or_path}: encoder weights missing after wrapping: {missing[:5]}")
        return model

    def _init_weights(self, module):
        if module is getattr(self, "qa_outputs", None):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def get_input_embeddings(self):
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.encoder.set_input_embeddings(value)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                start_positions=None, end_positions=None, return_dict=None, **kwargs):
        enc_kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "inputs_embeds": inputs_embeds}
        if token_type_ids is not None and self.config.encoder_config["model_type"] != "gemma_encoder":
            enc_kwargs["token_type_ids"] = token_type_ids
        if position_ids is not None:
            enc_kwargs["position_ids"] = position_ids
        hidden = self.encoder(**enc_kwargs).last_hidden_state
        logits = self.qa_outputs(self.dropout(hidden))
        start_logits, end_logits = logits.split(1, dim=-1)
        start_logits = start_logits.squeeze(-1).contiguous()
        end_logits = end_logits.squeeze(-1).contiguous()
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored = start_logits.size(1)
            start_positions = start_positions.view(-1).clamp(0, ignored)
            end_positions = end_positions.view(-1).clamp(0, ignored)
            ce = nn.CrossEntropyLoss(ignore_index=ignored)
            loss = (ce(start_logits.float(), start_positions) + ce(end_logits.float(), end_positions)) / 2
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits)

# Copied from custom_models.gemma_encoder.modeling_gemma_encoder
"""Bidirectional Gemma encoder: a Gemma / Gemma2 / Gemma3 text backbone with full attention over the
non-padded tokens, a pooler and classification / regression heads.

Why not `use_bidirectional_attention`: in transformers 5 that flag makes Gemma3 bidirectional but leaves
Gemma and Gemma2 causal (their model `forward` always builds a causal mask, so eager attention and every
padded batch stay causal). Here the encoder runs the backbone's own modules (embeddings, rotary
embeddings, decoder layers, final norm) itself and gives every layer a bidirectional padding mask
(`create_bidirectional_mask`; a bidirectional sliding-window mask for sliding layers), and turns
`is_causal` off on every attention module (SDPA / flash attention read it when no mask is passed).
Position ids count only real tokens, so left- and right-padded batches give the same vectors as the
unpadded inputs. `bidirectional=False` keeps the causal masks (a control for experiments).

Weights keep the backbone's names under `model.` (as in `GemmaForCausalLM`), so `from_pretrained` of a
plain Gemma checkpoint loads its backbone weights; pooler and head are new. Self-contained: imports
only torch, transformers and the configuration file beside it (it travels to the Hub alone).
"""

from __future__ import annotations

import inspect

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.masking_utils import (create_bidirectional_mask, create_bidirectional_sliding_window_mask,
                                        create_causal_mask, create_sliding_window_causal_mask)
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.models.gemma.modeling_gemma import GemmaModel
from transformers.models.gemma2.modeling_gemma2 import Gemma2Model
from transformers.models.gemma3.modeling_gemma3 import Gemma3TextModel

from .configuration_gemma_encoder import GemmaEncoderConfig

BACKBONE_CLASSES = {"gemma": GemmaModel, "gemma2": Gemma2Model, "gemma3_text": Gemma3TextModel}
# Checkpoints of the multimodal Gemma3ForConditionalGeneration keep the text model under these names.
NESTED_KEY_MAPPING = {r"^model\.language_model\.": "model.", r"^language_model\.model\.": "model."}


class GemmaEncoderPooler(nn.Module):
    """Pools (batch, seq, hidden) to (batch, hidden) over the tokens where `attention_mask` is 1.

    `cls` is the first real token and `last` the last real token, whichever side the padding is on.
    """

    def __init__(self, config: GemmaEncoderConfig):
        super().__init__()
        self.mode = config.pooling
        self.attention = nn.Linear(config.hidden_size, 1) if self.mode == "attention" else None

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.bool()
        batch = torch.arange(hidden_states.shape[0], device=hidden_states.device)
        if self.mode == "mean":
            weights = mask.to(hidden_states.dtype).unsqueeze(-1)
            return (hidden_states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        if self.mode == "cls":
            return hidden_states[batch, mask.long().argmax(1)]
        if self.mode == "last":
            last = mask.shape[1] - 1 - mask.long().flip(1).argmax(1)
            return hidden_states[batch, last]
        if self.mode == "max":
            filled = hidden_states.masked_fill(~mask.unsqueeze(-1), torch.finfo(hidden_states.dtype).min)
            return filled.max(1).values
        scores = self.attention(hidden_states).squeeze(-1).float()
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1).to(hidden_states.dtype)
        return (weights.unsqueeze(-1) * hidden_states).sum(1)


class GemmaEncoderPreTrainedModel(PreTrainedModel):
    config_class = GemmaEncoderConfig
    config: GemmaEncoderConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["GemmaDecoderLayer", "Gemma2DecoderLayer", "Gemma3DecoderLayer"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = False
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, PreTrainedModel) and module is not self:
            module._init_weights(module)  # pragma: no cover - backbone modules use their own init

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """Also loads multimodal Gemma3 checkpoints (`model.language_model.*` -> `model.*`)."""
        kwargs.setdefault("key_mapping", dict(NESTED_KEY_MAPPING))
        return super().from_pretrained(*args, **kwargs)

    # ---- the encoder ----------------------------------------------------------------------------
    def _init_encoder(self, config: GemmaEncoderConfig):
        text_config = config.text_config
        self.model = BACKBONE_CLASSES[text_config.model_type](text_config)
        self.pooler = GemmaEncoderPooler(config)
        self._rotary_takes_layer_type = "layer_type" in inspect.signature(self.model.rotary_emb.forward).parameters
        self.set_causal(not config.bidirectional)

    def set_causal(self, causal: bool) -> None:
        """Switch every attention module (and the masks built in `forward`) between causal and bidirectional."""
        self.config.bidirectional = not causal
        for module in self.model.modules():
            if hasattr(module, "is_causal") and hasattr(module, "q_proj"):
                module.is_causal = causal

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def _layer_types(self) -> list[str]:
        text_config = self.config.text_config
        layer_types = getattr(text_config, "layer_types", None)
        return list(layer_types) if layer_types else ["full_attention"] * text_config.num_hidden_layers

    def _masks(self, inputs_embeds, attention_mask, layer_types):
        text_config = self.config.text_config
        kwargs = dict(config=text_config, inputs_embeds=inputs_embeds, attention_mask=attention_mask)
        masks = {}
        if self.config.bidirectional:
            masks["full_attention"] = create_bidirectional_mask(**kwargs)
            if "sliding_attention" in layer_types:
                masks["sliding_attention"] = create_bidirectional_sliding_window_mask(**kwargs)
        else:
            kwargs.update(past_key_values=None, position_ids=None)
            masks["full_attention"] = create_causal_mask(**kwargs)
            if "sliding_attention" in layer_types:
                masks["sliding_attention"] = create_sliding_window_causal_mask(**kwargs)
        return masks

    def _encode(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                output_hidden_states=None, **kwargs):
        """Run the backbone bidirectionally; returns (last_hidden_state, all hidden states or None, 2D mask)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        backbone = self.model
        if inputs_embeds is None:
            inputs_embeds = backbone.embed_tokens(input_ids)
        batch, length = inputs_embeds.shape[:2]
        if attention_mask is None:
            attention_mask = torch.ones(batch, length, dtype=torch.long, device=inputs_embeds.device)
        attention_mask = attention_mask.to(inputs_embeds.device)
        if position_ids is None:  # count real tokens only: left padding does not shift positions
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        layer_types = self._layer_types()
        masks = self._masks(inputs_embeds, attention_mask, layer_types)
        hidden = inputs_embeds
        if self._rotary_takes_layer_type:
            rotary = {lt: backbone.rotary_emb(hidden, position_ids, lt) for lt in set(layer_types)}
        else:
            shared = backbone.rotary_emb(hidden, position_ids)
            rotary = {lt: shared for lt in set(layer_types)}
        all_hidden = [hidden] if output_hidden_states else None
        kwargs.pop("return_dict", None)
        kwargs.pop("output_attentions", None)
        for layer, layer_type in zip(backbone.layers[: self.config.text_config.num_hidden_layers], layer_types):
            hidden = layer(hidden, attention_mask=masks[layer_type], position_embeddings=rotary[layer_type],
                           position_ids=position_ids, **kwargs)
            if isinstance(hidden, tuple):  # older layer API
                hidden = hidden[0]
            if all_hidden is not None:
                all_hidden.append(hidden)
        hidden = backbone.norm(hidden)
        if all_hidden is not None:
            all_hidden[-1] = hidden
        return hidden, tuple(all_hidden) if all_hidden is not None else None, attention_mask


class GemmaEncoderModel(GemmaEncoderPreTrainedModel):
    """Encoder + pooler: `last_hidden_state` (batch, seq, hidden) and `pooler_output` (batch, hidden)."""

    def __init__(self, config: GemmaEncoderConfig):
        super().__init__(config)
        self._init_encoder(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        hidden, all_hidden, mask = self._encode(input_ids, attention_mask, position_ids, inputs_embeds,
                                                output_hidden_states, **kwargs)
        pooled = self.pooler(hidden, mask)
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled, hidden_states=all_hidden)


class GemmaEncoderForSequenceClassification(GemmaEncoderPreTrainedModel):
    """Encoder + pooler + dropout + linear head; loss by `config.problem_type` (as BERT does):
    `regression` (MSE), `single_label_classification` (cross-entropy), `multi_label_classification` (BCE)."""

    def __init__(self, config: GemmaEncoderConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self._init_encoder(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.score = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, labels=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        hidden, all_hidden, mask = self._encode(input_ids, attention_mask, position_ids, inputs_embeds,
                                                output_hidden_states, **kwargs)
        pooled = self.pooler(hidden, mask)
        logits = self.score(self.dropout(pooled))
        loss = None
        if labels is not None:
            labels = labels.to(logits.device)
            problem = self.config.problem_type
            if problem is None:
                if self.num_labels == 1:
                    problem = "regression"
                elif labels.dtype in (torch.long, torch.int):
                    problem = "single_label_classification"
                else:
                    problem = "multi_label_classification"
                self.config.problem_type = problem
            if problem == "regression":
                loss = nn.functional.mse_loss(logits.squeeze(-1).float() if self.num_labels == 1 else logits.float(),
                                              labels.float().view(-1) if self.num_labels == 1 else labels.float())
            elif problem == "single_label_classification":
                loss = nn.functional.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1).long())
            else:
                loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=all_hidden)


__all__ = ["GemmaEncoderPreTrainedModel", "GemmaEncoderModel", "GemmaEncoderForSequenceClassification",
           "GemmaEncoderPooler"]

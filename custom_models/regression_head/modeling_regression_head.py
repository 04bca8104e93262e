"""`RegressionHeadModel`: an encoder loaded through `AutoModel` + pooling + a multi-output linear head.

Self-contained (torch and transformers, plus the configuration file beside it), so the folder travels
with a saved model and reloads with `AutoModel.from_pretrained(path, trust_remote_code=True)`.
`RegressionHeadModel.from_encoder(name_or_path, label_names=[...])` wraps pretrained encoder weights.
"""

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_regression_head import RegressionHeadConfig


def pool(hidden, attention_mask, how):
    """Mean over non-padding tokens, the first token (`cls`), or the max over non-padding tokens."""
    if how == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    if how == "max":
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class RegressionHeadModel(PreTrainedModel):
    config_class = RegressionHeadConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: RegressionHeadConfig):
        super().__init__(config)
        if not config.encoder_config:
            raise ValueError("RegressionHeadConfig.encoder_config is empty: build with RegressionHeadModel.from_encoder(...)")
        enc_cfg = dict(config.encoder_config)
        model_type = enc_cfg.pop("model_type")
        self.encoder = AutoModel.from_config(AutoConfig.for_model(model_type, **enc_cfg))
        hidden = self.encoder.config.hidden_size
        self.dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(hidden, config.num_outputs)
        self.post_init()

    @classmethod
    def from_encoder(cls, encoder_name_or_path, label_names, **config_kwargs):
        """Wrap a pretrained encoder: its weights are kept, the head is freshly initialised."""
        trust = config_kwargs.pop("trust_remote_code", False)
        revision = config_kwargs.pop("revision", None)
        dtype = config_kwargs.pop("dtype", None)
        attn = config_kwargs.pop("attn_implementation", None)
        encoder = AutoModel.from_pretrained(encoder_name_or_path, trust_remote_code=trust, revision=revision,
                                            dtype=dtype, attn_implementation=attn)
        enc_dict = encoder.config.to_dict()
        for key in ("architectures", "auto_map", "_name_or_path", "transformers_version", "dtype", "torch_dtype"):
            enc_dict.pop(key, None)
        config = RegressionHeadConfig(encoder_config=enc_dict, label_names=list(label_names), **config_kwargs)
        model = cls(config)
        model.encoder.load_state_dict(encoder.state_dict())
        return model

    def _init_weights(self, module):
        if module is getattr(self, "head", None):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def get_input_embeddings(self):
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.encoder.set_input_embeddings(value)

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True):
        """Resize the encoder's embeddings and record the new size in `encoder_config` (saved with the model)."""
        emb = self.encoder.resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        enc_cfg = dict(self.config.encoder_config)
        enc_cfg["vocab_size"] = emb.weight.shape[0]
        self.config.encoder_config = enc_cfg
        return emb

    def scale(self, z):
        cfg = self.config
        if not cfg.output_scaling:
            return z
        return cfg.label_min + (cfg.label_max - cfg.label_min) * torch.sigmoid(z)

    def loss_fn(self, pred, labels):
        labels = labels.to(pred.dtype)
        if self.config.loss == "huber":
            return nn.functional.huber_loss(pred, labels, delta=self.config.huber_delta)
        return nn.functional.mse_loss(pred, labels)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None, labels=None,
                return_dict=None, **kwargs):
        if attention_mask is None:
            ref = input_ids if input_ids is not None else inputs_embeds[..., 0]
            attention_mask = torch.ones(ref.shape[:2], dtype=torch.long, device=ref.device)
        enc_kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "inputs_embeds": inputs_embeds}
        if token_type_ids is not None:
            enc_kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**enc_kwargs).last_hidden_state
        pooled = pool(hidden, attention_mask, self.config.pooling)
        pred = self.scale(self.head(self.dropout(pooled)))
        loss = self.loss_fn(pred, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=pred)

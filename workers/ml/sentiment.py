"""Financial sentiment classifier: a BERT-style sentence encoder (all-MiniLM-L6-v2 by default)
with mean pooling and a linear head over three classes. Pure PyTorch + transformers, no I/O.

``score = P(positive) - P(negative)`` in [-1, 1]. A checkpoint stores its ``SentimentConfig``
(the encoder's config included), so it is rebuilt without the base model's files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from workers.ml.amp import autocast

# The classes a new classifier predicts: generation.sentiment_labels.LABELS (a test keeps them equal;
# workers.ml imports no project module).
LABELS = ("negative", "neutral", "positive")

_URL = re.compile(r"https?://\S+|www\.\S+")
_SPACES = re.compile(r"\s+")


def text_normalise(text: str) -> str:
    """What the classifier sees: links dropped (tweets end in t.co links that say nothing about
    sentiment, news sentences have none), whitespace collapsed."""
    return _SPACES.sub(" ", _URL.sub(" ", text or "")).strip()


@dataclass
class SentimentConfig:
    encoder: dict = field(default_factory=dict)  # the transformers config of the encoder (to_dict())
    labels: tuple[str, ...] = LABELS
    max_len: int = 64
    dropout: float = 0.1

    def as_dict(self) -> dict:
        data = asdict(self)
        data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SentimentConfig:
        return cls(
            encoder=dict(data["encoder"]),
            labels=tuple(data.get("labels") or LABELS),
            max_len=int(data.get("max_len", 64)),
            dropout=float(data.get("dropout", 0.1)),
        )


def encoder_from_config(encoder_config: dict) -> nn.Module:
    from transformers import AutoConfig, AutoModel

    config = dict(encoder_config)
    model_type = config.pop("model_type", "bert")
    return AutoModel.from_config(AutoConfig.for_model(model_type, **config))


class SentimentClassifier(nn.Module):
    def __init__(self, config: SentimentConfig, encoder: nn.Module | None = None):
        super().__init__()
        self.config = config
        self.encoder = encoder if encoder is not None else encoder_from_config(config.encoder)
        hidden = self.encoder.config.hidden_size
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(hidden, len(config.labels))
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def word_embeddings(self) -> nn.Embedding:
        """The token embedding table: what FGM-style adversarial training perturbs."""
        return self.encoder.get_input_embeddings()

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.head(self.dropout(self.pool(input_ids, attention_mask)))
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return logits, loss

    def encoder_layers(self) -> list[nn.Module]:
        encoder = self.encoder
        return list(encoder.layers if hasattr(encoder, "layers") else encoder.encoder.layer)  # decoder / BERT layout

    def forward_from_states(
        self, states: torch.Tensor, attention_mask: torch.Tensor, *, start: int, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``forward`` from the token states after encoder layer ``start`` (``(batch, tokens, dim)``,
        right-padded, and their mask): the layers above, the pooling and the head. What training over
        cached states of the frozen lower layers runs (BERT-style encoders: MiniLM, MPNet)."""
        layers = self.encoder_layers()[start:]
        additive = (1.0 - attention_mask[:, None, None, :].to(states.dtype)) * torch.finfo(states.dtype).min
        extra = {}
        if hasattr(self.encoder, "encoder") and hasattr(self.encoder.encoder, "compute_position_bias"):
            extra["position_bias"] = self.encoder.encoder.compute_position_bias(states)  # MPNet's relative positions
        for layer in layers:
            out = layer(states, attention_mask=additive, **extra)
            states = out[0] if isinstance(out, tuple) else out
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        logits = self.head(self.dropout(pooled))
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return logits, loss


def sentiment_score(probabilities: torch.Tensor, labels: tuple[str, ...] = LABELS) -> torch.Tensor:
    """P(positive) - P(negative) per row."""
    return probabilities[:, labels.index("positive")] - probabilities[:, labels.index("negative")]


# --- inference (serving and evaluation) ------------------------------------------------------


def encode_batch(tokenizer, texts: list[str], *, max_len: int, device) -> dict[str, torch.Tensor]:
    batch = tokenizer(
        [text_normalise(t) for t in texts], padding=True, truncation=True, max_length=max_len, return_tensors="pt"
    )
    return {"input_ids": batch["input_ids"].to(device), "attention_mask": batch["attention_mask"].to(device)}


def ensemble_probabilities(
    models: list[SentimentClassifier], items: Sequence, forward, *, batch_size: int = 64, device=None, amp_dtype: str = "",
) -> np.ndarray:
    """``(len(items), n_labels)`` probabilities averaged over ``models``: ``forward(model, batch_items,
    device)`` gives a batch's logits. Items run shortest first (a batch pads little) and come back
    in input order."""
    out = np.zeros((len(items), len(models[0].config.labels)), dtype=np.float32)
    if not len(items):
        return out
    device = device or next(models[0].parameters()).device
    order = sorted(range(len(items)), key=lambda i: len(items[i]))
    for model in models:
        model.eval()
    with torch.inference_mode(), autocast(device, amp_dtype):
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = [items[i] for i in rows]
            probs = sum(torch.softmax(forward(m, batch, device)[0].float(), dim=-1) for m in models) / len(models)
            out[rows] = probs.cpu().numpy()
    return out


def predict_probabilities(
    models: list[SentimentClassifier], tokenizer, texts: list[str], *, batch_size: int = 64, device=None,
    amp_dtype: str = "",
) -> np.ndarray:
    """``(len(texts), n_labels)`` probabilities, averaged over ``models`` (an ensemble of one or
    more). Texts are run in length order so a batch pads little, and returned in input order."""
    max_len = models[0].config.max_len

    def forward(model, batch, device):
        return model(**encode_batch(tokenizer, batch, max_len=max_len, device=device))

    return ensemble_probabilities(models, texts, forward, batch_size=batch_size, device=device, amp_dtype=amp_dtype)

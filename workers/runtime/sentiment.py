"""The sentiment classifier in worker processes, and the runners of ``sentiment_train``,
``sentiment_score`` and ``alert_summary``.

The classifier that scores is a ``sentiment`` ModelVersion (GENAI_SENTIMENT_MODEL, else the
promoted one, else the newest ready one), re-resolved on every job, loaded once per process and
version, run in float32 on the worker's device under ``torch.inference_mode()``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from generation.exceptions import PermanentJobError

logger = logging.getLogger(__name__)


@dataclass
class LoadedClassifier:
    label: str  # "finsent@3"
    members: list  # SentimentClassifier, one or more (an ensemble)
    tokenizer: object
    manifest: dict
    device: str
    lock: threading.Lock
    amp_dtype: str = ""  # "bfloat16": scored under autocast (the worker's dtype; float32 weights kept)

    def predict(self, texts: list[str], *, batch_size: int | None = None) -> list[dict]:
        """Per text: ``label``, ``probabilities`` {negative, neutral, positive} and ``score``."""
        from workers.ml.sentiment import predict_probabilities

        with self.lock:  # the fast tokenizer is not safe across threads
            probabilities = predict_probabilities(
                self.members, self.tokenizer, texts, batch_size=batch_size or settings.GENAI_SENTIMENT_BATCH,
                amp_dtype=self.amp_dtype,
            )
        labels = self.members[0].config.labels
        out = []
        for row in probabilities:
            probs = {label: float(round(p, 6)) for label, p in zip(labels, row)}
            out.append(
                {
                    "label": max(probs, key=probs.get),
                    "probabilities": probs,
                    "score": round(probs["positive"] - probs["negative"], 6),
                }
            )
        return out


_loaded: dict[str, LoadedClassifier] = {}
_load_lock = threading.Lock()


def classifier_get(name: str | None = None) -> LoadedClassifier:
    """The classifier version ``name`` resolves to, loaded once per process."""
    from generation.selectors import sentiment_model_resolve

    version = sentiment_model_resolve(name)
    if version is None:
        raise PermanentJobError(
            "No sentiment model is trained yet: run a sentiment_train job (or manage.py sentiment_train).",
            code="no_model",
        )
    if version.label in _loaded:
        return _loaded[version.label]
    with _load_lock:
        if version.label not in _loaded:
            from workers.runtime.device import device_amp_dtype, device_get
            from workers.train.sentiment import artifact_load

            device = device_get().device
            amp_dtype = device_amp_dtype()
            path = Path(settings.GENAI_MODEL_STORE_DIR) / version.artifact_path
            started = time.monotonic()
            members, tokenizer, manifest = artifact_load(path, device=device)
            logger.info("loaded sentiment classifier %s (%d member(s)) in %.2f s", version.label, len(members), time.monotonic() - started)
            _loaded[version.label] = LoadedClassifier(
                label=version.label, members=members, tokenizer=tokenizer, manifest=manifest, device=str(device),
                lock=threading.Lock(), amp_dtype=amp_dtype,
            )
    return _loaded[version.label]


# --- scoring --------------------------------------------------------------------------------


# --- training -------------------------------------------------------------------------------


# --- alert summaries ------------------------------------------------------------------------



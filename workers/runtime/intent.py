"""Intent detection at run time: the runner of the ``intent_train`` kind, and ``intent_predict``
for reply jobs.

Training embeds the texts of every dataset (``GENAI_INTENT_DATASETS`` or the job's own list) with
the process's MiniLM (``workers.runtime.embeddings``), trains the head (``workers.train.intent``),
saves it under the model store and registers ``ModelVersion(family="intent", purpose="reply")``.

Prediction resolves the version per call (``GENAI_INTENT_MODEL``, else the promoted default, else
the newest ready one), so a promotion takes effect without a restart; loaded heads are cached
per process by ``name@version``.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from workers.runtime.cache import ModelCache

FAMILY = "intent"
PURPOSE = "reply"


# --- prediction -------------------------------------------------------------------------------

_cache: ModelCache = ModelCache(name="intent head", size=lambda: settings.GENAI_INTENT_CACHE_SIZE)


def intent_model_get(name: str | None = None):
    """(ModelVersion, IntentClassifier) of the version to use, or (None, None) when none exists."""
    from generation.models import ModelVersion
    from generation.selectors import model_version_resolve
    from workers.ml.intent import IntentClassifier

    name = name or settings.GENAI_INTENT_MODEL or None
    version: ModelVersion | None = model_version_resolve(family=FAMILY, name=name, purpose=None if name else PURPOSE)
    if version is None:
        return None, None
    key = f"{version.label}:{version.artifact_path}"
    model = _cache.get(key, lambda: IntentClassifier.load(Path(settings.GENAI_MODEL_STORE_DIR) / version.artifact_path))
    return version, model


def intent_predict(texts: list[str], *, name: str | None = None) -> tuple[str | None, list[tuple[str, float]]]:
    """(the version's label, [(intent, confidence)] per text); (None, []) without a trained model
    (or when its files are missing: replies then fall back to the retrieved intent)."""
    import logging

    from workers.runtime.embeddings import embedder_get

    try:
        version, model = intent_model_get(name)
    except (OSError, RuntimeError):
        logging.getLogger(__name__).exception("intent model could not be loaded; replies use retrieval's intent")
        return None, []
    if model is None:
        return None, []
    return version.label, model.predict(embedder_get().encode(list(texts)))

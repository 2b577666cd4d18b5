"""Intent detection at run time: the runner of the ``intent_train`` kind, and ``intent_predict``
for reply jobs.

Training embeds the texts of every dataset (``GENAI_INTENT_DATASETS`` or the job's own list) with
the knowledge base's encoder (``workers.runtime.embeddings``; the version records it as its
``base_model``, and prediction reads with that one), trains the head (``workers.train.intent``),
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
# Where a version keeps its linear baseline (a logistic regression on the frozen embeddings,
# fitted on the same split by intent_train), which ``intent_evaluate`` scores in the same run.
BASELINE_DIR = "baseline"


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


def intent_embedder(version):
    """The sentence encoder ``version`` was trained on (its ``base_model``), whatever
    ``GENAI_KB_EMBED_MODEL`` retrieval searches with now: a head trained on MiniLM's features
    cannot read all-mpnet-base-v2's."""
    from workers.runtime.embeddings import embedder_named

    return embedder_named(version.base_model)


def intent_features(model, texts: list[str], *, embedder):
    """What ``model`` reads for ``texts``: ``embedder``'s sentence embeddings, or with fine-tuned
    encoder layers the token states below them."""
    if not model.config.encoder_layers:
        return embedder.encode(list(texts))
    layer = embedder.encoder_layer_count() - model.config.encoder_layers
    return embedder.encode_with_states(list(texts), layer=layer)[1]


def intent_baseline_get(version):
    """The linear baseline stored with ``version`` (None for a version trained without one)."""
    from workers.ml.intent import IntentClassifier

    directory = Path(settings.GENAI_MODEL_STORE_DIR) / version.artifact_path / BASELINE_DIR
    if not directory.is_dir():
        return None
    return IntentClassifier.load(directory)


def intent_predict(
    texts: list[str], *, name: str | None = None, source: str | None = None, labels=None
) -> tuple[str | None, list[tuple[str, float]]]:
    """(the version's label, [(intent, confidence)] per text); (None, []) without a trained model
    (or when its files are missing: replies then fall back to the retrieved intent). ``source``:
    choose among the intents of that dataset only (a model trained on several); ``labels``:
    among those of the model's intents (replies: the knowledge base's, ``knowledge_intents``)."""
    import logging

    try:
        version, model = intent_model_get(name)
        embedder = intent_embedder(version) if model is not None else None
    except (OSError, RuntimeError):
        logging.getLogger(__name__).exception("intent model could not be loaded; replies use retrieval's intent")
        return None, []
    if model is None:
        return None, []
    return version.label, model.predict(intent_features(model, texts, embedder=embedder), source=source, labels=labels)

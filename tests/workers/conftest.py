import numpy as np
import pytest
from django.test import override_settings

from tests.factories import UserFactory
from tests.knowledge_fixtures import bitext_rows


@pytest.fixture(scope="session")
def minilm():
    """The shipped all-MiniLM-L6-v2, loaded once for the tests that need real embeddings."""
    from workers.runtime.embeddings import embedder_get

    return embedder_get()


@pytest.fixture(scope="session")
def bitext_fixture(minilm) -> tuple[dict[str, list[dict]], dict[str, np.ndarray]]:
    """Real Bitext rows per kind (docs embed their long answers: fewer of them keeps this
    fast) and the embeddings of their texts, computed once per session."""
    from generation.privacy import pii_mask
    from generation.text.sentences import line_ends_normalise

    rows = {"conversations": bitext_rows(per_intent=8), "docs": bitext_rows(per_intent=4)}
    texts = {pii_mask(r["instruction"]).text for r in rows["conversations"]}  # the masked message
    # docs are searched by their title and by title and body, as stored: one line-ending style
    texts |= {line_ends_normalise(f"{r['instruction']}\n\n{r['response']}") for r in rows["docs"]}
    texts |= {line_ends_normalise(r["instruction"]) for r in rows["docs"]}
    ordered = sorted(texts)
    return rows, dict(zip(ordered, minilm.encode(ordered)))


@pytest.fixture
def fresh_index():
    """Every search checks the tables, and no matrix is left from another test."""
    from workers.runtime.retrieval import knowledge_index_clear

    knowledge_index_clear()
    with override_settings(GENAI_KB_INDEX_REFRESH_SECONDS=0.0):
        yield
    knowledge_index_clear()


@pytest.fixture
def no_broker(monkeypatch):
    """Jobs the services create are recorded instead of sent."""
    from types import SimpleNamespace

    sent = []
    fake = SimpleNamespace(send_task=lambda name, args=None, **options: sent.append((name, args, options)))
    monkeypatch.setattr("generation.services.jobs.current_app", fake)
    return sent


@pytest.fixture
def load_kb(db, bitext_fixture, no_broker, fresh_index):
    """Imports the fixture rows as ``kind`` through the import service and stores their
    precomputed embeddings through the embedding service (the model's work, done once)."""
    from generation.selectors import knowledge_embedding_pending
    from generation.services.knowledge import (
        embedding_model_name,
        knowledge_embeddings_store,
        knowledge_import_rows,
    )

    rows, vectors = bitext_fixture

    def load(kind: str = "conversations", source: str = "bitext") -> None:
        knowledge_import_rows(user=UserFactory(role="agent"), rows=rows[kind], kind=kind, source=source)
        pending = knowledge_embedding_pending(kind=kind, model_name=embedding_model_name())
        knowledge_embeddings_store(
            kind=kind,
            model_name=embedding_model_name(),
            vectors=[(r.pk, r.content_hash, b"".join(vectors[t].tobytes() for t in r.embedding_texts())) for r in pending],
        )

    return load

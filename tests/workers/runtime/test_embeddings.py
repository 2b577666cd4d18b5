"""The embedding model and the knowledge_embed job, end to end in this process: import queues the
job after commit, job_run embeds exactly the pending rows, with progress, in batches."""

import numpy as np
import pytest

from generation.models import Conversation, Job, JobStatus, KnowledgeDoc
from generation.selectors import knowledge_embedding_pending
from generation.services.jobs import job_create
from generation.services.knowledge import embedding_model_name, knowledge_import_rows
from tests.factories import UserFactory
from workers.runners import job_run

pytestmark = pytest.mark.django_db


def test_embedder_gives_normalised_float32_vectors(minilm):
    vectors = minilm.encode(["Where is my order?", "Where's my package?", "I want to delete my account"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # paraphrases are closer
    assert minilm.encode([]).shape == (0, 384)
    assert minilm.name == embedding_model_name() == "all-MiniLM-L6-v2"


def test_scores_stay_on_minilm_when_the_knowledge_base_uses_another_encoder(minilm, settings, tmp_path):
    from workers.runtime.embeddings import embed_model_path, embedder_get, scorer_get

    other = tmp_path / "kb-encoder"
    other.symlink_to(embed_model_path("all-minilm-l6-v2"), target_is_directory=True)
    settings.GENAI_KB_EMBED_MODEL = str(other)
    searched_with, scored_with = embedder_get(), scorer_get()
    assert searched_with.name == embedding_model_name() == "kb-encoder"
    assert scored_with is minilm and scored_with.name == "all-MiniLM-L6-v2"
    settings.GENAI_KB_EMBED_MODEL = "all-minilm-l6-v2"
    assert embedder_get() is scorer_get() is minilm  # one model loaded where both are the same


def _run(job: Job) -> Job:
    assert job_run(job_id=str(job.id), worker_id="test-worker") == "succeeded"
    job.refresh_from_db()
    return job


def test_import_queues_an_embedding_job_that_embeds_the_pending_rows(
    minilm, no_broker, django_capture_on_commit_callbacks
):
    agent = UserFactory(role="agent")
    rows = [
        {"id": str(i), "customer_message": f"question number {i} about my order", "agent_reply": f"answer {i}"}
        for i in range(7)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        report = knowledge_import_rows(user=agent, rows=rows, kind="conversations", source="crm")
    job = Job.objects.get(pk=report.embed_job_id)
    assert (job.kind, job.queue, job.owner, job.status) == ("knowledge_embed", "cpu", agent, JobStatus.QUEUED)
    assert [name for name, _, _ in no_broker] == ["workers.tasks.job_run"]  # sent after commit

    # A second import while that job is queued reuses it: it embeds every pending row.
    second = knowledge_import_rows(user=agent, rows=[{"customer_message": "hi", "agent_reply": "hello"}], source="x")
    assert second.embed_job_id == report.embed_job_id

    job = Job.objects.get(pk=job.pk)
    job.params = {**job.params, "batch_size": 3}  # several batches, each with progress
    job.save(update_fields=["params"])
    job = _run(job)
    assert job.usage["rows"] == 8 and job.candidates.get().metadata["embedded"] == {"conversations": 8}
    assert job.progress == 1.0 and job.progress_message == "8/8 rows embedded"
    assert job.model_version == "all-MiniLM-L6-v2"
    assert not knowledge_embedding_pending(kind="conversations", model_name=minilm.name).exists()
    stored = Conversation.objects.get(source="crm", external_id="3")
    vector = np.frombuffer(stored.embedding, dtype=np.float32)
    assert np.allclose(vector, minilm.encode([stored.customer_message])[0], atol=1e-5)
    assert (stored.embedded_hash, stored.embedding_model) == (stored.content_hash, "all-MiniLM-L6-v2")

    # An edited row (same id, new text) is pending again; the next job embeds only it.
    rows[3]["customer_message"] = "a different question now"
    with django_capture_on_commit_callbacks(execute=True):
        report = knowledge_import_rows(user=agent, rows=rows, kind="conversations", source="crm")
    assert (report.updated, report.unchanged) == (1, 6)
    job = _run(Job.objects.get(pk=report.embed_job_id))
    assert job.usage["rows"] == 1
    stored.refresh_from_db()
    assert np.allclose(np.frombuffer(stored.embedding, dtype=np.float32), minilm.encode(["a different question now"])[0], atol=1e-5)


def test_force_re_embeds_and_inactive_rows_are_skipped(minilm, no_broker):
    admin = UserFactory(role="admin")
    knowledge_import_rows(
        user=admin,
        rows=[{"title": "Returns", "body": "30 days."}, {"title": "Old", "body": "Gone.", "active": "false"}],
        kind="docs",
        source="help",
        embed=False,
    )
    assert not Job.objects.exists()
    job, _ = job_create(owner=admin, kind="knowledge_embed", params={"kinds": ["docs"]})
    assert _run(job).usage["rows"] == 1
    assert KnowledgeDoc.objects.get(title="Old").embedding is None
    job, _ = job_create(owner=admin, kind="knowledge_embed", params={"kinds": ["docs"], "force": True})
    assert _run(job).usage["rows"] == 1


def test_a_row_edited_while_it_was_embedded_stays_pending(minilm, no_broker):
    from generation.services.knowledge import knowledge_embeddings_store

    knowledge_import_rows(user=UserFactory(role="agent"), rows=[{"id": "1", "title": "A", "body": "a"}], kind="docs", source="s")
    doc = KnowledgeDoc.objects.get()
    read_hash = doc.content_hash
    knowledge_import_rows(user=UserFactory(role="agent"), rows=[{"id": "1", "title": "A", "body": "b"}], kind="docs", source="s")
    knowledge_embeddings_store(kind="docs", model_name=minilm.name, vectors=[(doc.pk, read_hash, minilm.encode(["A\n\na"])[0].tobytes())])
    assert knowledge_embedding_pending(kind="docs", model_name=minilm.name).get() == doc

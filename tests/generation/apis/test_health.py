import pytest

from generation.services.workers import worker_beat
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_names_the_missing_worker_then_is_ready(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok" and checks["broker"] == "ok"
    assert checks["worker"].startswith("failing: no worker heartbeat")

    worker_beat(name="cpu@host", queues="cpu", device="cpu/float32", pid=1)
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert "cpu@host" in response.json()["checks"]["worker"]


def test_readyz_names_a_broken_broker(client, monkeypatch):
    from genai_site.celery import app

    worker_beat(name="cpu@host", queues="cpu", device="cpu/float32", pid=1)
    unreachable = "redis://127.0.0.1:1/0"
    monkeypatch.setattr(app, "connection_for_write", lambda: app.connection(unreachable))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("failing")


def test_readyz_with_the_database_failing_does_not_wait_for_it_twice(client, monkeypatch):
    from generation.apis import health

    calls = []

    def database_down() -> str:
        calls.append("database")
        raise RuntimeError("connection pool timeout")

    monkeypatch.setattr(health, "_check_database", database_down)
    monkeypatch.setattr(health, "workers_alive", lambda: calls.append("worker") or [])
    response = client.get("/readyz")
    assert response.status_code == 503 and calls == ["database"]
    assert response.json()["checks"]["worker"] == "not checked: the database is failing"


def test_metrics_expose_jobs_queues_and_latency_histograms(client):
    JobFactory.create_batch(2)
    text = client.get("/metrics").content.decode()
    assert 'genai_jobs{kind="echo",status="queued"} 2.0' in text
    assert 'genai_queue_depth{queue="cpu"} 2.0' in text
    for name in ("genai_job_latency_seconds", "genai_time_to_first_token_seconds", "genai_generated_tokens_total",
                 "genai_model_load_seconds", "genai_workers_alive", "genai_engine_step_seconds", "genai_engine_rows"):
        assert name in text

import csv
import random
from pathlib import Path

import pytest
from django.conf import settings


@pytest.fixture
def no_broker(monkeypatch):
    """Jobs and deliveries are recorded instead of sent."""
    from types import SimpleNamespace

    sent = []
    monkeypatch.setattr(
        "generation.services.jobs.current_app",
        SimpleNamespace(send_task=lambda name, args=None, **options: sent.append((name, args, options))),
    )
    monkeypatch.setattr(
        "monitoring.tasks.delivery_send.apply_async", lambda args=None, **options: sent.append(("delivery_send", args, options))
    )
    return sent


@pytest.fixture(scope="session")
def small_training_csv() -> Path:
    """A balanced slice of the shipped finance tweets (40 per class), under GENAI_VAR_DIR."""
    source = Path(settings.GENAI_SENTIMENT_TRAIN_CSV)
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rng = random.Random(3)
    rng.shuffle(rows)
    picked = []
    for label in ("0", "1", "2"):
        picked += [r for r in rows if r["label"] == label][:40]
    rng.shuffle(picked)
    path = Path(settings.VAR_DIR) / "test-sentiment-train.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "label": r["label"]} for r in picked)
    return path


@pytest.fixture(scope="session")
def trained_classifier(django_db_setup, django_db_blocker, small_training_csv):
    """One sentiment_train job through the pipeline (a few steps on 180 rows), run once per
    session; its model version and job stay for the tests that score."""
    from types import SimpleNamespace
    from unittest import mock

    from generation.models import Job
    from generation.services.jobs import job_create, job_run
    from tests.factories import UserFactory

    with django_db_blocker.unblock():
        analyst = UserFactory(role="analyst", username="session-trainer")
        with mock.patch("generation.services.jobs.current_app", SimpleNamespace(send_task=lambda *a, **k: None)):
            job, _ = job_create(
                owner=analyst,
                kind="sentiment_train",
                params={"csv": str(small_training_csv), "max_steps": 12, "batch_size": 16, "head_lr": 1e-2, "epochs": 3, "train_layers": 0,
                        "evals_per_epoch": 1, "patience": 5, "test_fraction": 0.0, "validation_fraction": 0.3,
                        "name": "test-finsent", "max_len": 48},
            )
        assert job_run(job_id=str(job.id), worker_id="test-worker") == "succeeded", Job.objects.get(pk=job.pk).error_message
        job = Job.objects.get(pk=job.pk)
        yield SimpleNamespace(job=job, candidate=job.candidates.get(), version=job.model_versions.get())

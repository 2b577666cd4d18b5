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


PHRASES = {
    "0": ["shares plunged after a profit warning", "reported a steep quarterly loss", "cut its outlook and announced layoffs",
          "was downgraded as sales collapsed", "missed estimates and the stock tumbled", "faces a fraud probe; shares sank"],
    "1": ["shares soared on record profit", "beat estimates and raised its outlook", "reported strong sales growth",
          "was upgraded after a blowout quarter", "lifted its dividend as earnings jumped", "won a huge contract; stock rallied"],
    "2": ["will hold its annual meeting on Tuesday", "scheduled its earnings call for next week", "named a new board secretary",
          "moved its office to a new building", "will present at a conference in May", "filed its quarterly report"],
}
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Soylent", "Stark", "Wayne", "Wonka"]


@pytest.fixture(scope="session")
def small_training_csv() -> Path:
    """Clearly labelled finance sentences (company x phrase, labels as in the shipped tweets:
    0 negative, 1 positive, 2 neutral), under GENAI_VAR_DIR where training CSVs may lie."""
    rows = [(f"{company} {phrase}", label) for label, phrases in PHRASES.items() for phrase in phrases for company in COMPANIES]
    random.Random(3).shuffle(rows)
    path = Path(settings.VAR_DIR) / "test-sentiment-train.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def trained_classifier(django_db_setup, django_db_blocker, small_training_csv):
    """One sentiment_train job through the pipeline (a few steps, the head only, on 144 rows),
    run once for the module's tests that score, and removed after them: its rows are committed
    outside any test's transaction, so a longer scope would leak them into other apps' tests."""
    from types import SimpleNamespace
    from unittest import mock

    from generation.models import Job
    from generation.services.jobs import job_create
    from tests.factories import UserFactory
    from workers.runners import job_run

    with django_db_blocker.unblock():
        analyst = UserFactory(role="analyst", username="session-trainer")
        with mock.patch("generation.services.jobs.current_app", SimpleNamespace(send_task=lambda *a, **k: None)):
            job, _ = job_create(
                owner=analyst,
                kind="sentiment_train",
                params={"csv": str(small_training_csv), "max_steps": 10, "batch_size": 16, "head_lr": 2e-2, "epochs": 3, "train_layers": 0,
                        "evals_per_epoch": 1, "patience": 5, "test_fraction": 0.0, "validation_fraction": 0.2,
                        "name": "test-finsent", "max_len": 48},
            )
        assert job_run(job_id=str(job.id), worker_id="test-worker") == "succeeded", Job.objects.get(pk=job.pk).error_message
        job = Job.objects.get(pk=job.pk)
        version = job.model_versions.get()
        candidate = job.candidates.get()
    yield SimpleNamespace(job=job, candidate=candidate, version=version)
    # Leave nothing behind for other apps' tests that count versions or jobs.
    import shutil

    from generation.models import ModelVersion

    with django_db_blocker.unblock():
        shutil.rmtree(Path(settings.GENAI_MODEL_STORE_DIR) / version.artifact_path, ignore_errors=True)
        ModelVersion.objects.filter(pk=version.pk).delete()
        Job.objects.filter(pk=job.pk).delete()
        analyst.delete()

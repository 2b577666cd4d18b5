"""The first look: `demo_setup` seeds the monitoring demo and, through real worker processes
(scoring, rule evaluation, the summary job, the grouped delivery), an analyst finds series on the
dashboard and an alert with its summary and its delivered e-mail."""

import contextlib
import csv
import shutil
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from generation.models import Job, ModelVersion, ModelVersionStatus
from monitoring.models import Alert, AlertRule, Delivery, NewsItem, WatchedEntity
from monitoring.services.demo import DEMO_EMAIL, DEMO_SOURCE, ENTITY_RULE, STORM_ENTITY, demo_news_plan
from tests.e2e.conftest import wait_for
from tests.factories import ModelVersionFactory, UserFactory

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def demo_classifier(transactional_db):
    """A sentiment classifier that knows the demo's tweets: the head of MiniLM fitted on them with
    the file's labels (what is tested here is the pipeline, not the model; `make run` trains on
    the whole training split)."""
    from generation.services.jobs import job_create
    from workers.runners import job_run

    plan = demo_news_plan(csv=settings.GENAI_SENTIMENT_TRAIN_CSV, now=timezone.now())
    path = Path(settings.VAR_DIR) / "test-demo-sentiment.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((item.text, item.label) for item in plan)
    owner = UserFactory(role="analyst")
    with mock.patch("generation.services.jobs.current_app", SimpleNamespace(send_task=lambda *a, **k: None)):
        job, _ = job_create(owner=owner, kind="sentiment_train", params={
            "csv": str(path), "epochs": 4, "batch_size": 16, "head_lr": 5e-2, "train_layers": 0, "evals_per_epoch": 1,
            "patience": 4, "test_fraction": 0.0, "validation_fraction": 0.05, "name": "test-demo-finsent", "max_len": 32,
        })
    assert job_run(job_id=str(job.id), worker_id="test-trainer") == "succeeded", Job.objects.get(pk=job.pk).error_message
    version = ModelVersion.objects.get(family="sentiment")
    yield version
    artifact = Path(settings.GENAI_MODEL_STORE_DIR) / version.artifact_path
    shutil.rmtree(artifact, ignore_errors=True)
    with contextlib.suppress(OSError):
        artifact.parent.rmdir()
    path.unlink(missing_ok=True)


def test_the_seeded_demo_shows_series_and_an_alert_with_its_summary_and_delivery(
    start_worker, demo_classifier, settings, tmp_path, client, api_for, capsys
):
    settings.GENAI_FINETUNE_BITEXT_CSV = str(tmp_path / "none.csv")  # no knowledge base import here
    settings.GENAI_ALERT_GROUP_WAIT_SECONDS = 2  # the demo rules take the setting's group wait
    for family in ("intent", "vae"):  # trained already: demo_setup queues no training
        ModelVersionFactory(family=family, name=f"test-{family}")
    # nor the all-mpnet-base-v2 classifier (archived: it scores nothing, demo_classifier does)
    ModelVersionFactory(family="sentiment", name="finsent-mpnet", status=ModelVersionStatus.ARCHIVED)
    mail_dir = tmp_path / "mail"
    worker = start_worker(EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend", EMAIL_FILE_PATH=str(mail_dir))

    call_command("demo_setup")
    out = capsys.readouterr().out
    items = NewsItem.objects.filter(source=DEMO_SOURCE)
    assert 200 <= items.count() <= 400 and f"Monitoring demo: {items.count()} news items" in out
    assert set(WatchedEntity.objects.values_list("key", flat=True)) == {"BA", "TSLA", "AMZN", "AAPL", "OIL"}
    assert AlertRule.objects.count() == 2

    def delivered() -> bool:
        return Delivery.objects.filter(alerts__entity=STORM_ENTITY, status="delivered").exists()

    wait_for(delivered, timeout=240, message=lambda: (
        f"scored {items.exclude(sentiment_label='').count()}/{items.count()}, alerts "
        f"{list(Alert.objects.values_list('rule__name', 'entity', 'status', 'value'))}, deliveries "
        f"{list(Delivery.objects.values_list('status', 'last_error'))}\n{worker.log_tail()}"
    ))
    alert = Alert.objects.get(rule__name=ENTITY_RULE, entity=STORM_ENTITY)
    assert alert.status == "firing" and alert.summary and alert.summary_item_ids

    # What the analyst sees: the chart's series, the alert with its summary ...
    analyst = UserFactory(role="analyst")
    client.force_login(analyst)
    page = client.get("/monitoring/").content.decode()
    assert "<polyline" in page and all(key in page for key in ("BA", "TSLA", "AMZN", "AAPL", "OIL"))
    assert ENTITY_RULE in page and f"[#{alert.summary_item_ids[0]}]" in page
    # ... its delivery record, and the e-mail itself.
    detail = api_for(user=analyst).get(f"/api/alerts/{alert.pk}").json()
    (delivery,) = [d for d in detail["deliveries"] if d["state"] == "firing"]
    assert (delivery["channel"], delivery["target"], delivery["status"]) == ("email", DEMO_EMAIL, "delivered")
    assert {"alert": alert.pk, "state": "firing"} in delivery["alerts"] and delivery["attempt_log"][0]["ok"]
    (message,) = [m.read_text() for m in mail_dir.iterdir()]
    assert f"Subject: [WARNING] {ENTITY_RULE}: BA firing" in message and "Entity: BA   State: firing" in message

    # Idempotent: nothing is seeded twice.
    count = items.count()
    call_command("demo_setup")
    assert items.count() == count and AlertRule.objects.count() == 2 and WatchedEntity.objects.count() == 5

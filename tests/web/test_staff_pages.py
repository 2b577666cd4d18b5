import json
import re

import pytest

from generation import roles
from generation.models import JobMetric, JobStatus, ModelVersion
from generation.services.model_versions import model_version_register
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_model_versions_with_metrics_and_promote(client, login):
    old = model_version_register(family="lm_adapter", name="reply-lora", purpose="reply", artifact_path="a/1",
                                 metrics={"eval_loss": 2.5})
    new = model_version_register(family="lm_adapter", name="reply-lora", purpose="reply", artifact_path="a/2",
                                 metrics={"eval_loss": 2.1})
    admin = login(roles.ADMIN)
    client.post(f"/staff/models/{old.pk}/promote")
    page = _text(client.get("/staff/models/"))
    assert "reply-lora@2" in page and "eval_loss: <strong>2.1000</strong>" in page
    assert f'action="/staff/models/{new.pk}/promote"' in page and f'action="/staff/models/{old.pk}/promote"' not in page
    assert "reply-lora@1<div>eval_loss: 2.5000</div>" in page.replace("</code>", "")  # the current default beside it
    response = client.post(f"/staff/models/{new.pk}/promote")
    assert response.status_code == 302
    new.refresh_from_db()
    old.refresh_from_db()
    assert new.is_default and not old.is_default and new.promoted_by == admin


def test_promote_needs_the_role(client, login):
    version = model_version_register(family="intent", name="intent", artifact_path="i/1")
    login(roles.AGENT)
    assert client.post(f"/staff/models/{version.pk}/promote").status_code == 403
    assert not ModelVersion.objects.get(pk=version.pk).is_default


def test_training_jobs_show_progress_and_a_loss_curve(client, login):
    login(roles.ADMIN)
    from generation.kinds import kinds_all

    train_kind = next((k.name for k in kinds_all() if k.queue == "train"), None)
    if train_kind is None:
        pytest.fail("no training job kind is registered")
    job = JobFactory(kind=train_kind, queue="train", status=JobStatus.RUNNING, progress=0.4, progress_message="epoch 2 of 5")
    for step, loss in ((1, 2.0), (2, 1.5), (3, 1.2)):
        JobMetric.objects.create(job=job, step=step, split="train", values={"loss": loss})
    JobMetric.objects.create(job=job, step=3, split="validation", values={"loss": 1.4, "accuracy": 0.81})
    page = _text(client.get("/staff/training/"))
    assert "40 % — epoch 2 of 5" in page and 'hx-trigger="load delay:' in page
    # The chart the browser draws (uPlot, served from this site): loss and accuracy on axes of their own.
    assert re.search(r'<script src="/static/web/vendor/uplot\.iife\.min\.js"', page)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)
    spec = json.loads(re.search(rf'<script id="chart-job-{job.id}" type="application/json">(.*?)</script>', page).group(1))
    assert spec["x"] == [1, 2, 3]
    assert {s["name"]: (s["unit"], s["values"]) for s in spec["series"]} == {
        "train loss": ("loss", [2.0, 1.5, 1.2]),
        "validation loss": ("loss", [None, None, 1.4]),
        "validation accuracy": ("ratio", [None, None, 0.81]),
    }
    assert spec["units"] == {"loss": {"label": "loss"}, "ratio": {"label": "accuracy / F1", "range": [0, 1]}}
    # Without JavaScript: the SVG fallback.
    fallback = re.search(r"<noscript>(.*?)</noscript>", page).group(1)
    lines = re.findall(r'<polyline fill="none" stroke="[^"]+" stroke-width="2" points="([^"]+)"><title>([^<]+)</title>', fallback)
    assert [name for _, name in lines] == ["train loss", "validation accuracy", "validation loss"]
    train_points = [tuple(map(float, p.split(","))) for p in lines[0][0].split()]
    assert len(train_points) == 3 and train_points[0][1] < train_points[-1][1]  # loss falls: y grows downwards

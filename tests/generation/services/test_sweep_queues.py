"""The sweeper's re-send delay is per queue: interactive jobs within a minute, training later."""

from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import Job
from generation.services.jobs import job_requeue_after, jobs_sweep
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def _queued(queue: str, seconds_ago: float) -> Job:
    job = JobFactory(queue=queue)
    Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now() - timedelta(seconds=seconds_ago))
    return job


def test_interactive_queues_are_resent_within_a_minute_and_training_later(sent_tasks, settings):
    settings.GENAI_JOB_REQUEUE_AFTER_SECONDS = 300
    settings.GENAI_JOB_REQUEUE_AFTER_SECONDS_BY_QUEUE = {"gpu": 45.0, "cpu": 45.0}
    assert job_requeue_after(queue="gpu") + settings.GENAI_SWEEP_INTERVAL_SECONDS <= 60
    gpu, cpu = _queued("gpu", 50), _queued("cpu", 50)
    fresh_cpu, train_recent, train_old = _queued("cpu", 10), _queued("train", 50), _queued("train", 400)

    assert jobs_sweep().resent == 3
    resent = {m["args"][0] for m in sent_tasks.sent}
    assert resent == {str(gpu.id), str(cpu.id), str(train_old.id)}
    assert str(fresh_cpu.id) not in resent and str(train_recent.id) not in resent


def test_the_default_visibility_timeout_outlasts_a_training_job(settings):
    from genai_site.settings import base

    if not base.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("the visibility timeout is the Redis transport's")
    assert base.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > settings.GENAI_TRAIN_JOB_SOFT_TIME_LIMIT_SECONDS + 60

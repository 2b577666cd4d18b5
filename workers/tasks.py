"""Celery tasks: the worker's API. Thin: take an id, call a service, return."""

import os
import random
import uuid

from celery import shared_task
from django.conf import settings

from generation.exceptions import TransientJobError
from generation.services.jobs import RUN_TASK_NAME
from generation.services.jobs import jobs_sweep as jobs_sweep_service
from workers import runners


@shared_task(bind=True, name=RUN_TASK_NAME, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def job_run(self, job_id: str) -> str:
    """Run one job. Safe to deliver twice: the claim makes every extra delivery a no-op."""
    worker_id = f"{self.request.hostname}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
    try:
        return runners.job_run(job_id=job_id, worker_id=worker_id)
    except TransientJobError as exc:
        base = settings.GENAI_TRANSIENT_RETRY_BACKOFF_SECONDS * (2**self.request.retries)
        countdown = min(base, settings.GENAI_TRANSIENT_RETRY_BACKOFF_MAX_SECONDS) * random.uniform(0.8, 1.2)
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(name="workers.tasks.jobs_sweep", acks_late=True)
def jobs_sweep() -> dict:
    """Beat: re-send lost messages, requeue or fail jobs of dead workers."""
    report = jobs_sweep_service()
    return {"resent": report.resent, "requeued": report.requeued, "failed": report.failed}


@shared_task(name="workers.tasks.ping", ignore_result=False)
def ping() -> str:
    """A bare round trip through broker and worker (diagnostics; the benchmark's baseline)."""
    return "pong"

"""Prometheus metrics.

Counters and histograms are recorded where things happen (web or worker processes). With
``PROMETHEUS_MULTIPROC_DIR`` set (``make run`` and compose set it), every process writes to that
folder and ``/metrics`` on the web merges them. Job counts by state and queue depths are read
from the database at scrape time, since the rows are the truth.
"""

from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from generation.models import Job
    from generation.runner import JobResult

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

JOBS_FINISHED = Counter("genai_jobs_finished_total", "Jobs that reached a final state.", ["kind", "status"])
JOB_LATENCY = Histogram(
    "genai_job_latency_seconds", "Time from job creation to its final state.", ["kind", "status"], buckets=LATENCY_BUCKETS
)
JOB_QUEUE_WAIT = Histogram(
    "genai_job_queue_wait_seconds", "Time from job creation to a worker starting it.", ["kind"], buckets=LATENCY_BUCKETS
)
TIME_TO_FIRST_TOKEN = Histogram(
    "genai_time_to_first_token_seconds",
    "Time from job creation to its first streamed token.",
    ["kind"],
    buckets=LATENCY_BUCKETS,
)
GENERATED_TOKENS = Counter("genai_generated_tokens_total", "Tokens generated.", ["kind"])
PROMPT_TOKENS = Counter("genai_prompt_tokens_total", "Prompt tokens processed.", ["kind"])
MODEL_LOAD_SECONDS = Histogram(
    "genai_model_load_seconds", "Time to load a model into a worker process.", ["model"], buckets=LATENCY_BUCKETS
)


ENGINE_STEP_SECONDS = Histogram(
    "genai_engine_step_seconds",
    "Time of one engine iteration (a prefill chunk and/or one decoding step for all active rows).",
    buckets=(0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56),
)
ENGINE_ROWS = Gauge("genai_engine_rows", "Candidate rows decoding in the batch.", multiprocess_mode="livesum")
ENGINE_WAITING = Gauge("genai_engine_waiting", "Requests waiting for room in the batch.", multiprocess_mode="livesum")


def job_started(*, job: Job) -> None:
    if job.started_at and job.created_at:
        JOB_QUEUE_WAIT.labels(job.kind).observe(max((job.started_at - job.created_at).total_seconds(), 0.0))


def first_token(*, kind: str, job_id: str) -> None:
    from django.utils import timezone

    from generation.models import Job

    created_at = Job.objects.filter(pk=job_id).values_list("created_at", flat=True).first()
    if created_at is not None:
        TIME_TO_FIRST_TOKEN.labels(kind).observe(max((timezone.now() - created_at).total_seconds(), 0.0))


def job_finished(*, job: Job, result: JobResult | None = None) -> None:
    JOBS_FINISHED.labels(job.kind, job.status).inc()
    if job.finished_at and job.created_at:
        JOB_LATENCY.labels(job.kind, job.status).observe(max((job.finished_at - job.created_at).total_seconds(), 0.0))
    if result is not None:
        GENERATED_TOKENS.labels(job.kind).inc(sum(c.completion_tokens for c in result.candidates))
        PROMPT_TOKENS.labels(job.kind).inc(sum(c.prompt_tokens for c in result.candidates[:1]))


def model_loaded(*, model: str, seconds: float) -> None:
    MODEL_LOAD_SECONDS.labels(model).observe(seconds)


def engine_stepped(*, seconds: float, rows: int, waiting: int) -> None:
    ENGINE_STEP_SECONDS.observe(seconds)
    ENGINE_ROWS.set(rows)
    ENGINE_WAITING.set(waiting)


class DatabaseCollector(Collector):
    """Jobs by kind and status, queued jobs per queue, and live workers, read at scrape time."""

    def collect(self):
        from datetime import timedelta

        from django.conf import settings
        from django.db.models import Count
        from django.utils import timezone

        from generation.models import Job, JobStatus, WorkerHeartbeat

        jobs = GaugeMetricFamily("genai_jobs", "Jobs by kind and status.", labels=["kind", "status"])
        for row in Job.objects.values("kind", "status").annotate(n=Count("id")).order_by():
            jobs.add_metric([row["kind"], row["status"]], row["n"])
        yield jobs

        for name, help_text, status in (
            ("genai_queue_depth", "Jobs waiting per queue.", JobStatus.QUEUED),
            ("genai_jobs_running", "Jobs running per queue.", JobStatus.RUNNING),
        ):
            family = GaugeMetricFamily(name, help_text, labels=["queue"])
            counts = dict(Job.objects.filter(status=status).values_list("queue").annotate(n=Count("id")).order_by())
            for queue in settings.GENAI_QUEUES:
                family.add_metric([queue], counts.get(queue, 0))
            yield family

        fresh = timezone.now() - timedelta(seconds=settings.GENAI_WORKER_STALE_SECONDS)
        workers = GaugeMetricFamily("genai_workers_alive", "Worker processes with a fresh heartbeat.")
        workers.add_metric([], WorkerHeartbeat.objects.filter(last_seen_at__gte=fresh).count())
        yield workers


class MergedProcessesCollector(Collector):
    """Samples of every process on every host under GENAI_METRICS_DIR (one folder per host)."""

    def __init__(self, root: str):
        self.root = root

    def collect(self):
        files = glob.glob(os.path.join(self.root, "*", "*.db"))
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)


# Feature apps add their own collectors (the review app: feedback, review queue and quality per
# model version), registered when the app is ready.
_APP_COLLECTORS: list = []


def collectors_register(collectors) -> None:
    """``collectors(multiprocess=bool) -> [Collector]`` is rendered with every ``/metrics``."""
    if collectors not in _APP_COLLECTORS:
        _APP_COLLECTORS.append(collectors)


def metrics_render() -> bytes:
    from django.conf import settings

    registry = CollectorRegistry()
    if settings.GENAI_METRICS_DIR:
        registry.register(MergedProcessesCollector(settings.GENAI_METRICS_DIR))
    else:
        for collector in (JOBS_FINISHED, JOB_LATENCY, JOB_QUEUE_WAIT, TIME_TO_FIRST_TOKEN, GENERATED_TOKENS,
                          PROMPT_TOKENS, MODEL_LOAD_SECONDS, ENGINE_STEP_SECONDS, ENGINE_ROWS, ENGINE_WAITING):
            registry.register(collector)
    registry.register(DatabaseCollector())
    for collectors in _APP_COLLECTORS:
        for collector in collectors(multiprocess=bool(settings.GENAI_METRICS_DIR)):
            registry.register(collector)
    return generate_latest(registry)


"""Job life cycle: create (admission, idempotency), enqueue, claim, heartbeat, stream, finish,
cancel, retry and sweep. The only code that writes ``Job`` rows.

State machine::

    queued -> running -> succeeded | failed | cancelled
    queued -> cancelled
    running -> queued            (transient error, the sweeper found its worker dead, or its
                                  worker is shutting down and handed it back)

Every transition is a conditional UPDATE (or a row lock), so a task delivered twice, a sweeper
racing a worker, or a cancel racing a finish all leave one consistent row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from generation import metrics, roles
from generation.exceptions import (
    AdmissionRejected,
    Conflict,
    Forbidden,
    InvalidInput,
    PermanentJobError,
    TransientJobError,
)
from generation.jsonchecks import errors_at, json_problem
from generation.kinds import JobKind, kind_get, kinds_all
from generation.logging import job_context
from generation.models import (
    FINAL_STATUSES,
    PRIORITY_MAX,
    PRIORITY_MIN,
    Candidate,
    Job,
    JobEvent,
    JobMetric,
    JobStatus,
)
from generation.privacy import params_mask
from generation.runner import CandidateResult, JobResult, Runner

logger = logging.getLogger(__name__)

# The worker's task that runs a job (``workers.tasks.job_run`` is registered under this name).
RUN_TASK_NAME = "workers.tasks.job_run"

# Screens run on a job's candidates inside ``job_succeed``'s transaction; each returns one
# metadata dict per candidate (the review app registers the output safety filter at start-up).
CandidateScreen = Callable[..., list[dict]]
_CANDIDATE_SCREENS: list[CandidateScreen] = []


def candidate_screen_register(screen: CandidateScreen) -> None:
    """Add ``screen(job=..., candidates=...) -> [metadata per candidate]`` to every job's success."""
    if screen not in _CANDIDATE_SCREENS:
        _CANDIDATE_SCREENS.append(screen)


def _candidates_screen(*, job: Job, candidates: list[CandidateResult]) -> list[dict]:
    metadata = [dict(c.metadata) for c in candidates]
    for screen in _CANDIDATE_SCREENS:
        metadata = screen(job=job, candidates=[replace(c, metadata=m) for c, m in zip(candidates, metadata)])
    return metadata


# --- create ---------------------------------------------------------------------------------


def job_params_validate(*, kind: str, params: Any) -> tuple[JobKind, dict]:
    """Validate ``params`` with the kind's serializer; errors are nested under ``params``."""
    job_kind = kind_get(kind)
    if job_kind is None:
        known = ", ".join(k.name for k in kinds_all())
        raise InvalidInput({"kind": [f"Unknown job kind {kind!r}; known kinds: {known}."]})
    if not isinstance(params, dict):
        raise InvalidInput({"params": ["Expected an object of parameters."]})
    serializer = job_kind.params_serializer(data=params)
    if not serializer.is_valid():
        raise InvalidInput({"params": serializer.errors})
    validated = dict(serializer.validated_data)
    # PostgreSQL's jsonb holds no NUL or unpaired surrogate, keys included: one check of what is
    # stored, whichever kind's free-form field it sits in (it was a 500 on PostgreSQL).
    problem = json_problem(validated)
    if problem is not None:
        raise InvalidInput({"params": errors_at(*problem)})
    # One masking policy for what is stored: personal data in every kind's free text.
    return job_kind, params_mask(validated, paths=job_kind.masked_params)


def _request_hash(*, kind: str, params: dict, priority: int) -> str:
    canonical = json.dumps({"kind": kind, "params": params, "priority": priority}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _admit(*, owner: AbstractBaseUser) -> None:
    """Refuse a new job when the owner's or the whole service's queue is full (429).

    One query, no lock: concurrent requests may overshoot a cap by at most the number of
    requests in flight, which admission control tolerates; a per-user row lock measured as the
    bottleneck of one user's burst of submissions (bench/pipeline.py).
    """
    counts = Job.objects.filter(status=JobStatus.QUEUED).aggregate(
        total=Count("id"), mine=Count("id", filter=Q(owner=owner))
    )
    retry_after = settings.GENAI_ADMISSION_RETRY_AFTER_SECONDS
    for queued, limit, setting, whose in (
        (counts["mine"], settings.GENAI_MAX_QUEUED_JOBS_PER_USER, "GENAI_MAX_QUEUED_JOBS_PER_USER", "You have"),
        (counts["total"], settings.GENAI_MAX_QUEUED_JOBS_TOTAL, "GENAI_MAX_QUEUED_JOBS_TOTAL", "The service has"),
    ):
        if queued >= limit:
            raise AdmissionRejected(
                f"{whose} {limit} queued jobs, the limit ({setting}); retry after {retry_after} s.",
                retry_after=retry_after,
            )


def job_create(
    *,
    owner: AbstractBaseUser,
    kind: str,
    params: Any,
    priority: int = 5,
    idempotency_key: str | None = None,
) -> tuple[Job, bool]:
    """Create a job and enqueue it after commit. Returns ``(job, created)``.

    With an idempotency key, the same request returns the job made the first time
    (``created=False``); a different request with the same key is a conflict.
    """
    job_kind, validated = job_params_validate(kind=kind, params=params)
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise InvalidInput({"priority": [f"Must be between {PRIORITY_MIN} and {PRIORITY_MAX}."]})
    if not roles.user_has_role(owner, *job_kind.roles):
        raise Forbidden(
            f"Your roles may not create {kind!r} jobs; allowed roles: {', '.join(sorted(job_kind.roles))}."
        )
    request_hash = _request_hash(kind=kind, params=validated, priority=priority)

    def _existing() -> Job | None:
        if not idempotency_key:
            return None
        job = Job.objects.filter(owner=owner, idempotency_key=idempotency_key).first()
        if job is not None and job.request_hash != request_hash:
            raise Conflict(
                "This Idempotency-Key was used for a different request; use a new key.",
                field="Idempotency-Key",
            )
        return job

    try:
        with transaction.atomic():
            existing = _existing()
            if existing is not None:
                return existing, False
            _admit(owner=owner)
            job = Job.objects.create(
                kind=kind,
                queue=job_kind.queue,
                owner=owner,
                params=validated,
                request_hash=request_hash,
                idempotency_key=idempotency_key or None,
                priority=priority,
                max_attempts=settings.GENAI_JOB_MAX_ATTEMPTS,
                enqueued_at=timezone.now(),
            )
            transaction.on_commit(lambda: job_enqueue(job=job, mark=False))
    except IntegrityError:
        # Two requests with one idempotency key raced; the other one won.
        existing = _existing()
        if existing is None:
            raise
        return existing, False
    logger.info("job created", extra={"job_id": str(job.id), "kind": kind})
    return job, True


def job_time_limits(*, queue: str) -> tuple[int, int]:
    """(soft, hard) seconds a job of ``queue`` may run: training has its own, longer limit."""
    if queue == "train":
        soft = settings.GENAI_TRAIN_JOB_SOFT_TIME_LIMIT_SECONDS
        return soft, soft + 60
    return settings.CELERY_TASK_SOFT_TIME_LIMIT, settings.CELERY_TASK_TIME_LIMIT


def job_enqueue(*, job: Job, mark: bool = True) -> bool:
    """Send the wake-up message. A broker outage only delays the job: the sweeper sends again.

    ``mark`` stamps ``enqueued_at`` first (a new job has it from its INSERT): stamped after the
    send, a fast worker's claim would race the stamp.
    """
    if mark:
        Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(enqueued_at=timezone.now())
    try:
        # Kombu's Redis transport pops priority 0 first; our API's 9 is the most urgent.
        soft, hard = job_time_limits(queue=job.queue)
        current_app.send_task(
            RUN_TASK_NAME,
            args=[str(job.id)],
            queue=job.queue,
            priority=9 - job.priority,
            soft_time_limit=soft,
            time_limit=hard,
        )
    except Exception:  # noqa: BLE001 - any broker failure; the row stays queued
        logger.exception("enqueue failed; the sweeper will send it again", extra={"job_id": str(job.id)})
        return False
    return True


# --- cancel / retry (people) ----------------------------------------------------------------


def job_cancel(*, job: Job, user: AbstractBaseUser) -> Job:
    """Cancel a queued or running job. A running worker stops at its next token flush."""
    if job.owner_id != user.pk and not roles.user_has_role(user, roles.ADMIN):
        raise Forbidden("Only the job's owner or an admin may cancel it.")
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.is_final:
            raise Conflict(f"The job is already {locked.status}; only queued or running jobs can be cancelled.")
        locked.status = JobStatus.CANCELLED
        locked.finished_at = timezone.now()
        locked.error_code = "cancelled"
        locked.error_message = f"Cancelled by {user.get_username()}."
        locked.save(update_fields=["status", "finished_at", "error_code", "error_message", "updated_at"])
    metrics.job_finished(job=locked)
    return locked


def job_retry(*, job: Job) -> Job:
    """Run a failed or cancelled job again from scratch (an admin action)."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise Conflict(f"Only failed or cancelled jobs can be retried; this one is {locked.status}.")
        locked.candidates.all().delete()
        locked.events.all().delete()
        Job.objects.filter(pk=locked.pk).update(
            status=JobStatus.QUEUED,
            attempts=0,
            error_code="",
            error_message="",
            progress=0.0,
            progress_message="",
            worker_id="",
            started_at=None,
            first_token_at=None,
            heartbeat_at=None,
            finished_at=None,
            updated_at=timezone.now(),
        )
        locked.refresh_from_db()
        transaction.on_commit(lambda: job_enqueue(job=locked))
    return locked


# --- worker side ----------------------------------------------------------------------------


def job_claim(*, job_id: str, worker_id: str) -> Job | None:
    """Take a job for this worker: a queued job, or a running one whose worker stopped
    heart-beating. Returns None when the job is final, or running elsewhere and alive."""
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.GENAI_JOB_HEARTBEAT_STALE_SECONDS)
    with transaction.atomic():
        claimed = (
            Job.objects.filter(pk=job_id, attempts__lt=F("max_attempts"))
            .filter(Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale_before))
            .update(
                status=JobStatus.RUNNING,
                attempts=F("attempts") + 1,
                worker_id=worker_id,
                started_at=now,
                heartbeat_at=now,
                first_token_at=None,
                progress=0.0,
                progress_message="",
                updated_at=now,
            )
        )
        if not claimed:
            return None
        job = Job.objects.get(pk=job_id)
        if job.attempts > 1:  # a new attempt streams from the start
            JobEvent.objects.filter(job_id=job_id).delete()
    return job


def job_heartbeat(*, job_id: str, worker_id: str, progress: float | None = None, message: str | None = None) -> bool:
    """Record that the attempt is alive. False when the job is no longer this worker's
    (cancelled, or taken over by another worker after a stall): the runner must stop."""
    now = timezone.now()
    fields: dict[str, Any] = {"heartbeat_at": now, "updated_at": now}
    if progress is not None:
        fields["progress"] = min(max(progress, 0.0), 1.0)
    if message is not None:
        fields["progress_message"] = message[:255]
    return bool(Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, worker_id=worker_id).update(**fields))


def job_text_append(*, job_id: str, worker_id: str, attempt: int, deltas: dict[int, str]) -> bool:
    """Store streamed text of the running attempt; doubles as a heartbeat. False: stop."""
    now = timezone.now()
    with transaction.atomic():
        alive = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, worker_id=worker_id).update(
            heartbeat_at=now, updated_at=now
        )
        if not alive:
            return False
        Job.objects.filter(pk=job_id, first_token_at__isnull=True).update(first_token_at=now)
        JobEvent.objects.create(job_id=job_id, attempt=attempt, deltas={str(k): v for k, v in deltas.items()})
    return True


def job_succeed(*, job_id: str, worker_id: str, result: JobResult) -> Job | None:
    """Store the results and mark the job succeeded, unless it was cancelled or taken over."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != JobStatus.RUNNING or job.worker_id != worker_id:
            return None
        screened = _candidates_screen(job=job, candidates=result.candidates)
        Candidate.objects.bulk_create(
            [
                Candidate(
                    job=job,
                    index=i,
                    text=c.text,
                    score=c.score,
                    finish_reason=c.finish_reason,
                    prompt_tokens=c.prompt_tokens,
                    completion_tokens=c.completion_tokens,
                    metadata=screened[i],
                )
                for i, c in enumerate(result.candidates)
            ]
        )
        job.status = JobStatus.SUCCEEDED
        job.finished_at = timezone.now()
        job.progress = 1.0
        job.model_version = result.model_version[:255]
        job.usage = result.usage
        job.save(update_fields=["status", "finished_at", "progress", "model_version", "usage", "updated_at"])
    metrics.job_finished(job=job, result=result)
    return job


def job_fail(*, job_id: str, code: str, message: str, worker_id: str | None = None) -> Job | None:
    """Mark a job failed with an error code a client can act on. With ``worker_id``, only if
    that worker still owns it."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_final or (worker_id is not None and job.worker_id != worker_id):
            return None
        job.status = JobStatus.FAILED
        job.finished_at = timezone.now()
        job.error_code = code[:64]
        job.error_message = message
        job.save(update_fields=["status", "finished_at", "error_code", "error_message", "updated_at"])
    metrics.job_finished(job=job)
    return job


def job_release(*, job_id: str, worker_id: str, reason: str) -> bool:
    """After a transient error: put the job back in the queue for the task's retry, or fail it
    once its attempts are used up. True when it was requeued."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id, status=JobStatus.RUNNING, worker_id=worker_id).first()
        if job is None:
            return False
        if job.attempts >= job.max_attempts:
            job.status = JobStatus.FAILED
            job.finished_at = timezone.now()
            job.error_code = "transient_errors"
            job.error_message = (
                f"Gave up after {job.attempts} attempts (GENAI_JOB_MAX_ATTEMPTS); last error: {reason}"
            )
            job.save(update_fields=["status", "finished_at", "error_code", "error_message", "updated_at"])
            transaction.on_commit(lambda: metrics.job_finished(job=job))
            return False
        job.status = JobStatus.QUEUED
        job.worker_id = ""
        job.progress_message = f"retrying after: {reason}"[:255]
        job.enqueued_at = timezone.now()
        job.save(update_fields=["status", "worker_id", "progress_message", "enqueued_at", "updated_at"])
    return True


def job_hand_back(*, job_id: str, worker_id: str) -> bool:
    """A worker that is shutting down gives its running job back: queued again with its message
    sent again, for another worker. The attempt is not counted (the job did nothing wrong, and a
    job handed back at every scale-in must not run out of attempts), and what the attempt streamed
    and logged is dropped: the next attempt starts over. False when the job is no longer this
    worker's (cancelled, or taken over meanwhile)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id, status=JobStatus.RUNNING, worker_id=worker_id).first()
        if job is None:
            return False
        JobEvent.objects.filter(job_id=job_id).delete()
        JobMetric.objects.filter(job_id=job_id).delete()
        job.status = JobStatus.QUEUED
        job.attempts = max(job.attempts - 1, 0)
        job.worker_id = ""
        job.started_at = job.first_token_at = job.heartbeat_at = None
        job.progress = 0.0
        job.progress_message = f"handed back by {worker_id.split('/')[0]}: the worker shut down"[:255]
        job.enqueued_at = timezone.now()
        job.save(update_fields=[
            "status", "attempts", "worker_id", "started_at", "first_token_at", "heartbeat_at", "progress",
            "progress_message", "enqueued_at", "updated_at",
        ])
        transaction.on_commit(lambda: job_enqueue(job=job, mark=False))
    logger.info("job handed back: the worker is shutting down", extra={"job_id": job_id})
    return True


class _Shutdown:
    """When this worker process began shutting down: jobs it still runs at ``deadline``
    (``time.monotonic()``) are told to stop (stop reason ``shutdown``) and handed back."""

    deadline: float | None = None


_shutdown = _Shutdown()


def jobs_hand_back_after(seconds: float) -> None:
    """The worker process is shutting down (called from its signal handler, so it only sets a
    number): jobs still running ``seconds`` from now stop and go back to the queue
    (``GENAI_WORKER_SHUTDOWN_FINISH_SECONDS`` on SIGTERM; 0 on a cold shutdown)."""
    deadline = time.monotonic() + max(seconds, 0.0)
    if _shutdown.deadline is None or deadline < _shutdown.deadline:
        _shutdown.deadline = deadline


class _StreamCount:
    """How many jobs of this worker process are streaming text now (``JobContext.text_emit``)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.value += n


_streaming = _StreamCount()
_clock = time.monotonic  # tests move it


@dataclass
class JobContext:
    """The database-backed ``RunnerContext`` (``generation.runner``) a runner gets in a job: its
    job's identity, and the calls that report progress, stream text and tell it to stop
    (cancelled, taken over, or past its time limit)."""

    job_id: str
    worker_id: str
    attempt: int
    kind: str
    deadline: float
    owner_id: int | None = None
    _stop_reason: str | None = None
    _pending: dict[int, str] = field(default_factory=dict)
    _last_flush: float = -math.inf
    _streaming: bool = False  # counted in _streaming
    tokens_streamed: int = 0

    def progress(self, fraction: float, message: str = "") -> None:
        if not job_heartbeat(job_id=self.job_id, worker_id=self.worker_id, progress=fraction, message=message):
            self._stop_reason = self._stop_reason or "cancelled"

    def text_emit(self, deltas: dict[int, str], *, tokens: int = 0) -> None:
        """Buffer streamed text; written at once the first time, then every
        GENAI_STREAM_FLUSH_SECONDS, or less often while many jobs of the process stream: at most
        GENAI_STREAM_WRITES_PER_SECOND writes a second for all of them (each is a transaction and
        a JobEvent row; 16 drafts at 10 a second each cost a quarter of the worker's tokens)."""
        for index, text in deltas.items():
            if text:
                self._pending[index] = self._pending.get(index, "") + text
        if self._pending and not self._streaming:
            self._streaming = True
            _streaming.add(1)
        if tokens and self.tokens_streamed == 0:
            metrics.first_token(kind=self.kind, job_id=self.job_id)
        self.tokens_streamed += tokens
        interval = max(settings.GENAI_STREAM_FLUSH_SECONDS, _streaming.value / settings.GENAI_STREAM_WRITES_PER_SECOND)
        if _clock() - self._last_flush >= interval:
            self.text_flush()

    def stream_end(self) -> None:
        """The job streams no more (it ended): it no longer counts among the process's streams."""
        if self._streaming:
            self._streaming = False
            _streaming.add(-1)

    def text_flush(self) -> None:
        self._last_flush = _clock()
        if not self._pending:
            return
        deltas, self._pending = self._pending, {}
        if not job_text_append(job_id=self.job_id, worker_id=self.worker_id, attempt=self.attempt, deltas=deltas):
            self._stop_reason = self._stop_reason or "cancelled"

    def stop_reason(self) -> str | None:
        """``cancelled``, ``timeout`` or ``shutdown`` (the worker is shutting down and the job did
        not finish in time) once the runner must stop, else None. The first reason given sticks."""
        if self._stop_reason is None:
            now = time.monotonic()
            if now > self.deadline:
                self._stop_reason = "timeout"
            elif _shutdown.deadline is not None and now >= _shutdown.deadline:
                self._stop_reason = "shutdown"
        return self._stop_reason

    @property
    def handing_back(self) -> bool:
        """The runner was told to stop because the worker is shutting down: whatever it returned
        or raised is partial, and the job goes back to the queue."""
        return self._stop_reason == "shutdown"

    def stop_from_heartbeat(self) -> None:
        self._stop_reason = self._stop_reason or "cancelled"

    def metrics_log(self, step: int, split: str = "train", **values: float) -> None:
        """Record a point of the job's training curves (GET /api/jobs/{id}/metrics)."""
        from generation.services.model_versions import job_metric_log

        job_metric_log(job_id=self.job_id, step=step, split=split, values=values)


class _Heartbeat(threading.Thread):
    """Beats for the running attempt while the runner computes (a model forward pass may hold
    the runner's thread for seconds); uses its own database connection."""

    def __init__(self, ctx: JobContext):
        super().__init__(name=f"heartbeat-{ctx.job_id}", daemon=True)
        self.ctx = ctx
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.GENAI_JOB_HEARTBEAT_SECONDS):
                if not job_heartbeat(job_id=self.ctx.job_id, worker_id=self.ctx.worker_id):
                    self.ctx.stop_from_heartbeat()
                    return
        except Exception:  # noqa: BLE001 - a missed beat is what the sweeper is for
            logger.exception("heartbeat failed", extra={"job_id": self.ctx.job_id})
        finally:
            connection.close()


def job_run(*, job_id: str, worker_id: str, runners: Mapping[str, Runner]) -> str:
    """Run one job on this worker: claim, run its kind's runner (from ``runners``, the worker's
    registry ``workers.runners.RUNNERS``), store the outcome.

    Returns what happened (``skipped``, ``succeeded``, ``failed``, ``cancelled``, ``handed_back``); raises
    ``TransientJobError`` after releasing the job so the task can retry with backoff.
    """
    job = job_claim(job_id=job_id, worker_id=worker_id)
    if job is None:
        logger.info("job not claimable (final, or alive elsewhere); skipped", extra={"job_id": job_id})
        return "skipped"
    with job_context(job_id):
        return _job_execute(job=job, worker_id=worker_id, runner=runners.get(job.kind))


def _job_execute(*, job: Job, worker_id: str, runner: Runner | None) -> str:
    job_id = str(job.id)
    if kind_get(job.kind) is None or runner is None:
        job_fail(job_id=job_id, worker_id=worker_id, code="unknown_kind", message=f"No runner for kind {job.kind!r}.")
        return "failed"
    ctx = JobContext(
        job_id=job_id,
        worker_id=worker_id,
        attempt=job.attempts,
        kind=job.kind,
        deadline=time.monotonic() + job_time_limits(queue=job.queue)[0],
        owner_id=job.owner_id,
    )
    metrics.job_started(job=job)
    heartbeat = _Heartbeat(ctx)
    heartbeat.start()
    try:
        result = runner(params=job.params, ctx=ctx)
        ctx.text_flush()
    except TransientJobError as exc:
        if _job_release_after_error(job_id=job_id, worker_id=worker_id, reason=str(exc)):
            raise
        return "failed"
    except PermanentJobError as exc:
        if ctx.handing_back:  # e.g. a training runner's "stopped before the model was saved"
            return _job_hand_back(ctx)
        job_fail(job_id=job_id, worker_id=worker_id, code=exc.code, message=str(exc))
        return "failed"
    except Exception as exc:  # noqa: BLE001 - any bug in a runner fails its job, not the worker
        if ctx.handing_back:
            return _job_hand_back(ctx)
        if type(exc).__name__ == "SoftTimeLimitExceeded":
            job_fail(job_id=job_id, worker_id=worker_id, code="timeout", message=_timeout_message(job.queue))
            return "failed"
        if _is_transient(exc):
            if _job_release_after_error(job_id=job_id, worker_id=worker_id, reason=repr(exc)):
                raise TransientJobError(repr(exc)) from exc
            return "failed"
        logger.exception("job failed", extra={"job_id": job_id})
        job_fail(job_id=job_id, worker_id=worker_id, code="internal_error", message=f"{type(exc).__name__}: {exc}")
        return "failed"
    finally:
        heartbeat.stopped.set()
        ctx.stream_end()
    if ctx.handing_back:
        return _job_hand_back(ctx)
    if ctx.stop_reason() == "timeout":
        job_fail(
            job_id=job_id,
            worker_id=worker_id,
            code="timeout",
            message=_timeout_message(job.queue),
        )
        return "failed"
    if job_succeed(job_id=job_id, worker_id=worker_id, result=result) is None:
        return "cancelled"
    return "succeeded"


def _job_hand_back(ctx: JobContext) -> str:
    return "handed_back" if job_hand_back(job_id=ctx.job_id, worker_id=ctx.worker_id) else "cancelled"


# Seconds between tries to release a job after a database error (the database may be restarting).
_RELEASE_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)


def _job_release_after_error(*, job_id: str, worker_id: str, reason: str) -> bool:
    """``job_release`` after a transient error, which may have broken this thread's database
    connection: the broken connection is dropped first (the next query reconnects) and the
    release is tried again while the database comes back, so the job is requeued at once
    instead of waiting for the sweeper to find it stalled. When the database stays away, the
    last error propagates and the sweeper recovers the job."""
    from django.db import InterfaceError, OperationalError

    from generation.db import db_connections_drop_unusable

    for delay in (*_RELEASE_RETRY_DELAYS, None):
        db_connections_drop_unusable()
        try:
            return job_release(job_id=job_id, worker_id=worker_id, reason=reason)
        except (OperationalError, InterfaceError):
            if delay is None:
                raise
            time.sleep(delay)
    return False


def _timeout_message(queue: str) -> str:
    name = "GENAI_TRAIN_JOB_SOFT_TIME_LIMIT_SECONDS" if queue == "train" else "GENAI_JOB_SOFT_TIME_LIMIT_SECONDS"
    return f"The job ran past its time limit of {job_time_limits(queue=queue)[0]} s ({name})."


def _is_transient(exc: BaseException) -> bool:
    from django.db import InterfaceError, OperationalError

    if isinstance(exc, (OperationalError, InterfaceError, ConnectionError, TimeoutError)):
        return True
    # Device out of memory is worth a retry once other jobs have freed it; torch is not
    # imported here, so match by name.
    return type(exc).__name__ == "OutOfMemoryError"


# --- sweeper --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepReport:
    resent: int
    requeued: int
    failed: int


def job_requeue_after(*, queue: str) -> float:
    """Seconds a job of ``queue`` may wait queued before the sweeper sends its message again."""
    return float(settings.GENAI_JOB_REQUEUE_AFTER_SECONDS_BY_QUEUE.get(queue, settings.GENAI_JOB_REQUEUE_AFTER_SECONDS))


def jobs_sweep() -> SweepReport:
    """Beat task body. Re-sends the message of jobs queued too long (the message may be lost),
    and requeues or fails running jobs whose worker stopped heart-beating (killed worker)."""
    now = timezone.now()
    batch = settings.GENAI_SWEEP_BATCH
    stale_before = now - timedelta(seconds=settings.GENAI_JOB_HEARTBEAT_STALE_SECONDS)

    resent = 0
    waited_too_long = Q()
    for queue in settings.GENAI_QUEUES:
        resend_before = now - timedelta(seconds=job_requeue_after(queue=queue))
        waited_too_long |= Q(queue=queue) & (
            Q(enqueued_at__lt=resend_before) | Q(enqueued_at__isnull=True, created_at__lt=resend_before)
        )
    waiting = Job.objects.filter(status=JobStatus.QUEUED).filter(waited_too_long)
    for job in waiting.order_by("created_at")[:batch]:
        logger.warning("job queued too long; sending its message again", extra={"job_id": str(job.id)})
        resent += job_enqueue(job=job)

    requeued = failed = 0
    stalled = Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale_before).order_by("heartbeat_at")
    for job_id in list(stalled.values_list("id", flat=True)[:batch]):
        with transaction.atomic():
            job = (
                Job.objects.select_for_update()
                .filter(pk=job_id, status=JobStatus.RUNNING, heartbeat_at__lt=stale_before)
                .first()
            )
            if job is None:
                continue
            lost_worker = job.worker_id
            if job.attempts >= job.max_attempts:
                job.status = JobStatus.FAILED
                job.finished_at = now
                job.error_code = "worker_lost"
                job.error_message = (
                    f"The worker running this job ({lost_worker}) stopped heart-beating, "
                    f"{job.attempts} of {job.max_attempts} attempts used (GENAI_JOB_MAX_ATTEMPTS)."
                )
                job.save(update_fields=["status", "finished_at", "error_code", "error_message", "updated_at"])
                failed += 1
                transaction.on_commit(lambda job=job: metrics.job_finished(job=job))
            else:
                job.status = JobStatus.QUEUED
                job.worker_id = ""
                job.progress_message = f"requeued: worker {lost_worker} stopped heart-beating"
                job.save(update_fields=["status", "worker_id", "progress_message", "updated_at"])
                requeued += 1
                transaction.on_commit(lambda job=job: job_enqueue(job=job))
        logger.warning("stalled job swept", extra={"job_id": str(job_id), "worker": lost_worker})
    return SweepReport(resent=resent, requeued=requeued, failed=failed)


def job_status_is_final(status: str) -> bool:
    return status in FINAL_STATUSES

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from generation.exceptions import (
    AdmissionRejected,
    Conflict,
    Forbidden,
    InvalidInput,
    TransientJobError,
)
from generation.models import Job, JobEvent, JobStatus
from generation.services.jobs import (
    job_cancel,
    job_claim,
    job_create,
    job_enqueue,
    job_heartbeat,
    job_retry,
    job_text_append,
    jobs_sweep,
)
from tests.factories import JobFactory, UserFactory
from workers.runners import job_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    return UserFactory(role="admin")


def test_create_stores_validated_params_and_enqueues_after_commit(admin, sent_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job, created = job_create(owner=admin, kind="echo", params={"text": "hi"}, priority=7)
    assert created
    assert job.status == JobStatus.QUEUED
    assert job.queue == "cpu"
    assert job.params == {"text": "hi", "delay_seconds": 0.0}
    assert sent_tasks.sent == [
        {
            "name": "workers.tasks.job_run",
            "args": [str(job.id)],
            "queue": "cpu",
            "priority": 2,
            "soft_time_limit": settings.CELERY_TASK_SOFT_TIME_LIMIT,
            "time_limit": settings.CELERY_TASK_TIME_LIMIT,
        }
    ]
    job.refresh_from_db()
    assert job.enqueued_at is not None


def test_training_jobs_get_the_train_queues_longer_time_limit(admin, sent_tasks, settings):
    settings.GENAI_TRAIN_JOB_SOFT_TIME_LIMIT_SECONDS = 7200
    job = JobFactory(kind="intent_train", queue="train")
    job_enqueue(job=job)
    assert (sent_tasks.sent[0]["soft_time_limit"], sent_tasks.sent[0]["time_limit"]) == (7200, 7260)


def test_create_does_not_enqueue_when_the_transaction_rolls_back(admin, sent_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        job_create(owner=admin, kind="echo", params={"text": "hi"})
    # The message goes out only from the on-commit hook, never inside the transaction.
    assert sent_tasks.sent == []
    assert len(callbacks) == 1


def test_unknown_kind_names_the_field(admin):
    with pytest.raises(InvalidInput) as error:
        job_create(owner=admin, kind="poem", params={})
    assert "kind" in error.value.errors
    assert "generate" in error.value.errors["kind"][0]


def test_invalid_params_are_nested_under_params(admin):
    with pytest.raises(InvalidInput) as error:
        job_create(owner=admin, kind="echo", params={"text": "hi", "delay_seconds": 10_000})
    assert "delay_seconds" in error.value.errors["params"]
    assert Job.objects.count() == 0


def test_role_must_be_allowed_by_the_kind():
    reviewer = UserFactory(role="reviewer")
    with pytest.raises(Forbidden):
        job_create(owner=reviewer, kind="echo", params={"text": "hi"})
    assert Job.objects.count() == 0


def test_idempotency_key_returns_the_same_job_and_rejects_a_different_body(admin):
    first, created = job_create(owner=admin, kind="echo", params={"text": "hi"}, idempotency_key="k1")
    again, created_again = job_create(owner=admin, kind="echo", params={"text": "hi"}, idempotency_key="k1")
    assert created and not created_again
    assert again.pk == first.pk
    with pytest.raises(Conflict):
        job_create(owner=admin, kind="echo", params={"text": "other"}, idempotency_key="k1")
    # Keys are per owner: another user may use the same one.
    other, created_other = job_create(owner=UserFactory(role="admin"), kind="echo", params={"text": "hi"}, idempotency_key="k1")
    assert created_other and other.pk != first.pk
    assert Job.objects.count() == 2


def test_admission_caps_queued_jobs_per_user_and_in_total(admin, settings):
    settings.GENAI_MAX_QUEUED_JOBS_PER_USER = 2
    settings.GENAI_ADMISSION_RETRY_AFTER_SECONDS = 7
    job_create(owner=admin, kind="echo", params={"text": "1"})
    job_create(owner=admin, kind="echo", params={"text": "2"})
    with pytest.raises(AdmissionRejected) as error:
        job_create(owner=admin, kind="echo", params={"text": "3"})
    assert error.value.retry_after == 7
    assert "GENAI_MAX_QUEUED_JOBS_PER_USER" in error.value.message

    settings.GENAI_MAX_QUEUED_JOBS_PER_USER = 100
    settings.GENAI_MAX_QUEUED_JOBS_TOTAL = 2
    with pytest.raises(AdmissionRejected, match="GENAI_MAX_QUEUED_JOBS_TOTAL"):
        job_create(owner=UserFactory(role="admin"), kind="echo", params={"text": "4"})


def test_claim_takes_a_queued_job_once():
    job = JobFactory()
    claimed = job_claim(job_id=job.id, worker_id="w1")
    assert claimed.status == JobStatus.RUNNING and claimed.attempts == 1 and claimed.worker_id == "w1"
    assert job_claim(job_id=job.id, worker_id="w2") is None  # running elsewhere, heartbeat fresh


def test_claim_skips_final_jobs_and_takes_over_stale_ones(settings):
    done = JobFactory(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    assert job_claim(job_id=done.id, worker_id="w1") is None

    settings.GENAI_JOB_HEARTBEAT_STALE_SECONDS = 30
    stale = JobFactory(
        status=JobStatus.RUNNING, attempts=1, worker_id="dead", heartbeat_at=timezone.now() - timedelta(seconds=60)
    )
    JobEvent.objects.create(job=stale, attempt=1, deltas={"0": "half"})
    claimed = job_claim(job_id=stale.id, worker_id="w2")
    assert claimed.worker_id == "w2" and claimed.attempts == 2
    assert not JobEvent.objects.filter(job=stale).exists()  # the new attempt streams afresh


def test_run_echo_job_succeeds_with_a_candidate():
    job = JobFactory(params={"text": "hello there", "delay_seconds": 0.0})
    assert job_run(job_id=str(job.id), worker_id="w1") == "succeeded"
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.finished_at is not None and job.progress == 1.0
    assert [c.text for c in job.candidates.all()] == ["hello there"]
    assert job_run(job_id=str(job.id), worker_id="w2") == "skipped"  # a second delivery does nothing
    assert job.candidates.count() == 1


def test_run_failure_is_recorded_with_a_code(test_kind, admin):
    test_kind("boom_run")
    job = JobFactory(kind="test-kind", owner=admin)
    assert job_run(job_id=str(job.id), worker_id="w1") == "failed"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error_code == "internal_error"
    assert "the model exploded" in job.error_message


def test_permanent_error_keeps_its_code(test_kind, admin):
    test_kind("bad_input_run")
    job = JobFactory(kind="test-kind", owner=admin)
    job_run(job_id=str(job.id), worker_id="w1")
    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "invalid_input")


def test_transient_error_requeues_then_fails_after_max_attempts(test_kind, admin):
    test_kind("db_blip_run")
    job = JobFactory(kind="test-kind", owner=admin, max_attempts=2)
    with pytest.raises(TransientJobError):
        job_run(job_id=str(job.id), worker_id="w1")
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.QUEUED, 1)
    assert "server closed" in job.progress_message

    assert job_run(job_id=str(job.id), worker_id="w2") == "failed"
    job.refresh_from_db()
    assert (job.status, job.error_code, job.attempts) == (JobStatus.FAILED, "transient_errors", 2)


def test_cancel_queued_job(admin):
    job = JobFactory(owner=admin)
    cancelled = job_cancel(job=job, user=admin)
    assert cancelled.status == JobStatus.CANCELLED and cancelled.finished_at is not None
    assert job_run(job_id=str(job.id), worker_id="w1") == "skipped"
    with pytest.raises(Conflict, match="already cancelled"):
        job_cancel(job=job, user=admin)


def test_cancel_needs_owner_or_admin():
    job = JobFactory()
    with pytest.raises(Forbidden):
        job_cancel(job=job, user=UserFactory(role="reviewer"))
    assert job_cancel(job=job, user=UserFactory(role="admin")).status == JobStatus.CANCELLED


def test_cancel_of_running_job_stops_its_worker_and_keeps_it_cancelled(admin):
    job = JobFactory(owner=admin)
    job_claim(job_id=job.id, worker_id="w1")
    job_cancel(job=job, user=admin)
    # The worker learns at its next flush or heartbeat, and stops.
    assert job_text_append(job_id=job.id, worker_id="w1", attempt=1, deltas={0: "tok"}) is False
    assert job_heartbeat(job_id=job.id, worker_id="w1") is False
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


def test_sweep_resends_jobs_queued_too_long(sent_tasks, settings):
    settings.GENAI_JOB_REQUEUE_AFTER_SECONDS = 60
    old = JobFactory()
    Job.objects.filter(pk=old.pk).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    never_sent = JobFactory()
    Job.objects.filter(pk=never_sent.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    fresh = JobFactory(enqueued_at=timezone.now())

    report = jobs_sweep()

    assert report.resent == 2
    assert {m["args"][0] for m in sent_tasks.sent} == {str(old.id), str(never_sent.id)}
    assert str(fresh.id) not in {m["args"][0] for m in sent_tasks.sent}


def test_sweep_requeues_a_dead_workers_job_then_fails_it_when_attempts_run_out(
    sent_tasks, settings, django_capture_on_commit_callbacks
):
    settings.GENAI_JOB_HEARTBEAT_STALE_SECONDS = 30
    long_ago = timezone.now() - timedelta(minutes=2)
    retryable = JobFactory(status=JobStatus.RUNNING, attempts=1, max_attempts=3, worker_id="dead", heartbeat_at=long_ago)
    exhausted = JobFactory(status=JobStatus.RUNNING, attempts=3, max_attempts=3, worker_id="dead", heartbeat_at=long_ago)
    alive = JobFactory(status=JobStatus.RUNNING, attempts=1, worker_id="alive", heartbeat_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        report = jobs_sweep()

    assert (report.requeued, report.failed) == (1, 1)
    retryable.refresh_from_db()
    exhausted.refresh_from_db()
    alive.refresh_from_db()
    assert retryable.status == JobStatus.QUEUED and "dead" in retryable.progress_message
    assert [m["args"][0] for m in sent_tasks.sent] == [str(retryable.id)]
    assert exhausted.status == JobStatus.FAILED and exhausted.error_code == "worker_lost"
    assert "3 of 3 attempts" in exhausted.error_message
    assert alive.status == JobStatus.RUNNING


def test_broker_outage_leaves_the_job_queued_for_the_sweeper(
    admin, sent_tasks, settings, django_capture_on_commit_callbacks
):
    sent_tasks.fail = True
    with django_capture_on_commit_callbacks(execute=True):
        job, _ = job_create(owner=admin, kind="echo", params={"text": "hi"})
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and sent_tasks.sent == []

    sent_tasks.fail = False
    settings.GENAI_JOB_REQUEUE_AFTER_SECONDS = 60
    Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now() - timedelta(minutes=2))
    assert jobs_sweep().resent == 1
    assert [m["args"][0] for m in sent_tasks.sent] == [str(job.id)]
    job.refresh_from_db()
    assert job.enqueued_at > timezone.now() - timedelta(seconds=5)


def test_retry_runs_a_failed_job_again(sent_tasks, django_capture_on_commit_callbacks):
    job = JobFactory(status=JobStatus.FAILED, attempts=3, error_code="worker_lost", finished_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        retried = job_retry(job=job)
    assert (retried.status, retried.attempts, retried.error_code) == (JobStatus.QUEUED, 0, "")
    assert len(sent_tasks.sent) == 1
    with pytest.raises(Conflict):
        job_retry(job=retried)


def test_priority_out_of_range_is_invalid_input(admin):
    with pytest.raises(InvalidInput) as error:
        job_create(owner=admin, kind="echo", params={"text": "hi"}, priority=12)
    assert "priority" in error.value.errors


def test_the_more_jobs_stream_at_once_the_less_often_each_writes_its_text(admin, settings, monkeypatch):
    import math

    from generation.services import jobs as jobs_module

    settings.GENAI_STREAM_FLUSH_SECONDS, settings.GENAI_STREAM_WRITES_PER_SECOND = 0.1, 10.0
    now = [1000.0]
    monkeypatch.setattr(jobs_module, "_clock", lambda: now[0])
    monkeypatch.setattr(jobs_module, "_streaming", jobs_module._StreamCount())  # this process's streams: these
    contexts = []
    for job in [JobFactory(owner=admin) for _ in range(5)]:
        job_claim(job_id=job.id, worker_id="w1")
        contexts.append(jobs_module.JobContext(job_id=str(job.id), worker_id="w1", attempt=1, kind=job.kind,
                                               deadline=math.inf))
    first = contexts[0]

    def texts():
        return list(JobEvent.objects.filter(job_id=first.job_id).values_list("deltas", flat=True))

    try:
        for ctx in contexts:
            ctx.text_emit({0: "a"}, tokens=1)  # a job's first text goes out at once (time to first token)
        assert texts() == [{"0": "a"}]
        now[0] += 0.2
        first.text_emit({0: "b"}, tokens=1)  # 5 streams at 10 writes a second: each every 0.5 s
        assert texts() == [{"0": "a"}]
        now[0] += 0.35
        first.text_emit({0: "c"}, tokens=1)
        assert texts() == [{"0": "a"}, {"0": "bc"}]
        for ctx in contexts[1:]:
            ctx.stream_end()  # the others ended: back to every GENAI_STREAM_FLUSH_SECONDS
        now[0] += 0.15
        first.text_emit({0: "d"}, tokens=1)
        assert texts()[-1] == {"0": "d"}
    finally:
        for ctx in contexts:
            ctx.stream_end()
    assert jobs_module._streaming.value == 0

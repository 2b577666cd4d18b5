"""A worker that shuts down hands its unfinished jobs back (issue 20: graceful scale-in). The
real-process version, SIGTERM to a running worker, is tests/e2e/test_worker_shutdown.py."""

import pytest

from generation.models import Job, JobEvent, JobMetric, JobStatus
from generation.services import jobs
from generation.services.jobs import job_claim, job_hand_back, jobs_hand_back_after
from tests.factories import JobFactory, UserFactory
from workers.runners import job_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_shutdown(monkeypatch):
    """The shutdown deadline is process state: each test starts without one and leaves none."""
    monkeypatch.setattr(jobs._shutdown, "deadline", None)


def test_hand_back_requeues_without_counting_the_attempt_and_drops_its_partial_output(
    sent_tasks, django_capture_on_commit_callbacks
):
    job = JobFactory(attempts=1, max_attempts=3)
    job = job_claim(job_id=job.id, worker_id="pod-a/7/x")
    assert job.attempts == 2
    JobEvent.objects.create(job=job, attempt=2, deltas={"0": "half a repl"})
    JobMetric.objects.create(job=job, step=3, values={"loss": 0.5})

    with django_capture_on_commit_callbacks(execute=True):
        assert job_hand_back(job_id=job.id, worker_id="pod-a/7/x") is True

    job.refresh_from_db()
    assert (job.status, job.attempts, job.worker_id, job.started_at) == (JobStatus.QUEUED, 1, "", None)
    assert "pod-a" in job.progress_message and job.enqueued_at is not None
    assert not JobEvent.objects.filter(job=job).exists() and not JobMetric.objects.filter(job=job).exists()
    assert [m["args"] for m in sent_tasks.sent] == [[str(job.id)]]


def test_hand_back_of_a_job_that_is_no_longer_the_workers_changes_nothing(sent_tasks):
    job = JobFactory()
    job_claim(job_id=job.id, worker_id="pod-b/1/y")
    assert job_hand_back(job_id=job.id, worker_id="pod-a/7/x") is False
    assert Job.objects.get(pk=job.id).status == JobStatus.RUNNING and sent_tasks.sent == []


def test_a_job_still_running_at_the_shutdown_deadline_is_handed_back(
    test_kind, sent_tasks, django_capture_on_commit_callbacks
):
    test_kind("training_run")
    job = JobFactory(kind="test-kind", params={"text": "x"}, owner=UserFactory(role="admin"))
    jobs_hand_back_after(0)  # a cold shutdown, or the finish window already over

    with django_capture_on_commit_callbacks(execute=True):
        outcome = job_run(job_id=str(job.id), worker_id="pod-a/7/x")

    job.refresh_from_db()
    assert outcome == "handed_back"
    # not failed with the runner's "stopped" error: queued again, attempt uncounted, message re-sent
    assert (job.status, job.attempts, job.error_code) == (JobStatus.QUEUED, 0, "")
    assert not job.candidates.exists() and not JobMetric.objects.filter(job=job).exists()
    assert [m["args"] for m in sent_tasks.sent] == [[str(job.id)]]


def test_a_job_that_finishes_within_the_window_succeeds(test_kind, sent_tasks):
    test_kind("training_run")
    job = JobFactory(kind="test-kind", params={"text": "x", "steps": 3}, owner=UserFactory(role="admin"))
    jobs_hand_back_after(60)  # SIGTERM arrived, the window is still open

    assert job_run(job_id=str(job.id), worker_id="pod-a/7/x") == "succeeded"
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and [c.text for c in job.candidates.all()] == ["trained"]
    assert sent_tasks.sent == []


def test_the_earliest_deadline_wins():
    jobs_hand_back_after(60)
    warm = jobs._shutdown.deadline
    jobs_hand_back_after(0)  # then a cold shutdown
    assert jobs._shutdown.deadline < warm
    jobs_hand_back_after(60)
    assert jobs._shutdown.deadline < warm

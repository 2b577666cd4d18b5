"""Graceful scale-in with real worker processes (issue 20): Kubernetes stops a worker pod with
SIGTERM and kills it terminationGracePeriodSeconds later. The worker's running jobs finish within
GENAI_WORKER_SHUTDOWN_FINISH_SECONDS, or go back to the queue: none is lost or left running."""

import signal
import time

import pytest

from generation.models import Job, JobStatus
from tests.e2e.conftest import wait_final, wait_for

pytestmark = [pytest.mark.e2e]


def _start_echo(client, *, text: str, delay: float) -> str:
    response = client.post("/api/jobs/", {"kind": "echo", "params": {"text": text, "delay_seconds": delay}},
                           format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_sigterm_lets_a_running_job_finish_then_the_worker_exits(start_worker, api_for):
    worker = start_worker(GENAI_WORKER_SHUTDOWN_FINISH_SECONDS="30")
    job_id = _start_echo(api_for("admin"), text="finished", delay=4)
    wait_for(lambda: Job.objects.get(pk=job_id).status == JobStatus.RUNNING, timeout=30, message=worker.log_tail)

    worker.process.send_signal(signal.SIGTERM)

    job = wait_final(job_id, timeout=30, workers=[worker])
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message, worker.log_tail())
    assert job.attempts == 1 and [c.text for c in job.candidates.all()] == ["finished"]
    assert worker.process.wait(timeout=30) == 0, worker.log_tail()


def test_sigterm_hands_a_long_job_back_and_another_worker_runs_it(start_worker, api_for):
    doomed = start_worker(GENAI_WORKER_SHUTDOWN_FINISH_SECONDS="1")
    job_id = _start_echo(api_for("admin"), text="survivor", delay=8)
    wait_for(lambda: Job.objects.get(pk=job_id).status == JobStatus.RUNNING, timeout=30, message=doomed.log_tail)

    signalled = time.monotonic()
    doomed.process.send_signal(signal.SIGTERM)
    assert doomed.process.wait(timeout=20) == 0, doomed.log_tail()
    # Well within a pod's grace period, with the 8 s job unfinished: it is queued again, not
    # running under a dead worker's name (the sweeper's case), and the attempt is not counted.
    assert time.monotonic() - signalled < 15
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.attempts, job.worker_id) == (JobStatus.QUEUED, 0, ""), doomed.log_tail()
    assert "handed back" in job.progress_message

    # No beat here, so no sweeper: the rescuer runs the job from the message the hand-back sent.
    rescuer = start_worker()
    job = wait_final(job_id, timeout=60, workers=[rescuer])
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message, rescuer.log_tail())
    assert job.attempts == 1 and job.worker_id.startswith(rescuer.name)
    assert [c.text for c in job.candidates.all()] == ["survivor"]

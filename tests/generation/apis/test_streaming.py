import pytest
from django.utils import timezone

from generation.apis.streaming import JobFollower, event_deltas
from generation.models import JobEvent, JobStatus
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_follower_resumes_after_an_event_and_stops_once_the_job_is_final():
    job = JobFactory(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    first = JobEvent.objects.create(job=job, attempt=1, deltas={"0": "a"})
    second = JobEvent.objects.create(job=job, attempt=1, deltas={"10": "c", "2": "b"})
    follower = JobFollower(job.pk, after_id=first.id)
    assert list(follower) == [second] and follower.final
    assert event_deltas(second) == [(2, "b"), (10, "c")]


def test_follower_yields_keepalives_while_idle_and_gives_up_after_the_limit(settings):
    settings.GENAI_STREAM_MAX_SECONDS = 0.3
    settings.GENAI_STREAM_KEEPALIVE_SECONDS = 0.05
    settings.GENAI_STREAM_POLL_SECONDS = 0.01
    follower = JobFollower(JobFactory().pk)  # queued, and no worker
    items = list(follower)
    assert items and set(items) == {None}
    assert not follower.final

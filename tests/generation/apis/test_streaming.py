import asyncio
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from generation.apis import streaming
from generation.apis.streaming import AsyncJobFollower, JobFollower, event_deltas
from generation.db import db_connections_release
from generation.models import JobEvent, JobStatus
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

pooled = pytest.mark.skipif(
    not connection.settings_dict["OPTIONS"].get("pool"), reason="needs PostgreSQL with its pool (GENAI_DB_POOL_MAX)"
)


def _checked_out() -> int:
    """Connections of this process's pool in use (by any thread)."""
    stats = connection.pool.get_stats()
    return stats["pool_size"] - stats["pool_available"]


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


# --- the async follower (ASGI streams): the hub's thread reads committed rows -------------------


def _follow_all(followers):
    async def follow(follower):
        return [event async for event in follower]

    async def main():
        return await asyncio.gather(*(follow(f) for f in followers))

    return asyncio.run(main())


@pytest.mark.django_db(transaction=True)
def test_async_followers_get_the_same_events_from_one_poll_per_tick(settings, monkeypatch):
    settings.GENAI_STREAM_POLL_SECONDS = 0.01
    job = JobFactory(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    other = JobFactory(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    first = JobEvent.objects.create(job=job, attempt=1, deltas={"0": "a"})
    second = JobEvent.objects.create(job=job, attempt=1, deltas={"0": "b"})
    theirs = JobEvent.objects.create(job=other, attempt=1, deltas={"0": "z"})
    polls = []
    real_poll = streaming._poll
    monkeypatch.setattr(streaming, "_poll", lambda after: polls.append(dict(after)) or real_poll(after))

    followers = [AsyncJobFollower(job.pk) for _ in range(50)] + [AsyncJobFollower(job.pk, after_id=first.id),
                                                                  AsyncJobFollower(other.pk)]
    results = _follow_all(followers)
    assert all(events == [first, second] for events in results[:50])
    assert results[50] == [second] and results[51] == [theirs]
    assert all(f.final and not f.gone for f in followers)
    assert len(polls) <= 2  # 52 streams, one query round each tick
    assert polls[0] == {job.pk: 0, other.pk: 0}  # per job, from the earliest position


@pytest.mark.django_db(transaction=True)
def test_async_follower_keepalives_limit_and_deleted_job(settings):
    settings.GENAI_STREAM_MAX_SECONDS = 0.3
    settings.GENAI_STREAM_KEEPALIVE_SECONDS = 0.05
    settings.GENAI_STREAM_POLL_SECONDS = 0.01
    queued = AsyncJobFollower(JobFactory().pk)  # no worker: only keep-alives, then the limit
    missing = AsyncJobFollower(uuid.uuid4())
    idle, none = _follow_all([queued, missing])
    assert idle and set(idle) == {None} and not queued.final
    assert none == [] and missing.gone


# --- waiting streams hold no database connection (issue 19: 200 streams opened at once were 503s
# past PostgreSQL's max_connections) ------------------------------------------------------------


@pooled
@pytest.mark.django_db(transaction=True)
def test_a_waiting_follower_gives_its_connection_back_between_polls(settings):
    settings.GENAI_STREAM_MAX_SECONDS = 0.3
    settings.GENAI_STREAM_KEEPALIVE_SECONDS = 0.05
    settings.GENAI_STREAM_POLL_SECONDS = 0.01
    follower = JobFollower(JobFactory().pk)  # queued, and no worker
    db_connections_release()  # the test's own
    others = _checked_out()  # held by other threads of the process (earlier tests' pools, servers)
    held = [(connection.connection is not None, _checked_out()) for _ in follower]  # at each keep-alive
    assert held and set(held) == {(False, others)}


@pooled
@pytest.mark.django_db(transaction=True)
def test_async_followers_leave_no_connection_in_the_loops_threads(settings):
    settings.GENAI_STREAM_MAX_SECONDS = 0.3
    settings.GENAI_STREAM_KEEPALIVE_SECONDS = 0.05
    settings.GENAI_STREAM_POLL_SECONDS = 0.01
    followers = [AsyncJobFollower(JobFactory().pk) for _ in range(20)]
    db_connections_release()  # the test's own
    others = _checked_out()  # held by other threads of the process (earlier tests' pools, servers)

    async def main():
        async def follow(follower):
            return [event async for event in follower]

        results = await asyncio.gather(*(follow(f) for f in followers))
        await asyncio.sleep(0.1)  # the hub's last poll ends
        return results, _checked_out()

    results, checked_out = asyncio.run(main())
    assert all(r and set(r) == {None} for r in results)  # they waited (keep-alives) on the hub's polls
    assert checked_out == others

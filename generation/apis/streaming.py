"""Following a running job from the web process: the polling loop behind every streaming (and
waiting) endpoint, whatever the wire format (our SSE events, OpenAI's chunks).

Under the ASGI server a stream is an async generator on the event loop (``AsyncJobFollower``, fed
by one ``JobEventHub`` per loop), so open streams hold no thread; under WSGI (and Django's test
client) the same events come from ``JobFollower``'s blocking loop. Each open stream takes a slot
(``StreamSlot``): at most GENAI_MAX_OPEN_STREAMS per web process, more are 429.

Neither kind holds a database connection while it waits: between polls the connection goes back
to the process's pool (GENAI_DB_POOL_MAX), so open streams and waiting requests share its few.
"""

import asyncio
import contextvars
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Iterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import StreamingHttpResponse

from generation import selectors
from generation.db import db_connections_release
from generation.exceptions import AdmissionRejected
from generation.models import JobEvent
from generation.services.jobs import job_status_is_final

logger = logging.getLogger(__name__)


class JobFollower:
    """Iterate to get a job's ``JobEvent`` rows in commit order, as workers write them.

    Polls every GENAI_STREAM_POLL_SECONDS. Yields None when a keep-alive is due (nothing new for
    GENAI_STREAM_KEEPALIVE_SECONDS). Stops once the job is final and all its events are read
    (``final`` is then True), when the job is deleted (``gone``), or after GENAI_STREAM_MAX_SECONDS.
    ``after_id`` is the id of the last event read (resume point, e.g. ``Last-Event-ID``).
    """

    def __init__(self, job_id: uuid.UUID, *, after_id: int = 0):
        self.job_id = job_id
        self.after_id = after_id
        self.final = False
        self.gone = False  # the job row was deleted while being followed

    def __iter__(self) -> Iterator[JobEvent | None]:
        deadline = time.monotonic() + settings.GENAI_STREAM_MAX_SECONDS
        keepalive_at = time.monotonic() + settings.GENAI_STREAM_KEEPALIVE_SECONDS
        while True:
            # Read the status first: every token event commits before the final status does.
            status = selectors.job_status(job_id=self.job_id)
            if status is None:
                self.gone = True
                return
            final = job_status_is_final(status)
            events = selectors.job_events_after(job_id=self.job_id, after_id=self.after_id)
            for event in events:
                self.after_id = event.id
                yield event
            if events:
                continue
            if final:
                self.final = True
                return
            now = time.monotonic()
            if now > deadline:
                return
            db_connections_release()  # the wait (and a slow client's keep-alive) needs no connection
            if now > keepalive_at:
                keepalive_at = now + settings.GENAI_STREAM_KEEPALIVE_SECONDS
                yield None
            time.sleep(settings.GENAI_STREAM_POLL_SECONDS)


def event_deltas(event: JobEvent) -> list[tuple[int, str]]:
    """``(candidate index, text)`` pairs of one event, by candidate."""
    return sorted(((int(index), text) for index, text in event.deltas.items()), key=lambda pair: pair[0])


# --- async streams (ASGI): no thread per open stream ------------------------------------------


class JobEventHub:
    """One polling loop per event loop for every ``AsyncJobFollower`` on it: each tick reads the
    statuses, then the new events, of all followed jobs in a few queries (in the loop's shared
    thread pool), and wakes the followers that have news. An open stream costs a coroutine and a
    few objects, not a thread nor a query per tick."""

    BATCH = 100  # jobs per events query (OR'd conditions)
    EVENTS_PER_TICK = 2000

    def __init__(self):
        self.followers: set[AsyncJobFollower] = set()
        self._task: asyncio.Task | None = None

    @classmethod
    def for_running_loop(cls) -> "JobEventHub":
        loop = asyncio.get_running_loop()
        hub = _hubs.get(loop)
        if hub is None:
            hub = _hubs[loop] = cls()
        return hub

    def add(self, follower: "AsyncJobFollower") -> None:
        self.followers.add(follower)
        if self._task is None or self._task.done():
            # Its own empty context: the loop outlives the request that happened to start it.
            self._task = asyncio.get_running_loop().create_task(self._run(), context=contextvars.Context())

    def discard(self, follower: "AsyncJobFollower") -> None:
        self.followers.discard(follower)

    async def _run(self) -> None:
        while self.followers:
            followers = list(self.followers)
            after: dict[uuid.UUID, int] = {}
            for follower in followers:
                read = follower.read_id
                after[follower.job_id] = min(after.get(follower.job_id, read), read)
            try:
                statuses, events, complete = await db_call_in_thread(_poll, after)
            except Exception:  # noqa: BLE001 - the database is down: keep the streams, try again
                logger.exception("polling %d followed jobs failed", len(after))
            else:
                for follower in followers:
                    news = [e for e in events.get(follower.job_id, ()) if e.id > follower.read_id]
                    follower._deliver(statuses.get(follower.job_id), news, complete)
            await asyncio.sleep(settings.GENAI_STREAM_POLL_SECONDS)


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, JobEventHub]" = weakref.WeakKeyDictionary()


async def db_call_in_thread(function, *args):
    """``function(*args)`` (sync, database calls) in the loop's shared thread pool, whose thread
    then gives its connection back to the pool: it holds none until its next call."""

    def call():
        try:
            return function(*args)
        finally:
            db_connections_release()

    return await sync_to_async(call, thread_sensitive=False)()


def _poll(after: dict[uuid.UUID, int]) -> tuple[dict[uuid.UUID, str], dict[uuid.UUID, list[JobEvent]], bool]:
    """(statuses, new events by job, whether every new event was read) for the followed jobs.
    Statuses first: every token event commits before the final status does."""
    # This thread's connection outlives any request: drop it when broken or past CONN_MAX_AGE.
    close_old_connections()
    ids = list(after)
    statuses: dict[uuid.UUID, str] = {}
    events: dict[uuid.UUID, list[JobEvent]] = {}
    complete = True
    for start in range(0, len(ids), JobEventHub.BATCH):
        statuses.update(selectors.job_statuses(job_ids=ids[start : start + JobEventHub.BATCH]))
    for start in range(0, len(ids), JobEventHub.BATCH):
        batch = {job_id: after[job_id] for job_id in ids[start : start + JobEventHub.BATCH]}
        rows = selectors.job_events_after_many(after_by_job=batch, limit=JobEventHub.EVENTS_PER_TICK)
        complete = complete and len(rows) < JobEventHub.EVENTS_PER_TICK
        for event in rows:
            events.setdefault(event.job_id, []).append(event)
    return statuses, events, complete


class AsyncJobFollower:
    """``JobFollower`` for async streams: ``async for`` the job's events (None: a keep-alive is
    due), with the same ``final``, ``gone`` and ``after_id``; fed by the loop's ``JobEventHub``."""

    def __init__(self, job_id: uuid.UUID, *, after_id: int = 0):
        self.job_id = job_id
        self.after_id = after_id  # the last event yielded
        self.read_id = after_id  # the last event delivered by the hub (some may wait to be yielded)
        self.final = False
        self.gone = False
        self._news = asyncio.Event()
        self._status: str | None = None
        self._events: list[JobEvent] = []
        self._complete = True

    def _deliver(self, status: str | None, events: list[JobEvent], complete: bool) -> None:
        self._status, self._complete = status, complete
        self._events.extend(events)
        if events:
            self.read_id = events[-1].id
        if events or status is None or job_status_is_final(status):
            self._news.set()  # otherwise sleep on: a queued or running job without new text

    async def __aiter__(self):
        hub = JobEventHub.for_running_loop()
        deadline = time.monotonic() + settings.GENAI_STREAM_MAX_SECONDS
        keepalive_at = time.monotonic() + settings.GENAI_STREAM_KEEPALIVE_SECONDS
        hub.add(self)
        try:
            while True:
                now = time.monotonic()
                if now > deadline:
                    return
                try:
                    await asyncio.wait_for(self._news.wait(), timeout=max(0.0, min(keepalive_at, deadline) - now))
                except TimeoutError:
                    if time.monotonic() >= keepalive_at:
                        keepalive_at = time.monotonic() + settings.GENAI_STREAM_KEEPALIVE_SECONDS
                        yield None
                    continue
                self._news.clear()
                if self._status is None:
                    self.gone = True
                    return
                events, self._events = self._events, []
                for event in events:
                    self.after_id = event.id
                    yield event
                if events:
                    keepalive_at = time.monotonic() + settings.GENAI_STREAM_KEEPALIVE_SECONDS
                if job_status_is_final(self._status) and self._complete and not self._events:
                    self.final = True
                    return
        finally:
            hub.discard(self)


# --- admission: open streams per web process --------------------------------------------------


class TooManyStreams(AdmissionRejected):
    code = "too_many_open_streams"


_open_streams = 0
_open_streams_lock = threading.Lock()


def open_stream_count() -> int:
    return _open_streams


class StreamSlot:
    """One open stream of this process, counted against GENAI_MAX_OPEN_STREAMS until released
    (``release`` is idempotent; the response releases it when it closes, whatever ended it).
    ``on_abandon`` runs at release if the stream did not reach its end (``completed``): the
    client went away."""

    def __init__(self, on_abandon=None):
        self.on_abandon = on_abandon
        self.completed = False
        self._released = False

    @classmethod
    def acquire(cls, on_abandon=None) -> "StreamSlot":
        global _open_streams
        limit = settings.GENAI_MAX_OPEN_STREAMS
        with _open_streams_lock:
            if _open_streams >= limit:
                raise TooManyStreams(
                    f"Too many open streams on this server ({limit}, GENAI_MAX_OPEN_STREAMS); "
                    "retry later, or ask without streaming.",
                    retry_after=max(1, int(settings.GENAI_STREAM_POLL_SECONDS * 10)),
                )
            _open_streams += 1
        return cls(on_abandon)

    def release(self) -> None:
        global _open_streams
        with _open_streams_lock:
            if self._released:
                return
            self._released = True
            _open_streams -= 1
        if not self.completed and self.on_abandon is not None:
            try:
                asyncio.get_running_loop().run_in_executor(None, self._abandon)  # no database calls on the loop
            except RuntimeError:  # no loop in this thread
                self._abandon()

    def _abandon(self) -> None:
        try:
            self.on_abandon()
        except Exception:  # noqa: BLE001 - closing a response must not fail on it
            logger.exception("cleaning up an abandoned stream failed")
        finally:
            db_connections_release()  # an executor's thread, shared: it keeps no connection


def request_is_async(request) -> bool:
    """Whether the request came through the ASGI server (its stream must be an async iterator:
    Django would read a sync one to its end before sending anything)."""
    return isinstance(getattr(request, "_request", request), ASGIRequest)


def streaming_response(*, request, sync_stream, async_stream, slot: StreamSlot) -> StreamingHttpResponse:
    """An SSE response over ``async_stream()`` under ASGI, else ``sync_stream()``, that releases
    ``slot`` when it closes."""
    content = async_stream() if request_is_async(request) else sync_stream()
    response = StreamingHttpResponse(content, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    response._resource_closers.append(slot.release)
    return response

"""Following a running job from the web process: the polling loop behind every streaming (and
waiting) endpoint, whatever the wire format (our SSE events, OpenAI's chunks)."""

import time
import uuid
from collections.abc import Iterator

from django.conf import settings

from generation import selectors
from generation.models import JobEvent
from generation.services.jobs import job_status_is_final


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
            if now > keepalive_at:
                keepalive_at = now + settings.GENAI_STREAM_KEEPALIVE_SECONDS
                yield None
            time.sleep(settings.GENAI_STREAM_POLL_SECONDS)


def event_deltas(event: JobEvent) -> list[tuple[int, str]]:
    """``(candidate index, text)`` pairs of one event, by candidate."""
    return sorted(((int(index), text) for index, text in event.deltas.items()), key=lambda pair: pair[0])

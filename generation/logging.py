"""Structured logs: every record carries the job id and request id of the code that wrote it."""

import contextlib
import contextvars
import logging
import uuid
from collections.abc import Callable, Iterator

from django.http import HttpRequest, HttpResponse

_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "job_id", None):
            record.job_id = _job_id.get()
        if not getattr(record, "request_id", None):
            record.request_id = _request_id.get()
        return True


@contextlib.contextmanager
def job_context(job_id: str) -> Iterator[None]:
    token = _job_id.set(str(job_id))
    try:
        yield
    finally:
        _job_id.reset(token)


class RequestContextMiddleware:
    """Tags the request's log records with an id (the client's X-Request-ID, or a new one)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response

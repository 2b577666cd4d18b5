"""One place that turns errors into JSON responses: ``{"code", "detail", "errors"?}``.

A database or cache that cannot be reached is a 503 with ``Retry-After`` (``code``
``unavailable``), not a 500; any other unhandled error under /api/, /v1/ and the operations
endpoints is a JSON 500 (``server_error``, Django's ``handler500``). Server errors carry the same
facts under ``error`` too (``{"error": {"code", "message"}}``, the shape of /v1's errors).
"""

import logging
import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from generation.exceptions import AdmissionRejected, DomainError

logger = logging.getLogger(__name__)

try:  # the Redis cache backend's errors (redis-py)
    from redis.exceptions import ConnectionError as _RedisConnectionError
    from redis.exceptions import TimeoutError as _RedisTimeoutError

    _CACHE_ERRORS: tuple[type[BaseException], ...] = (_RedisConnectionError, _RedisTimeoutError)
except ImportError:  # pragma: no cover - redis is a dependency
    _CACHE_ERRORS = ()

UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, *_CACHE_ERRORS)
UNAVAILABLE_MESSAGE = "The service cannot reach its database or cache right now; retry shortly."
# Paths whose errors are JSON (the rest are pages for people, which keep Django's error pages).
JSON_PATH_PREFIXES = ("/api/", "/v1/", "/metrics", "/readyz", "/healthz")


def is_unavailable(exc: BaseException | None) -> bool:
    """True for errors that mean a backing service (database, cache) is away, not a bug."""
    return isinstance(exc, UNAVAILABLE_ERRORS)


def error_body(*, code: str, message: str) -> dict:
    return {"code": code, "detail": message, "error": {"code": code, "message": message}}


def unavailable_response(exc: BaseException) -> Response:
    logger.warning("backing service unreachable: %s: %s", type(exc).__name__, exc)
    response = Response(error_body(code="unavailable", message=UNAVAILABLE_MESSAGE), status=503)
    response["Retry-After"] = str(settings.GENAI_UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: 503 JSON while the database or cache is away, JSON 500 under the API
    paths, Django's page elsewhere. Django calls it inside its ``except`` block."""
    exc = sys.exc_info()[1]
    wants_json = request.path.startswith(JSON_PATH_PREFIXES)
    if is_unavailable(exc):
        body = error_body(code="unavailable", message=UNAVAILABLE_MESSAGE)
        if wants_json:
            response = JsonResponse(body, status=503)
        else:
            response = HttpResponse(UNAVAILABLE_MESSAGE, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(settings.GENAI_UNAVAILABLE_RETRY_AFTER_SECONDS)
        return response
    if wants_json:
        return JsonResponse(error_body(code="server_error", message="Internal server error."), status=500)
    from django.views.defaults import server_error as page

    return page(request)


def api_exception_handler(exc, context):
    if is_unavailable(exc):
        return unavailable_response(exc)
    if isinstance(exc, DomainError):
        response = Response(exc.as_payload(), status=exc.status_code)
        if isinstance(exc, AdmissionRejected):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, RequestDataTooBig):
        return Response({"code": "request_too_large", "detail": str(exc)}, status=413)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": "invalid", "detail": "Invalid input.", "errors": response.data}
    elif isinstance(response.data, dict) and "detail" in response.data:
        detail = response.data["detail"]
        response.data = {"code": getattr(detail, "code", "error"), "detail": str(detail)}
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS and "Retry-After" not in response:
        response["Retry-After"] = "1"
    return response

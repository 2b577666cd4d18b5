"""One place that turns errors into JSON responses: ``{"code", "detail", "errors"?}``."""

from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from generation.exceptions import AdmissionRejected, DomainError


def api_exception_handler(exc, context):
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

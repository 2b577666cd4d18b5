"""Request guards that apply to every endpoint before any view runs."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse


class NullCharacterQueryMiddleware:
    """A query parameter holding a NUL character is a 400 naming the parameter.

    Serializer and form fields refuse NUL already (DRF's and Django's CharField validators); query
    parameters reach selectors directly, and PostgreSQL cannot compare text with NUL in it (the
    query would fail as a 500)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        bad = sorted({key for key, values in request.GET.lists() for value in [key, *values] if "\x00" in value})
        if bad:
            message = "Null characters are not allowed."
            return JsonResponse(
                {"code": "invalid", "detail": message, "errors": {key.replace("\x00", "\\0"): [message] for key in bad}},
                status=400,
            )
        return self.get_response(request)

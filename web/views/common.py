"""What every page view shares: role checks, turning domain errors into messages on the page."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from generation import roles
from generation.exceptions import DomainError, InvalidInput


def role_required(*allowed: str) -> Callable:
    """Log-in required, and one of ``allowed`` roles (admins always pass): else a 403 page."""

    def decorate(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not roles.user_has_role(request.user, *allowed, roles.ADMIN):
                return render(
                    request, "web/forbidden.html",
                    {"needed": sorted(set(allowed) - {roles.ADMIN}) or [roles.ADMIN]}, status=403,
                )
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def error_messages(exc: DomainError) -> list[str]:
    """Readable lines for an error: ``field: message`` for each field of invalid input."""
    if isinstance(exc, InvalidInput):
        return list(_flatten(exc.errors))
    return [exc.message]


def _flatten(errors, prefix: str = ""):
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = key if not prefix else f"{prefix}.{key}"
            if key == "params" and not prefix:
                name = ""
            yield from _flatten(value, name)
    elif isinstance(errors, (list, tuple)):
        for value in errors:
            if isinstance(value, (dict, list, tuple)):
                yield from _flatten(value, prefix)
            else:
                yield f"{prefix}: {value}" if prefix else str(value)
    else:
        yield f"{prefix}: {errors}" if prefix else str(errors)


@login_required
def start(request: HttpRequest) -> HttpResponse:
    """Where log-in lands: the page of the user's main role."""
    from django.shortcuts import redirect

    mine = roles.user_roles(request.user)
    for role, url in ((roles.ADMIN, "/staff/jobs/"), (roles.REVIEWER, "/review/"), (roles.AGENT, "/agent/"),
                      (roles.MARKETER, "/marketing/"), (roles.ANALYST, "/quality/")):
        if role in mine:
            return redirect(url)
    return redirect("/")

"""The company profile page (reviewers and admins): the business's own details that fill
``{{Placeholders}}`` in every reply draft, with what drafts will get."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from generation.exceptions import DomainError, InvalidInput
from generation.models import CompanyProfile
from generation.selectors import company_profile_get
from generation.services.company import WRITE_ROLES, company_profile_update
from web.views.common import error_messages, role_required

LABELS = {
    "company_name": "Company name",
    "website_name": "Website name",
    "website_url": "Website URL",
    "support_phone": "Support phone number",
    "support_email": "Support e-mail address",
    "support_hours": "Support hours",
    "live_chat": "Live chat",
    "returns_address": "Returns address",
}


def extra_parse(text: str) -> tuple[dict[str, str], list[str]]:
    """The "Name = value" lines of the form's text box as a map, and the lines that are not."""
    extra: dict[str, str] = {}
    errors = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        name = name.strip().removeprefix("{{").removesuffix("}}").strip()
        if not sep or not name or not value.strip():
            errors.append(f"extra: line {number} is not “Name = value”: {line.strip()[:80]!r}.")
            continue
        extra[name] = value.strip()
    return extra, errors


def _fields(profile: CompanyProfile, values: dict | None = None) -> list[dict]:
    return [
        {"name": name, "label": LABELS[name], "value": (values or {}).get(name, getattr(profile, name)),
         "placeholders": CompanyProfile.PLACEHOLDERS[name], "max_length": CompanyProfile._meta.get_field(name).max_length}
        for name in CompanyProfile.PLACEHOLDERS
    ]


@role_required(*WRITE_ROLES)
def company_profile_page(request: HttpRequest) -> HttpResponse:
    """GET: the form, filled. POST: save it (the extra map from "Name = value" lines)."""
    profile = company_profile_get(user=request.user)
    context: dict = {"profile": profile, "extra_text": "\n".join(f"{k} = {v}" for k, v in (profile.extra or {}).items())}
    status = 200
    if request.method == "POST":
        values = {name: request.POST.get(name, "") for name in CompanyProfile.PLACEHOLDERS}
        extra, errors = extra_parse(request.POST.get("extra", ""))
        if not errors:
            try:
                profile = company_profile_update(user=request.user, **values, extra=extra)
                context.update(profile=profile, saved=True,
                               extra_text="\n".join(f"{k} = {v}" for k, v in profile.extra.items()))
                values = None
            except InvalidInput as exc:
                errors = error_messages(exc)
            except DomainError as exc:
                errors, status = error_messages(exc), exc.status_code
        if errors:
            context.update(errors=errors, extra_text=request.POST.get("extra", ""))
            status = status if status != 200 else 400
        context["fields"] = _fields(profile, values)
    else:
        context["fields"] = _fields(profile)
    context["filled"] = sorted(profile.placeholder_values().items(), key=lambda item: item[0].lower())
    return render(request, "web/company_profile.html", context, status=status)

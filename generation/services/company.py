"""The company profile: the business's own details that fill ``{{Placeholders}}`` in reply drafts
(``generation.models.CompanyProfile``). The only code that writes it; the admin, the page and the
API call ``company_profile_update``."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from generation import roles
from generation.exceptions import Forbidden, InvalidInput
from generation.models import CompanyProfile

# The people who run the service desk: reviewers (team leads) and admins.
WRITE_ROLES = roles.REVIEW_ROLES
FIELDS = (*CompanyProfile.PLACEHOLDERS, "extra")

# A filled profile of a made-up shop: what ``demo_setup`` gives a fresh install, and what
# ``replies_evaluate`` drafts with to count the placeholders a profile leaves visible. Every
# field is set; ``extra`` holds the policy pages the Bitext answers name most often.
DEMO_COMPANY_PROFILE = {
    "company_name": "Acme Outdoor",
    "website_name": "Acme Outdoor website",  # the answers say "on our {{Website Name}}", "visit {{Website Name}}"
    "website_url": "https://acme-outdoor.example",
    "support_phone": "+1 800 555 0100",
    "support_email": "support@acme-outdoor.example",
    "support_hours": "Monday to Friday, 9:00-17:00",
    "live_chat": "live chat (acme-outdoor.example/chat)",  # "through the {{Live Chat}} feature", "via {{Live Chat}}"
    "returns_address": "Acme Outdoor Returns, 12 Harbour Road, Springfield",
    "extra": {
        "Refund Policy": "acme-outdoor.example/refunds",
        "Cancellation Policy": "acme-outdoor.example/cancellations",
    },
}


def company_profile_placeholder_values(fields: dict) -> dict[str, str]:
    """``{placeholder name: value}`` a profile with these ``fields`` (those of ``FIELDS``) would
    fill, without storing it (evaluation with a profile other than the stored one)."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"not fields of the company profile: {', '.join(unknown)}")
    return CompanyProfile(**fields).placeholder_values()


def company_profile_update(*, user: AbstractBaseUser, **changes) -> CompanyProfile:
    """Set some of the profile's fields (``FIELDS``; a blank text clears one; ``extra`` replaces
    the whole map). Errors name the field: a malformed e-mail or URL, a value too long, braces in
    a value (it would fill a placeholder with another), or too many extra names."""
    if not roles.user_has_role(user, *WRITE_ROLES):
        raise Forbidden(f"The company profile is edited by the roles {', '.join(sorted(WRITE_ROLES))}.")
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise InvalidInput({name: [f"Not a field of the company profile; it has: {', '.join(FIELDS)}."] for name in unknown})
    with transaction.atomic():
        CompanyProfile.objects.bulk_create([CompanyProfile(pk=1)], ignore_conflicts=True)  # the one row, race-free
        profile = CompanyProfile.objects.select_for_update().get(pk=1)
        for name, value in changes.items():
            if name == "extra" and isinstance(value, dict):
                value = {k.strip() if isinstance(k, str) else k: v.strip() if isinstance(v, str) else v for k, v in value.items()}
            elif isinstance(value, str):
                value = value.strip()
            elif value is None and name != "extra":
                value = ""
            setattr(profile, name, value)
        profile.updated_by = user
        try:
            profile.full_clean(exclude=["updated_by"])
        except ValidationError as exc:
            raise InvalidInput(exc.message_dict) from None
        profile.save()
    return profile

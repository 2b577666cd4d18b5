"""Roles are Django groups (created by a migration). Kinds name the roles that may create them."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

AGENT, MARKETER, ANALYST, REVIEWER, ADMIN = "agent", "marketer", "analyst", "reviewer", "admin"
ROLES = (AGENT, MARKETER, ANALYST, REVIEWER, ADMIN)
# The roles that review: approve or reject content, clear flags, promote model versions, and see
# every job, not only their own. The one spelling of this set.
REVIEW_ROLES = frozenset({REVIEWER, ADMIN})


def user_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_genai_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached |= {ADMIN}
        user._genai_roles = cached
    return cached


def user_has_role(user: AbstractBaseUser | AnonymousUser, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def user_is_reviewer(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Reviewer or admin: reviews content, promotes models, sees every job."""
    return bool(user_roles(user) & REVIEW_ROLES)

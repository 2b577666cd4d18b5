"""Roles are Django groups (created by a migration). Kinds name the roles that may create them."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

AGENT, MARKETER, ANALYST, REVIEWER, ADMIN = "agent", "marketer", "analyst", "reviewer", "admin"
ROLES = (AGENT, MARKETER, ANALYST, REVIEWER, ADMIN)
# Roles that see every job, not only their own.
SEE_ALL_ROLES = frozenset({REVIEWER, ADMIN})


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


def user_sees_all_jobs(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(user_roles(user) & SEE_ALL_ROLES)

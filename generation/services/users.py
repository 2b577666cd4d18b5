"""Users, roles and API tokens."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction
from rest_framework.authtoken.models import Token

from generation import roles
from generation.exceptions import InvalidInput


@transaction.atomic
def user_create(*, username: str, role: str, password: str | None = None, email: str = "") -> AbstractBaseUser:
    if role not in roles.ROLES:
        raise InvalidInput({"role": [f"Unknown role {role!r}; roles: {', '.join(roles.ROLES)}."]})
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise InvalidInput({"username": [f"A user named {username!r} exists."]})
    user = User.objects.create_user(username=username, email=email, password=password)
    if password is None:
        user.set_unusable_password()
    if role == roles.ADMIN:
        user.is_staff = True
    user.save()
    user.groups.add(role_group(role=role))
    return user


def system_user_get(*, username: str, role: str) -> AbstractBaseUser:
    """An account that owns the jobs the service queues by itself (``kb_import``'s embedding
    jobs, monitoring's scoring and summaries): created on first use with ``role`` and no usable
    password, so it cannot log in."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        user.groups.add(role_group(role=role))
    return user


def role_group(*, role: str) -> Group:
    group, _ = Group.objects.get_or_create(name=role)
    return group


def token_issue(*, user: AbstractBaseUser) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def token_revoke(*, user: AbstractBaseUser) -> None:
    Token.objects.filter(user=user).delete()

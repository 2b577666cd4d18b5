import pytest
from rest_framework import serializers

from generation import kinds, roles
from tests.factories import UserFactory


class _StandInCopyParams(serializers.Serializer):
    """The shape of generation/kinds/copy.py's params (attributes object + settings)."""

    attributes = serializers.DictField(allow_empty=False)
    tone = serializers.ChoiceField(choices=["neutral", "playful"], default="neutral")
    n = serializers.IntegerField(min_value=1, max_value=4, default=1)


@pytest.fixture
def copy_kind():
    """The ``copy`` kind; a stand-in with the same role rules while it is not installed yet
    (the page reads whatever fields the kind declares)."""
    existing = kinds.kind_get("copy")
    if existing is not None:
        yield existing
        return
    stand_in = kinds.JobKind(
        name="copy", description="stand-in", params_serializer=_StandInCopyParams, queue="cpu",
        roles=frozenset({roles.MARKETER, roles.ADMIN}),
    )
    kinds._REGISTRY["copy"] = stand_in
    yield stand_in
    kinds._REGISTRY.pop("copy", None)


@pytest.fixture
def login(client, db):
    """``login(role)`` -> the logged-in user on the test client."""

    def make(role=roles.AGENT, user=None):
        user = user or UserFactory(role=role)
        client.force_login(user)
        return user

    return make

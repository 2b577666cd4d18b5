import pytest

from generation import roles
from generation.models import JobStatus
from tests.factories import CandidateFactory, JobFactory


@pytest.fixture
def draft(make_user):
    """``draft(kind="reply", owner=None, text=..., metadata=...)``: a succeeded job's candidate."""

    def make(*, kind="reply", owner=None, text="Your order ships tomorrow.", metadata=None, params=None, model_version="smollm2@1"):
        owner = owner or make_user(roles.MARKETER if kind == "copy" else roles.AGENT)
        job = JobFactory(
            kind=kind, owner=owner, status=JobStatus.SUCCEEDED, model_version=model_version,
            params=params or ({"message": "Where is my order?"} if kind == "reply" else {"name": "Lamp", "attributes": {"colour": "red"}}),
        )
        return CandidateFactory(job=job, index=0, text=text, metadata=metadata or {})

    return make


@pytest.fixture
def reviewer(make_user):
    return make_user(roles.REVIEWER)

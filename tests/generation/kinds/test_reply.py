"""The reply kind's params: bounds, defaults, and personal data masked before the job stores them."""

import pytest
from django.conf import settings

from generation.exceptions import InvalidInput
from generation.kinds.reply import ReplyParamsSerializer
from generation.services.jobs import job_create
from tests.factories import UserFactory


def _validate(**params):
    serializer = ReplyParamsSerializer(data={"message": "where is my parcel?", **params})
    return serializer.is_valid(), (serializer.validated_data if serializer.is_valid() else serializer.errors)


def test_defaults():
    ok, data = _validate()
    assert ok
    assert data["channel"] == "chat" and data["tone"] == "neutral" and data["n"] == 1 and data["k"] == 3
    assert data["history"] == [] and data["context"] == {} and data["seed"] is None


@pytest.mark.parametrize(
    "params, field",
    [
        ({"message": ""}, "message"),
        ({"message": "x" * (settings.GENAI_REPLY_MAX_MESSAGE_CHARS + 1)}, "message"),
        ({"n": 0}, "n"),
        ({"n": settings.GENAI_MAX_CANDIDATES + 1}, "n"),
        ({"k": 0}, "k"),
        ({"k": 11}, "k"),
        ({"channel": "fax"}, "channel"),
        ({"tone": "sarcastic"}, "tone"),
        ({"temperature": 2.5}, "temperature"),
        ({"max_new_tokens": settings.GENAI_MAX_NEW_TOKENS + 1}, "max_new_tokens"),
        ({"history": [{"role": "bot", "content": "hi"}]}, "history"),
        ({"history": [{"role": "customer", "content": "hi"}] * (settings.GENAI_REPLY_MAX_HISTORY + 1)}, "history"),
        ({"context": {f"k{i}": "v" for i in range(settings.GENAI_REPLY_MAX_CONTEXT_KEYS + 1)}}, "context"),
        ({"context": {"x" * (settings.GENAI_REPLY_MAX_CONTEXT_KEY_CHARS + 1): "v"}}, "context"),
        ({"context": {"Order Number": "v" * (settings.GENAI_REPLY_MAX_CONTEXT_VALUE_CHARS + 1)}}, "context"),
        ({"context": ["not", "a", "dict"]}, "context"),
    ],
)
def test_bounds_name_the_field(params, field):
    ok, errors = _validate(**params)
    assert not ok and field in errors, errors


@pytest.mark.django_db
def test_stored_params_are_masked_context_values_too(no_broker):
    job, _ = job_create(
        owner=UserFactory(role="agent"),
        kind="reply",
        params={
            "message": "I'm jane.doe@example.com, where is order ORD-12345? Call +44 20 7946 0958",
            "history": [{"role": "customer", "content": "my card is 4111 1111 1111 1111"}],
            "context": {"Order Number": "ORD-12345", "Customer Name": "Jane"},
        },
    )
    job.refresh_from_db()
    assert job.params["message"] == "I'm [EMAIL], where is order [ORDER_ID]? Call [PHONE]"
    assert job.params["history"] == [{"role": "customer", "content": "my card is [CARD]"}]
    # personal data in context values is masked at rest as well (issue 15); a plain name is not personal data to the masker
    assert job.params["context"] == {"Order Number": "[ORDER_ID]", "Customer Name": "Jane"}
    assert job.queue == "gpu"


@pytest.mark.django_db
def test_marketer_may_not_create_replies(no_broker):
    from generation.exceptions import Forbidden

    with pytest.raises(Forbidden):
        job_create(owner=UserFactory(role="marketer"), kind="reply", params={"message": "hi"})
    with pytest.raises(InvalidInput):
        job_create(owner=UserFactory(role="agent"), kind="reply", params={"message": "hi", "k": 99})

"""JSON that PostgreSQL cannot store, or built to be expensive, is a 400 naming the field."""

import json

import pytest

from generation.exceptions import InvalidInput
from generation.services.jobs import job_params_validate

pytestmark = pytest.mark.django_db


def _post(client, path: str, raw: str):
    return client.generic("POST", path, raw, content_type="application/json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "reply", "params": {"message": "hi", "context": {"Order\u0000": "ORD-1"}}}, "Order\\0"),
        ({"kind": "reply", "params": {"message": "hi", "context": {"Order": "ORD\u00001"}}}, "Order"),
        ({"kind": "copy", "params": {"attributes": {"name\u0000": "Mug"}}}, "name\\0"),
        ({"kind": "copy", "params": {"attributes": {"name": "Mug\u0000"}}}, "name"),
        ({"kind": "copy", "params": {"attributes": {"features": ["ok", "bad\u0000"]}}}, "1"),
        ({"kind": "generate", "params": {"messages": [{"role": "user", "content": "lone \ud800"}]}}, "content"),
    ],
)
def test_unstorable_characters_anywhere_in_params_are_a_400_naming_the_path(api_for, body, field):
    client = api_for("admin")
    response = _post(client, "/api/jobs/", json.dumps(body))  # json.dumps writes \u0000 / \ud800 escapes
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["code"] == "invalid"
    assert field in json.dumps(payload["errors"], ensure_ascii=False).replace("\\\\", "\\")


def test_deep_nesting_is_a_400_not_a_recursion_error(api_for):
    client = api_for("admin")
    raw = '{"kind": "echo", "params": {"text": "x", "extra": ' + "[" * 5000 + "]" * 5000 + "}}"
    response = _post(client, "/api/jobs/", raw)
    assert response.status_code == 400
    assert "GENAI_JSON_MAX_DEPTH" in response.content.decode()

    response = _post(client, "/v1/chat/completions", '{"messages": ' + "[" * 40 + "]" * 40 + "}")
    assert response.status_code == 400
    assert "GENAI_JSON_MAX_DEPTH" in response.json()["error"]["message"]


def test_too_many_keys_is_a_400(api_for, settings):
    settings.GENAI_JSON_MAX_KEYS = 50
    client = api_for("admin")
    params = {"text": "x", **{f"k{i}": i for i in range(60)}}
    response = _post(client, "/api/jobs/", json.dumps({"kind": "echo", "params": params}))
    assert response.status_code == 400
    assert "GENAI_JSON_MAX_KEYS" in response.content.decode()


def test_v1_names_the_parameter_of_a_nul(api_for):
    client = api_for("agent")
    body = {"model": "base", "messages": [{"role": "user", "content": "a\u0000b"}]}
    response = _post(client, "/v1/chat/completions", json.dumps(body))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages[0].content"


def test_job_params_validate_refuses_nul_from_any_caller():
    with pytest.raises(InvalidInput) as caught:
        job_params_validate(kind="reply", params={"message": "hi", "context": {"Order\x00": "1"}})
    assert caught.value.errors == {"params": {"context": {"Order\\0": ["Key: Null characters are not allowed."]}}}

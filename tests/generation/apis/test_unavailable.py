"""A database or cache that cannot be reached: 503 JSON with Retry-After, never a 500 page; the
throttle keeps counting in process memory; other server errors are JSON under the API paths."""

import pytest
from django.db import OperationalError
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError

from generation import selectors
from generation.apis import throttling

pytestmark = pytest.mark.django_db


def _database_down(*args, **kwargs):
    raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")


def test_database_errors_are_503_json_with_retry_after_on_api_and_v1(api_for, monkeypatch, settings):
    settings.GENAI_UNAVAILABLE_RETRY_AFTER_SECONDS = 7
    client = api_for("admin")
    monkeypatch.setattr(selectors, "job_list", _database_down)
    response = client.get("/api/jobs/")
    assert response.status_code == 503
    assert response["Retry-After"] == "7"
    body = response.json()
    assert body["code"] == "unavailable" and body["error"]["code"] == "unavailable"
    assert body["error"]["message"]

    monkeypatch.setattr("generation.apis.openai.job_create", _database_down)
    response = client.post("/v1/chat/completions", {"model": "base", "messages": [{"role": "user", "content": "hi"}]},
                           format="json")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "unavailable" and error["type"] == "server_error"


def test_authentication_against_a_dead_database_is_503(client, monkeypatch):
    from rest_framework.authentication import TokenAuthentication

    monkeypatch.setattr(TokenAuthentication, "authenticate_credentials", _database_down)
    response = client.get("/api/jobs/", HTTP_AUTHORIZATION="Token abc")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"


def test_unhandled_errors_under_the_api_are_json_500(api_for, monkeypatch):
    def bug(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "job_list", bug)
    user = api_for("admin").user
    client = Client(raise_request_exception=False)
    client.force_login(user)
    response = client.get("/api/jobs/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "server_error"
    assert "a bug" not in response.content.decode()  # no internals to clients


def test_metrics_is_503_json_while_the_database_is_away(client, monkeypatch):
    monkeypatch.setattr("generation.apis.health.metrics_render", _database_down)
    client.raise_request_exception = False
    response = client.get("/metrics")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"


class _DeadCache:
    def get(self, *args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    set = add = get


def test_throttle_counts_in_memory_while_its_cache_is_down(api_for, monkeypatch, settings):
    monkeypatch.setattr(throttling.UserThrottle, "cache", _DeadCache())
    monkeypatch.setattr(throttling.UserThrottle, "THROTTLE_RATES", {"user": "2/min", "job_create": "100/min"})
    throttling._LOCAL.clear()
    client = api_for("agent")
    assert [client.get("/api/jobs/").status_code for _ in range(3)] == [200, 200, 429]

"""The OpenAPI schema is valid, and a bounded schemathesis run over it finds no server error."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from genai_site.wsgi import application
from tests.factories import TokenFactory, UserFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
fuzz_settings = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture
def admin_headers(db):
    # Requests go through the real WSGI handler, which closes the database connection when a
    # request ends; the test's transaction must survive that, as with Django's test client.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    token = TokenFactory(user=UserFactory(role="admin"))
    yield {"Authorization": f"Token {token.key}"}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_schema_is_valid_and_lists_every_endpoint(client):
    import yaml

    document = yaml.safe_load(client.get("/api/schema/").content)
    paths = set(document["paths"])
    assert {"/api/jobs/", "/api/jobs/{job_id}", "/api/jobs/{job_id}/cancel", "/api/jobs/{job_id}/stream",
            "/api/kinds/", "/api/auth/token/", "/api/auth/me/", "/v1/chat/completions", "/v1/completions",
            "/v1/models", "/v1/models/{model_id}"} <= paths


# /v1 waits on a worker for each valid request; it has its own run below.
@schema.exclude(method="DELETE").exclude(path_regex="^/v1/").parametrize()
@fuzz_settings
@pytest.mark.django_db
def test_api_answers_fuzzed_requests_without_server_errors(case, admin_headers):
    case.call_and_validate(headers=admin_headers, checks=[not_a_server_error])


@pytest.fixture
def short_waits():
    with override_settings(GENAI_STREAM_MAX_SECONDS=0.05, GENAI_STREAM_POLL_SECONDS=0.01):
        yield


@schema.include(path_regex="^/v1/").parametrize()
@fuzz_settings
@pytest.mark.django_db
def test_openai_endpoints_answer_fuzzed_requests_in_openai_shape(case, admin_headers, short_waits):
    """No worker runs here: a valid completion request waits out GENAI_STREAM_MAX_SECONDS (504)."""
    response = case.call(headers=admin_headers)
    assert response.status_code < 500 or response.status_code == 504, response.text
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}, response.text


def test_committed_openapi_schema_is_current(tmp_path):
    """docs/openapi.yaml is what the code generates (regenerate with `manage.py spectacular`)."""
    from pathlib import Path

    from django.core.management import call_command

    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(generated), "--validate", "--fail-on-warn")
    committed = Path(__file__).resolve().parents[3] / "docs" / "openapi.yaml"
    assert generated.read_text() == committed.read_text(), (
        "docs/openapi.yaml is stale: python manage.py spectacular --file docs/openapi.yaml"
    )

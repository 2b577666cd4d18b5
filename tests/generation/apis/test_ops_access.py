"""GENAI_OPS_TOKEN guards /metrics and the details of /readyz; /healthz stays open."""

import pytest

from generation.services.workers import worker_beat

pytestmark = pytest.mark.django_db


def test_without_a_token_setting_everything_is_open(client, settings):
    settings.GENAI_OPS_TOKEN = ""
    assert client.get("/metrics").status_code == 200
    assert "checks" in client.get("/readyz").json()


def test_with_a_token_metrics_and_readiness_details_need_it(client, settings):
    settings.GENAI_OPS_TOKEN = "s3cret"
    worker_beat(name="cpu@secret-host", queues="cpu", device="cpu/float32", pid=1)
    response = client.get("/metrics")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200

    anonymous = client.get("/readyz")
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ready"}
    assert "secret-host" not in anonymous.content.decode()
    detailed = client.get("/readyz", HTTP_AUTHORIZATION="Bearer s3cret").json()
    assert "cpu@secret-host" in detailed["checks"]["worker"]
    assert client.get("/healthz").status_code == 200


def test_an_allowed_network_needs_no_token(client, settings):
    settings.GENAI_OPS_TOKEN = "s3cret"
    settings.GENAI_OPS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 401

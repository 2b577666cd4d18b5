"""Webhook targets: http(s) to public addresses only, checked when a rule is saved and again at
every send; no redirects followed; on-prem receivers by GENAI_WEBHOOK_ALLOWED_HOSTS."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitoring.models import Delivery, DeliveryAttempt
from monitoring.services.delivery import delivery_attempt, webhook_url_problem
from tests.monitoring.test_delivery import _firing_alert

pytestmark = pytest.mark.django_db

REFUSED = [
    "http://127.0.0.1:8000/hook", "http://localhost/hook", "http://[::1]/hook", "http://10.1.2.3/x",
    "http://192.168.0.10/x", "http://172.16.5.5/x", "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/x", "http://0.0.0.0/x", "http://224.0.0.1/x", "http://[::ffff:127.0.0.1]/x",
    "http://[fe80::1]/x", "http://[fc00::1]/x", "ftp://8.8.8.8/x", "file:///etc/passwd", "gopher://1.1.1.1/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_loopback_link_local_and_odd_schemes_are_refused(url):
    assert webhook_url_problem(url)


def test_public_addresses_pass_and_names_are_resolved(monkeypatch):
    assert webhook_url_problem("https://8.8.8.8/hook") is None
    public = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]
    private = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 443))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: public)
    assert webhook_url_problem("https://hooks.example.com/x") is None
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: private)
    assert "10.0.0.7, a private address" in webhook_url_problem("https://hooks.example.com/x")


def test_the_allow_list_lets_on_prem_receivers_through(settings):
    settings.GENAI_WEBHOOK_ALLOWED_HOSTS = ["10.20.0.0/16", "localhost"]
    assert webhook_url_problem("http://10.20.3.4/hook") is None
    assert webhook_url_problem("http://localhost:9000/hook") is None
    assert webhook_url_problem("http://10.21.3.4/hook")


def test_rules_with_private_webhooks_are_a_400_naming_the_field(api_for):
    client = api_for("analyst")
    body = {"name": "r", "entity": "NVDA", "condition": "mean_score", "threshold": -0.3,
            "webhook_url": "http://169.254.169.254/latest/meta-data/"}
    response = client.post("/api/alert-rules/", body, format="json")
    assert response.status_code == 400, response.content
    assert "link-local" in response.json()["errors"]["webhook_url"][0]


class _Redirector:
    def __init__(self):
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                hits.append(self.path)
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(307)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_sends_check_the_target_again_and_follow_no_redirect(settings, no_broker):
    settings.GENAI_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    redirector = _Redirector()
    alert = _firing_alert(webhook_url=redirector.url)
    delivery = Delivery.objects.get(alerts=alert, channel="webhook")
    assert delivery_attempt(delivery_id=delivery.pk).result == "retry"
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.status_code == 307 and "not followed" in attempt.error
    assert redirector.hits == ["/hook"]

    settings.GENAI_WEBHOOK_ALLOWED_HOSTS = []  # the rule was saved, then the allow-list changed
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=None)
    delivery_attempt(delivery_id=delivery.pk)
    last = DeliveryAttempt.objects.filter(delivery=delivery).order_by("-number").first()
    assert "loopback" in last.error and redirector.hits == ["/hook"]
    redirector.server.shutdown()

"""The servers' entry points default to production settings; only make run and the tests ask
for local / test ones."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = {
    "wsgi": "import genai_site.wsgi",
    "asgi": "import genai_site.asgi",
    "celery": "from genai_site.celery import app; import django; django.setup()",
}


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GENAI_ALERT_WEBHOOK"))}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("entry", sorted(PROBE))
def test_entry_points_default_to_production_settings(entry):
    code = PROBE[entry] + "; from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG)"
    result = _run(code, DJANGO_SECRET_KEY="s" * 50, GENAI_ALERT_WEBHOOK_SECRET="w" * 32)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["genai_site.settings.production", "False"]


def test_a_server_started_without_settings_refuses_to_run_instead_of_debugging():
    result = _run(PROBE["wsgi"])
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_refuses_the_default_webhook_secret():
    for secret in ({}, {"GENAI_ALERT_WEBHOOK_SECRET": "local-only-webhook-secret"}):
        result = _run(PROBE["wsgi"], DJANGO_SECRET_KEY="s" * 50, **secret)
        assert result.returncode != 0
        assert "GENAI_ALERT_WEBHOOK_SECRET must be set" in result.stderr


def test_make_run_worker_and_beat_ask_for_local_settings():
    result = subprocess.run(["make", "-n", "run", "worker", "beat"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": ""}, timeout=60)
    servers = [line for line in result.stdout.splitlines() if "honcho start" in line or "celery -A" in line]
    assert len(servers) == 3, result.stdout
    assert all("DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-genai_site.settings.local}" in line for line in servers)

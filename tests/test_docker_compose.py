"""Static checks on docker-compose.yml (no database, no Docker engine needed)."""

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.yml"

PYTHON_SERVICES = ["migrate", "web", "worker-gpu", "worker-cpu", "worker-train", "beat"]
ALL_SERVICES = ["postgres", "redis", *PYTHON_SERVICES, "flower"]
SHARED_IMAGE = "genai-desk:latest"


@pytest.fixture(scope="module")
def compose():
    yaml = pytest.importorskip("yaml")
    with COMPOSE_FILE.open() as fh:
        return yaml.safe_load(fh)


def _command_tokens(service):
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def test_no_version_key(compose):
    assert "version" not in compose


def test_all_services_defined(compose):
    missing = set(ALL_SERVICES) - set(compose["services"])
    assert not missing, f"missing services: {sorted(missing)}"


@pytest.mark.parametrize("name", PYTHON_SERVICES)
def test_python_services_share_image(compose, name):
    # The image only comes from the x-python-service anchor, so this proves the merge.
    svc = compose["services"][name]
    assert svc.get("image") == SHARED_IMAGE
    assert "build" in svc
    env = svc.get("environment", {})
    assert "DATABASE_URL" in env and "CELERY_BROKER_URL" in env


def test_migrate_does_not_wait_on_itself(compose):
    deps = compose["services"]["migrate"].get("depends_on", {})
    assert "migrate" not in deps
    assert {"postgres", "redis"} <= set(deps)


@pytest.mark.parametrize("name", [n for n in PYTHON_SERVICES if n != "migrate"])
def test_long_running_python_services_wait_for_migrate(compose, name):
    deps = compose["services"][name]["depends_on"]
    assert deps["migrate"]["condition"] == "service_completed_successfully"


def test_worker_gpu_queue_and_device(compose):
    svc = compose["services"]["worker-gpu"]
    tokens = _command_tokens(svc)
    assert "-Q" in tokens and tokens[tokens.index("-Q") + 1] == "gpu"
    devices = svc["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices
    ), devices


def test_long_running_services_have_healthchecks(compose):
    without = [
        name
        for name, svc in compose["services"].items()
        if name not in ("flower", "migrate") and not svc.get("healthcheck")
    ]
    assert not without, f"services without a healthcheck: {without}"


def _compose_available():
    if not shutil.which("docker"):
        return False, "docker CLI not installed"
    try:
        res = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`docker compose version` failed: {exc}"
    if res.returncode != 0:
        return False, "`docker compose` plugin not available"
    return True, ""


def test_docker_compose_config_validates():
    ok, reason = _compose_available()
    if not ok:
        pytest.skip(reason)
    env = {**os.environ, "DJANGO_SECRET_KEY": "x", "GENAI_ALERT_WEBHOOK_SECRET": "y"}
    res = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "--quiet"],
        cwd=COMPOSE_FILE.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr


def test_every_web_server_is_the_asgi_app_on_uvicorn_workers(compose):
    """make run (Procfile), the image, docker-compose and Kubernetes all serve streams from the
    ASGI server (an open stream holds no thread), never gthread's WSGI."""
    yaml = pytest.importorskip("yaml")
    root = COMPOSE_FILE.parent
    procfile = next(line for line in (root / "Procfile").read_text().splitlines() if line.startswith("web:"))
    image = next(line for line in (root / "Dockerfile").read_text().splitlines() if line.startswith("CMD"))
    deployment = next(d for d in yaml.safe_load_all((root / "deploy/base/web.yaml").read_text())
                      if d["kind"] == "Deployment")
    commands = {
        "Procfile": shlex.split(procfile.removeprefix("web:")),
        "Dockerfile": json.loads(image.removeprefix("CMD")),
        "docker-compose": _command_tokens(compose["services"]["web"]),
        "deploy": [*deployment["spec"]["template"]["spec"]["containers"][0]["command"],
                   *deployment["spec"]["template"]["spec"]["containers"][0]["args"]],
    }
    for where, tokens in commands.items():
        assert tokens[0] == "gunicorn" and "genai_site.asgi:application" in tokens, where
        assert tokens[tokens.index("--worker-class") + 1] == "uvicorn_worker.UvicornWorker", where

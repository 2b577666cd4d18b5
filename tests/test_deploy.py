"""The Kubernetes manifests (deploy/, issue 20), checked offline: every overlay renders and
validates (deploy/validate.py, which .ci/run also runs), the checker catches the mistakes it is
for, and what the manifests assume about the running service holds against the real thing:
the settings they set exist, KEDA's Redis lists are where Celery puts the messages, and KEDA's
SQL counts what it says."""

import copy
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None,
                                   reason="kubectl (with kustomize built in) is not installed: overlays cannot render")


@pytest.fixture(scope="module")
def validate():
    spec = importlib.util.spec_from_file_location("deploy_validate", ROOT / "deploy" / "validate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered(validate) -> dict[str, list[dict]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl (with kustomize built in) is not installed: overlays cannot render")
    return {overlay.name: validate.render(overlay) for overlay in validate.overlays()}


def _find(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


@needs_kubectl
def test_every_overlay_renders_and_validates():
    result = subprocess.run([sys.executable, "deploy/validate.py"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "single-node" in result.stdout and "production" in result.stdout


def test_manifests_set_only_settings_that_exist(validate, rendered):
    known = validate.settings_env_names()
    assert {"DATABASE_URL", "CELERY_BROKER_URL", "GENAI_TORCH_THREADS", "GENAI_WORKER_SHUTDOWN_FINISH_SECONDS"} <= known
    for overlay, docs in rendered.items():
        names = set(validate.app_environment(docs))
        assert {"GENAI_MODEL_CACHE_DIR", "GENAI_TORCH_THREADS"} <= names, overlay  # the collection works
        assert names - known - validate.PROCESS_ENV == set(), overlay
    assert validate.secret_keys_example() - known == set()


def _cpu_trigger(docs, index):
    return _find(docs, "ScaledObject", "worker-cpu")["spec"]["triggers"][index]


# Each mistake, made in the rendered single-node overlay, and what the checker must say.
MISTAKES = {
    "misspelt ScaledObject field": (
        "custom_resource_problems", lambda d: _find(d, "ScaledObject", "worker-gpu")["spec"].update(cooldownPeriods=60),
        "'cooldownPeriods' was unexpected"),
    "number as trigger metadata": (
        "custom_resource_problems", lambda d: _cpu_trigger(d, 0)["metadata"].update(listLength=4),
        "is not of type 'string'"),
    "formula naming no trigger": (
        "custom_resource_problems",
        lambda d: _find(d, "ScaledObject", "worker-gpu")["spec"]["advanced"]["scalingModifiers"].update(
            formula="waiting + runing"),
        "no trigger called runing"),
    "unknown Deployment field": (
        "core_problems", lambda d: _find(d, "Deployment", "web")["spec"]["template"]["spec"].update(gracePeriod=5),
        "'gracePeriod' was unexpected"),
    "misspelt setting": (
        "environment_problems",
        lambda d: _find(d, "Deployment", "worker-gpu")["spec"]["template"]["spec"]["containers"][0]["env"].append(
            {"name": "GENAI_TORCH_THREAD", "value": "1"}),
        "GENAI_TORCH_THREAD: set by Deployment/worker-gpu"),
    "a priority list not watched": (
        "scaling_problems", lambda d: _cpu_trigger(d, 1)["metadata"].update(listName="cpu3"),
        "watches the Redis lists of queue 'cpu' wrongly"),
    "target is not the concurrency": (
        "scaling_problems",
        lambda d: _find(d, "ScaledObject", "worker-gpu")["spec"]["advanced"]["scalingModifiers"].update(target="16"),
        "runs -c 8 jobs at once"),
    "replicas under an autoscaler": (
        "scaling_problems", lambda d: _find(d, "Deployment", "worker-cpu")["spec"].update(replicas=2),
        "sets replicas"),
    "grace period shorter than the hand-back": (
        "scaling_problems",
        lambda d: _find(d, "Deployment", "worker-train")["spec"]["template"]["spec"].update(
            terminationGracePeriodSeconds=30),
        "terminationGracePeriodSeconds 30"),
    "a second beat": (
        "scaling_problems", lambda d: _find(d, "Deployment", "beat")["spec"].update(replicas=2),
        "beat must be 1 replica"),
    "probe with the pod IP as Host": (
        "probe_problems",
        lambda d: _find(d, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"][
            "httpGet"].pop("httpHeaders"),
        "Django answers 400"),
    "memory in MB": (
        "reference_problems",
        lambda d: _find(d, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]["resources"][
            "requests"].update(memory="384 MB"),
        "is not a Kubernetes quantity"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_the_checker_catches(mistake, validate, rendered):
    check, make, expected = MISTAKES[mistake]
    docs = rendered["single-node"]
    assert getattr(validate, check)(docs) == []
    broken = copy.deepcopy(docs)
    make(broken)
    problems = getattr(validate, check)(broken)
    assert any(expected in p for p in problems), problems


@pytest.mark.django_db
@pytest.mark.parametrize("queue", ["gpu", "cpu"])
def test_keda_watches_the_redis_lists_celery_puts_the_messages_in(queue, rendered, settings):
    """Messages of every API priority, sent the way job_enqueue sends them: the lists the
    ScaledObject watches hold them all (the list named after the queue holds only the most
    urgent: KEDA on that one alone would not see the default priority)."""
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("the broker is not Redis (set CELERY_BROKER_URL=redis://...)")
    import redis

    from generation.models import PRIORITY_MAX, PRIORITY_MIN
    from generation.services.jobs import job_enqueue
    from tests.factories import JobFactory

    watched = [t["metadata"]["listName"] for t in _find(rendered["single-node"], "ScaledObject", f"worker-{queue}")[
        "spec"]["triggers"] if t["type"] == "redis"]
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(*watched)
    try:
        priorities = range(PRIORITY_MIN, PRIORITY_MAX + 1)
        for priority in priorities:
            assert job_enqueue(job=JobFactory(queue=queue, priority=priority))
        assert sum(client.llen(name) for name in watched) == len(priorities)
        assert client.llen(queue) < len(priorities)
    finally:
        client.delete(*watched)


@pytest.mark.django_db
def test_keda_sql_counts_what_it_says(rendered):
    from django.db import connection

    from generation.models import JobStatus
    from tests.factories import JobFactory

    for queue in ("gpu", "cpu", "train"):
        for status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RUNNING, JobStatus.SUCCEEDED):
            JobFactory(queue=queue, status=status)
    expected = {"worker-gpu": 2, "worker-cpu": 2, "worker-train": 3}  # running; train: queued + running
    for name, count in expected.items():
        (trigger,) = [t for t in _find(rendered["single-node"], "ScaledObject", name)["spec"]["triggers"]
                      if t["type"] == "postgresql"]
        with connection.cursor() as cursor:
            cursor.execute(trigger["metadata"]["query"])
            assert cursor.fetchone()[0] == count, (name, trigger["metadata"]["query"])

"""Real Celery worker processes on the configured broker and the test database."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from generation.models import FINAL_STATUSES, Job, WorkerHeartbeat

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    def __init__(self, process: subprocess.Popen, name: str, log: Path):
        self.process, self.name, self.log = process, name, log

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if WorkerHeartbeat.objects.filter(name=self.name).exists():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"worker {self.name} did not start:\n{self.log_tail()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def start_worker(transactional_db, tmp_path):
    """Starts `celery worker` processes (threads pool, all queues) sharing the test database."""
    from genai_site.celery import app

    app.control.purge()  # messages left by earlier runs would only be skipped, but add noise
    started: list[Worker] = []

    def start(*, beat: bool = False, concurrency: int = 2, **env_overrides: str) -> Worker:
        name = f"e2e-{uuid.uuid4().hex[:6]}@{os.uname().nodename}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "genai_site.settings.test",
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "GENAI_VAR_DIR": str(settings.VAR_DIR),
            "GENAI_WORKER_HEARTBEAT_SECONDS": "0.5",
            "GENAI_JOB_HEARTBEAT_SECONDS": "0.5",
            "GENAI_JOB_HEARTBEAT_STALE_SECONDS": "3",
            "GENAI_SWEEP_INTERVAL_SECONDS": "1",
            "GENAI_LOG_LEVEL": "INFO",
            **env_overrides,
        }
        command = [sys.executable, "-m", "celery", "-A", "genai_site", "worker", "-Q", "gpu,cpu,train",
                   "-P", "threads", "-c", str(concurrency), "-n", name, "--without-gossip", "--without-mingle"]
        if beat:
            command += ["-B", "-s", str(tmp_path / f"beat-{name}")]
        log = tmp_path / f"{name}.log"
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        worker = Worker(process, name, log)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(predicate, *, timeout: float, message) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(message() if callable(message) else message)


def wait_final(job_id, *, timeout: float, workers=()) -> Job:
    def final():
        return Job.objects.get(pk=job_id).status in FINAL_STATUSES

    wait_for(final, timeout=timeout, message=lambda: f"job {job_id} not final: {Job.objects.get(pk=job_id).status}\n"
             + "\n".join(w.log_tail() for w in workers))
    return Job.objects.get(pk=job_id)

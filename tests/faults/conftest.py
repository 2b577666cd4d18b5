"""The fault suite's own PostgreSQL and Redis servers, web server and Celery workers.

Every fault is injected into servers this suite starts (initdb into a temporary folder, a
redis-server on a free port), never into the machine's own. The service runs as it does in
production: ``genai_site.settings.production`` (DEBUG off), gunicorn for the web, ``celery worker``
(threads pool, embedded beat for the sweeper). The test process reads the database with psycopg
and talks HTTP; it uses no Django database of its own.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
FINAL = ("succeeded", "failed", "cancelled")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, message, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(message() if callable(message) else message)


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and the server refuse to run as root: run them as the postgres OS user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class FaultPostgres:
    """A throw-away PostgreSQL cluster on a free port (fsync off: it only has to survive restarts)."""

    def __init__(self, folder: Path):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            pytest.skip("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are not installed")
        self.bin = Path(bins[-1]).parent
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "postgres.log"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/genai"
        folder.chmod(0o777)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        subprocess.run(_as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                                     "--no-sync", "-E", "UTF8"]), check=True, capture_output=True)
        self.start()
        subprocess.run(_as_postgres([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                                     "postgres", "genai"]), check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                                     "-w", "-t", "60", "start"]), check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                       check=True, capture_output=True)

    def dump(self) -> str:
        result = subprocess.run([str(self.bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                                 "genai"], check=True, capture_output=True)
        return result.stdout.decode("utf-8", errors="replace")

    def query(self, sql: str, params=()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass


class FaultRedis:
    """A redis-server on a free port without persistence: a restart loses every message in it,
    the worst case for the broker (the sweeper has to send them again)."""

    def __init__(self, folder: Path):
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.start()

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        log = (self.folder / "redis.log").open("a")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=log, stderr=subprocess.STDOUT,
        )
        wait_for(self._pings, timeout=20, message="redis-server did not start")

    def _pings(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)  # no chance to save anything
            self.process.wait(timeout=10)

    def close(self) -> None:
        self.stop()


@dataclass
class Process:
    name: str
    process: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the process and its children (a worker's embedded beat), as a crash would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only what it started
        except ProcessLookupError:
            pass
        if self.alive():
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # whatever of its group is left

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(line[:300] for line in self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Site:
    """The service on the fault servers: settings, users, the web server and workers."""

    folder: Path
    postgres: FaultPostgres
    redis: FaultRedis
    env: dict[str, str]
    web_url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)

    def manage(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                                text=True, timeout=240)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    def token(self, role: str) -> str:
        if role not in self.tokens:
            self.tokens[role] = self.manage("user_create", f"fault-{role}", "--role", role).strip().splitlines()[-1]
        return self.tokens[role]

    def http(self, role: str | None = "admin") -> requests.Session:
        session = requests.Session()
        if role is not None:
            session.headers["Authorization"] = f"Token {self.token(role)}"
        return session

    def _spawn(self, name: str, command: list[str], **env: str) -> Process:
        log = self.folder / f"{name}.log"
        process = subprocess.Popen(command, cwd=ROOT, env={**self.env, **env}, stdout=log.open("w"),
                                   stderr=subprocess.STDOUT, start_new_session=True)
        started = Process(name, process, log)
        self.processes.append(started)
        return started

    def web_start(self) -> Process:
        port = free_port()
        web = self._spawn("web", [sys.executable, "-m", "gunicorn", "genai_site.wsgi:application", "--bind",
                                  f"127.0.0.1:{port}", "--worker-class", "gthread", "--workers", "1", "--threads", "8",
                                  "--timeout", "60"])
        self.web_url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(f"{self.web_url}/healthz", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(up, timeout=60, message=web.log_tail)
        return web

    def worker_start(self, *, concurrency: int = 4, beat: bool = True, **env: str) -> Process:
        name = f"fault-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        command = [sys.executable, "-m", "celery", "-A", "genai_site", "worker", "-Q", "gpu,cpu,train", "-P", "threads",
                   "-c", str(concurrency), "-n", name, "--without-gossip", "--without-mingle"]
        if beat:
            command += ["-B", "-s", str(self.folder / f"beat-{name}")]
        worker = self._spawn(name, command, **env)
        wait_for(lambda: self.postgres.query("SELECT 1 FROM generation_workerheartbeat WHERE name = %s", (name,))
                 or not worker.alive(), timeout=90, message=worker.log_tail)
        assert worker.alive(), worker.log_tail()
        return worker

    def jobs_post(self, count: int, *, text: str = "fault", delay: float = 0.0, role: str = "admin") -> list[str]:
        session = self.http(role)
        ids = []
        for i in range(count):
            response = session.post(f"{self.web_url}/api/jobs/", json={
                "kind": "echo", "params": {"text": f"{text}-{i}", "delay_seconds": delay}}, timeout=30)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        return ids

    def jobs_wait(self, ids: list[str], *, timeout: float) -> dict[str, str]:
        def statuses() -> dict[str, str]:
            rows = self.postgres.query("SELECT id::text, status FROM generation_job WHERE id::text = ANY(%s)", (ids,))
            return dict(rows)

        def done():
            current = statuses()
            return current if all(current.get(i) in FINAL for i in ids) else None

        return wait_for(done, timeout=timeout, interval=0.5, message=lambda: f"jobs not final: {statuses()}\n"
                        + "\n".join(p.log_tail(15) for p in self.processes if p.name != "web"))

    def jobs_figures(self, ids: list[str]) -> dict[str, int]:
        """submitted / succeeded / lost (not succeeded) / duplicated (a second result stored) / rerun."""
        rows = self.postgres.query(
            "SELECT j.status, j.attempts, (SELECT count(*) FROM generation_candidate c WHERE c.job_id = j.id) "
            "FROM generation_job j WHERE j.id::text = ANY(%s)", (ids,))
        return {
            "submitted": len(ids),
            "succeeded": sum(status == "succeeded" for status, _, _ in rows),
            "lost": len(ids) - sum(status == "succeeded" for status, _, _ in rows),
            "duplicated": sum(candidates > 1 for _, _, candidates in rows),
            "rerun": sum(attempts > 1 for _, attempts, _ in rows),
        }

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()


FIGURES: dict[str, dict] = {}


@pytest.fixture(scope="session")
def fault_site():
    folder = Path(tempfile.mkdtemp(prefix="genai-faults-"))
    folder.chmod(0o755)  # the postgres OS user reaches its data folder through it
    (folder / "pg").mkdir()
    postgres = FaultPostgres(folder / "pg")
    redis = FaultRedis(folder)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "genai_site.settings.production",
        "DJANGO_SECRET_KEY": "fault-suite-" + uuid.uuid4().hex,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "GENAI_ALERT_WEBHOOK_SECRET": "fault-suite-webhook-" + uuid.uuid4().hex,
        "DATABASE_URL": postgres.url,
        "CELERY_BROKER_URL": redis.url(0),
        "CACHE_URL": redis.url(1),
        "GENAI_VAR_DIR": str(folder / "var"),
        "GENAI_LOG_LEVEL": "INFO",
        "GENAI_LOG_FORMAT": "json",
        "GENAI_THROTTLE_USER": "100000/min",
        "GENAI_THROTTLE_JOB_CREATE": "100000/min",
        "GENAI_THROTTLE_TOKEN": "100000/min",
        "GENAI_MAX_QUEUED_JOBS_PER_USER": "1000",
        "GENAI_WORKER_HEARTBEAT_SECONDS": "0.5",
        "GENAI_WORKER_STALE_SECONDS": "3",
        "GENAI_JOB_HEARTBEAT_SECONDS": "0.5",
        "GENAI_JOB_HEARTBEAT_STALE_SECONDS": "3",
        "GENAI_SWEEP_INTERVAL_SECONDS": "1",
        "GENAI_JOB_REQUEUE_AFTER_SECONDS_BY_QUEUE": "gpu=5,cpu=5",
        "GENAI_DEVICE": "cpu",
        "GENAI_LM_MODEL": str(settings.GENAI_LM_MODEL),  # the tests' tiny model (built by tests/conftest.py)
        "GENAI_TORCH_THREADS": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("GENAI_METRICS_DIR", None)
    site = Site(folder=folder, postgres=postgres, redis=redis, env=env)
    try:
        site.manage("migrate", "--noinput", "-v", "0")
        site.web_start()
        yield site
    finally:
        site.close()
        redis.close()
        postgres.close()
        if FIGURES:
            sys.stderr.write(f"\nfault figures: {FIGURES}\n")
        if not os.environ.get("GENAI_FAULTS_KEEP"):  # keep the logs and data to read after a failure
            shutil.rmtree(folder, ignore_errors=True)

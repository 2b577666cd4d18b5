"""What the benchmarks share: the environment and database they run against, users with tokens,
gunicorn and Celery worker subprocesses with a readiness wait, an HTTP client, and the readers of
percentiles and of /proc (CPU time, RSS).

Run against local PostgreSQL and Redis by default (``DATABASE_URL`` / ``CELERY_BROKER_URL`` /
``CELERY_RESULT_BACKEND`` or the flags override). Subprocesses run in their own sessions, with
this process's environment plus any extra a script passes, logs in var/bench/; they are stopped
when the ``Services`` context exits, also on errors, Ctrl-C or SIGTERM (``main_run``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / "var" / "bench"
FINAL = {"succeeded", "failed", "cancelled"}
BENCH_ENV = {  # applied with setdefault: the environment wins
    "DJANGO_SETTINGS_MODULE": "genai_site.settings.local",
    "DJANGO_DEBUG": "0",
    "GENAI_LOG_LEVEL": "WARNING",
    "GENAI_THROTTLE_USER": "1000000/min",
    "GENAI_THROTTLE_JOB_CREATE": "1000000/min",
    "GENAI_MAX_QUEUED_JOBS_PER_USER": "1000000",
    "GENAI_MAX_QUEUED_JOBS_TOTAL": "1000000",
}


# --- arguments, environment, database ------------------------------------------------------------


def service_args_add(p: argparse.ArgumentParser, *, worker_concurrency: int = 8) -> None:
    """Flags for the database, broker, web server and worker (shared by the benchmarks)."""
    env = os.environ.get
    p.add_argument("--database-url", default=env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/genai_bench"))
    p.add_argument("--broker-url", default=env("CELERY_BROKER_URL", "redis://127.0.0.1:6379/2"))
    p.add_argument("--result-backend", default=env("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/3"))
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--web-workers", type=int, default=2)
    p.add_argument("--web-threads", type=int, default=8)
    p.add_argument("--worker-concurrency", type=int, default=worker_concurrency)
    p.add_argument("--worker-pool", default="threads")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")


def environment_prepare(args: argparse.Namespace, **extra: str) -> float:
    """Point this process (and so its subprocesses) at the run's services; returns the 1-minute
    load average before anything starts. ``extra`` is applied with setdefault like BENCH_ENV."""
    os.environ.update(DATABASE_URL=args.database_url, CELERY_BROKER_URL=args.broker_url,
                      CELERY_RESULT_BACKEND=args.result_backend)  # fmt: skip
    for key, value in (BENCH_ENV | extra).items():
        os.environ.setdefault(key, value)
    sys.path.insert(0, str(ROOT))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds: services stop, rows go
    return os.getloadavg()[0]


def database_ensure(url: str) -> None:
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        return
    import psycopg
    from psycopg import sql

    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def django_prepare(args: argparse.Namespace):
    """Create the database if missing, set Django up, migrate, purge the queues; the Celery app."""
    database_ensure(args.database_url)
    import django

    django.setup()
    from django.core.management import call_command

    from genai_site.celery import app

    call_command("migrate", interactive=False, verbosity=0)
    app.control.purge()
    return app


def user_make(username: str, role: str = "admin") -> str:
    """A user via the project's command (``manage.py user_create``); returns its API token."""
    from django.core.management import call_command

    out = StringIO()
    call_command("user_create", username, role=role, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


@contextmanager
def bench_users(prefix: str, count: int, role: str = "admin") -> Iterator[tuple[list[str], object]]:
    """``count`` users named ``prefix<i>``: (tokens, queryset of the users). Their jobs and the
    users themselves are deleted on exit."""
    from django.contrib.auth import get_user_model

    from generation.models import Job

    owners = get_user_model().objects.filter(username__startswith=prefix)
    try:
        yield [user_make(f"{prefix}{i}", role) for i in range(max(count, 1))], owners
    finally:
        Job.objects.filter(owner__in=owners).delete()
        owners.delete()


def machine_info(args: argparse.Namespace, loadavg: float) -> dict:
    import celery

    return {
        "nproc": len(os.sched_getaffinity(0)), "loadavg": loadavg, "python": platform.python_version(),
        "celery": celery.__version__, "database": url_safe(args.database_url), "broker": url_safe(args.broker_url),
        "results": url_safe(args.result_backend), "web": f"gunicorn gthread {args.web_workers}x{args.web_threads}",
        "worker": f"celery {args.worker_pool} x{args.worker_concurrency}",
    }  # fmt: skip


def main_run(main: Callable[[], int]) -> None:
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; services stopped, the run's jobs and users deleted")


# --- numbers and /proc -------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Percentile with linear interpolation; NaN for no values."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary_ms(seconds: list[float]) -> dict:
    return {"n": len(seconds), "p50": pct(seconds, 50) * 1000, "p95": pct(seconds, 95) * 1000}


def url_safe(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) of each root's process tree, of PostgreSQL and Redis, and of us."""
    procs, hz = {}, os.sysconf("SC_CLK_TCK")
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        procs[int(entry)] = (comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / hz)

    def tree(pid: int) -> float:
        return procs.get(pid, ("", 0, 0.0))[2] + sum(tree(c) for c, (_, ppid, _) in procs.items() if ppid == pid)

    totals = {name: tree(pid) for name, pid in roots.items()}
    for service in ("postgres", "redis"):
        totals[service] = sum(t for comm, _, t in procs.values() if comm.startswith(service))
    totals["bench"] = procs.get(os.getpid(), ("", 0, 0.0))[2]  # not its children: they are the services
    return totals


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all CPUs, all processes), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def memory_bytes(pid: int) -> dict[str, int]:
    """Resident set now (VmRSS) and its peak (VmHWM) of one process, in bytes; {} if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        key: int(fields[name].split()[0]) * 1024
        for key, name in (("rss", "VmRSS"), ("peak", "VmHWM"))
        if name in fields
    }


# --- HTTP and subprocesses --------------------------------------------------------------------------------


class Api:
    """One keep-alive connection to the web server (one per thread)."""

    def __init__(self, port: int, token: str | None = None):
        self.port, self.conn = port, None
        self.headers = {"Content-Type": "application/json"} | ({"Authorization": f"Token {token}"} if token else {})

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):  # once more on a new connection when the server closed an idle one
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request(method, path, body=data, headers=self.headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except ConnectionError:
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        try:
            return response.status, json.loads(payload) if payload else None
        except ValueError:
            return response.status, {"raw": payload[:300].decode(errors="replace")}


class Services:
    """gunicorn and Celery workers as subprocesses (own sessions), stopped on exit.

    Each has a name (its log is var/bench/<name>.log, its pid ``procs[name].pid``); a worker can
    be stopped and another started in its place while the web server stays up."""

    def __init__(self, port: int):
        self.port, self.procs = port, {}

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with open(LOG_DIR / f"{name}.log", "wb") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", *argv], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=(os.environ | env) if env else None,
            )  # fmt: skip

    def web_start(self, *, workers: int, threads: int, name: str = "web", env: dict[str, str] | None = None,
                  server: str = "wsgi") -> None:  # fmt: skip
        """gunicorn with gthread workers (``wsgi``: ``threads`` each) or with uvicorn workers
        (``asgi``: the Procfile's web server; ``threads`` unused)."""
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise RuntimeError(f"port {self.port} is in use; pass --port")
        if server == "asgi":
            served = ["genai_site.asgi:application", "--worker-class", "uvicorn_worker.UvicornWorker"]
        else:
            served = ["genai_site.wsgi:application", "--worker-class", "gthread", "--threads", str(threads)]
        self._start(name, ["gunicorn", *served, "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
                           "--log-level", "warning"], env)  # fmt: skip

    def worker_start(self, *, hostname: str, pool: str, concurrency: int, name: str = "worker",
                     loglevel: str = "WARNING", env: dict[str, str] | None = None) -> None:  # fmt: skip
        self._start(name, ["celery", "-A", "genai_site", "worker", "-Q", "gpu,cpu,train", "-P", pool,
                           "-c", str(concurrency), "-n", hostname, "--loglevel", loglevel], env)  # fmt: skip

    def stop(self, *names: str) -> None:
        """Stop the named processes (all when none is named): SIGTERM, then SIGKILL after 20 s."""
        procs = [self.procs.pop(n) for n in names] if names else list(self.procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what it started
                proc.wait()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_ready(self, worker_hostname: str, timeout: float = 90.0) -> None:
        """Until /healthz is 200 and /readyz is 200 naming the worker."""
        api, deadline, last = Api(self.port), time.monotonic() + timeout, "no answer"
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {LOG_DIR / name}.log")
            try:
                if api.request("GET", "/healthz")[0] == 200:
                    status, body = api.request("GET", "/readyz")
                    last = json.dumps(body)
                    if status == 200 and worker_hostname in body["checks"]["worker"]:
                        return
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise RuntimeError(f"services not ready after {timeout:.0f} s: {last}")

    def wait_web(self, timeout: float = 90.0) -> None:
        """Until /healthz is 200 (no worker needed)."""
        api, deadline, last = Api(self.port), time.monotonic() + timeout, "no answer"
        while time.monotonic() < deadline:
            proc = self.procs["web"]
            if proc.poll() is not None:
                raise RuntimeError(f"web exited with {proc.returncode}; see {LOG_DIR / 'web'}.log")
            try:
                if api.request("GET", "/healthz")[0] == 200:
                    return
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise RuntimeError(f"web not ready after {timeout:.0f} s: {last}")

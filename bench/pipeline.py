"""Benchmark of the job pipeline (web API -> broker -> worker -> database) for the ``echo`` kind,
printed beside a bare Celery round trip measured in the same run.

Machines here are noisy, so the numbers that matter are the ratios to the in-run baseline.
Target (issue): >= 150 jobs/s on 2 cores, and p50 overhead <= 20 ms over the bare round trip.

Setup: create the PostgreSQL database if missing, migrate, create admin users with tokens (the
echo kind is admin-only), purge the queues, then start gunicorn (gthread) and a Celery worker
(threads pool) as subprocesses with this process's environment (logs in var/bench/), and wait
until /healthz is 200 and /readyz is 200 naming this run's worker. Both are stopped at the end,
also on errors, Ctrl-C or SIGTERM; the run's jobs and users are deleted. Throttles and admission
caps are raised, DEBUG is off and logs are at WARNING unless the environment sets them.

Baseline: ``workers.tasks.ping`` sent from this process via the broker to the same worker, the
result coming back through the Redis result backend (``.get()`` waits on pub/sub, no polling).
  latency     L sequential send_task().get() round trips (after a warm-up).
  throughput  N sent at once, then every .get(); tasks/s = N / elapsed.

Pipeline: ``POST /api/jobs/ {"kind": "echo", "params": {"text": "hi"}}``.
  latency     L sequential jobs. "client": POST start until this process sees the row final; it
              reads the status through the ORM every 1 ms (cheaper than polling GET; adds up to
              about 1 ms). Also the POST round trip alone, and from the rows' own timestamps
              (stamped by web and worker, no client cost): created->finished, created->started
              (queue wait) and started->finished (the worker's part).
  throughput  N jobs POSTed by K threads over keep-alive http.client connections (threads spread
              over --users users); jobs/s = N / (first POST start -> latest finished_at). Also
              the POST rate alone, percentiles from the rows under that load, and the CPU time
              per job of web, worker, PostgreSQL, Redis and this process (from /proc; PostgreSQL
              and Redis count all their processes on the machine). Pings come from one thread.
  overhead    pipeline client p50 - baseline p50 (both are client-observed round trips).

Run (PostgreSQL and Redis on 127.0.0.1 by default; DATABASE_URL / CELERY_BROKER_URL /
CELERY_RESULT_BACKEND or the flags override; the bench process shares the cores it measures):
    .venv/bin/python bench/pipeline.py [--jobs 600] [--clients 16] [--latency-samples 200] [--json]
Exit status 1 when any job did not succeed or any POST failed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / "var" / "bench"
ECHO = {"kind": "echo", "params": {"text": "hi"}}
FINAL = {"succeeded", "failed", "cancelled"}
WARMUP = 20
BENCH_ENV = {  # applied with setdefault: the environment wins
    "DJANGO_SETTINGS_MODULE": "genai_site.settings.local",
    "DJANGO_DEBUG": "0",
    "GENAI_LOG_LEVEL": "WARNING",
    "GENAI_THROTTLE_USER": "1000000/min",
    "GENAI_THROTTLE_JOB_CREATE": "1000000/min",
    "GENAI_MAX_QUEUED_JOBS_PER_USER": "1000000",
    "GENAI_MAX_QUEUED_JOBS_TOTAL": "1000000",
}


def args_parse() -> argparse.Namespace:
    p, env = argparse.ArgumentParser(description=__doc__.split("\n\n")[0]), os.environ.get
    p.add_argument("--jobs", type=int, default=600, help="jobs (and pings) in the throughput runs")
    p.add_argument("--clients", type=int, default=16, help="client threads POSTing jobs")
    p.add_argument("--users", type=int, default=1, help="spread the client threads over this many users")
    p.add_argument("--latency-samples", type=int, default=200, help="sequential round trips per latency run")
    p.add_argument("--database-url", default=env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/genai_bench"))
    p.add_argument("--broker-url", default=env("CELERY_BROKER_URL", "redis://127.0.0.1:6379/2"))
    p.add_argument("--result-backend", default=env("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/3"))
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--web-workers", type=int, default=2)
    p.add_argument("--web-threads", type=int, default=8)
    p.add_argument("--worker-concurrency", type=int, default=8)
    p.add_argument("--worker-pool", default="threads")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    return p.parse_args()


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
    """gunicorn and a Celery worker as subprocesses (own sessions), stopped on exit."""

    def __init__(self, args: argparse.Namespace, worker_name: str):
        self.args, self.worker_name, self.procs = args, worker_name, {}

    def _start(self, name: str, *argv: str) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with open(LOG_DIR / f"{name}.log", "wb") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", *argv], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def __enter__(self) -> Services:
        a = self.args
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", a.port)) == 0:
                raise RuntimeError(f"port {a.port} is in use; pass --port")
        self._start("web", "gunicorn", "genai_site.wsgi:application", "--bind", f"127.0.0.1:{a.port}",
                    "--worker-class", "gthread", "--workers", str(a.web_workers), "--threads", str(a.web_threads),
                    "--log-level", "warning")  # fmt: skip
        self._start("worker", "celery", "-A", "genai_site", "worker", "-Q", "gpu,cpu,train", "-P", a.worker_pool,
                    "-c", str(a.worker_concurrency), "-n", self.worker_name, "--loglevel", "WARNING")  # fmt: skip
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what it started
                proc.wait()

    def wait_ready(self, timeout: float = 90.0) -> None:
        api, deadline, last = Api(self.args.port), time.monotonic() + timeout, "no answer"
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {LOG_DIR / name}.log")
            try:
                if api.request("GET", "/healthz")[0] == 200:
                    status, body = api.request("GET", "/readyz")
                    last = json.dumps(body)
                    if status == 200 and self.worker_name in body["checks"]["worker"]:
                        return
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise RuntimeError(f"services not ready after {timeout:.0f} s: {last}")


def baseline_run(app, samples: int, n: int) -> dict:
    def ping():
        return app.send_task("workers.tasks.ping", queue="cpu")

    for _ in range(WARMUP):
        ping().get(timeout=10)
    latencies = []
    for _ in range(samples):
        t0 = time.perf_counter()
        ping().get(timeout=10)
        latencies.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    results = [ping() for _ in range(n)]
    for result in results:
        result.get(timeout=120)
    elapsed = time.perf_counter() - t0
    for result in results:
        result.forget()
    return {"latency_ms": summary_ms(latencies), "per_s": n / elapsed}


def job_rows(ids: list[str]) -> list[dict]:
    from generation.models import Job

    return list(Job.objects.filter(id__in=ids).values("status", "created_at", "started_at", "finished_at"))


def since(rows: list[dict], start: str, end: str) -> list[float]:
    return [(r[end] - r[start]).total_seconds() for r in rows if r[start] and r[end]]


def pipeline_latency(port: int, token: str, samples: int) -> dict:
    from generation.models import Job

    api, latencies, posts, ids, errors = Api(port, token), [], [], [], []
    for i in range(WARMUP + samples):
        t0 = time.perf_counter()
        status, body = api.request("POST", "/api/jobs/", ECHO)
        t_post = time.perf_counter() - t0
        if status != 201:
            errors.append(f"{status} {body}")
            continue
        job = Job.objects.filter(pk=body["id"]).values_list("status", flat=True)
        while job.first() not in FINAL and time.perf_counter() - t0 < 30:
            time.sleep(0.001)
        if i >= WARMUP:
            latencies.append(time.perf_counter() - t0)
            posts.append(t_post)
            ids.append(body["id"])
    rows = job_rows(ids)
    return {
        "client_ms": summary_ms(latencies),
        "post_ms": summary_ms(posts),
        "db_ms": summary_ms(since(rows, "created_at", "finished_at")),
        "queue_wait_ms": summary_ms(since(rows, "created_at", "started_at")),
        "run_ms": summary_ms(since(rows, "started_at", "finished_at")),
        "jobs": samples,
        "succeeded": sum(r["status"] == "succeeded" for r in rows),
        "n_errors": len(errors),
        "errors": errors[:5],
    }


def pipeline_throughput(port: int, tokens: list[str], owners: list, n: int, clients: int, roots: dict) -> dict:
    from generation.models import Job

    local, thread_numbers = threading.local(), iter(range(clients))

    def submit(_: int) -> tuple[int, dict | None]:
        if not hasattr(local, "api"):  # each client thread posts as one user, round robin
            local.api = Api(port, tokens[next(thread_numbers) % len(tokens)])
        return local.api.request("POST", "/api/jobs/", ECHO)

    cpu_before, pool = cpu_seconds(roots), ThreadPoolExecutor(clients)
    start_wall, t0 = time.time(), time.perf_counter()
    try:
        responses = list(pool.map(submit, range(n)))
    finally:
        pool.shutdown(cancel_futures=True)
    post_s = time.perf_counter() - t0
    ids = [body["id"] for status, body in responses if status == 201]
    errors = [f"{status} {body}" for status, body in responses if status != 201]
    pending = Job.objects.filter(owner__in=owners, status__in=("queued", "running"))
    deadline = time.monotonic() + 120 + n * 0.1
    while pending.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    cpu_after, rows = cpu_seconds(roots), job_rows(ids)
    finished = [r["finished_at"].timestamp() for r in rows if r["finished_at"]]
    return {
        "jobs": n,
        "clients": clients,
        "users": len(tokens),
        "per_s": len(ids) / (max(finished) - start_wall) if finished else 0.0,
        "post_per_s": n / post_s,
        "db_ms": summary_ms(since(rows, "created_at", "finished_at")),
        "queue_wait_ms": summary_ms(since(rows, "created_at", "started_at")),
        "cpu_ms_per_job": {k: (cpu_after[k] - cpu_before[k]) * 1000 / n for k in cpu_after},
        "succeeded": sum(r["status"] == "succeeded" for r in rows),
        "n_errors": len(errors),
        "errors": errors[:5],
    }


def report(r: dict) -> str:
    b, lat, thr, rt, m = r["baseline"], r["pipeline_latency"], r["pipeline_throughput"], r["ratios"], r["machine"]
    cpu = thr["cpu_ms_per_job"]
    rows = [
        ("baseline: bare ping round trip", b["latency_ms"], f"{b['per_s']:8.1f} tasks/s"),
        ("pipeline: echo job, client-observed", lat["client_ms"], f"{thr['per_s']:8.1f} jobs/s"),
        ("  POST /api/jobs/ round trip", lat["post_ms"], ""),
        ("  db created->finished", lat["db_ms"], ""),
        ("  db created->started (queue wait)", lat["queue_wait_ms"], ""),
        ("  db started->finished (worker)", lat["run_ms"], ""),
        (f"load, {thr['clients']} clients/{thr['users']} users: created->finished", thr["db_ms"],
         f"{thr['post_per_s']:8.1f} POSTs/s"),
        ("load: created->started (queue wait)", thr["queue_wait_ms"], ""),
    ]  # fmt: skip
    out = [
        f"genai-desk pipeline benchmark: {m['nproc']} CPUs (load {m['loadavg']:.2f}), Python {m['python']}, "
        f"Celery {m['celery']}, {m['web']}, {m['worker']}",
        f"  database {m['database']}  broker {m['broker']}  results {m['results']}",
        f"  {'':50} {'p50 ms':>8} {'p95 ms':>8}",
        *(f"  {label:50} {ms['p50']:8.2f} {ms['p95']:8.2f} {rate}".rstrip() for label, ms, rate in rows),
        f"  pipeline/baseline: latency p50 x{rt['latency_p50']:.1f}, p95 x{rt['latency_p95']:.1f}; "
        f"throughput x{rt['throughput']:.2f}",
        f"  p50 overhead {rt['overhead_p50_ms']:+.1f} ms client, {rt['overhead_p50_db_ms']:+.1f} ms db [target <= 20]"
        f"; throughput {thr['per_s']:.1f} jobs/s [target >= 150]",
        f"  CPU ms per job under load: {', '.join(f'{k} {v:.2f}' for k, v in cpu.items())}; "
        f"total {sum(cpu.values()):.2f} (CPU-bound ceiling {m['nproc'] * 1000 / sum(cpu.values()):.0f} jobs/s)",
        f"  succeeded: latency {lat['succeeded']}/{lat['jobs']}, throughput {thr['succeeded']}/{thr['jobs']}; "
        f"POST errors {lat['n_errors'] + thr['n_errors']}",
    ]
    out += [f"  error: {error}" for error in (lat["errors"] + thr["errors"])[:5]]
    return "\n".join(out)


def user_make(username: str) -> str:
    """An admin user via the project's command; returns its API token."""
    from django.core.management import call_command

    out = StringIO()
    call_command("user_create", username, role="admin", stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def main() -> int:
    args = args_parse()
    os.environ.update(DATABASE_URL=args.database_url, CELERY_BROKER_URL=args.broker_url,
                      CELERY_RESULT_BACKEND=args.result_backend)  # fmt: skip
    for key, value in BENCH_ENV.items():
        os.environ.setdefault(key, value)
    sys.path.insert(0, str(ROOT))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds: services stop, rows go
    loadavg = os.getloadavg()[0]

    database_ensure(args.database_url)
    import celery
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from genai_site.celery import app
    from generation.models import Job

    call_command("migrate", interactive=False, verbosity=0)
    app.control.purge()
    run_id = secrets.token_hex(4)
    prefix = f"bench-admin-{run_id}-"
    owners = get_user_model().objects.filter(username__startswith=prefix)
    try:
        tokens = [user_make(f"{prefix}{i}") for i in range(max(args.users, 1))]
        with Services(args, f"bench-{run_id}@{socket.gethostname()}") as services:
            services.wait_ready()
            roots = {name: proc.pid for name, proc in services.procs.items()}
            base = baseline_run(app, args.latency_samples, args.jobs)
            lat = pipeline_latency(args.port, tokens[0], args.latency_samples)
            thr = pipeline_throughput(args.port, tokens, list(owners), args.jobs, args.clients, roots)
    finally:
        Job.objects.filter(owner__in=owners).delete()
        owners.delete()
    machine = {
        "nproc": len(os.sched_getaffinity(0)), "loadavg": loadavg, "python": platform.python_version(),
        "celery": celery.__version__, "database": url_safe(args.database_url), "broker": url_safe(args.broker_url),
        "results": url_safe(args.result_backend), "web": f"gunicorn gthread {args.web_workers}x{args.web_threads}",
        "worker": f"celery {args.worker_pool} x{args.worker_concurrency}",
    }  # fmt: skip
    client, db, bare = lat["client_ms"], lat["db_ms"], base["latency_ms"]
    ratios = {
        "latency_p50": client["p50"] / bare["p50"], "latency_p95": client["p95"] / bare["p95"],
        "throughput": thr["per_s"] / base["per_s"],
        "overhead_p50_ms": client["p50"] - bare["p50"], "overhead_p50_db_ms": db["p50"] - bare["p50"],
    }  # fmt: skip
    r = {"machine": machine, "baseline": base, "pipeline_latency": lat, "pipeline_throughput": thr, "ratios": ratios}
    r["targets_met"] = {"jobs_per_s_150": thr["per_s"] >= 150, "overhead_p50_20ms": ratios["overhead_p50_ms"] <= 20}
    print(json.dumps(r, indent=2) if args.json else report(r))
    ok = lat["succeeded"] == lat["jobs"] and thr["succeeded"] == thr["jobs"]
    return 0 if ok and not (lat["n_errors"] or thr["n_errors"]) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; services stopped, the run's jobs and users deleted")

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
import json
import secrets
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import (  # noqa: E402
    FINAL,
    Api,
    Services,
    bench_users,
    cpu_seconds,
    django_prepare,
    environment_prepare,
    machine_info,
    main_run,
    service_args_add,
    summary_ms,
)

ECHO = {"kind": "echo", "params": {"text": "hi"}}
WARMUP = 20


def args_parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=600, help="jobs (and pings) in the throughput runs")
    p.add_argument("--clients", type=int, default=16, help="client threads POSTing jobs")
    p.add_argument("--users", type=int, default=1, help="spread the client threads over this many users")
    p.add_argument("--latency-samples", type=int, default=200, help="sequential round trips per latency run")
    service_args_add(p, worker_concurrency=8)
    return p.parse_args()


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


def main() -> int:
    args = args_parse()
    loadavg = environment_prepare(args)
    app = django_prepare(args)
    run_id = secrets.token_hex(4)
    with bench_users(f"bench-admin-{run_id}-", args.users) as (tokens, owners), Services(args.port) as services:
        hostname = f"bench-{run_id}@{socket.gethostname()}"
        services.web_start(workers=args.web_workers, threads=args.web_threads)
        services.worker_start(hostname=hostname, pool=args.worker_pool, concurrency=args.worker_concurrency)
        services.wait_ready(hostname)
        roots = {name: proc.pid for name, proc in services.procs.items()}
        base = baseline_run(app, args.latency_samples, args.jobs)
        lat = pipeline_latency(args.port, tokens[0], args.latency_samples)
        thr = pipeline_throughput(args.port, tokens, list(owners), args.jobs, args.clients, roots)
    machine = machine_info(args, loadavg)
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
    main_run(main)

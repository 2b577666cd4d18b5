"""Benchmark of open SSE streams: N clients each hold ``GET /api/jobs/{id}/stream`` open against
the web server, for the ASGI server the service ships (gunicorn + uvicorn workers) and, as the
baseline in the same run, the WSGI server it replaced (gunicorn gthread 2x8).

Target (issue 19): 200 concurrent SSE clients held open with web RSS <= 1 GB and no error.

Setup: create the PostgreSQL database if missing, migrate, one agent user with a token, and one
queued job per client (no worker runs: the jobs stay queued, so every stream stays open, sending
keep-alives every --keepalive seconds). For each server in turn:
  open     every client connects at once and sends its request; "opened" = status 200 and the
           stream's first line (``retry: 1000``) within --open-timeout seconds.
  hold     --hold seconds; each client must get at least one keep-alive comment. The web's RSS
           (gunicorn master and workers, VmRSS summed) and thread count are sampled every 0.5 s.
  finish   the jobs are marked succeeded in the database (as a worker would); each client must
           get its ``result`` event (the stream's normal end) within --finish-timeout seconds.
  errors   clients that failed any of the three (connection error, not 200, no first line, no
           keep-alive, no result).
The servers are stopped between runs and at the end (also on errors or Ctrl-C); the run's jobs
and user are deleted.

Run (PostgreSQL on 127.0.0.1 by default; DATABASE_URL or --database-url override):
    .venv/bin/python bench/streams.py [--clients 200] [--hold 30] [--keepalive 5] [--no-baseline] [--json]
Exit status 1 when the ASGI server had any error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (  # noqa: E402
    Services,
    bench_users,
    django_prepare,
    environment_prepare,
    machine_info,
    main_run,
    memory_bytes,
    service_args_add,
)

SERVERS = {"asgi": "gunicorn + uvicorn workers (ASGI)", "wsgi": "gunicorn gthread (WSGI, the baseline)"}


def _web_pids(master: int) -> list[int]:
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return []
    return [master, *(int(pid) for pid in children)]


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


class Sampler(threading.Thread):
    """The web's summed RSS and thread count every 0.5 s, until stopped."""

    def __init__(self, master: int):
        super().__init__(daemon=True)
        self.master, self.rss, self.threads = master, [], []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            pids = _web_pids(self.master)
            self.rss.append(sum(memory_bytes(pid).get("rss", 0) for pid in pids))
            self.threads.append(sum(_threads(pid) for pid in pids))


class Client:
    def __init__(self, index: int):
        self.index = index
        self.opened = self.kept_alive = self.finished = False
        self.error: str | None = None


async def _stream(client: Client, port: int, path: str, token: str, opened: asyncio.Event, *,
                  open_timeout: float, total_timeout: float) -> None:  # fmt: skip
    """One SSE client: open, read until the result event (or the run ends it)."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), open_timeout)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Token {token}\r\n"
                     "Accept: text/event-stream\r\n\r\n".encode())  # fmt: skip
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), open_timeout)
        if b" 200 " not in status:
            client.error = f"status {status.decode(errors='replace').strip()!r}"
            return
        while (await asyncio.wait_for(reader.readline(), open_timeout)) not in (b"\r\n", b"\n", b""):
            pass  # headers
        async with asyncio.timeout(total_timeout):
            while line := await reader.readline():
                # The body is chunked (HTTP/1.1): size lines and payload lines both come through
                # readline; only the payload's own lines are looked at.
                if line.startswith(b"retry:"):
                    client.opened = True
                    opened.set()
                elif line.startswith(b": keep-alive"):
                    client.kept_alive = True
                elif line.startswith(b"event: result"):
                    client.finished = True
                    return
        client.error = "stream ended without a result"
    except TimeoutError:
        client.error = "timed out" if client.opened else f"not opened within {open_timeout} s"
    except OSError as exc:
        client.error = f"{type(exc).__name__}: {exc}"
    finally:
        if writer is not None:
            writer.close()


def _jobs_finish(job_ids: list) -> None:
    from django.utils import timezone

    from generation.models import Job, JobStatus

    Job.objects.filter(pk__in=job_ids).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())


def run_server(args, server: str, token: str, job_ids: list) -> dict:
    with Services(args.port) as services:
        services.web_start(workers=args.web_workers, threads=args.web_threads, server=server)
        services.wait_web()
        master = services.procs["web"].pid
        idle_rss = sum(memory_bytes(pid).get("rss", 0) for pid in _web_pids(master))
        idle_threads = sum(_threads(pid) for pid in _web_pids(master))
        sampler = Sampler(master)
        sampler.start()
        clients = [Client(i) for i in range(len(job_ids))]

        async def main() -> float:
            total = args.open_timeout + args.hold + args.finish_timeout
            tasks = [asyncio.create_task(_stream(c, args.port, f"/api/jobs/{job_id}/stream", token, asyncio.Event(),
                                                 open_timeout=args.open_timeout, total_timeout=total))
                     for c, job_id in zip(clients, job_ids, strict=True)]  # fmt: skip
            started = time.monotonic()
            while time.monotonic() - started < args.open_timeout and not all(c.opened or c.error for c in clients):
                await asyncio.sleep(0.1)
            open_seconds = time.monotonic() - started
            await asyncio.sleep(args.hold)
            await asyncio.to_thread(_jobs_finish, job_ids)
            await asyncio.gather(*tasks)
            return open_seconds

        open_seconds = asyncio.run(main())
        sampler.done.set()
        sampler.join()
        for client in clients:
            if client.error is None and not (client.opened and client.kept_alive and client.finished):
                client.error = "no keep-alive while held" if not client.kept_alive else "no result"
        errors = [c for c in clients if c.error]
        reasons: dict[str, int] = {}
        for c in errors:
            reasons[c.error] = reasons.get(c.error, 0) + 1
        return {
            "server": SERVERS[server],
            "clients": len(clients),
            "opened": sum(c.opened for c in clients),
            "all_opened_seconds": round(open_seconds, 2),
            "errors": len(errors),
            "error_reasons": reasons,
            "web_rss_idle_mb": round(idle_rss / 2**20, 1),
            "web_rss_peak_mb": round(max(sampler.rss, default=0) / 2**20, 1),
            "web_threads_idle": idle_threads,
            "web_threads_peak": max(sampler.threads, default=0),
        }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    service_args_add(p)
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--hold", type=float, default=30.0, help="seconds the streams are held open")
    p.add_argument("--keepalive", type=float, default=5.0, help="GENAI_STREAM_KEEPALIVE_SECONDS of the servers")
    p.add_argument("--open-timeout", type=float, default=20.0)
    p.add_argument("--finish-timeout", type=float, default=30.0)
    p.add_argument("--no-baseline", action="store_true", help="skip the WSGI server")
    args = p.parse_args()
    loadavg = environment_prepare(
        args, GENAI_STREAM_KEEPALIVE_SECONDS=str(args.keepalive), GENAI_MAX_OPEN_STREAMS=str(max(500, args.clients))
    )
    django_prepare(args)
    from generation.models import Job

    results = []
    with bench_users("bench-streams-", 1, role="agent") as (tokens, owners):
        owner = owners.get()
        for server in ("asgi",) if args.no_baseline else ("wsgi", "asgi"):
            job_ids = [Job.objects.create(owner=owner, kind="echo", queue="cpu", params={"text": "hi"}).pk
                       for _ in range(args.clients)]  # fmt: skip
            results.append(run_server(args, server, tokens[0], job_ids))
    info = machine_info(args, loadavg) | {"web": f"{args.web_workers} workers", "worker": "none"}
    if args.json:
        print(json.dumps({"machine": info, "results": results}, indent=2))
    else:
        print(f"machine: {json.dumps(info)}")
        print(f"{args.clients} SSE clients held {args.hold:.0f} s (keep-alive every {args.keepalive:.0f} s)\n")
        keys = ["opened", "all_opened_seconds", "errors", "web_rss_idle_mb", "web_rss_peak_mb", "web_threads_idle",
                "web_threads_peak"]  # fmt: skip
        print(f"{'':22}" + "".join(f"{r['server'][:38]:>40}" for r in results))
        for key in keys:
            print(f"{key:22}" + "".join(f"{r[key]!s:>40}" for r in results))
        for r in results:
            if r["error_reasons"]:
                print(f"errors of {r['server']}: {r['error_reasons']}")
        if len(results) == 2:
            base, asgi = results
            print(f"\nASGI / WSGI: peak RSS {asgi['web_rss_peak_mb'] / base['web_rss_peak_mb']:.2f}x, "
                  f"streams opened {asgi['opened']} vs {base['opened']}, errors {asgi['errors']} vs {base['errors']}")
        asgi = results[-1]
        met = asgi["errors"] == 0 and asgi["web_rss_peak_mb"] <= 1024
        print(f"aim (ASGI: no error, web RSS <= 1024 MB): {'met' if met else 'NOT met'}")
    return 1 if results[-1]["errors"] else 0


if __name__ == "__main__":
    main_run(main)

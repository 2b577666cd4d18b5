"""Streams served as the service ships them: gunicorn with a uvicorn worker (ASGI) on the test
database. Open streams hold no thread, a client that leaves a /v1 stream cancels its job, and a
web process serves at most GENAI_MAX_OPEN_STREAMS streams."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from generation.models import Job, JobEvent, JobStatus
from tests.e2e.conftest import _database_url, wait_for
from tests.factories import CandidateFactory, JobFactory, TokenFactory, UserFactory

ROOT = Path(__file__).resolve().parents[3]
CHAT = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8, "stream": True}


class Server:
    def __init__(self, process: subprocess.Popen, port: int, log: Path):
        self.process, self.port, self.log = process, port, log

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)

    def worker_pid(self) -> int:
        """The gunicorn worker process (the one serving the requests)."""
        (worker,) = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return int(worker)

    def worker_threads(self) -> int:
        return len(os.listdir(f"/proc/{self.worker_pid()}/task"))

    def database_connections(self) -> int:
        """The worker's open TCP connections to the database's port."""
        pid = self.worker_pid()
        sockets = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:  # closed meanwhile
                continue
            if target.startswith("socket:["):
                sockets.add(target[8:-1])
        port = f"{int(connection.settings_dict['PORT'] or 5432):04X}"
        count = 0
        for table in ("tcp", "tcp6"):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()  # local, remote (address:port in hex), state, ..., inode
                if fields[2].endswith(f":{port}") and fields[3] == "01" and fields[9] in sockets:  # established
                    count += 1
        return count


@pytest.fixture
def asgi_server(transactional_db, tmp_path):
    started: list[Server] = []

    def start(**env_overrides: str) -> Server:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "genai_site.settings.test",
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "GENAI_VAR_DIR": str(settings.VAR_DIR),
            "GENAI_STREAM_POLL_SECONDS": "0.05",
            **env_overrides,
        }
        log = tmp_path / f"web-{port}.log"
        command = [sys.executable, "-m", "gunicorn", "genai_site.asgi:application", "--bind", f"127.0.0.1:{port}",
                   "--worker-class", "uvicorn_worker.UvicornWorker", "--workers", "1", "--timeout", "120"]
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        server = Server(process, port, log)
        started.append(server)

        def answers() -> bool:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                connection = server.connect()
                connection.request("GET", "/healthz")
                return connection.getresponse().status == 200
            except OSError:
                return False

        wait_for(answers, timeout=60, message=lambda: log.read_text()[-3000:])
        return server

    yield start
    for server in started:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()


def _headers(user) -> dict:
    return {"Authorization": f"Bearer {TokenFactory(user=user).key}", "Content-Type": "application/json"}


def _open_chat_stream(server: Server, headers: dict) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    connection = server.connect()
    connection.request("POST", "/v1/chat/completions", body=json.dumps(CHAT), headers=headers)
    return connection, connection.getresponse()


def test_a_client_that_leaves_a_v1_stream_cancels_its_job(asgi_server):
    server = asgi_server()
    user = UserFactory(role="agent")
    connection, response = _open_chat_stream(server, _headers(user))
    assert response.status == 200 and response.getheader("Content-Type") == "text/event-stream"
    job_id = response.getheader("X-Job-Id")
    opening = json.loads(response.readline().decode().removeprefix("data: "))  # the role chunk, before any text
    assert opening["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert Job.objects.get(pk=job_id).status == JobStatus.QUEUED  # no worker: it would wait forever

    connection.sock.shutdown(socket.SHUT_RDWR)
    connection.close()
    wait_for(lambda: Job.objects.get(pk=job_id).status == JobStatus.CANCELLED, timeout=20,
             message=lambda: f"job still {Job.objects.get(pk=job_id).status}\n{server.log.read_text()[-3000:]}")
    assert "Cancelled by" in Job.objects.get(pk=job_id).error_message


def test_a_v1_stream_read_to_its_end_keeps_its_job_and_adds_up_to_the_result(asgi_server):
    server = asgi_server()
    user = UserFactory(role="agent")
    connection, response = _open_chat_stream(server, _headers(user))
    job = Job.objects.get(pk=response.getheader("X-Job-Id"))
    # A worker's part, written as a worker writes it: token events, then the result.
    JobEvent.objects.create(job=job, attempt=1, deltas={"0": "Hel"})
    JobEvent.objects.create(job=job, attempt=1, deltas={"0": "lo!"})
    CandidateFactory(job=job, index=0, text="Hello!", finish_reason="stop")
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    body = response.read().decode()
    connection.close()
    chunks = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {")]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Hello!"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and body.endswith("data: [DONE]\n\n")
    time.sleep(0.5)  # the response's close (where an abandoned job would be cancelled) has run
    assert Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED


def test_open_streams_hold_no_thread_each_and_beyond_the_limit_are_429(asgi_server):
    server = asgi_server(GENAI_MAX_OPEN_STREAMS="30")
    user = UserFactory(role="agent")
    headers = _headers(user)
    api_headers = {"Authorization": headers["Authorization"].replace("Bearer", "Token")}  # /api takes Token
    job = JobFactory(owner=user)  # queued: its stream stays open
    idle = server.worker_threads()
    streams = []
    for _ in range(30):
        connection = server.connect()
        connection.request("GET", f"/api/jobs/{job.pk}/stream", headers=api_headers)
        response = connection.getresponse()
        assert response.status == 200
        assert response.readline() == b"retry: 1000\n"
        streams.append(connection)
    assert server.worker_threads() - idle < 10, "open streams hold threads"  # 30 streams: a thread each would be 30

    over_stream = server.connect()
    over_stream.request("GET", f"/api/jobs/{job.pk}/stream", headers=api_headers)
    refused = over_stream.getresponse()
    assert refused.status == 429 and refused.getheader("Retry-After")
    assert "GENAI_MAX_OPEN_STREAMS" in refused.read().decode()
    jobs_before = Job.objects.count()
    over_v1, refused_v1 = _open_chat_stream(server, headers)
    assert refused_v1.status == 429
    error = json.loads(refused_v1.read())["error"]
    assert error["type"] == "rate_limit_error" and "open streams" in error["message"]
    assert Job.objects.count() == jobs_before  # no job for a refused stream

    for connection in streams[:5]:
        connection.close()
    # The closed streams' slots come back.
    def admitted() -> bool:
        connection = server.connect()
        connection.request("GET", f"/api/jobs/{job.pk}/stream", headers=api_headers)
        status = connection.getresponse().status
        connection.close()
        return status == 200

    wait_for(admitted, timeout=20, message="slots of closed streams were not released")
    for connection in streams[5:]:
        connection.close()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the connection pool is PostgreSQL's")
def test_streams_opened_at_once_share_the_pool_and_hold_no_connection_while_open(asgi_server):
    # Issue 19: 200 streams opened at once were 101 503s, each request's thread holding a
    # connection of its own past PostgreSQL's max_connections. 40 against a pool of 3: every one
    # opens, and the server never has more than the pool's connections, while opening or held.
    server = asgi_server(GENAI_DB_POOL_MAX="3", GENAI_DB_POOL_MIN="1", GENAI_STREAM_KEEPALIVE_SECONDS="1")
    user = UserFactory(role="agent")
    headers = {"Authorization": f"Token {TokenFactory(user=user).key}"}
    jobs = [JobFactory(owner=user) for _ in range(40)]  # queued, no worker: the streams stay open
    start = threading.Barrier(len(jobs))
    outcomes: dict[int, str] = {}
    streams: list[http.client.HTTPConnection] = []

    def open_stream(index: int, job) -> None:
        stream = server.connect()
        streams.append(stream)
        start.wait()
        try:
            stream.request("GET", f"/api/jobs/{job.pk}/stream", headers=headers)
            response = stream.getresponse()
            outcomes[index] = f"{response.status} {response.readline()!r}"
        except OSError as exc:
            outcomes[index] = repr(exc)

    peak, sampling = [0], threading.Event()

    def sample() -> None:
        while not sampling.wait(0.05):
            peak[0] = max(peak[0], server.database_connections())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    openers = [threading.Thread(target=open_stream, args=(i, job)) for i, job in enumerate(jobs)]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join(timeout=60)
    time.sleep(2)  # held: keep-alives go out, the hub polls
    sampling.set()
    sampler.join()
    held = server.database_connections()
    try:
        assert sorted(set(outcomes.values())) == ["200 b'retry: 1000\\n'"], server.log.read_text()[-3000:]
        assert len(outcomes) == len(jobs)
        assert peak[0] <= 3 and held <= 3, f"the server had {peak[0]} connections (pool of 3), {held} while held"
    finally:
        for stream in streams:
            stream.close()

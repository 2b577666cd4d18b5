"""The job pipeline through faults: a worker killed mid-run, the broker and the database
restarted with jobs in flight. Every job must succeed once, without restarting the worker, and the
API must answer JSON (503 while the database is away), never a 500."""

import time

import pytest
import requests

from tests.faults.conftest import FIGURES, wait_for

pytestmark = [pytest.mark.faults]

# Endpoints a client may call at any time: each must answer 2xx/4xx, or 503 with a JSON error,
# during an outage (paths with {job} get the id of a real job).
API_CALLS = [
    ("get", "/api/jobs/", None),
    ("get", "/api/jobs/{job}", None),
    ("post", "/api/jobs/", {"kind": "echo", "params": {"text": "during the outage"}}),
    ("get", "/api/kinds/", None),
    ("get", "/v1/models", None),
    ("post", "/v1/chat/completions", {"model": "base", "messages": [{"role": "user", "content": "hi"}],
                                      "max_tokens": 4}),
    ("post", "/api/auth/token/", {"username": "fault-admin", "password": "wrong-password"}),
    ("get", "/metrics", None),
    ("get", "/readyz", None),
]


def api_during_outage(site, job_id: str, *, database_down: bool) -> dict[str, int]:
    """Call every endpoint; return {path: status}. Asserts the JSON 503 contract on the way."""
    session = site.http("admin")
    seen = {}
    for method, path, body in API_CALLS:
        if path == "/v1/chat/completions" and not database_down:
            # Accepted and waiting: the job runs once the broker is back (the sweeper re-sends it).
            continue
        url = site.web_url + path.format(job=job_id)
        started = time.monotonic()
        response = getattr(session, method)(url, json=body, timeout=30)
        seen[f"{method.upper()} {path}"] = (response.status_code, round(time.monotonic() - started, 2))
        assert response.status_code < 500 or response.status_code == 503, (path, response.status_code,
                                                                           response.text[:500])
        if path == "/metrics" and response.status_code == 200:
            continue
        assert response.headers["Content-Type"].startswith("application/json"), (path, response.text[:300])
        if response.status_code == 503 and path != "/readyz":
            error = response.json()["error"]
            assert error["code"] == "unavailable", (path, response.text)
            assert int(response.headers["Retry-After"]) > 0
    if database_down:
        # nothing that needs the database can have succeeded
        assert seen["GET /api/jobs/"][0] == 503 and seen["POST /api/jobs/"][0] == 503, seen
    assert requests.get(site.web_url + "/healthz", timeout=5).status_code == 200
    return seen


def test_worker_killed_mid_run_then_a_new_worker_loses_and_repeats_nothing(fault_site):
    site = fault_site
    doomed = site.worker_start(concurrency=4)
    ids = site.jobs_post(12, text="kill", delay=2.0)
    wait_for(lambda: site.postgres.query("SELECT count(*) FROM generation_job WHERE status = 'running' "
                                         "AND id::text = ANY(%s)", (ids,))[0][0] >= 3,
             timeout=60, message=doomed.log_tail)
    doomed.kill()
    rescuer = site.worker_start(concurrency=4)
    site.jobs_wait(ids, timeout=120)
    figures = FIGURES["worker SIGKILL mid-run, new worker"] = site.jobs_figures(ids)
    assert figures["succeeded"] == figures["submitted"] and figures["duplicated"] == 0, figures
    rescuer.stop()


def test_broker_restart_with_jobs_in_flight(fault_site):
    site = fault_site
    worker = site.worker_start(concurrency=4)
    pid = worker.process.pid
    ids = site.jobs_post(20, text="broker", delay=1.0)
    wait_for(lambda: site.postgres.query("SELECT count(*) FROM generation_job WHERE status <> 'queued' "
                                         "AND id::text = ANY(%s)", (ids,))[0][0] >= 4,
             timeout=60, message=worker.log_tail)
    site.redis.stop()  # the broker and the cache: every message in them is gone
    seen = api_during_outage(site, ids[0], database_down=False)
    ids += site.jobs_post(3, text="broker-outage")  # accepted; sent by the sweeper once the broker is back
    time.sleep(3)
    site.redis.start()
    ids += site.jobs_post(5, text="broker-after")
    site.jobs_wait(ids, timeout=120)
    figures = FIGURES["broker (Redis) killed 3 s, no persistence"] = {**site.jobs_figures(ids), "api": seen}
    assert figures["succeeded"] == figures["submitted"] and figures["duplicated"] == 0, figures
    assert worker.alive() and worker.process.pid == pid, "the worker was restarted"
    worker.stop()


def test_database_restart_with_jobs_in_flight(fault_site):
    site = fault_site
    worker = site.worker_start(concurrency=4)
    pid = worker.process.pid
    ids = site.jobs_post(40, text="database", delay=0.5)
    wait_for(lambda: site.postgres.query("SELECT count(*) FROM generation_job WHERE status = 'succeeded' "
                                         "AND id::text = ANY(%s)", (ids,))[0][0] >= 4,
             timeout=60, message=worker.log_tail)
    site.postgres.stop()
    seen = api_during_outage(site, ids[0], database_down=True)
    time.sleep(5)
    site.postgres.start()
    site.jobs_wait(ids, timeout=120)
    figures = FIGURES["database stopped ~6 s, 40 jobs in flight"] = {**site.jobs_figures(ids), "api": seen}
    assert figures["succeeded"] == figures["submitted"] and figures["duplicated"] == 0, figures
    assert worker.alive() and worker.process.pid == pid, "the worker was restarted"
    # The recovered worker takes new jobs straight away, and /readyz names it again.
    more = site.jobs_post(5, text="database-after")
    site.jobs_wait(more, timeout=30)
    assert site.jobs_figures(more)["succeeded"] == 5
    wait_for(lambda: requests.get(site.web_url + "/readyz", timeout=5).status_code == 200, timeout=20,
             message="/readyz not ready after the database came back")
    worker.stop()

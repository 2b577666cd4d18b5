import json

import pytest
from django.utils import timezone

from generation.models import Job, JobStatus
from tests.factories import JobFactory
from workers.runners import job_run

pytestmark = pytest.mark.django_db

GENERATE = {"kind": "generate", "params": {"prompt": "Hello", "max_new_tokens": 4}}


def _sse_events(response) -> list[tuple[str, dict]]:
    body = b"".join(response.streaming_content).decode()
    events = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_create_returns_201_with_the_job_and_its_links(api_for):
    client = api_for("agent")
    response = client.post("/api/jobs/", GENERATE, format="json")
    assert response.status_code == 201, response.data
    body = response.json()
    assert body["status"] == "queued" and body["kind"] == "generate" and body["queue"] == "gpu"
    assert body["params"]["temperature"] == 0.7  # defaults are filled in and stored
    assert response["Location"] == f"/api/jobs/{body['id']}"
    assert body["links"]["stream"] == f"/api/jobs/{body['id']}/stream"


def test_idempotency_key_replays_with_200_and_conflicts_with_409(api_for):
    client = api_for("agent")
    first = client.post("/api/jobs/", GENERATE, format="json", HTTP_IDEMPOTENCY_KEY="abc")
    again = client.post("/api/jobs/", GENERATE, format="json", HTTP_IDEMPOTENCY_KEY="abc")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = {**GENERATE, "params": {"prompt": "Bye"}}
    conflict = client.post("/api/jobs/", other, format="json", HTTP_IDEMPOTENCY_KEY="abc")
    assert conflict.status_code == 409
    assert "Idempotency-Key" in conflict.json()["errors"]
    assert Job.objects.count() == 1


def test_get_list_filters_and_paginates_own_jobs(api_for):
    client = api_for("agent")
    JobFactory.create_batch(21, owner=client.user)
    JobFactory(owner=client.user, kind="generate", queue="gpu", status=JobStatus.FAILED, finished_at=timezone.now())
    JobFactory()  # another user's: agents never see it
    assert client.get("/api/jobs/?kind=echo").json()["count"] == 21
    assert client.get("/api/jobs/?status=failed").json()["count"] == 1
    assert client.get("/api/jobs/?created_after=2000-01-01T00:00:00Z").json()["count"] == 22
    assert client.get("/api/jobs/?created_before=2000-01-01T00:00:00Z").json()["count"] == 0
    page = client.get("/api/jobs/?page=2").json()
    assert page["count"] == 22 and len(page["results"]) == 2 and page["previous"] is not None


@pytest.mark.parametrize(
    "query",
    ["status=done&created_after=yesterday&created_before=0204-04-25T02:23:33-19:58"],
)
def test_bad_filter_values_name_the_field(api_for, query):
    response = api_for("agent").get(f"/api/jobs/?{query}")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"status", "created_after", "created_before"}


def test_detail_and_unknown_or_foreign_ids_are_404(api_for):
    client = api_for("agent")
    mine = JobFactory(owner=client.user)
    assert client.get(f"/api/jobs/{mine.id}").json()["id"] == str(mine.id)
    for job_id in [JobFactory().id, "not-a-uuid", "00000000-0000-0000-0000-000000000000"]:
        response = client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_cancel_then_cancel_again_is_409(api_for):
    client = api_for("agent")
    job = JobFactory(owner=client.user)
    response = client.post(f"/api/jobs/{job.id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = client.post(f"/api/jobs/{job.id}/cancel")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]


@pytest.mark.parametrize(
    ("payload", "field_path"),
    [
        ({"kind": "poem", "params": {}}, ["kind"]),
        ({"params": {"prompt": "x"}}, ["kind"]),
        ({"kind": "generate", "params": "text"}, ["params"]),
        ({"kind": "generate", "params": {"prompt": "x", "temperature": "hot"}}, ["params", "temperature"]),
        ({"kind": "generate", "params": {"prompt": "x", "max_new_tokens": 100000}}, ["params", "max_new_tokens"]),
        ({"kind": "generate", "params": {"prompt": "x", "n": 0}}, ["params", "n"]),
        ({"kind": "generate", "params": {"prompt": "x", "stop": ["a"] * 50}}, ["params", "stop"]),
        ({"kind": "generate", "params": {"prompt": "x", "messages": [{"role": "user", "content": "y"}]}}, ["params", "prompt"]),
        ({"kind": "generate", "params": {"messages": [{"role": "robot", "content": "y"}]}}, ["params", "messages"]),
        ({"kind": "generate", "params": {"prompt": "x"}, "priority": 42}, ["priority"]),
    ],
)
def test_bad_input_is_400_naming_the_field(api_for, payload, field_path):
    response = api_for("agent").post("/api/jobs/", payload, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    for key in field_path:
        assert key in errors, errors
        errors = errors[key]
    assert Job.objects.count() == 0


def test_limits_are_named_in_the_message(api_for, settings):
    response = api_for("agent").post(
        "/api/jobs/", {"kind": "generate", "params": {"prompt": "x", "max_new_tokens": 100000}}, format="json"
    )
    assert str(settings.GENAI_MAX_NEW_TOKENS) in response.json()["errors"]["params"]["max_new_tokens"][0]


def test_prompt_over_the_token_limit_is_400(api_for, settings):
    settings.GENAI_MAX_PROMPT_TOKENS = 10
    response = api_for("agent").post(
        "/api/jobs/", {"kind": "generate", "params": {"prompt": "word " * 50}}, format="json"
    )
    assert response.status_code == 400
    message = response.json()["errors"]["params"]["prompt"][0]
    assert "limit is 10" in message and "GENAI_MAX_PROMPT_TOKENS" in message


def test_malformed_json_wrong_content_type_and_oversized_body(api_for, settings):
    client = api_for("agent")
    malformed = client.post("/api/jobs/", "{not json", content_type="application/json")
    assert malformed.status_code == 400 and "JSON" in malformed.json()["detail"]
    form = client.post("/api/jobs/", "kind=generate", content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415
    settings.GENAI_MAX_REQUEST_BYTES = 1000
    big = client.post("/api/jobs/", {"kind": "generate", "params": {"prompt": "x" * 5000}}, format="json")
    assert big.status_code == 413 and "1000 bytes" in big.json()["detail"]
    assert Job.objects.count() == 0


def test_full_queue_is_429_with_retry_after(api_for, settings):
    settings.GENAI_MAX_QUEUED_JOBS_PER_USER = 1
    settings.GENAI_ADMISSION_RETRY_AFTER_SECONDS = 9
    client = api_for("agent")
    assert client.post("/api/jobs/", GENERATE, format="json").status_code == 201
    response = client.post("/api/jobs/", GENERATE, format="json")
    assert response.status_code == 429
    assert response["Retry-After"] == "9"
    assert response.json()["code"] == "too_many_queued_jobs"


def test_stream_replays_tokens_then_the_result(api_for):
    client = api_for("agent")
    created = client.post(
        "/api/jobs/", {"kind": "generate", "params": {"prompt": "Once upon", "max_new_tokens": 12, "n": 2, "seed": 3}},
        format="json",
    ).json()
    assert job_run(job_id=created["id"], worker_id="test-worker") == "succeeded"

    events = _sse_events(client.get(f"/api/jobs/{created['id']}/stream", HTTP_ACCEPT="text/event-stream"))

    kinds = [name for name, _ in events]
    assert kinds[-1] == "result" and set(kinds[:-1]) == {"token"}
    result = events[-1][1]
    assert result["status"] == "succeeded"
    for candidate in result["candidates"]:
        streamed = "".join(d["text"] for name, d in events if name == "token" and d["candidate"] == candidate["index"])
        assert streamed == candidate["text"]
        assert candidate["completion_tokens"] <= 12


def test_stream_of_a_failed_job_ends_with_its_error(api_for):
    client = api_for("agent")
    job = JobFactory(owner=client.user, status=JobStatus.FAILED, error_code="worker_lost", error_message="gone",
                     finished_at=timezone.now())
    events = _sse_events(client.get(f"/api/jobs/{job.id}/stream"))
    assert [name for name, _ in events] == ["result"]
    assert events[0][1]["error"] == {"code": "worker_lost", "message": "gone"}


def test_kinds_lists_parameters_and_what_the_caller_may_create(api_for):
    kinds = {k["name"]: k for k in api_for("agent").get("/api/kinds/").json()}
    assert kinds["generate"]["allowed"] and not kinds["echo"]["allowed"]
    assert kinds["generate"]["params"]["max_new_tokens"]["max_value"] > 0


def test_token_issue_and_revoke(make_user, client):
    user = make_user("agent")
    response = client.post("/api/auth/token/", {"username": user.username, "password": "pw-secret-123"},
                           content_type="application/json")
    assert response.status_code == 200
    token = response.json()["token"]
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    assert client.get("/api/auth/me/", **auth).json()["roles"] == ["agent"]
    assert client.delete("/api/auth/token/", **auth).status_code == 204
    assert client.get("/api/auth/me/", **auth).status_code == 401
    wrong = client.post("/api/auth/token/", {"username": user.username, "password": "nope"},
                        content_type="application/json")
    assert wrong.status_code == 400 and "password" in wrong.json()["errors"]


def test_unknown_model_is_400_naming_the_available_ones(api_for):
    response = api_for("agent").post(
        "/api/jobs/", {"kind": "generate", "params": {"prompt": "x", "model": "gpt-9"}}, format="json"
    )
    assert response.status_code == 400
    assert "available" in response.json()["errors"]["params"]["model"][0]


def test_stream_of_a_deleted_job_ends_with_an_error(api_for, settings):
    client = api_for("agent")
    job = JobFactory(owner=client.user)
    response = client.get(f"/api/jobs/{job.id}/stream")
    Job.objects.filter(pk=job.pk).delete()
    events = _sse_events(response)
    assert events[-1] == ("error", {"code": "not_found", "detail": "The job was deleted."})


def test_a_flagged_candidate_is_withheld_from_its_owner_but_shown_to_reviewers(api_for):
    from generation import roles
    from tests.factories import CandidateFactory

    owner_api = api_for(roles.AGENT)
    job = JobFactory(owner=owner_api.user, status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    safety = {"flagged": True, "reasons": [{"kind": "blocked_term", "detail": "x"}]}
    CandidateFactory(job=job, index=0, text="something unsafe", metadata={"safety": safety})
    CandidateFactory(job=job, index=1, text="fine", metadata={"safety": {"flagged": False}})

    mine = owner_api.get(f"/api/jobs/{job.pk}").json()["candidates"]
    assert [(c["text"], c["withheld"]) for c in mine] == [("", True), ("fine", False)]
    listed = owner_api.get("/api/jobs/").json()["results"][0]["candidates"]
    assert listed[0]["text"] == "" and listed[0]["withheld"] is True
    stream = b"".join(owner_api.get(f"/api/jobs/{job.pk}/stream").streaming_content).decode()
    assert "something unsafe" not in stream

    theirs = api_for(roles.REVIEWER).get(f"/api/jobs/{job.pk}").json()["candidates"]
    assert theirs[0]["text"] == "something unsafe" and theirs[0]["withheld"] is False


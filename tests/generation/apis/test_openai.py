"""The OpenAI-compatible endpoints: shapes, parameters, errors, auth. The views wait on a worker,
so the tests that need an answer run each job in-process as soon as the view creates it
(``inline_worker``); tests/e2e/test_openai_client.py drives a live server with OpenAI's client."""

import json

import pytest
from django.core.cache import cache

from generation.apis.jobs import JobCreateThrottle
from generation.kinds.generate import base_model_name
from generation.models import Job, JobEvent, JobStatus
from generation.services.jobs import job_cancel, job_create, job_fail
from tests.factories import JobFactory, TokenFactory
from workers.runners import job_run

pytestmark = pytest.mark.django_db

CHAT = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6, "seed": 1}


class InlineWorker:
    """Stands in for the Celery worker: ``finish(job)`` runs right after the view creates a job."""

    def __init__(self):
        self.finish = lambda job: job_run(job_id=str(job.id), worker_id="inline")
        self.jobs: list[Job] = []


@pytest.fixture
def inline_worker(monkeypatch) -> InlineWorker:
    worker = InlineWorker()

    def create(**kwargs):
        job, created = job_create(**kwargs)
        if created:
            worker.jobs.append(job)
            worker.finish(job)
        return job, created

    monkeypatch.setattr("generation.apis.openai.job_create", create)
    return worker


def _chunks(response) -> list:
    """The `data:` payloads of an SSE body, `[DONE]` as a string."""
    body = b"".join(response.streaming_content).decode()
    assert body.endswith("data: [DONE]\n\n"), body[-200:]
    return [json.loads(line[6:]) if line != "data: [DONE]" else "[DONE]"
            for line in body.split("\n") if line.startswith("data: ")]


def _error(response, status: int, error_type: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == error_type
    return error


# --- models ---------------------------------------------------------------------------------


def test_models_list_and_retrieve(api_for):
    from generation.kinds.generate import model_names

    client = api_for("agent")
    listing = client.get("/v1/models").json()
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == model_names()
    model = listing["data"][0]
    assert model["object"] == "model" and isinstance(model["created"], int) and model["owned_by"]
    assert client.get(f"/v1/models/{model['id']}").json() == model
    error = _error(client.get("/v1/models/gpt-9"), 404, "invalid_request_error")
    assert error["code"] == "model_not_found" and "gpt-9" in error["message"]


# --- answers --------------------------------------------------------------------------------


def test_chat_completion_maps_options_onto_one_generate_job(api_for, inline_worker):
    client = api_for("agent")
    response = client.post("/v1/chat/completions", {
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]},
        ],
        "max_tokens": 5, "temperature": 0, "stop": "\n\n", "seed": 7, "n": 2, "top_k": 10,
        "user": "u-1", "presence_penalty": 0, "frequency_penalty": 0.0, "logprobs": False,
    }, format="json")
    assert response.status_code == 200, response.content
    (job,) = inline_worker.jobs
    job.refresh_from_db()
    assert response["X-Job-Id"] == str(job.id) and job.kind == "generate" and job.owner == client.user
    assert job.params["messages"] == [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "Hello\nthere"}]
    assert {k: job.params[k] for k in ("max_new_tokens", "temperature", "stop", "seed", "n", "top_k")} == {
        "max_new_tokens": 5, "temperature": 0.0, "stop": ["\n\n"], "seed": 7, "n": 2, "top_k": 10}
    assert job.params["top_p"] == 0.95  # absent options keep the service's defaults

    body = response.json()
    candidates = list(job.candidates.all())
    assert body["id"] == f"chatcmpl-{job.id.hex}" and body["object"] == "chat.completion"
    # The job holds the alias "base"; the answer names the base model.
    assert job.params["model"] == "base" and body["model"] == base_model_name()
    assert body["created"] == int(job.created_at.timestamp())
    assert body["choices"] == [
        {"index": c.index, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason,
         "logprobs": None}
        for c in candidates
    ]
    usage = body["usage"]
    assert usage["prompt_tokens"] == candidates[0].prompt_tokens > 0
    assert usage["completion_tokens"] == sum(c.completion_tokens for c in candidates)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_completion_answers_text_completion(api_for, inline_worker):
    response = api_for("marketer").post(
        "/v1/completions", {"prompt": "Once upon", "max_tokens": 4, "seed": 3}, format="json"
    )
    assert response.status_code == 200, response.content
    job = Job.objects.get(pk=response["X-Job-Id"])
    assert job.params["prompt"] == "Once upon" and job.params["max_new_tokens"] == 4
    body = response.json()
    (candidate,) = job.candidates.all()
    assert body["id"] == f"cmpl-{job.id.hex}" and body["object"] == "text_completion"
    assert body["choices"] == [{"index": 0, "text": candidate.text, "finish_reason": "length", "logprobs": None}]


@pytest.mark.parametrize(("ours", "theirs"), [("stop", "stop"), ("length", "length"), ("timeout", "length"),
                                               ("cancelled", "length")])
def test_finish_reasons_map_onto_openai_ones(api_for, inline_worker, ours, theirs):
    def finish(job):
        job_run(job_id=str(job.id), worker_id="inline")
        job.candidates.update(finish_reason=ours)

    inline_worker.finish = finish
    response = api_for("agent").post("/v1/chat/completions", CHAT, format="json")
    assert response.json()["choices"][0]["finish_reason"] == theirs


def test_chat_stream_sends_openai_chunks_that_add_up_to_the_result(api_for, inline_worker):
    client = api_for("agent")
    response = client.post(
        "/v1/chat/completions", {**CHAT, "n": 2, "max_tokens": 10, "stream": True,
                                 "stream_options": {"include_usage": True}},
        format="json", HTTP_ACCEPT="application/json",  # what OpenAI's client sends, stream or not
    )
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    job = Job.objects.get(pk=response["X-Job-Id"])
    chunks = _chunks(response)
    assert chunks[-1] == "[DONE]"
    *chunks, usage_chunk, _ = chunks
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == sum(
        c.completion_tokens for c in job.candidates.all())
    for chunk in chunks:
        assert chunk["id"] == f"chatcmpl-{job.id.hex}" and chunk["object"] == "chat.completion.chunk"
        assert len(chunk["choices"]) == 1 and chunk["usage"] is None
    for candidate in job.candidates.all():
        mine = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == candidate.index]
        assert mine[0]["delta"] == {"role": "assistant", "content": ""}
        assert "".join(c["delta"].get("content", "") for c in mine) == candidate.text
        assert [c["finish_reason"] for c in mine][-1] == candidate.finish_reason
        assert all(c["finish_reason"] is None for c in mine[:-1])


def test_completion_stream_sends_text_chunks(api_for, inline_worker):
    response = api_for("agent").post(
        "/v1/completions", {"prompt": "Once upon", "max_tokens": 8, "seed": 2, "stream": True}, format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    chunks = _chunks(response)[:-1]
    (candidate,) = Job.objects.get(pk=response["X-Job-Id"]).candidates.all()
    assert all(c["object"] == "text_completion" and "usage" not in c for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks) == candidate.text
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_idempotency_key_answers_from_the_same_job(api_for, inline_worker):
    client = api_for("agent")
    first = client.post("/v1/completions", {"prompt": "Hi", "max_tokens": 3}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = client.post("/v1/completions", {"prompt": "Hi", "max_tokens": 3}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first["X-Job-Id"] == again["X-Job-Id"] and first.json() == again.json()
    other = client.post("/v1/completions", {"prompt": "Bye"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert _error(other, 409, "invalid_request_error")["param"] == "Idempotency-Key"
    assert Job.objects.count() == 1


# --- jobs that do not succeed ---------------------------------------------------------------


def test_failed_job_is_a_500_server_error_that_clients_should_not_repeat(api_for, inline_worker):
    inline_worker.finish = lambda job: job_fail(job_id=str(job.id), code="worker_lost", message="The worker died.")
    response = api_for("agent").post("/v1/chat/completions", CHAT, format="json")
    error = _error(response, 500, "server_error")
    assert (error["code"], error["message"]) == ("worker_lost", "The worker died.")
    assert response["x-should-retry"] == "false" and response["X-Job-Id"] == str(inline_worker.jobs[0].id)


def test_cancelled_job_is_a_409(api_for, inline_worker):
    client = api_for("agent")
    inline_worker.finish = lambda job: job_cancel(job=job, user=client.user)
    error = _error(client.post("/v1/completions", {"prompt": "x"}, format="json"), 409, "invalid_request_error")
    assert error["code"] == "job_cancelled" and client.user.username in error["message"]


def test_failed_job_ends_a_stream_with_an_error_chunk(api_for, inline_worker):
    inline_worker.finish = lambda job: job_fail(job_id=str(job.id), code="internal_error", message="boom")
    response = api_for("agent").post("/v1/chat/completions", {**CHAT, "stream": True}, format="json")
    chunks = _chunks(response)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-2] == {"error": {"message": "boom", "type": "server_error", "param": None, "code": "internal_error"}}


def test_a_job_that_starts_over_after_text_was_streamed_ends_the_stream_with_an_error(api_for, inline_worker):
    def lose_the_worker_midway(job):
        JobEvent.objects.create(job=job, attempt=1, deltas={"0": "Hel"})
        JobEvent.objects.create(job=job, attempt=2, deltas={"0": "Hi"})
        job_fail(job_id=str(job.id), code="internal_error", message="not reached")

    inline_worker.finish = lose_the_worker_midway
    chunks = _chunks(api_for("agent").post("/v1/chat/completions", {**CHAT, "stream": True}, format="json"))
    assert [c["choices"][0]["delta"] for c in chunks[:2]] == [{"role": "assistant", "content": ""}, {"content": "Hel"}]
    assert chunks[2]["error"]["code"] == "job_restarted" and chunks[3] == "[DONE]"


def test_no_answer_within_the_stream_limit_is_a_504_and_the_job_goes_on(api_for, settings):
    settings.GENAI_STREAM_MAX_SECONDS = 0.3
    settings.GENAI_STREAM_POLL_SECONDS = 0.05
    client = api_for("agent")
    response = client.post("/v1/chat/completions", CHAT, format="json")  # no worker: the job stays queued
    error = _error(response, 504, "server_error")
    assert error["code"] == "timeout" and "GENAI_STREAM_MAX_SECONDS" in error["message"]
    assert f"/api/jobs/{response['X-Job-Id']}" in error["message"] and response["x-should-retry"] == "false"
    assert Job.objects.get(pk=response["X-Job-Id"]).status == JobStatus.QUEUED
    streamed = _chunks(client.post("/v1/completions", {"prompt": "x", "stream": True}, format="json"))
    assert streamed[-2]["error"]["code"] == "timeout"


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "changes", "param", "code"),
    [
        ("chat", {"temperature": "hot"}, "temperature", "invalid"),
        ("chat", {"temperature": 5}, "temperature", "max_value"),
        ("chat", {"max_tokens": 100000}, "max_tokens", "max_value"),
        ("chat", {"max_completion_tokens": 0}, "max_completion_tokens", "min_value"),
        ("chat", {"n": 0}, "n", "min_value"),
        ("chat", {"top_p": 0}, "top_p", "min_value"),
        ("chat", {"stop": ["a"] * 50}, "stop", "max_length"),
        ("chat", {"stop": 5}, "stop", "invalid"),
        ("chat", {"seed": -1}, "seed", "min_value"),
        ("chat", {"model": "gpt-9"}, "model", "model_not_found"),
        ("completions", {"model": "gpt-9"}, "model", "model_not_found"),
        ("chat", {"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "invalid_choice"),
        ("chat", {"messages": [{"role": "user", "content": "a"}, {"role": "user"}]}, "messages[1].content", "required"),
        ("chat", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
         "messages[0].content", "invalid"),
        ("chat", {"messages": []}, "messages", "min_length"),
        ("chat", {"messages": None}, "messages", "null"),
        ("chat", {"stream": "maybe"}, "stream", "invalid"),
        ("chat", {"presence_penalty": 0.5}, "presence_penalty", "unsupported_value"),
        ("chat", {"logprobs": True}, "logprobs", "unsupported_value"),
        ("chat", {"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "unsupported_value"),
        ("chat", {"response_format": {"type": "xml"}}, "response_format", "invalid_schema"),
        ("chat", {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "bogus"}}}},
         "response_format", "invalid_schema"),
        ("chat", {"response_format": {"type": "json_schema",
                                      "json_schema": {"name": "a", "schema": {"$ref": "#/$defs/missing"}}}},
         "response_format", "invalid_schema"),
        ("chat", {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}},
         "response_format", "invalid_schema"),
        ("completions", {"response_format": {"type": "json_schema",
                                             "json_schema": {"name": "a", "schema": {"type": "string", "pattern": "("}}}},
         "response_format", "invalid_schema"),
        ("chat", {"response_format": {"type": "json_object"}, "stop": ["}"]}, "stop", "invalid"),
        ("chat", {"max_token": 5}, "max_token", "unknown_parameter"),
        ("completions", {"prompt": ["a", "b"]}, "prompt", "invalid"),
        ("completions", {"prompt": ""}, "prompt", "blank"),
        ("completions", {"echo": True}, "echo", "unsupported_value"),
        ("completions", {"messages": CHAT["messages"]}, "messages", "unknown_parameter"),
    ],
)
def test_bad_input_is_400_naming_the_openai_param(api_for, path, changes, param, code):
    body = {**CHAT, **changes} if path == "chat" else {"prompt": "x", **changes}
    response = api_for("agent").post(f"/v1/{'chat/completions' if path == 'chat' else 'completions'}",
                                     body, format="json")
    error = _error(response, 400, "invalid_request_error")
    assert (error["param"], error["code"]) == (param, code), error
    assert error["message"].startswith(f"{param}: ")
    assert Job.objects.count() == 0


def test_missing_prompt_and_limits_name_the_param_and_the_limit(api_for, settings):
    client = api_for("agent")
    missing = _error(client.post("/v1/completions", {}, format="json"), 400, "invalid_request_error")
    assert missing["param"] == "prompt"
    too_long = _error(client.post("/v1/chat/completions", {**CHAT, "max_tokens": 100000}, format="json"), 400,
                      "invalid_request_error")
    assert str(settings.GENAI_MAX_NEW_TOKENS) in too_long["message"]


def test_malformed_json_wrong_content_type_and_oversized_body(api_for, settings):
    client = api_for("agent")
    malformed = _error(client.post("/v1/chat/completions", "{not json", content_type="application/json"), 400,
                       "invalid_request_error")
    assert "JSON" in malformed["message"] and malformed["param"] is None
    _error(client.post("/v1/chat/completions", "a=b", content_type="application/x-www-form-urlencoded"), 415,
           "invalid_request_error")
    settings.GENAI_MAX_REQUEST_BYTES = 1000
    big = {"messages": [{"role": "user", "content": "x" * 5000}]}
    assert "1000 bytes" in _error(client.post("/v1/chat/completions", big, format="json"), 413,
                                  "invalid_request_error")["message"]
    assert _error(client.get("/v1/chat/completions"), 405, "invalid_request_error")["code"] == "method_not_allowed"


def test_other_openai_endpoints_are_404_in_openai_shape(client):
    error = _error(client.post("/v1/embeddings", {}, content_type="application/json"), 404, "invalid_request_error")
    assert "/v1/embeddings" in error["message"]


# --- auth, roles, limits --------------------------------------------------------------------


def test_bearer_and_token_both_authenticate(make_user, client):
    token = TokenFactory(user=make_user("agent")).key
    assert client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert client.get("/v1/models", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


def test_anonymous_and_unknown_tokens_are_401(client):
    anonymous = client.get("/v1/models")
    assert _error(anonymous, 401, "authentication_error")["code"] == "not_authenticated"
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    wrong = client.post("/v1/chat/completions", CHAT, content_type="application/json",
                        HTTP_AUTHORIZATION="Bearer nope")
    assert _error(wrong, 401, "authentication_error")["code"] == "authentication_failed"


def test_reviewers_may_not_generate(api_for):
    response = api_for("reviewer").post("/v1/chat/completions", CHAT, format="json")
    assert "roles" in _error(response, 403, "permission_error")["message"]
    assert Job.objects.count() == 0


def test_full_queue_is_429_rate_limit_error_with_retry_after(api_for, settings):
    settings.GENAI_MAX_QUEUED_JOBS_PER_USER = 1
    settings.GENAI_ADMISSION_RETRY_AFTER_SECONDS = 9
    client = api_for("agent")
    JobFactory(owner=client.user)
    response = client.post("/v1/completions", {"prompt": "x"}, format="json")
    assert _error(response, 429, "rate_limit_error")["code"] == "too_many_queued_jobs"
    assert response["Retry-After"] == "9"


def test_job_creation_throttle_is_429_rate_limit_error(api_for, monkeypatch):
    cache.clear()
    monkeypatch.setattr(JobCreateThrottle, "rate", "1/hour", raising=False)
    client = api_for("agent")
    client.post("/v1/completions", {"prompt": "x", "n": 0}, format="json")  # counted, though invalid
    response = client.post("/v1/completions", {"prompt": "x"}, format="json")
    assert _error(response, 429, "rate_limit_error")["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    assert client.get("/v1/models").status_code == 200  # listing is not job creation
    cache.clear()


def test_errors_elsewhere_keep_the_api_shape(api_for):
    """Only /v1 speaks OpenAI's error shape."""
    body = api_for("agent").post("/api/jobs/", {"kind": "generate", "params": {"prompt": "x", "n": 0}},
                                 format="json").json()
    assert body["code"] == "invalid" and "n" in body["errors"]["params"]


# --- LoRA adapters by name ------------------------------------------------------------------


@pytest.fixture
def tone_adapter(tiny_lm, settings):
    """A registered adapter ("tone@1", random non-zero LoRA weights on the tiny model) and an archived one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tests.factories import ModelVersionFactory
    from workers.runtime.adapters import adapters_clear

    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_lm, dtype=torch.float32),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    model.save_pretrained(settings.GENAI_MODEL_STORE_DIR / "lm_adapter" / "tone" / "v1")
    ModelVersionFactory(name="tone", version=1, artifact_path="lm_adapter/tone/v1")
    ModelVersionFactory(name="old", version=1, status="archived")
    adapters_clear()
    yield "tone"
    adapters_clear()


def test_models_list_adapters_and_completions_run_on_them(api_for, inline_worker, tone_adapter):
    from generation.kinds.generate import base_model_name

    client = api_for("agent")
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == [base_model_name(), "tone", "tone@1"]
    assert client.get("/v1/models/tone@1").json()["id"] == "tone@1"
    _error(client.get("/v1/models/old@1"), 404, "invalid_request_error")
    for model in ("tone", "tone@1", "base"):
        body = client.post("/v1/chat/completions", {**CHAT, "model": model}, format="json").json()
        job = inline_worker.jobs[-1]
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, job.error_message
        assert body["model"] == (base_model_name() if model == "base" else model)
        assert job.model_version.endswith("+tone@1") == (model != "base")
    completion = client.post("/v1/completions", {"prompt": "Hi", "max_tokens": 4, "model": "tone@1"}, format="json")
    assert completion.status_code == 200 and inline_worker.jobs[-1].params["model"] == "tone@1"


@pytest.mark.parametrize("model", ["nope", "old", "tone@2", "tone@x"])
def test_unknown_or_archived_model_is_400_on_each_endpoint(api_for, tone_adapter, model):
    client = api_for("agent")
    for path, body in (("/v1/chat/completions", {**CHAT, "model": model}),
                       ("/v1/completions", {"prompt": "Hi", "model": model})):
        error = _error(client.post(path, body, format="json"), 400, "invalid_request_error")
        assert (error["param"], error["code"]) == ("model", "model_not_found") and model in error["message"]
    response = client.post("/api/jobs/", {"kind": "generate", "params": {"prompt": "Hi", "model": model}}, format="json")
    assert response.status_code == 400 and model in json.dumps(response.json()) and "model" in json.dumps(response.json())
    reply = client.post("/api/jobs/", {"kind": "reply", "params": {"message": "Hi", "model": model}}, format="json")
    assert reply.status_code == 400 and "model" in json.dumps(reply.json())
    assert Job.objects.count() == 0


# --- structured output (response_format) ----------------------------------------------------

SCHEMAS = {
    "person": {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 30}, "age": {"type": "integer", "minimum": 0,
                                                                            "maximum": 120}},
        "required": ["name", "age"],
        "additionalProperties": False,
    },
    "ticket": {
        "type": "object",
        "properties": {
            "intent": {"enum": ["refund", "track_order", "complaint"]},
            "urgent": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 15}, "maxItems": 3},
        },
        "required": ["intent", "urgent", "tags"],
        "additionalProperties": False,
    },
    "order": {
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "pattern": "^ORD-[0-9]{3,6}$"},
            "items": {
                "type": "array", "minItems": 1, "maxItems": 2,
                "items": {"type": "object", "properties": {"sku": {"type": "string", "maxLength": 12},
                                                           "quantity": {"type": "integer", "minimum": 1}},
                          "required": ["sku", "quantity"], "additionalProperties": False},
            },
            "total": {"type": "number"},
        },
        "required": ["order_id", "items", "total"],
        "additionalProperties": False,
    },
}
ASKS = {
    "person": "Invent a customer and describe them as JSON.",
    "ticket": "Classify this message as JSON: 'My parcel ORD-1 has not arrived, where is it?'",
    "order": "Write an example order of two hiking boots as JSON.",
}


@pytest.fixture
def smollm2_served(smollm2, settings):
    """The shipped SmolLM2 behind /v1 (its engine, as a worker serves it)."""
    settings.GENAI_LM_MODEL = "smollm2"
    return smollm2


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_json_schema_output_parses_against_its_schema(api_for, inline_worker, smollm2_served, name):
    import jsonschema

    response = api_for("agent").post("/v1/chat/completions", {
        "messages": [{"role": "user", "content": ASKS[name]}], "max_tokens": 120, "temperature": 0.8, "n": 2,
        "seed": 5, "response_format": {"type": "json_schema", "json_schema": {"name": name, "schema": SCHEMAS[name],
                                                                              "strict": True}},
    }, format="json")
    assert response.status_code == 200, response.content
    (job,) = inline_worker.jobs
    job.refresh_from_db()
    assert job.usage["engine"] == "batched"  # the engine that serves /v1, not the generate() path
    for choice in response.json()["choices"]:
        assert choice["finish_reason"] == "stop"
        jsonschema.validate(json.loads(choice["message"]["content"]), SCHEMAS[name])


@pytest.mark.slow
def test_json_object_stream_adds_up_to_one_json_object(api_for, inline_worker, smollm2_served):
    response = api_for("agent").post("/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Give me a JSON object about a cat."}], "max_tokens": 120,
        "temperature": 0.7, "seed": 3, "stream": True, "response_format": {"type": "json_object"},
    }, format="json")
    chunks = _chunks(response)[:-1]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert isinstance(json.loads(text), dict), text


def test_text_response_format_is_free_text_and_kept_out_of_the_job(api_for, inline_worker):
    response = api_for("agent").post("/v1/chat/completions", {**CHAT, "response_format": {"type": "text"}},
                                     format="json")
    assert response.status_code == 200, response.content
    assert inline_worker.jobs[0].params["response_format"] is None

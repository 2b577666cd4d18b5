"""OpenAI's own Python client against a live server (pytest-django's ``live_server``, a threaded
WSGI server in this process) and a real worker process: /v1 is usable as an OpenAI endpoint."""

import openai
import pytest

from generation.kinds.generate import model_names
from generation.models import Job, JobStatus
from tests.factories import TokenFactory, UserFactory

pytestmark = [pytest.mark.e2e]

MESSAGES = [{"role": "user", "content": "Write a one-line greeting."}]


@pytest.fixture
def openai_client(live_server, transactional_db):
    token = TokenFactory(user=UserFactory(role="agent")).key
    # Closed at the end: a kept-alive connection holds its server thread, and with it a database
    # session (CONN_MAX_AGE) that would block dropping the test database.
    with openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=token, max_retries=0, timeout=60) as client:
        yield client


def test_openai_client_chat_stream_completions_models_and_errors(start_worker, openai_client, live_server):
    start_worker()
    (model,) = openai_client.models.list().data
    assert model.id == model_names()[0] and model.object == "model"

    options = {"model": model.id, "messages": MESSAGES, "max_tokens": 8, "temperature": 0, "seed": 5}
    raw = openai_client.chat.completions.with_raw_response.create(**options)
    plain = raw.parse()
    job = Job.objects.get(pk=raw.headers["X-Job-Id"])
    assert job.status == JobStatus.SUCCEEDED and plain.id == f"chatcmpl-{job.id.hex}"
    (choice,) = plain.choices
    assert choice.message.role == "assistant" and choice.message.content == job.candidates.get().text
    assert choice.finish_reason in ("stop", "length") and 0 < plain.usage.completion_tokens <= 8

    chunks = list(openai_client.chat.completions.create(**options, stream=True,
                                                         stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == choice.message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        choice.finish_reason]
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens

    completion = openai_client.completions.create(model=model.id, prompt="Once upon a time", max_tokens=6, n=2, seed=1)
    assert completion.object == "text_completion" and [c.index for c in completion.choices] == [0, 1]
    assert completion.usage.completion_tokens <= 12
    streamed = {0: "", 1: ""}
    for chunk in openai_client.completions.create(model=model.id, prompt="Once upon a time", max_tokens=6, n=2,
                                                  seed=1, stream=True):
        for c in chunk.choices:
            streamed[c.index] += c.text
    assert streamed == {c.index: c.text for c in completion.choices}  # same seed, same text

    with pytest.raises(openai.BadRequestError) as bad:
        openai_client.chat.completions.create(model=model.id, messages=MESSAGES, max_tokens=100_000)
    assert bad.value.param == "max_tokens" and bad.value.type == "invalid_request_error"
    with openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="wrong", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError):
            stranger.models.list()


@pytest.mark.slow
def test_openai_client_gets_real_model_answers(start_worker, openai_client, settings):
    settings.GENAI_LM_MODEL = "smollm2"  # the live server runs in this process: it offers the same model
    start_worker(GENAI_LM_MODEL="smollm2")
    answer = openai_client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=16, temperature=0,
    )
    assert "Paris" in answer.choices[0].message.content

"""The pipeline with real worker processes: broker messages, database rows, crashes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import Job, JobStatus
from tests.e2e.conftest import wait_final, wait_for
from tests.factories import JobFactory

pytestmark = [pytest.mark.e2e]


@pytest.mark.slow
def test_generate_job_runs_queued_running_succeeded_with_real_model_output(start_worker, api_for):
    worker = start_worker(GENAI_LM_MODEL="smollm2")
    client = api_for("agent")
    response = client.post("/api/jobs/", {"kind": "generate", "params": {
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_new_tokens": 24, "temperature": 0.0,
    }}, format="json")
    assert response.status_code == 201
    job_id = response.json()["id"]
    seen = set()
    wait_for(lambda: seen.add(Job.objects.get(pk=job_id).status) or Job.objects.get(pk=job_id).is_final,
             timeout=120, message=worker.log_tail)
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message)
    assert "running" in seen or job.started_at is not None
    (candidate,) = job.candidates.all()
    assert "Paris" in candidate.text
    assert job.model_version.startswith("SmolLM2-135M-Instruct")
    assert job.first_token_at is not None and job.started_at <= job.first_token_at <= job.finished_at
    assert job.worker_id.startswith(worker.name)


def test_cancel_stops_a_running_job(start_worker, api_for):
    worker = start_worker()
    client = api_for("admin")
    job_id = client.post("/api/jobs/", {"kind": "echo", "params": {"text": "x", "delay_seconds": 30}},
                         format="json").json()["id"]
    wait_for(lambda: Job.objects.get(pk=job_id).status == JobStatus.RUNNING, timeout=30, message=worker.log_tail)
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    job = wait_final(job_id, timeout=10, workers=[worker])
    assert job.status == JobStatus.CANCELLED
    # The worker noticed and moved on: it takes the next job right away.
    next_id = client.post("/api/jobs/", {"kind": "echo", "params": {"text": "next"}}, format="json").json()["id"]
    assert wait_final(next_id, timeout=15, workers=[worker]).status == JobStatus.SUCCEEDED


def test_worker_killed_mid_job_loses_no_job(start_worker, api_for):
    doomed = start_worker()
    client = api_for("admin")
    job_id = client.post("/api/jobs/", {"kind": "echo", "params": {"text": "survivor", "delay_seconds": 3}},
                         format="json").json()["id"]
    wait_for(lambda: Job.objects.get(pk=job_id).status == JobStatus.RUNNING, timeout=30, message=doomed.log_tail)
    doomed.kill()

    rescuer = start_worker(beat=True)  # its beat runs the sweeper every second
    job = wait_final(job_id, timeout=60, workers=[rescuer])
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message, rescuer.log_tail())
    assert job.attempts == 2
    assert job.worker_id.startswith(rescuer.name)
    assert [c.text for c in job.candidates.all()] == ["survivor"]


def test_sweeper_resends_a_job_whose_message_was_lost(start_worker):
    # A row committed without its broker message (e.g. the broker was down at enqueue time).
    job = JobFactory(params={"text": "found", "delay_seconds": 0.0})
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    worker = start_worker(beat=True, GENAI_JOB_REQUEUE_AFTER_SECONDS="2")
    job = wait_final(job.id, timeout=60, workers=[worker])
    assert job.status == JobStatus.SUCCEEDED
    assert [c.text for c in job.candidates.all()] == ["found"]


def test_concurrent_jobs_share_the_engine_and_match_a_lone_run(start_worker, api_for, tiny_lm):
    import torch

    from generation.lm import chat_input_ids
    from workers.ml.decoding import SamplingParams
    from workers.ml.lm import generate
    from workers.runtime.models import lm_get

    worker = start_worker(concurrency=8)
    client = api_for("agent")
    prompts = [f"Customer {i} asks about the refund for order {i * 7}" for i in range(8)]
    ids = [client.post("/api/jobs/", {"kind": "generate", "params": {
        "prompt": p, "max_new_tokens": 16, "temperature": 0.0, "repetition_penalty": 1.0}}, format="json").json()["id"]
        for p in prompts]
    jobs = [wait_final(job_id, timeout=60, workers=[worker]) for job_id in ids]
    assert all(j.status == JobStatus.SUCCEEDED for j in jobs), [(j.error_code, j.error_message) for j in jobs]
    assert {j.usage["engine"] for j in jobs} == {"batched"}
    # They ran at the same time: some job started before another one finished.
    assert min(j.finished_at for j in jobs) > max(j.started_at for j in jobs[:2])

    lm = lm_get(str(tiny_lm))
    for prompt, job in zip(prompts, jobs, strict=True):
        (alone,) = generate(lm.model, lm.tokenizer, torch.tensor([chat_input_ids(lm.tokenizer, prompt=prompt, messages=None)]),
                            SamplingParams(max_new_tokens=16, temperature=0.0, repetition_penalty=1.0))
        assert job.candidates.get().text == alone.text


def test_a_reply_job_through_a_real_worker_uses_the_company_profile(start_worker, api_for):
    """Issue 17: import the knowledge base (the worker embeds it), set the company profile, and
    draft an e-mail: the worker's draft greets the customer, fills the profile's values, lists
    what is still unknown, and keeps order numbers apart from phone numbers."""
    import io

    from generation.models import Conversation
    from generation.services.company import company_profile_update
    from generation.services.knowledge import knowledge_import_file
    from tests.factories import UserFactory
    from tests.knowledge_fixtures import bitext_rows, csv_text

    worker = start_worker()
    client = api_for("agent")
    rows = bitext_rows(intents=("recover_password", "cancel_order", "contact_human_agent"), per_intent=4)
    rows.append({**rows[-1], "instruction": "cancel purchase 732201349959 please",
                 "response": "I can help you cancel your purchase with the order number 732201349959."})
    # committed at once (a transactional test): the worker embeds the rows
    report = knowledge_import_file(user=client.user, file=io.BytesIO(csv_text(rows).encode()), name="bitext.csv")
    wait_final(report.embed_job_id, timeout=120, workers=[worker])
    assert not Conversation.objects.filter(embedding__isnull=True).exists()
    assert Conversation.objects.filter(agent_reply__contains="the order number [ORDER_ID]").exists()
    company_profile_update(user=UserFactory(role="admin"), company_name="Acme", support_phone="+1 800 555 0100",
                           website_name="acme.example")
    response = client.post("/api/jobs/", {"kind": "reply", "params": {
        "message": "I forgot my password, can you help?", "channel": "email", "max_new_tokens": 16,
        "context": {"Customer Name": "Ann"}}}, format="json")
    assert response.status_code == 201, response.content
    job = wait_final(response.json()["id"], timeout=120, workers=[worker])
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_message)
    (candidate,) = client.get(f"/api/jobs/{job.id}").json()["candidates"]
    text = candidate["text"]
    assert text.startswith("Hello Ann,\n\n") and text.endswith("Kind regards,\nAcme Customer Support")
    assert "acme.example" in text and "{{Website Name}}" not in text and "\r" not in text
    assert candidate["metadata"]["sources"] and not candidate["withheld"]
    assert all("{{" + name + "}}" in text for name in candidate["metadata"]["unfilled_placeholders"])
    assert job.worker_id.startswith(worker.name)

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from review.services import reviews
from review.services.feedback import candidate_send, feedback_submit

pytestmark = pytest.mark.django_db


def test_feedback_export_chat_format_masked_and_filtered(draft, reviewer, tmp_path):
    sent = draft(text="Sure, write to help@shop.example and we fix it.", params={
        "message": "My card 4111 1111 1111 1111 was charged twice, mail me at bob@example.com",
        "history": [{"role": "customer", "content": "Hello"}, {"role": "agent", "content": "Hi, how can I help?"}],
    })
    agent = sent.job.owner
    candidate_send(candidate=sent, user=agent, text="Sorry! We refund the double charge today.")
    discarded = draft(owner=agent, text="Nonsense.")
    feedback_submit(candidate=discarded, user=agent, outcome="discarded")
    flagged = draft(owner=agent, text="Idiot.", metadata={"safety": {"flagged": True, "reasons": []}})
    feedback_submit(candidate=flagged, user=agent, outcome="sent_as_is")
    out = tmp_path / "reply.jsonl"
    call_command("feedback_export", "--kind", "reply", "--since", "2000-01-01", "--out", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 1
    messages = lines[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert "[CARD]" in messages[3]["content"] and "[EMAIL]" in messages[3]["content"]
    assert "4111" not in out.read_text() and "bob@example.com" not in out.read_text()
    assert messages[-1]["content"] == "Sorry! We refund the double charge today."
    # nothing decided after the cut-off
    call_command("feedback_export", "--kind", "reply", "--since", "2999-01-01", "--out", str(out))
    assert out.read_text() == ""


def test_only_approved_copy_is_exported(draft, reviewer, tmp_path):
    approved, rejected, pending = draft(kind="copy", text="Good lamp."), draft(kind="copy"), draft(kind="copy")
    for c in (approved, rejected, pending):
        reviews.review_item_submit(candidate=c, user=c.job.owner)
    reviews.review_item_approve(item=approved.review_item, user=reviewer)
    reviews.review_item_reject(item=rejected.review_item, user=reviewer, reason="Off-brand.")
    out = tmp_path / "copy.jsonl"
    call_command("feedback_export", "--kind", "copy", "--out", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["messages"][-1]["content"] for line in lines] == ["Good lamp."]
    assert '"Lamp"' in lines[0]["messages"][1]["content"]


def test_bad_since_is_a_clear_error(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--since"):
        call_command("feedback_export", "--since", "last tuesday", "--out", str(tmp_path / "x.jsonl"))


def test_retrain_off_by_default_and_creates_a_finetune_job_when_on(draft, settings, tmp_path):
    from generation.kinds import kind_get
    from review.services.retrain import retrain_run

    assert retrain_run() is None  # GENAI_RETRAIN_ENABLED is off
    settings.GENAI_RETRAIN_ENABLED = True
    settings.GENAI_RETRAIN_MIN_EXAMPLES = 1
    settings.GENAI_RETRAIN_DIR = settings.VAR_DIR / "test-retrain" / tmp_path.name  # under GENAI_FINETUNE_DATA_DIRS
    candidate = draft()
    candidate_send(candidate=candidate, user=candidate.job.owner)
    run = retrain_run()
    assert run.examples == 1 and Path(run.dataset_path).exists()
    assert json.loads(Path(run.dataset_path).read_text())["messages"][-1]["content"] == candidate.text
    if kind_get("finetune") is None:
        assert run.job is None and "finetune" in run.note
    else:
        assert run.job.kind == "finetune" and run.job.params["dataset_jsonl"] == run.dataset_path
        assert run.job.params["purpose"] == "reply"
        again = retrain_run()  # nothing new since the last run
        assert again.job is None and again.examples == 0


def test_a_refused_finetune_job_is_recorded_not_raised(draft, settings, tmp_path):
    from generation.kinds import kind_get
    from review.services.retrain import retrain_run

    if kind_get("finetune") is None:
        pytest.skip("the finetune kind is not installed")
    settings.GENAI_RETRAIN_ENABLED, settings.GENAI_RETRAIN_MIN_EXAMPLES = True, 1
    settings.GENAI_RETRAIN_DIR = tmp_path  # outside GENAI_FINETUNE_DATA_DIRS: the kind refuses the path
    settings.GENAI_FINETUNE_DATA_DIRS = [str(settings.VAR_DIR / "nowhere")]
    candidate = draft()
    candidate_send(candidate=candidate, user=candidate.job.owner)
    run = retrain_run()
    assert run.job is None and "dataset_jsonl" in run.note

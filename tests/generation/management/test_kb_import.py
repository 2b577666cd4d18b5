"""manage.py kb_import: the options map onto the import service; errors name lines and exit non-zero."""

import io
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command

from generation.models import Conversation, Job, KnowledgeDoc
from tests.factories import UserFactory
from tests.knowledge_fixtures import bitext_rows, csv_text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr("generation.services.jobs.current_app", SimpleNamespace(send_task=lambda *a, **kw: None))


def _run(*args) -> str:
    out = io.StringIO()
    call_command("kb_import", *map(str, args), stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_bitext_csv_as_conversations_then_again(tmp_path):
    path = tmp_path / "bitext.csv"
    path.write_text(csv_text(bitext_rows(per_intent=2)))
    out = _run(path)
    assert "36 rows read, 36 created" in out and "Embedding job" in out
    job = Job.objects.get()
    assert job.kind == "knowledge_embed" and job.owner.username == "genai-system"
    assert "0 created, 0 updated, 36 unchanged" in _run(path)
    assert Conversation.objects.filter(source="bitext").count() == 36


def test_options(tmp_path):
    path = tmp_path / "faq.data"
    path.write_text('{"q": "Returns?", "a": "Within 30 days."}\n')
    user = UserFactory(role="admin", username="alice")
    out = _run(path, "--format", "jsonl", "--kind", "docs", "--source", "help", "--map", "q=title", "--map", "a=body",
               "--user", "alice", "--embed", "none")
    assert "1 created" in out and "Embedding job" not in out
    assert KnowledgeDoc.objects.get(source="help").title == "Returns?"
    assert not Job.objects.filter(owner=user).exists()


def test_bad_rows_fail_the_command_with_their_lines(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("customer_message,agent_reply\nhi,hello\n,oops\n")
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 of 2 conversations rows are invalid"):
        call_command("kb_import", str(path), stdout=io.StringIO(), stderr=err)
    assert "line 3: customer_message: This field is required." in err.getvalue()
    assert not Conversation.objects.exists()
    out = io.StringIO()
    call_command("kb_import", str(path), "--skip-bad", stdout=out, stderr=err)
    assert "1 created" in out.getvalue() and "1 skipped" in out.getvalue()


def test_usage_errors(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        _run(tmp_path / "missing.csv")
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(CommandError, match="No column for customer_message"):
        _run(path)
    with pytest.raises(CommandError, match="expected COLUMN=FIELD"):
        _run(path, "--map", "a")
    with pytest.raises(CommandError, match="no such user"):
        _run(path, "--user", "nobody")


def test_embed_now_runs_the_job_in_this_process(tmp_path):
    path = tmp_path / "kb.csv"
    path.write_text("title,body\nReturns,Within 30 days.\nShipping,Two to five days.\n")
    out = _run(path, "--kind", "docs", "--embed", "now")
    assert "Embedded 2 rows (docs 2) with all-MiniLM-L6-v2" in out
    assert Job.objects.get().status == "succeeded"
    assert all(d.embedded_hash == d.content_hash for d in KnowledgeDoc.objects.all())

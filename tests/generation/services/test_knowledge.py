"""Knowledge import: formats, mapping, idempotent re-import, all-or-nothing validation with line
numbers, masking of conversations, pruning, and the embedding job it queues."""

import io
import json

import pytest
from django.test import override_settings

from generation.exceptions import Forbidden, InvalidInput
from generation.models import Conversation, Job, KnowledgeDoc
from generation.services.knowledge import (
    ImportRejected,
    knowledge_import_file,
    knowledge_import_rows,
    knowledge_mapping_resolve,
    knowledge_system_user,
)
from tests.factories import UserFactory
from tests.knowledge_fixtures import bitext_rows, csv_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent():
    return UserFactory(role="agent")


def _file(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def _import(agent, text: str, name: str = "data.csv", **kwargs):
    return knowledge_import_file(user=agent, file=_file(text), name=name, **kwargs)


# --- formats and mapping ----------------------------------------------------------------------


def test_bitext_csv_imports_as_conversations_out_of_the_box(agent, sent_tasks):
    rows = bitext_rows(intents=("cancel_order", "get_refund"), per_intent=3)
    report = _import(agent, csv_text(rows), name="bitext_support_train.csv")
    assert (report.kind, report.source, report.rows, report.created) == ("conversations", "bitext_support_train", 6, 6)
    first = Conversation.objects.get(intent="cancel_order", agent_reply=rows[0]["response"].replace("\r\n", "\n"))
    assert first.customer_message == "how can I cancel purchase [ORDER_ID]?"  # was ... purchase 113542617735902?
    assert (first.category, first.language, first.active) == ("ORDER", "en", True)
    assert report.masked == {"ORDER_ID": 5}  # in 3 messages and 2 replies
    assert len(first.external_id) == 64 and first.embedding is None


def test_bitext_csv_imports_as_faq_docs_when_asked(agent, sent_tasks):
    rows = bitext_rows(intents=("cancel_order",), per_intent=2)
    report = _import(agent, csv_text(rows), kind="docs", source="faq")
    assert report.created == 2
    doc = KnowledgeDoc.objects.get(title=rows[0]["instruction"])
    assert doc.body == rows[0]["response"].replace("\r\n", "\n")  # one line-ending style
    assert doc.tags == ["cancel_order", "order"]  # intent and category; not Bitext's `tags` codes
    assert doc.title == "how can I cancel purchase 113542617735902?"  # docs are not masked


def test_csv_with_a_column_mapping(agent, sent_tasks):
    text = "faq_q,faq_a,kw,lang\nHow do returns work?,Within 30 days.,\"returns, Policy\",de\n"
    report = _import(agent, text, kind="docs", mapping={"faq_q": "title", "faq_a": "body", "kw": "tags", "lang": "language"})
    assert report.created == 1
    doc = KnowledgeDoc.objects.get()
    assert (doc.title, doc.body, doc.tags, doc.language, doc.source) == (
        "How do returns work?", "Within 30 days.", ["returns", "policy"], "de", "data",
    )


def test_jsonl_with_ids(agent, sent_tasks):
    lines = [
        {"id": 17, "title": "Shipping", "body": "2-5 days.", "tags": ["shipping"]},
        {"id": "x-2", "question": "Payment?", "answer": "Cards and PayPal.", "active": False},
    ]
    report = _import(agent, "\n".join(json.dumps(x) for x in lines) + "\n\n", name="kb.jsonl", kind="docs")
    assert (report.rows, report.created) == (2, 2)
    assert KnowledgeDoc.objects.get(external_id="17").tags == ["shipping"]
    assert KnowledgeDoc.objects.get(external_id="x-2").active is False


def test_mapping_errors_name_the_columns(agent):
    with pytest.raises(InvalidInput) as error:
        _import(agent, "subject,body\na,b\n")  # conversations need a message and a reply column
    message = error.value.errors["map"][0]
    assert "customer_message, agent_reply" in message and "subject, body" in message
    with pytest.raises(InvalidInput, match="Invalid input") as error:
        _import(agent, "a,b\n1,2\n", mapping={"a": "customer_message", "b": "reply"})
    assert "Unknown field 'reply'" in error.value.errors["map"][0]
    with pytest.raises(InvalidInput) as error:
        _import(agent, "a,b\n1,2\n", mapping={"a": "customer_message", "nope": "agent_reply"})
    assert "No column 'nope'" in error.value.errors["map"][0]
    with pytest.raises(InvalidInput):
        knowledge_mapping_resolve(kind="docs", columns=["a", "b"], mapping={"a": "title", "b": "title"})


# --- idempotency ------------------------------------------------------------------------------


def test_reimport_is_idempotent_and_updates_changed_rows(agent, sent_tasks):
    rows = bitext_rows(intents=("track_order",), per_intent=4)
    first = _import(agent, csv_text(rows), source="bitext")
    again = _import(agent, csv_text(rows), source="bitext")
    assert (first.created, again.created, again.updated, again.unchanged) == (4, 0, 0, 4)
    assert again.embed_job_id is None  # nothing new to embed
    assert Conversation.objects.count() == 4

    # Without an id column, a changed row is a new row (its id is a hash of its content) ...
    rows[0]["response"] = "Changed."
    changed = _import(agent, csv_text(rows), source="bitext")
    assert (changed.created, changed.unchanged) == (1, 3)
    # ... and --prune retires the old version.
    pruned = _import(agent, csv_text(rows), source="bitext", prune=True)
    assert (pruned.deactivated, Conversation.objects.filter(active=True).count()) == (1, 4)

    # With ids, a changed row is updated in place.
    docs = [{"id": "a", "title": "T", "body": "one"}, {"id": "b", "title": "U", "body": "two"}]
    knowledge_import_rows(user=agent, rows=docs, kind="docs", source="help")
    before = KnowledgeDoc.objects.get(external_id="a")
    docs[0]["body"] = "one, revised"
    report = knowledge_import_rows(user=agent, rows=docs, kind="docs", source="help")
    after = KnowledgeDoc.objects.get(external_id="a")
    assert (report.updated, report.unchanged, after.pk, after.body) == (1, 1, before.pk, "one, revised")
    assert after.content_hash != before.content_hash and after.updated_at > before.updated_at


def test_the_same_rows_from_another_source_are_other_rows(agent, sent_tasks):
    rows = [{"customer_message": "hi", "agent_reply": "hello"}]
    knowledge_import_rows(user=agent, rows=rows, source="a")
    knowledge_import_rows(user=agent, rows=rows, source="b")
    assert sorted(Conversation.objects.values_list("source", flat=True)) == ["a", "b"]


def test_duplicate_rows_in_one_file(agent, sent_tasks):
    rows = [{"customer_message": "hi", "agent_reply": "hello"}] * 3
    report = knowledge_import_rows(user=agent, rows=rows)
    assert (report.created, report.duplicates) == (1, 2)
    clash = [{"id": "1", "customer_message": "a", "agent_reply": "b"}, {"id": "1", "customer_message": "c", "agent_reply": "d"}]
    with pytest.raises(ImportRejected) as error:
        knowledge_import_rows(user=agent, rows=clash)
    assert error.value.row_errors[0].line == 2 and "also on line 1" in error.value.row_errors[0].errors["external_id"][0]


# --- bad rows ---------------------------------------------------------------------------------


BAD_CSV = (
    "instruction,response,intent,category\n"  # line 1
    "good one,fine,a,b\n"  # 2
    '"multi\nline message",ok,a,b\n'  # 3-4
    ",missing message,a,b\n"  # 5
    "too,many,fields,here,!\n"  # 6
    "\n"  # 7, blank: ignored
    f"long reply,{'x' * 30},a,b\n"  # 8
)


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(agent, sent_tasks):
    with pytest.raises(ImportRejected) as error:
        _import(agent, BAD_CSV.replace("x" * 30, "x" * 20_001))
    assert {e.line: list(e.errors) for e in error.value.row_errors} == {
        5: ["customer_message"],
        6: ["row"],
        8: ["agent_reply"],
    }
    assert "3 of 5 conversations rows are invalid" in error.value.message
    payload = error.value.as_payload()
    assert payload["code"] == "invalid_rows" and payload["errors"]["rows"][1] == {
        "line": 6, "errors": {"row": ["Has 5 fields; the header has 4."]},
    }
    assert not Conversation.objects.exists() and not Job.objects.exists()


def test_skip_bad_imports_the_good_rows(agent, sent_tasks):
    report = _import(agent, BAD_CSV.replace("x" * 30, "x" * 20_001), skip_bad=True, prune=True)
    assert (report.created, report.skipped, [e.line for e in report.errors]) == (2, 3, [5, 6, 8])
    assert Conversation.objects.filter(customer_message="multi\nline message").exists()
    assert report.deactivated == 0 and "Not pruned" in report.notes[0]


def test_jsonl_bad_lines(agent):
    text = '{"customer_message": "a", "agent_reply": "b"}\nnot json\n[1, 2]\n{"customer_message": {"x": 1}, "agent_reply": "b"}\n'
    with pytest.raises(ImportRejected) as error:
        _import(agent, text, name="x.jsonl")
    assert [(e.line, list(e.errors)) for e in error.value.row_errors] == [
        (2, ["row"]), (3, ["row"]), (4, ["customer_message"]),
    ]


def test_tag_errors_name_the_item(agent):
    with pytest.raises(ImportRejected) as error:
        knowledge_import_rows(user=agent, rows=[{"title": "t", "body": "b", "tags": ["ok", "x" * 65]}], kind="docs")
    assert error.value.row_errors[0].errors == {"tags": ["item 2: Ensure this field has no more than 64 characters."]}


def test_file_level_errors(agent):
    with pytest.raises(InvalidInput, match="Invalid input") as error:
        _import(agent, "")
    assert "empty" in error.value.errors["file"][0]
    with pytest.raises(InvalidInput) as error:
        knowledge_import_file(user=agent, file=io.BytesIO(b"customer_message,agent_reply\n\xff\xfe,x\n"), name="x.csv")
    assert "UTF-8" in error.value.errors["file"][0]
    with pytest.raises(InvalidInput) as error:
        _import(agent, "a,a\n1,2\n")
    assert "more than once" in error.value.errors["file"][0]
    with override_settings(GENAI_KB_MAX_IMPORT_ROWS=2), pytest.raises(InvalidInput) as error:
        knowledge_import_rows(user=agent, rows=[{"customer_message": str(i), "agent_reply": "x"} for i in range(3)])
    assert "GENAI_KB_MAX_IMPORT_ROWS" in error.value.errors["file"][0]
    with pytest.raises(InvalidInput) as error:
        knowledge_import_rows(user=agent, rows=[], source="bad source!")
    assert "source" in error.value.errors


def test_bitext_csv_has_no_bad_rows(agent, sent_tasks):
    from tests.knowledge_fixtures import BITEXT_CSV

    with open(BITEXT_CSV, "rb") as f:
        report = knowledge_import_file(user=agent, file=f, name=BITEXT_CSV.name, embed=False)
    assert (report.rows, report.created, report.skipped) == (3651, 3651, 0)
    assert report.masked["ORDER_ID"] > 1000


def test_windows_line_ends_are_stored_as_unix_ones_and_old_rows_update_in_place(agent, sent_tasks):
    rows = bitext_rows(intents=("cancel_order",), per_intent=2)
    assert "\r\n" in rows[0]["response"]  # the shipped CSV's answers
    _import(agent, csv_text(rows), name="bitext.csv")
    stored = list(Conversation.objects.order_by("id"))
    assert all("\r" not in r.agent_reply and "\r" not in r.customer_message for r in stored)
    assert "\n\n1. " in stored[0].agent_reply
    # a row stored before line ends were normalised keeps its id: a re-import updates it, no copy
    Conversation.objects.filter(pk=stored[0].pk).update(agent_reply=stored[0].agent_reply.replace("\n", "\r\n"))
    report = _import(agent, csv_text(rows), name="bitext.csv")
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    assert "\r" not in Conversation.objects.get(pk=stored[0].pk).agent_reply


# --- masking, roles, embedding job --------------------------------------------------------------


def test_conversations_are_masked_before_storing(agent, sent_tasks):
    rows = [{
        "customer_message": "I'm jane@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111, order #123456",
        "agent_reply": "We e-mailed jane@example.com on 2024-01-15 about the $12.50 refund.",
    }]
    report = knowledge_import_rows(user=agent, rows=rows)
    row = Conversation.objects.get()
    assert row.customer_message == "I'm [EMAIL], call [PHONE], card [CARD], order [ORDER_ID]"
    assert row.agent_reply == "We e-mailed [EMAIL] on 2024-01-15 about the $12.50 refund."
    assert report.masked == {"CARD": 1, "EMAIL": 2, "ORDER_ID": 1, "PHONE": 1}
    assert "jane" not in row.external_id  # a hash


@pytest.mark.parametrize("role", [None, "marketer", "analyst", "reviewer"])
def test_only_agents_and_admins_import(role):
    with pytest.raises(Forbidden):
        knowledge_import_rows(user=UserFactory(role=role), rows=[])


def test_the_embedding_job_is_queued_after_commit(agent, sent_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        report = knowledge_import_rows(user=agent, rows=[{"customer_message": "a", "agent_reply": "b"}])
    assert sent_tasks.sent == [] and len(callbacks) == 1
    callbacks[0]()
    assert sent_tasks.sent[0]["args"] == [report.embed_job_id] and sent_tasks.sent[0]["queue"] == "cpu"
    assert Job.objects.get().params == {"kinds": ["conversations"], "force": False, "batch_size": 64}


def test_a_full_queue_does_not_fail_the_import(agent, sent_tasks):
    with override_settings(GENAI_MAX_QUEUED_JOBS_PER_USER=0):
        report = knowledge_import_rows(user=agent, rows=[{"customer_message": "a", "agent_reply": "b"}])
    assert report.created == 1 and report.embed_job_id is None and "not queued" in report.notes[0]


def test_the_system_user_owns_cli_jobs():
    user = knowledge_system_user()
    assert knowledge_system_user() == user
    assert not user.has_usable_password()
    assert list(user.groups.values_list("name", flat=True)) == ["agent"]

"""Knowledge endpoints: permissions per role, upload (multipart and JSON), errors by line, size
limits, docs list and detail."""

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from generation.models import Conversation, Job, KnowledgeDoc
from tests.knowledge_fixtures import bitext_rows, csv_text

pytestmark = pytest.mark.django_db

ROLES = [None, "agent", "marketer", "analyst", "reviewer", "admin"]  # None: anonymous
ROWS = {"kind": "docs", "source": "help", "rows": [{"title": "Returns", "body": "Within 30 days."}]}


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setattr("generation.services.jobs.current_app", SimpleNamespace(send_task=lambda *a, **kw: None))


def _client(api_for, role):
    return APIClient() if role is None else api_for(role)


MATRIX = {
    "import": ({None: 401, "agent": 201, "marketer": 403, "analyst": 403, "reviewer": 403, "admin": 201},
               lambda c, doc: c.post("/api/knowledge/import", ROWS, format="json")),
    "list docs": ({None: 401, **{r: 200 for r in ROLES[1:]}}, lambda c, doc: c.get("/api/knowledge/docs/")),
    "get doc": ({None: 401, **{r: 200 for r in ROLES[1:]}}, lambda c, doc: c.get(f"/api/knowledge/docs/{doc.pk}")),
}


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_permission_matrix(api_for, role, endpoint):
    expected, call = MATRIX[endpoint]
    doc = KnowledgeDoc.objects.create(source="s", external_id="1", title="T", body="B", content_hash="h")
    response = call(_client(api_for, role), doc)
    assert response.status_code == expected[role], response.content[:300]


def test_users_without_a_role_may_not_read(api_for):
    assert api_for(None).get("/api/knowledge/docs/").status_code == 403


def test_upload_a_bitext_csv(api_for):
    client = api_for("agent")
    upload = SimpleUploadedFile("bitext.csv", csv_text(bitext_rows(per_intent=1)).encode(), content_type="text/csv")
    response = client.post("/api/knowledge/import", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["source"], body["created"], body["errors"]) == ("conversations", "bitext", 18, [])
    assert Job.objects.get().id.hex == body["embed_job_id"].replace("-", "")
    assert Conversation.objects.count() == 18


def test_upload_with_mapping_and_format_as_form_fields(api_for):
    client = api_for("admin")
    upload = SimpleUploadedFile("faq.txt", b'{"q": "Returns?", "a": "30 days.", "id": 1}\n')
    response = client.post(
        "/api/knowledge/import",
        {"file": upload, "kind": "docs", "format": "jsonl", "mapping": '{"q": "title", "a": "body"}', "source": "faq"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert KnowledgeDoc.objects.get(source="faq", external_id="1").title == "Returns?"


def test_bad_rows_are_a_400_listing_lines_and_nothing_is_imported(api_for):
    client = api_for("agent")
    upload = SimpleUploadedFile("x.csv", b"customer_message,agent_reply\nhi,hello\n,no message\nok,\n")
    response = client.post("/api/knowledge/import", {"file": upload}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_rows" and body["bad_rows"] == 2
    assert [(e["line"], list(e["errors"])) for e in body["errors"]["rows"]] == [(3, ["customer_message"]), (4, ["agent_reply"])]
    assert not Conversation.objects.exists()

    rows = {"rows": [{"customer_message": "a", "agent_reply": "b"}, {"customer_message": "c"}], "skip_bad": True}
    response = client.post("/api/knowledge/import", rows, format="json")
    assert response.status_code == 201 and response.json()["errors"] == [{"line": 2, "errors": {"agent_reply": ["This field is required."]}}]


def test_input_errors(api_for):
    client = api_for("agent")
    assert client.post("/api/knowledge/import", {}, format="json").json()["errors"] == {
        "file": ["Give exactly one of `file` or `rows`."]
    }
    response = client.post("/api/knowledge/import", {"rows": [], "mapping": {"x": "nope"}}, format="json")
    assert response.status_code == 400 and "nope" in response.json()["errors"]["map"][0]
    response = client.post("/api/knowledge/import", {"rows": [], "kind": "tickets"}, format="json")
    assert response.status_code == 400 and "kind" in response.json()["errors"]


def test_upload_size_limit(api_for):
    client = api_for("agent")
    with override_settings(GENAI_KB_MAX_UPLOAD_BYTES=100):
        upload = SimpleUploadedFile("big.csv", b"customer_message,agent_reply\n" + b"a,b\n" * 50)
        response = client.post("/api/knowledge/import", {"file": upload}, format="multipart")
        assert response.status_code == 413 and "GENAI_KB_MAX_UPLOAD_BYTES" in response.json()["detail"]
        response = client.post("/api/knowledge/import", {"rows": [{"customer_message": "a" * 200}]}, format="json")
        assert response.status_code == 413


def test_docs_list_filters_and_detail(api_for):
    client = api_for("agent")
    client.post("/api/knowledge/import", {"kind": "docs", "source": "help", "rows": [
        {"id": "1", "title": "Returns", "body": "Within 30 days.", "tags": "returns"},
        {"id": "2", "title": "Shipping", "body": "Two to five days.", "language": "de"},
    ]}, format="json")
    listed = client.get("/api/knowledge/docs/").json()
    assert listed["count"] == 2 and {d["title"] for d in listed["results"]} == {"Returns", "Shipping"}
    assert client.get("/api/knowledge/docs/", {"language": "de"}).json()["results"][0]["title"] == "Shipping"
    assert client.get("/api/knowledge/docs/", {"q": "30 days"}).json()["count"] == 1
    assert client.get("/api/knowledge/docs/", {"source": "other"}).json()["count"] == 0
    doc = KnowledgeDoc.objects.get(external_id="1")
    detail = client.get(f"/api/knowledge/docs/{doc.pk}").json()
    assert detail["tags"] == ["returns"] and detail["embedding_status"] == "missing" and "embedding" not in detail
    assert client.get("/api/knowledge/docs/999999").status_code == 404
    assert client.get("/api/knowledge/docs/99999999999999999999999").status_code == 404
    assert client.get("/api/knowledge/docs/abc").status_code == 404


def test_schema_lists_the_knowledge_endpoints(client):
    paths = set(yaml.safe_load(client.get("/api/schema/").content)["paths"])
    assert {"/api/knowledge/import", "/api/knowledge/docs/", "/api/knowledge/docs/{doc_id}"} <= paths

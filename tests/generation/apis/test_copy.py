"""Brand-voice examples over REST (CRUD, roles, an embedding job queued, 409 on duplicates) and
copy/recommendation jobs whose bad input is a 400 naming the field."""

import pytest

pytestmark = pytest.mark.django_db

URL = "/api/copy/brand-examples/"


@pytest.fixture
def queued(monkeypatch):
    from types import SimpleNamespace

    sent = []
    monkeypatch.setattr("generation.services.jobs.current_app",
                        SimpleNamespace(send_task=lambda name, args=None, **o: sent.append((name, args))))
    return sent


def test_marketer_creates_lists_updates_and_deletes_examples(api_for, queued, django_capture_on_commit_callbacks):
    from generation.models import Job

    client = api_for("marketer")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"brand": "Urbano", "collection": "City", "text": "Built for the rain.",
                                     "attributes": {"name": "Metro Sling", "colour": "Black"}}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["brand"] == "Urbano" and body["embedding_status"] == "missing" and body["created_by"] == client.user.username
    assert Job.objects.filter(kind="brand_example_embed").count() == 1 and queued
    client.post(URL, {"brand": "Other", "text": "Something else."}, format="json")
    listed = client.get(URL, {"brand": "urbano"}).json()
    assert [e["id"] for e in listed["results"]] == [body["id"]]
    patched = client.patch(f"{URL}{body['id']}", {"text": "Built for rain and sun.", "active": False}, format="json")
    assert patched.status_code == 200 and patched.json()["text"] == "Built for rain and sun." and not patched.json()["active"]
    assert client.get(f"{URL}{body['id']}").status_code == 200
    assert client.delete(f"{URL}{body['id']}").status_code == 204
    assert client.get(f"{URL}{body['id']}").status_code == 404
    assert client.get(f"{URL}not-a-number").status_code == 404


def test_duplicate_text_is_a_conflict_and_bad_input_names_the_field(api_for, queued):
    client = api_for("marketer")
    assert client.post(URL, {"brand": "Urbano", "text": "Same."}, format="json").status_code == 201
    duplicate = client.post(URL, {"brand": "urbano", "text": "Same."}, format="json")
    assert duplicate.status_code == 409 and "text" in duplicate.json()["errors"]
    missing = client.post(URL, {"text": "No brand."}, format="json")
    assert missing.status_code == 400 and "brand" in missing.json()["errors"]
    empty = client.post(URL, {"brand": "Urbano", "text": "x", "attributes": {}}, format="json")
    assert empty.status_code == 400 and "attributes" in empty.json()["errors"]


def test_roles(api_for, queued):
    assert api_for("agent").post(URL, {"brand": "Urbano", "text": "x"}, format="json").status_code == 403
    assert api_for("agent").get(URL).status_code == 403
    assert api_for("reviewer").get(URL).status_code == 200
    assert api_for("reviewer").post(URL, {"brand": "Urbano", "text": "x"}, format="json").status_code == 403
    assert api_for("admin").post(URL, {"brand": "Urbano", "text": "x"}, format="json").status_code == 201


@pytest.mark.parametrize(
    "kind, params, field",
    [
        ("copy", {"attributes": {}}, "attributes"),
        ("copy", {"attributes": {"name": "Tee"}, "segments": ["a", "b", "c", "d", "e", "f"]}, "segments"),
        ("recommendation", {"interactions": [], "products": [{"attributes": {"name": "Tee"}}]}, "interactions"),
        ("recommendation", {"interactions": [{"title": "x"}], "products": [{"attributes": {"name": "Tee"}}] * 51},
         "products"),
        ("copy", {"attributes": {"name": "Tee"}, "model": "no-such-adapter"}, "model"),
        ("recommendation", {"interactions": [{"title": "x"}], "products": [{"attributes": {"name": "Tee"}}],
                            "model": "no-such-adapter"}, "model"),
    ],
)
def test_bad_job_params_are_a_400_naming_the_field(api_for, queued, kind, params, field):
    response = api_for("marketer").post("/api/jobs/", {"kind": kind, "params": params}, format="json")
    assert response.status_code == 400, response.content
    assert field in str(response.json()["errors"])


def test_copy_training_examples_are_chat_rows(make_user, queued):
    from generation.services.copy import brand_example_create
    from workers.runners.copy import copy_training_examples

    user = make_user("marketer")
    brand_example_create(user=user, brand="Urbano", text="Built for the rain.", attributes={"name": "Metro Sling"})
    brand_example_create(user=user, brand="Other", text="Something else.")
    rows = copy_training_examples(brand="urbano")
    assert len(rows) == 1 and len(copy_training_examples()) == 2
    system, prompt, answer = rows[0]["messages"]
    assert (system["role"], prompt["role"], answer["role"]) == ("system", "user", "assistant")
    assert "- Name: Metro Sling" in prompt["content"] and "- Brand: Urbano" in prompt["content"]
    assert answer["content"] == "Built for the rain."

import pytest

from generation import roles
from review.models import ReviewItem

pytestmark = pytest.mark.django_db


def test_feedback_api_upserts_and_validates(api_for, draft):
    candidate = draft()
    client = api_for(user=candidate.job.owner)
    response = client.post("/api/feedback/", {"candidate": candidate.pk, "thumb": "up", "stars": 5}, format="json")
    assert response.status_code == 200, response.json()
    response = client.post("/api/feedback/", {"candidate": candidate.pk, "reason": "outdated", "comment": "Old policy."}, format="json")
    body = response.json()
    assert (body["thumb"], body["stars"], body["reason"], body["kind"]) == ("up", 5, "outdated", "reply")
    bad = client.post("/api/feedback/", {"candidate": candidate.pk, "stars": 9, "reason": "meh"}, format="json")
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"stars", "reason"}
    assert client.get("/api/feedback/", {"candidate": candidate.pk}).json()["count"] == 1


def test_another_agent_cannot_see_or_rate_a_draft(api_for, draft):
    candidate = draft()
    stranger = api_for(roles.AGENT)
    assert stranger.post("/api/feedback/", {"candidate": candidate.pk, "thumb": "up"}, format="json").status_code == 404
    assert stranger.post(f"/api/candidates/{candidate.pk}/send", {}, format="json").status_code == 404
    assert stranger.post("/api/review/items/", {"candidate": candidate.pk}, format="json").status_code == 404


def test_send_api(api_for, draft):
    candidate = draft(text="Hello there.")
    client = api_for(user=candidate.job.owner)
    body = client.post(f"/api/candidates/{candidate.pk}/send", {"text": "Hello there!"}, format="json").json()
    assert body["feedback"]["outcome"] == "sent_edited" and body["feedback"]["edit_distance"] == 1
    assert body["review_item"] is None


def test_review_flow_through_the_api(api_for, draft, make_user):
    candidate = draft(kind="copy", text="Red lamp.")
    marketer = api_for(user=candidate.job.owner)
    reviewer = api_for(roles.REVIEWER)
    created = marketer.post("/api/review/items/", {"candidate": candidate.pk, "text": "A red lamp."}, format="json")
    assert created.status_code == 201, created.json()
    item_id = created.json()["id"]
    # the marketer may not decide, nor publish before approval
    assert marketer.post(f"/api/review/items/{item_id}/approve", {}, format="json").status_code == 403
    assert marketer.post(f"/api/review/items/{item_id}/publish", format="json").status_code == 409
    assert marketer.get("/api/review/export").json()["count"] == 0
    assert reviewer.post(f"/api/review/items/{item_id}/reject", {}, format="json").json()["errors"]["reason"]
    assert reviewer.post(f"/api/review/items/{item_id}/assign", {"assignee": reviewer.user.username}, format="json").status_code == 200
    queue = reviewer.get("/api/review/items/", {"status": "pending", "assigned": "me"}).json()
    assert [i["id"] for i in queue["results"]] == [item_id]
    assert reviewer.get("/api/review/items/", {"status": "nonsense"}).status_code == 400
    approved = reviewer.post(f"/api/review/items/{item_id}/approve", {"reason": "ok"}, format="json").json()
    assert approved["status"] == "approved" and approved["draft"] == "Red lamp." and approved["text"] == "A red lamp."
    assert [e["action"] for e in approved["events"]] == ["submit", "assign", "approve"]
    assert approved["events"][-1]["actor"] == reviewer.user.username
    assert reviewer.post(f"/api/review/items/{item_id}/approve", {}, format="json").status_code == 409
    published = marketer.post(f"/api/review/items/{item_id}/publish", format="json")
    assert published.status_code == 200 and published.json()["published_at"]
    assert [i["text"] for i in marketer.get("/api/review/export", {"kind": "copy"}).json()["results"]] == ["A red lamp."]


def test_changes_requested_and_resubmit_via_api(api_for, draft):
    candidate = draft(kind="copy")
    marketer, reviewer = api_for(user=candidate.job.owner), api_for(roles.REVIEWER)
    item_id = marketer.post("/api/review/items/", {"candidate": candidate.pk}, format="json").json()["id"]
    assert reviewer.post(f"/api/review/items/{item_id}/request-changes", {"reason": "Shorter."}, format="json").json()["status"] == "changes_requested"
    assert reviewer.post(f"/api/review/items/{item_id}/resubmit", {"text": "x"}, format="json").status_code == 403
    assert marketer.post(f"/api/review/items/{item_id}/resubmit", {"text": "Lamp."}, format="json").json()["status"] == "pending"


def test_queue_visibility(api_for, draft):
    mine, theirs = draft(kind="copy"), draft(kind="copy")
    for c in (mine, theirs):
        ReviewItem.objects.create(candidate=c, kind="copy", text=c.text, submitted_by=c.job.owner)
    marketer = api_for(user=mine.job.owner)
    assert [i["candidate"] for i in marketer.get("/api/review/items/").json()["results"]] == [mine.pk]
    assert marketer.get(f"/api/review/items/{theirs.review_item.pk}").status_code == 404
    assert api_for(roles.REVIEWER).get("/api/review/items/").json()["count"] == 2


def test_quality_api_and_metrics(api_for, draft, client, django_capture_on_commit_callbacks):
    candidate = draft(model_version="smollm2@2", text="abc")
    agent = api_for(user=candidate.job.owner)
    agent.post(f"/api/candidates/{candidate.pk}/send", {"text": "abd"}, format="json")
    agent.post("/api/feedback/", {"candidate": candidate.pk, "stars": 4, "thumb": "up"}, format="json")
    other = draft(owner=candidate.job.owner, model_version="smollm2@2")
    with django_capture_on_commit_callbacks(execute=True):
        agent.post("/api/feedback/", {"candidate": other.pk, "outcome": "discarded"}, format="json")
    assert agent.get("/api/review/quality").status_code == 403
    rows = api_for(roles.ANALYST).get("/api/review/quality", {"kind": "reply"}).json()
    assert len(rows) == 1
    row = rows[0]
    assert (row["model_version"], row["decided"], row["acceptance_rate"], row["edit_distance_mean"], row["stars_mean"]) == (
        "smollm2@2", 2, 0.5, 1.0, 4.0)
    text = client.get("/metrics").content.decode()
    assert 'genai_quality_acceptance_rate{kind="reply",model_version="smollm2@2"} 0.5' in text
    assert 'genai_quality_edit_distance_mean{kind="reply",model_version="smollm2@2"} 1.0' in text
    assert 'genai_feedback_outcomes_total{kind="reply",outcome="discarded"}' in text


def test_feedback_list_is_yours_unless_reviewer(api_for, draft):
    candidate = draft()
    agent = api_for(user=candidate.job.owner)
    agent.post("/api/feedback/", {"candidate": candidate.pk, "edited_text": "my private edit"}, format="json")
    assert api_for(roles.ANALYST).get("/api/feedback/").json()["count"] == 0
    assert api_for(roles.AGENT).get("/api/feedback/").json()["count"] == 0
    assert api_for(roles.REVIEWER).get("/api/feedback/").json()["results"][0]["edited_text"] == "my private edit"

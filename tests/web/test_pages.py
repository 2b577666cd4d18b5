import io
import re

import pytest

from generation import roles
from generation.models import Job, JobEvent, JobStatus
from review.models import Feedback, ReviewItem
from review.services.reviews import review_item_submit
from tests.factories import CandidateFactory, JobFactory

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_login_logout_and_role_aware_nav(client, login):
    assert client.get("/agent/").status_code == 302  # to the log-in page
    assert "/accounts/login/" in client.get("/agent/")["Location"]
    page = _text(client.get("/accounts/login/"))
    assert '<label for="id_username">Username</label>' in page
    login(roles.AGENT)
    nav = _text(client.get("/agent/"))
    assert 'href="/agent/"' in nav and 'href="/review/"' not in nav and 'href="/staff/jobs/"' not in nav
    assert client.get("/review/").status_code == 403
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/agent/").status_code == 302
    login(roles.REVIEWER)
    nav = _text(client.get("/review/"))
    assert 'href="/review/"' in nav and 'href="/quality/"' in nav and 'href="/agent/"' not in nav


def test_agent_empty_message_is_a_clear_message(client, login):
    login(roles.AGENT)
    response = client.post("/agent/", {"message": "   ", "n": "1"}, HTTP_HX_REQUEST="true")
    assert "Paste the customer" in _text(response) and "errors" in _text(response)
    assert not Job.objects.exists()
    response = client.post("/agent/", {"message": "x" * 5000, "n": "1"})
    assert response.status_code == 400 and "message: Ensure this field has no more than 4000 characters" in _text(response)


def test_agent_creates_a_reply_job_and_streams_drafts(client, login):
    agent = login(roles.AGENT)
    response = client.post("/agent/", {"message": "Where is my parcel?", "n": "2", "tone": "friendly", "channel": "email"},
                           HTTP_HX_REQUEST="true")
    job = Job.objects.get()
    assert (job.kind, job.owner, job.params["n"], job.params["tone"]) == ("reply", agent, 2, "friendly")
    assert f'hx-get="/agent/jobs/{job.id}/drafts"' in _text(response)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=1)
    JobEvent.objects.create(job=job, attempt=1, deltas={"0": "Hello, your ", "1": "Hi"})
    JobEvent.objects.create(job=job, attempt=1, deltas={"0": "parcel is on its way"})
    partial = _text(client.get(f"/agent/jobs/{job.id}/drafts"))
    assert "Hello, your parcel is on its way" in partial and 'hx-trigger="load delay:' in partial


def test_agent_sees_final_drafts_with_sources_but_not_flagged_ones(client, login):
    agent = login(roles.AGENT)
    job = JobFactory(kind="reply", owner=agent, status=JobStatus.SUCCEEDED, params={"message": "Hi"})
    ok = CandidateFactory(job=job, index=0, text="We ship in 2 days.",
                          metadata={"sources": [{"ref": "doc:1", "title": "Shipping times", "snippet": "2 days", "score": 0.8}],
                                    "safety": {"flagged": False, "reasons": []}})
    bad = CandidateFactory(job=job, index=1, text="SECRET toxic words",
                           metadata={"safety": {"flagged": True, "reasons": [{"category": "toxicity", "detail": "Abusive."}]}})
    page = _text(client.get(f"/agent/jobs/{job.id}/drafts"))
    assert "We ship in 2 days." in page and "Shipping times" in page
    assert "SECRET toxic words" not in page and "withheld by the safety filter" in page
    # send edited, rate, report
    sent = _text(client.post(f"/agent/candidates/{ok.pk}/send", {"text": "We ship in 2 working days."}))
    assert "Sent." in sent and "Sent edited" in sent
    client.post(f"/agent/candidates/{ok.pk}/rate", {"thumb": "up", "stars": "5"})
    reported = _text(client.post(f"/agent/candidates/{ok.pk}/report", {"reason": ""}))
    assert "Choose what is wrong" in reported
    client.post(f"/agent/candidates/{ok.pk}/report", {"reason": "incomplete", "comment": "No date."})
    row = Feedback.objects.get(candidate=ok)
    assert (row.outcome, row.stars, row.reason, row.edit_distance) == ("sent_edited", 5, "incomplete", 8)
    assert "withheld" in _text(client.post(f"/agent/candidates/{bad.pk}/send", {"text": "x"}))
    assert not Feedback.objects.filter(candidate=bad).exists()


def test_a_user_never_sees_another_users_drafts(client, login, make_user):
    other = make_user(roles.AGENT)
    job = JobFactory(kind="reply", owner=other, status=JobStatus.SUCCEEDED, params={"message": "Private"})
    candidate = CandidateFactory(job=job, index=0, text="Their draft")
    login(roles.AGENT)
    assert client.get(f"/agent/jobs/{job.id}/drafts").status_code == 404
    assert client.post(f"/agent/candidates/{candidate.pk}/send", {"text": "x"}).status_code == 404


def _csv(content: bytes, name: str = "products.csv") -> io.BytesIO:
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def test_marketing_form_creates_a_copy_job(client, login, copy_kind):
    marketer = login(roles.MARKETER)
    page = _text(client.get("/marketing/"))
    assert '<label for="attr-name">Name' in page and 'type="file"' in page and 'for="f-tone"' in page
    response = client.post("/marketing/create", {"attr_name": "Desk lamp", "attr_colour": "red", "attr_sizes": "S; M",
                                                 "attr_other": "wattage: 40 W", "tone": "neutral", "n": "1"})
    assert response.status_code == 302 and response["Location"].startswith("/marketing/batches/")
    job = Job.objects.get(owner=marketer)
    assert job.kind == "copy"
    assert job.params["attributes"] == {"name": "Desk lamp", "colour": "red", "sizes": ["S", "M"], "wattage": "40 W"}
    empty = client.post("/marketing/create", {"tone": "neutral"}, HTTP_HX_REQUEST="true")
    assert "attributes:" in _text(empty) and Job.objects.count() == 1


def test_marketing_csv_errors_name_the_line(client, login, copy_kind, settings):
    login(roles.MARKETER)
    assert "line 1: column(s) 2 have no name" in _text(client.post("/marketing/upload", {"file": _csv(b"name,,colour\nLamp,x,red\n")}, HTTP_HX_REQUEST="true"))
    assert "line 1: duplicated column(s) name" in _text(client.post("/marketing/upload", {"file": _csv(b"name,name\nA,B\n")}, HTTP_HX_REQUEST="true"))
    assert "line 1: no attribute columns" in _text(client.post("/marketing/upload", {"file": _csv(b"tone,n\nneutral,1\n")}, HTTP_HX_REQUEST="true"))
    response = _text(client.post("/marketing/upload", {"file": _csv(b"name,colour,n\nLamp,red,1\n,,2\nChair,oak,99\nStool,red,1,extra\n")}, HTTP_HX_REQUEST="true"))
    assert "line 3: attributes:" in response and "line 4: n:" in response and "line 5: 4 cells but 3 columns" in response
    assert not Job.objects.exists()  # nothing created unless every row is valid
    settings.GENAI_WEB_MAX_CSV_BYTES = 1024
    big = client.post("/marketing/upload", {"file": _csv(b"name\n" + b"Lamp\n" * 400)})
    assert big.status_code == 400 and "the limit is 1 KB (GENAI_WEB_MAX_CSV_BYTES)" in _text(big)


def test_marketing_csv_creates_a_batch_with_progress(client, login, copy_kind):
    marketer = login(roles.MARKETER)
    response = client.post("/marketing/upload", {"file": _csv(b"name,colour,features\nLamp,red,dimmable; USB\nChair,oak,\n")},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Redirect"].startswith("/marketing/batches/")
    jobs = list(Job.objects.filter(owner=marketer, kind="copy").order_by("created_at"))
    assert [j.params["attributes"] for j in jobs] == [
        {"name": "Lamp", "colour": "red", "features": ["dimmable", "USB"]}, {"name": "Chair", "colour": "oak"}]
    Job.objects.filter(pk=jobs[0].pk).update(status=JobStatus.SUCCEEDED, progress=1.0)
    done = Job.objects.get(pk=jobs[0].pk)
    candidate = CandidateFactory(job=done, index=0, text="A lamp.", metadata={"checks": {
        "coverage": 0.5, "covered": ["colour: red"], "missing": ["features: USB"], "unsupported": [], "repetition": None,
        "passed": False}})
    page = _text(client.get(response["HX-Redirect"]))
    assert "1 of 2 products done (50 %)" in page and '<progress id="batch-progress" max="100" value="50"' in page
    assert "1. Lamp" in page and "2. Chair" in page
    assert 'class="ok">colour: red: passed' in page and 'class="fail">features: USB: failed — missing' in page
    submitted = _text(client.post(f"/marketing/candidates/{candidate.pk}/submit", {"text": "A bright lamp."}))
    assert "Submitted" in submitted
    assert ReviewItem.objects.get().text == "A bright lamp."


def test_reviewer_queue_diff_and_decisions(client, login, make_user):
    marketer = make_user(roles.MARKETER)
    job = JobFactory(kind="copy", owner=marketer, status=JobStatus.SUCCEEDED, params={"name": "Lamp"})
    first = review_item_submit(candidate=CandidateFactory(job=job, index=0, text="A red lamp."), user=marketer, text="A bright red lamp.")
    second = review_item_submit(candidate=CandidateFactory(job=job, index=1, text="A lamp."), user=marketer)
    login(roles.REVIEWER)
    queue = _text(client.get("/review/", {"status": "pending", "kind": "copy"}))
    assert f'href="/review/items/{first.pk}/"' in queue and f'href="/review/items/{second.pk}/"' in queue
    page = _text(client.get(f"/review/items/{first.pk}/"))
    assert "A<ins> bright</ins> red lamp." in page and "data-shortcuts" in page and 'data-key="approve"' in page
    missing_reason = client.post(f"/review/items/{first.pk}/reject", {"reason": ""})
    assert missing_reason.status_code == 400 and "A reason is required" in _text(missing_reason)
    approved = client.post(f"/review/items/{first.pk}/approve", {"go_next": "1"})
    assert approved.status_code == 302 and approved["Location"] == f"/review/items/{second.pk}/"
    first.refresh_from_db()
    assert first.status == "approved"
    client.post(f"/review/items/{second.pk}/reject", {"reason": "Too short."})
    second.refresh_from_db()
    assert second.status == "rejected"
    assert "Too short." in _text(client.get(f"/review/items/{second.pk}/"))


def test_staff_pages(client, login):
    login(roles.ADMIN)
    JobFactory(kind="echo", status=JobStatus.QUEUED)
    assert "echo" in _text(client.get("/staff/jobs/"))
    assert client.get("/staff/models/").status_code == 200
    assert client.get("/staff/training/").status_code == 200
    assert client.get("/quality/").status_code == 200
    assert client.get("/review/flagged/").status_code == 200


def test_copy_checker_marks_render():
    from web.views.marketing import checks_marks

    marks = checks_marks({"coverage": 0.5, "covered": ["colour: red"], "missing": ["material: oak"],
                          "unsupported": [{"word": "waterproof", "kind": "claim"}], "repetition": None, "passed": False})
    assert [(m["name"], m["ok"]) for m in marks] == [
        ("all checks", False), ("colour: red", True), ("material: oak", False), ("unsupported claim", False)]
    assert marks[0]["detail"] == "coverage 50%" and "waterproof" in marks[-1]["detail"]


def test_variants_from_the_vae_need_a_trained_model(client, login):
    from generation.kinds import kind_get
    from web.views.marketing import _first_sentence

    assert _first_sentence("Desk lamp\nA warm lamp with a steel arm. It dims.\n- Steel arm") == "A warm lamp with a steel arm."
    marketer = login(roles.MARKETER)
    job = JobFactory(kind="copy", owner=marketer, status=JobStatus.SUCCEEDED, params={"attributes": {"name": "Lamp"}})
    candidate = CandidateFactory(job=job, index=0, text="Lamp\nA warm lamp. It dims.")
    response = _text(client.post(f"/marketing/candidates/{candidate.pk}/variants"))
    if kind_get("variants") is None:
        assert "not installed" in response
    else:  # no VAE is trained in the test database: the page says so, no job is made
        assert 'class="errors"' in response and "model:" in response
    assert not Job.objects.filter(kind="variants").exists()


def test_the_marketer_page_offers_only_fluent_variants_true_to_the_product(client, login):
    marketer = login(roles.MARKETER)
    attributes = {"name": "Desk Lamp", "category": "Lamp", "colour": "Black", "material": "Steel"}
    copy_job = JobFactory(kind="copy", owner=marketer, status=JobStatus.SUCCEEDED, params={"attributes": attributes})
    candidate = CandidateFactory(job=copy_job, index=0, text="Desk Lamp\nA black steel lamp.")
    variants = JobFactory(kind="variants", queue="gpu", owner=marketer, status=JobStatus.SUCCEEDED,
                          params={"text": "A black steel lamp."})
    CandidateFactory(job=variants, index=0, text="A steel lamp in black.", metadata={"perplexity": 21.5})
    CandidateFactory(job=variants, index=1, text="{{ferostststting a lamp steel", metadata={"perplexity": 900.0})
    CandidateFactory(job=variants, index=2, text="A waterproof black steel lamp.", metadata={"perplexity": 18.0})
    response = _text(client.get(f"/marketing/variants/{variants.pk}?candidate={candidate.pk}"))
    assert "A steel lamp in black." in response
    assert "ferost" not in response and "waterproof" not in response
    assert "2 variants held back" in response
    missing = client.get(f"/marketing/variants/{variants.pk}?candidate=not-a-number")
    assert missing.status_code == 404  # a candidate the marketer cannot see: a clear 404, never a 500


def test_reviewer_sees_flagged_output_with_reasons_and_clears_a_false_alarm(client, login, make_user):
    agent = make_user(roles.AGENT)
    job = JobFactory(kind="reply", owner=agent, status=JobStatus.SUCCEEDED, params={"message": "Hi"})
    flagged = CandidateFactory(job=job, index=0, text="Visit the bomb shelter sale!", metadata={
        "safety": {"flagged": True, "reasons": [{"category": "blocked_topic", "detail": "Blocked topic weapons (“bomb”)."}]}})
    reviewer = login(roles.REVIEWER)
    page = _text(client.get("/review/flagged/"))
    assert "Visit the bomb shelter sale!" in page and "Blocked topic weapons" in page
    assert client.post("/review/flagged/", {"candidate": flagged.pk}).status_code == 302
    flagged.refresh_from_db()
    assert flagged.metadata["safety"]["flagged"] is False and flagged.metadata["safety"]["cleared_by"] == reviewer.username
    assert "Visit the bomb shelter sale!" not in _text(client.get("/review/flagged/"))
    client.force_login(agent)
    assert "Visit the bomb shelter sale!" in _text(client.get(f"/agent/jobs/{job.id}/drafts"))


def test_quality_page_per_model_version(client, login):
    agent_job = JobFactory(kind="reply", status=JobStatus.SUCCEEDED, model_version="smollm2@3", params={"message": "Hi"})
    candidate = CandidateFactory(job=agent_job, index=0, text="abc")
    Feedback.objects.create(candidate=candidate, user=agent_job.owner, outcome="sent_edited", edited_text="abd", edit_distance=1, stars=4)
    login(roles.ANALYST)
    page = _text(client.get("/quality/", {"kind": "reply"}))
    assert "<code>smollm2@3</code>" in page and "100 %" in page and "1.0" in page and "4.00" in page
    assert '<option value="reply" selected>reply</option>' in page


@pytest.mark.parametrize("role, url", [(roles.AGENT, "/agent/"), (roles.MARKETER, "/marketing/"),
                                       (roles.REVIEWER, "/review/"), (roles.ADMIN, "/staff/jobs/")])
def test_log_in_lands_on_the_page_of_the_role(client, make_user, role, url):
    user = make_user(role)
    response = client.post("/accounts/login/", {"username": user.username, "password": "pw-secret-123"}, follow=True)
    assert response.redirect_chain[-1][0] == url and response.status_code == 200

"""The company profile page: reviewers and admins set the values drafts are filled with, see what
drafts will get, and read errors that name the field; other roles are refused."""

import re

import pytest

from generation import roles
from generation.models import CompanyProfile, JobStatus
from tests.factories import CandidateFactory, JobFactory

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_a_reviewer_sets_the_profile_and_sees_what_drafts_get(client, login):
    login(roles.REVIEWER)
    page = _text(client.get("/company/"))
    assert 'href="/company/" aria-current="page"' in page
    assert "Nothing yet: drafts show every placeholder as it is." in page
    assert "fills {{Customer Support Phone Number}}, {{Customer Service Phone Number}}" in page
    response = client.post("/company/", {
        "company_name": "Acme", "website_name": "acme.example", "support_phone": "+1 800 555 0100",
        "support_email": "help@acme.example", "extra": "Refund Policy = acme.example/refunds\n\n{{Returns Window}} = 30 days",
    })
    page = _text(response)
    assert response.status_code == 200 and "Saved. New drafts use these values." in page
    assert "<td><code>{{Customer Support Phone Number}}</code></td><td>+1 800 555 0100</td>" in page
    assert "<td><code>{{Returns Window}}</code></td><td>30 days</td>" in page
    assert 'value="acme.example"' in page and "Refund Policy = acme.example/refunds" in page
    profile = CompanyProfile.objects.get()
    assert profile.extra == {"Refund Policy": "acme.example/refunds", "Returns Window": "30 days"}


def test_errors_name_the_field_and_keep_what_was_typed(client, login):
    login(roles.ADMIN)
    response = client.post("/company/", {"company_name": "Acme", "support_email": "not-an-address", "extra": ""})
    page = _text(response)
    assert response.status_code == 400 and "support_email: Enter a valid email address." in page
    assert 'value="Acme"' in page and not CompanyProfile.objects.exists()
    response = client.post("/company/", {"company_name": "Acme", "extra": "Refund Policy: 30 days"})
    assert response.status_code == 400 and "extra: line 1 is not “Name = value”" in _text(response)


@pytest.mark.parametrize("role", [roles.AGENT, roles.MARKETER, roles.ANALYST])
def test_other_roles_are_refused_and_see_no_link(client, login, role):
    login(role)
    assert client.get("/company/").status_code == 403
    assert client.post("/company/", {"company_name": "Acme"}).status_code == 403
    assert not CompanyProfile.objects.exists()


def test_the_agent_sees_which_placeholders_a_draft_still_needs(client, login):
    agent = login(roles.AGENT)
    job = JobFactory(kind="reply", owner=agent, status=JobStatus.SUCCEEDED, params={"message": "Hi"})
    CandidateFactory(job=job, index=0, text="Call us at {{Customer Support Phone Number}} about {{Order Number}}.",
                     metadata={"unfilled_placeholders": ["Customer Support Phone Number", "Order Number"],
                               "safety": {"flagged": False, "reasons": []}})
    page = _text(client.get(f"/agent/jobs/{job.id}/drafts"))
    assert "Still to fill before sending: <code>{{Customer Support Phone Number}}</code>, <code>{{Order Number}}</code>" in page
    assert 'href="/company/"' not in page  # agents cannot change the profile: no link to it

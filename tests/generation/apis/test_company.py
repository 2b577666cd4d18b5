"""The company profile over REST: any role reads it, reviewers and admins change it, bad values
are a 400 naming the field, and the answer says what drafts will get."""

import pytest

pytestmark = pytest.mark.django_db

URL = "/api/company-profile"


def test_admin_sets_the_profile_and_an_agent_reads_what_drafts_get(api_for):
    agent = api_for("agent")
    blank = agent.get(URL)
    assert blank.status_code == 200
    assert blank.json()["company_name"] == "" and blank.json()["placeholders"] == {} and blank.json()["updated_by"] is None
    admin = api_for("admin")
    response = admin.patch(URL, {"company_name": "Acme", "support_phone": "+1 800 555 0100",
                                 "extra": {"Refund Policy": "acme.example/refunds"}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["company_name"] == "Acme" and body["updated_by"] == admin.user.username
    assert body["placeholders"]["Customer Support Phone Number"] == "+1 800 555 0100"
    assert body["placeholders"]["Refund Policy"] == "acme.example/refunds"
    # only the fields sent change
    assert admin.patch(URL, {"website_name": "acme.example"}, format="json").status_code == 200
    read = agent.get(URL).json()
    assert (read["company_name"], read["website_name"]) == ("Acme", "acme.example")
    assert read["placeholders"]["Website Name"] == "acme.example"


@pytest.mark.parametrize("role", ["agent", "marketer", "analyst"])
def test_other_roles_may_not_change_it(api_for, role):
    assert api_for(role).patch(URL, {"company_name": "Acme"}, format="json").status_code == 403


def test_reviewers_change_it_and_anonymous_callers_are_refused(api_for, client):
    assert api_for("reviewer").patch(URL, {"company_name": "Acme"}, format="json").status_code == 200
    assert client.get(URL).status_code == 401
    assert api_for(None).get(URL).status_code == 403  # a user without a role


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"support_email": "nope"}, "support_email"),
        ({"website_url": "not a url"}, "website_url"),
        ({"company_name": "{{Company Name}}"}, "company_name"),
        ({"extra": {"Refund Policy": "{{x}}"}}, "extra"),
        ({"extra": "Refund Policy = x"}, "extra"),
        ({"support_phone": "1" * 65}, "support_phone"),
    ],
)
def test_bad_values_are_a_400_naming_the_field(api_for, payload, field):
    response = api_for("admin").patch(URL, payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()

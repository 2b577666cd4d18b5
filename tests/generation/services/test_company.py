"""The company profile: who may change it, what it fills, and errors that name the field."""

import pytest

from generation.exceptions import Forbidden, InvalidInput
from generation.models import CompanyProfile
from generation.selectors import company_profile_get, company_profile_values
from generation.services.company import company_profile_update
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_blank_profile_fills_nothing_until_someone_sets_it():
    assert company_profile_values() == {}
    assert company_profile_get().pk == 1 and not CompanyProfile.objects.exists()  # reading writes nothing


def test_each_field_fills_the_placeholder_names_the_knowledge_base_uses_and_extra_wins():
    reviewer = UserFactory(role="reviewer")
    profile = company_profile_update(
        user=reviewer, company_name="Acme", website_name="acme.example", support_phone="+1 800 555 0100",
        support_email="help@acme.example", support_hours="Mon-Fri 9:00-17:00", live_chat="the chat at acme.example/chat",
        extra={" Refund Policy ": " acme.example/refunds ", "Website Name": "the Acme shop"},
    )
    assert (profile.pk, profile.updated_by) == (1, reviewer)
    values = company_profile_values()
    assert values["Company Name"] == "Acme"
    assert values["Customer Support Phone Number"] == values["Customer Service Phone Number"] == "+1 800 555 0100"
    assert values["Customer Support Email"] == values["Support Email Address"] == "help@acme.example"
    assert values["Customer Support Availability"] == "Mon-Fri 9:00-17:00"
    assert values["Live Chat"] == "the chat at acme.example/chat"
    assert values["Refund Policy"] == "acme.example/refunds"  # stripped
    assert values["Website Name"] == "the Acme shop"  # extra wins over the field for the same name
    assert values["Website"] == "acme.example"
    assert "Returns Address" not in values  # blank fields fill nothing
    # a later change keeps the other fields; a blank text clears one
    company_profile_update(user=UserFactory(role="admin"), support_phone="", returns_address="1 Dock Rd, Leeds")
    values = company_profile_values()
    assert "Customer Support Phone Number" not in values and values["Returns Address"] == "1 Dock Rd, Leeds"
    assert values["Company Name"] == "Acme" and CompanyProfile.objects.count() == 1


@pytest.mark.parametrize("role", ["agent", "marketer", "analyst", None])
def test_only_reviewers_and_admins_change_it(role):
    with pytest.raises(Forbidden):
        company_profile_update(user=UserFactory(role=role), company_name="Acme")
    assert not CompanyProfile.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"support_email": "not-an-address"}, "support_email", "valid email"),
        ({"website_url": "acme dot example"}, "website_url", "valid URL"),
        ({"company_name": "Acme {{Company Name}}"}, "company_name", "Braces"),
        ({"company_name": "x" * 201}, "company_name", "at most 200"),
        ({"extra": {"Refund Policy": ""}}, "extra", "1 to 500 characters"),
        ({"extra": {"": "x"}}, "extra", "1 to 64 characters"),
        ({"extra": {"Policy {x}": "x"}}, "extra", "braces"),
        ({"extra": {f"Name {i}": "x" for i in range(51)}}, "extra", "At most 50 placeholders"),
        ({"extra": ["Refund Policy"]}, "extra", "A map of placeholder names"),
        ({"colour": "red"}, "colour", "Not a field"),
    ],
)
def test_errors_name_the_field_and_the_limit(changes, field, words):
    with pytest.raises(InvalidInput) as caught:
        company_profile_update(user=UserFactory(role="admin"), **changes)
    assert words in " ".join(caught.value.errors[field]), caught.value.errors
    assert not CompanyProfile.objects.filter(updated_by__isnull=False).exists()


def test_the_admin_edits_the_one_profile_row_through_the_service(client):
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-secret-123")
    client.force_login(root)
    form = {"company_name": "Acme", "website_name": "", "website_url": "https://acme.example", "support_phone": "",
            "support_email": "help@acme.example", "support_hours": "", "live_chat": "", "returns_address": "",
            "extra": '{"Refund Policy": "acme.example/refunds"}'}
    response = client.post("/admin/generation/companyprofile/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    profile = CompanyProfile.objects.get()
    assert (profile.pk, profile.company_name, profile.updated_by) == (1, "Acme", root)
    assert company_profile_values()["Refund Policy"] == "acme.example/refunds"
    assert client.get("/admin/generation/companyprofile/add/").status_code == 403  # one row only
    bad = client.post("/admin/generation/companyprofile/1/change/", {**form, "extra": '{"Refund Policy": "{{x}}"}'})
    assert bad.status_code == 200 and "braces are not allowed" in bad.content.decode()
    assert client.post("/admin/generation/companyprofile/1/delete/").status_code == 403

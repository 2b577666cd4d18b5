import pytest
from django.contrib.auth import get_user_model

from review.models import ReviewItem, ReviewStatus
from review.services import reviews

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-secret-123")
    client.force_login(user)
    client.user = user
    return client


def test_admin_publishes_and_exports_only_approved_items(admin_client, draft, reviewer):
    approved, pending = draft(kind="copy", text="Good lamp."), draft(kind="copy", text="Meh lamp.")
    for c in (approved, pending):
        reviews.review_item_submit(candidate=c, user=c.job.owner)
    reviews.review_item_approve(item=approved.review_item, user=reviewer)
    ids = [str(approved.review_item.pk), str(pending.review_item.pk)]
    url = "/admin/review/reviewitem/"
    refused = admin_client.post(url, {"action": "export_csv", "_selected_action": ids}, follow=True)
    assert "Only approved content can be exported" in refused.content.decode()
    exported = admin_client.post(url, {"action": "export_csv", "_selected_action": ids[:1]})
    assert exported["Content-Type"] == "text/csv" and "Good lamp." in exported.content.decode()
    admin_client.post(url, {"action": "publish", "_selected_action": ids}, follow=True)
    assert ReviewItem.objects.get(pk=ids[0]).published_at is not None
    assert ReviewItem.objects.get(pk=ids[1]).published_at is None
    assert ReviewItem.objects.get(pk=ids[1]).status == ReviewStatus.PENDING
    # the status cannot be edited around the services
    change = admin_client.post(f"{url}{ids[1]}/change/", {"status": "approved"})
    assert ReviewItem.objects.get(pk=ids[1]).status == ReviewStatus.PENDING
    assert change.status_code in (200, 302, 403)

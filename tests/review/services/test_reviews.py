import pytest

from generation import roles
from generation.exceptions import Conflict, Forbidden, InvalidInput
from review.models import Feedback, Outcome, ReviewEvent, ReviewStatus
from review.services import reviews

pytestmark = pytest.mark.django_db


def _trail(item):
    return [(e.action, e.from_status, e.to_status, e.actor_id) for e in ReviewEvent.objects.filter(item=item)]


def test_submit_then_approve_logs_every_transition(draft, reviewer):
    candidate = draft(kind="copy", text="A red lamp.")
    owner = candidate.job.owner
    item = reviews.review_item_submit(candidate=candidate, user=owner, text="A bright red lamp.")
    assert (item.status, item.text, item.kind) == (ReviewStatus.PENDING, "A bright red lamp.", "copy")
    item = reviews.review_item_assign(item=item, user=reviewer, assignee=reviewer)
    assert item.assigned_to == reviewer
    item = reviews.review_item_approve(item=item, user=reviewer, reason="fine")
    assert item.status == ReviewStatus.APPROVED and item.decided_by == reviewer and item.decided_at
    assert _trail(item) == [
        ("submit", "", "pending", owner.pk),
        ("assign", "pending", "pending", reviewer.pk),
        ("approve", "pending", "approved", reviewer.pk),
    ]
    assert ReviewEvent.objects.filter(item=item, action="approve").get().reason == "fine"


def test_reject_and_request_changes_need_a_reason(draft, reviewer):
    candidate = draft(kind="copy")
    item = reviews.review_item_submit(candidate=candidate, user=candidate.job.owner)
    with pytest.raises(InvalidInput) as error:
        reviews.review_item_reject(item=item, user=reviewer, reason="  ")
    assert "reason" in error.value.errors
    with pytest.raises(InvalidInput):
        reviews.review_item_request_changes(item=item, user=reviewer, reason="")
    item = reviews.review_item_reject(item=item, user=reviewer, reason="Claims a 10-year warranty we do not offer.")
    assert item.status == ReviewStatus.REJECTED
    with pytest.raises(Conflict):
        reviews.review_item_approve(item=item, user=reviewer)


def test_changes_requested_then_resubmitted_then_approved(draft, reviewer):
    candidate = draft(kind="copy")
    owner = candidate.job.owner
    item = reviews.review_item_submit(candidate=candidate, user=owner)
    item = reviews.review_item_request_changes(item=item, user=reviewer, reason="Mention the colour.")
    assert item.status == ReviewStatus.CHANGES_REQUESTED
    with pytest.raises(Forbidden):
        reviews.review_item_resubmit(item=item, user=reviewer, text="x")
    with pytest.raises(InvalidInput):
        reviews.review_item_resubmit(item=item, user=owner, text="   ")
    # submitting the same candidate again resubmits it
    item = reviews.review_item_submit(candidate=candidate, user=owner, text="A red lamp, in red.")
    assert (item.status, item.text) == (ReviewStatus.PENDING, "A red lamp, in red.")
    item = reviews.review_item_approve(item=item, user=reviewer)
    assert [a for a, *_ in _trail(item)] == ["submit", "request_changes", "resubmit", "approve"]


def test_only_reviewers_decide_and_never_their_own_submission(draft, make_user, reviewer):
    candidate = draft(kind="copy")
    owner = candidate.job.owner
    item = reviews.review_item_submit(candidate=candidate, user=owner)
    for user in (owner, make_user(roles.AGENT), make_user(roles.ANALYST)):
        with pytest.raises(Forbidden):
            reviews.review_item_approve(item=item, user=user)
        with pytest.raises(Forbidden):
            reviews.review_item_reject(item=item, user=user, reason="no")
    own = draft(kind="copy", owner=reviewer)
    own_item = reviews.review_item_submit(candidate=own, user=reviewer)
    with pytest.raises(Forbidden):
        reviews.review_item_approve(item=own_item, user=reviewer)
    admin = make_user(roles.ADMIN)
    assert reviews.review_item_approve(item=own_item, user=admin).status == ReviewStatus.APPROVED


def test_submit_needs_ownership_and_a_finished_job(draft, make_user):
    candidate = draft(kind="copy")
    with pytest.raises(Forbidden):
        reviews.review_item_submit(candidate=candidate, user=make_user(roles.MARKETER))
    candidate.job.status = "running"
    candidate.job.save()
    with pytest.raises(Conflict):
        reviews.review_item_submit(candidate=candidate, user=candidate.job.owner)


def test_second_review_needs_another_reviewer(draft, make_user, reviewer, settings):
    settings.GENAI_REVIEW_SECOND_REVIEW_KINDS = ["copy"]
    candidate = draft(kind="copy")
    item = reviews.review_item_submit(candidate=candidate, user=candidate.job.owner)
    assert item.needs_second_review
    item = reviews.review_item_approve(item=item, user=reviewer)
    assert item.status == ReviewStatus.PENDING and item.first_approved_by == reviewer
    with pytest.raises(Forbidden):
        reviews.review_item_approve(item=item, user=reviewer)
    second = make_user(roles.REVIEWER)
    item = reviews.review_item_approve(item=item, user=second)
    assert item.status == ReviewStatus.APPROVED
    assert [a for a, *_ in _trail(item)] == ["submit", "first_approval", "approve"]


def test_assignment_rules(draft, make_user, reviewer):
    candidate = draft(kind="copy")
    item = reviews.review_item_submit(candidate=candidate, user=candidate.job.owner)
    other = make_user(roles.REVIEWER)
    with pytest.raises(Forbidden):  # reviewers take items; only admins assign others
        reviews.review_item_assign(item=item, user=reviewer, assignee=other)
    with pytest.raises(Forbidden):
        reviews.review_item_assign(item=item, user=candidate.job.owner, assignee=candidate.job.owner)
    admin = make_user(roles.ADMIN)
    with pytest.raises(InvalidInput):
        reviews.review_item_assign(item=item, user=admin, assignee=make_user(roles.AGENT))
    assert reviews.review_item_assign(item=item, user=admin, assignee=other).assigned_to == other
    assert reviews.review_item_assign(item=item, user=admin, assignee=None).assigned_to is None


def test_only_approved_content_is_published_once(draft, reviewer):
    candidate = draft(kind="copy")
    owner = candidate.job.owner
    item = reviews.review_item_submit(candidate=candidate, user=owner)
    with pytest.raises(Conflict, match="Only approved"):
        reviews.review_item_publish(item=item, user=owner)
    item = reviews.review_item_approve(item=item, user=reviewer)
    item = reviews.review_item_publish(item=item, user=owner)
    assert item.published_at is not None and item.published_by == owner
    with pytest.raises(Conflict, match="Already published"):
        reviews.review_item_publish(item=item, user=owner)


def test_reviewed_reply_counts_as_sent_when_approved(draft, reviewer, settings):
    settings.GENAI_REVIEW_REPLIES = True
    from review.services.feedback import candidate_send

    candidate = draft(kind="reply", text="It ships today.")
    agent = candidate.job.owner
    feedback, item = candidate_send(candidate=candidate, user=agent, text="It ships today, tracking follows.")
    assert item is not None and item.status == ReviewStatus.PENDING and feedback.outcome == ""
    reviews.review_item_approve(item=item, user=reviewer)
    feedback = Feedback.objects.get(candidate=candidate, user=agent)
    assert feedback.outcome == Outcome.SENT_EDITED and feedback.edit_distance == len(", tracking follows")

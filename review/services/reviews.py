"""The review queue: content that needs a reviewer's approval before it is published or sent.

State machine (every transition writes a ``ReviewEvent``: who, when, from, to, reason)::

    (none) -> pending                     submit (the job's owner, a reviewer or an admin)
    pending -> pending                    assign; first approval when a second review is needed
    pending -> approved                   approve (a reviewer other than the submitter; with a
                                          second review, a reviewer other than the first)
    pending -> rejected                   reject (a reviewer; a reason is required)
    pending -> changes_requested          request changes (a reviewer; a reason is required)
    changes_requested -> pending          resubmit with new text (the submitter)
    approved -> approved                  publish (only approved content; once)

Only approved content is published or exported (``review_item_publish``, the export API, the
admin action and ``feedback_export`` all check it; a database constraint backs it).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from generation import roles
from generation.exceptions import Conflict, Forbidden, InvalidInput
from generation.models import Candidate, JobStatus
from review import metrics
from review.models import ReviewEvent, ReviewItem, ReviewStatus


def kind_needs_review(kind: str) -> bool:
    return kind in settings.GENAI_REVIEW_COPY_KINDS or (kind == "reply" and settings.GENAI_REVIEW_REPLIES)


def _reviewer_check(user: AbstractBaseUser, action: str) -> None:
    if not roles.user_is_reviewer(user):
        raise Forbidden(f"Only reviewers and admins may {action}.")


def _text_check(text: str, field: str = "text") -> str:
    if not text or not text.strip():
        raise InvalidInput({field: ["The text to review is empty."]})
    if len(text) > settings.GENAI_REVIEW_MAX_TEXT_CHARS:
        raise InvalidInput({field: [f"At most {settings.GENAI_REVIEW_MAX_TEXT_CHARS} characters (GENAI_REVIEW_MAX_TEXT_CHARS)."]})
    from generation.privacy import pii_mask

    return pii_mask(text).text  # stored, exported and sent as masked (one masking policy)


def _reason_check(reason: str, *, required: bool) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise InvalidInput({"reason": ["A reason is required."]})
    if len(reason) > settings.GENAI_REVIEW_MAX_COMMENT_CHARS:
        raise InvalidInput({"reason": [f"At most {settings.GENAI_REVIEW_MAX_COMMENT_CHARS} characters (GENAI_REVIEW_MAX_COMMENT_CHARS)."]})
    return reason


def _event(*, item: ReviewItem, actor: AbstractBaseUser, action: str, from_status: str, reason: str = "") -> ReviewEvent:
    event = ReviewEvent.objects.create(
        item=item, actor=actor, action=action, from_status=from_status, to_status=item.status, reason=reason
    )
    transaction.on_commit(lambda: metrics.review_transition(kind=item.kind, action=action, to_status=item.status))
    return event


def _locked(item: ReviewItem) -> ReviewItem:
    return ReviewItem.objects.select_for_update().select_related("candidate__job").get(pk=item.pk)


@transaction.atomic
def review_item_submit(*, candidate: Candidate, user: AbstractBaseUser, text: str | None = None) -> ReviewItem:
    """Put a candidate (as is, or as edited) in the review queue. Submitting again while it is
    waiting for changes resubmits it; while pending it updates nothing and returns the item."""
    job = candidate.job
    if job.owner_id != user.pk and not roles.user_is_reviewer(user):
        raise Forbidden("You may only submit your own drafts for review.")
    if job.status != JobStatus.SUCCEEDED:
        raise Conflict(f"The job is {job.status}; only finished drafts can be reviewed.")
    text = _text_check(candidate.text if text is None else text)
    existing = ReviewItem.objects.select_for_update().filter(candidate=candidate).first()
    if existing is not None:
        if existing.status == ReviewStatus.CHANGES_REQUESTED:
            return review_item_resubmit(item=existing, user=user, text=text)
        if existing.status == ReviewStatus.PENDING:
            return existing
        raise Conflict(f"This draft was already reviewed: {existing.get_status_display().lower()}.")
    item = ReviewItem.objects.create(
        candidate=candidate,
        kind=job.kind,
        text=text,
        submitted_by=user,
        needs_second_review=job.kind in settings.GENAI_REVIEW_SECOND_REVIEW_KINDS,
    )
    _event(item=item, actor=user, action="submit", from_status="")
    return item


@transaction.atomic
def review_item_assign(*, item: ReviewItem, user: AbstractBaseUser, assignee: AbstractBaseUser | None) -> ReviewItem:
    """Assign a pending item to a reviewer (None: unassign). Reviewers may take an item
    themselves; only admins assign others."""
    _reviewer_check(user, "assign review items")
    item = _locked(item)
    if item.status != ReviewStatus.PENDING:
        raise Conflict(f"Only pending items can be assigned; this one is {item.status}.")
    if assignee is not None:
        if not roles.user_is_reviewer(assignee):
            raise InvalidInput({"assignee": [f"{assignee.get_username()} is not a reviewer."]})
        if assignee.pk != user.pk and not roles.user_has_role(user, roles.ADMIN):
            raise Forbidden("Only admins assign items to someone else; reviewers take items themselves.")
    item.assigned_to = assignee
    item.save(update_fields=["assigned_to", "updated_at"])
    _event(
        item=item, actor=user, action="assign", from_status=item.status,
        reason=f"assigned to {assignee.get_username()}" if assignee else "unassigned",
    )
    return item


def _decide_check(item: ReviewItem, user: AbstractBaseUser, action: str) -> None:
    _reviewer_check(user, f"{action} content")
    if item.status != ReviewStatus.PENDING:
        raise Conflict(f"Only pending items can be decided; this one is {item.get_status_display().lower()}.")
    if item.submitted_by_id == user.pk:
        raise Forbidden("You cannot review content you submitted yourself.")


@transaction.atomic
def review_item_approve(*, item: ReviewItem, user: AbstractBaseUser, reason: str = "") -> ReviewItem:
    item = _locked(item)
    _decide_check(item, user, "approve")
    reason = _reason_check(reason, required=False)
    before = item.status
    if item.needs_second_review and item.first_approved_by_id is None:
        item.first_approved_by = user
        item.assigned_to = None  # up for the second reviewer
        item.save(update_fields=["first_approved_by", "assigned_to", "updated_at"])
        _event(item=item, actor=user, action="first_approval", from_status=before, reason=reason)
        return item
    if item.needs_second_review and item.first_approved_by_id == user.pk:
        raise Forbidden("The second review must be by another reviewer.")
    item.status = ReviewStatus.APPROVED
    item.decided_by, item.decided_at = user, timezone.now()
    item.save(update_fields=["status", "decided_by", "decided_at", "updated_at"])
    _event(item=item, actor=user, action="approve", from_status=before, reason=reason)
    _feedback_follow(item, user)
    return item


@transaction.atomic
def review_item_reject(*, item: ReviewItem, user: AbstractBaseUser, reason: str) -> ReviewItem:
    item = _locked(item)
    _decide_check(item, user, "reject")
    reason = _reason_check(reason, required=True)
    before = item.status
    item.status = ReviewStatus.REJECTED
    item.decided_by, item.decided_at = user, timezone.now()
    item.save(update_fields=["status", "decided_by", "decided_at", "updated_at"])
    _event(item=item, actor=user, action="reject", from_status=before, reason=reason)
    _feedback_follow(item, user)
    return item


@transaction.atomic
def review_item_request_changes(*, item: ReviewItem, user: AbstractBaseUser, reason: str) -> ReviewItem:
    item = _locked(item)
    _decide_check(item, user, "request changes to")
    reason = _reason_check(reason, required=True)
    before = item.status
    item.status = ReviewStatus.CHANGES_REQUESTED
    item.first_approved_by = None
    item.decided_by, item.decided_at = user, timezone.now()
    item.save(update_fields=["status", "first_approved_by", "decided_by", "decided_at", "updated_at"])
    _event(item=item, actor=user, action="request_changes", from_status=before, reason=reason)
    return item


@transaction.atomic
def review_item_resubmit(*, item: ReviewItem, user: AbstractBaseUser, text: str) -> ReviewItem:
    item = _locked(item)
    if item.submitted_by_id != user.pk and not roles.user_has_role(user, roles.ADMIN):
        raise Forbidden("Only the submitter may resubmit.")
    if item.status != ReviewStatus.CHANGES_REQUESTED:
        raise Conflict(f"Only items with changes requested can be resubmitted; this one is {item.status}.")
    item.text = _text_check(text)
    before = item.status
    item.status = ReviewStatus.PENDING
    item.decided_by, item.decided_at = None, None
    item.save(update_fields=["text", "status", "decided_by", "decided_at", "updated_at"])
    _event(item=item, actor=user, action="resubmit", from_status=before)
    return item


@transaction.atomic
def review_item_publish(*, item: ReviewItem, user: AbstractBaseUser) -> ReviewItem:
    """Mark approved content as published (exported to the shop or sent). Anything else: 409."""
    item = _locked(item)
    if item.submitted_by_id != user.pk and not roles.user_is_reviewer(user):
        raise Forbidden("Only the submitter, reviewers and admins may publish.")
    if item.status != ReviewStatus.APPROVED:
        raise Conflict(f"Only approved content can be published; this is {item.get_status_display().lower()}.")
    if item.published_at is not None:
        raise Conflict(f"Already published at {item.published_at:%Y-%m-%d %H:%M} UTC.")
    item.published_at, item.published_by = timezone.now(), user
    item.save(update_fields=["published_at", "published_by", "updated_at"])
    _event(item=item, actor=user, action="publish", from_status=item.status)
    return item


def _feedback_follow(item: ReviewItem, user: AbstractBaseUser) -> None:
    from review.services.feedback import feedback_outcome_from_review

    feedback_outcome_from_review(item=item, actor=user)

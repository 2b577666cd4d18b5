"""Feedback on candidates: ratings, reports with a reason, edits and the outcome (sent as is,
sent edited, discarded). One row per candidate and person, updated as they act on it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from rapidfuzz.distance import Levenshtein

from generation import roles
from generation.exceptions import Forbidden, InvalidInput
from generation.models import Candidate
from generation.privacy import pii_mask
from review import metrics
from review.models import Feedback, FeedbackReason, Outcome, ReviewStatus, Thumb

_UNSET = object()


def edit_distance(a: str, b: str) -> int:
    """Character-level Levenshtein distance (rapidfuzz)."""
    return Levenshtein.distance(a, b)


def candidate_visible_check(*, candidate: Candidate, user: AbstractBaseUser) -> None:
    """A person acts on their own jobs' candidates; reviewers and admins on anyone's."""
    if candidate.job.owner_id != user.pk and not roles.user_is_reviewer(user):
        raise Forbidden("You may only give feedback on your own drafts.")


def _validate(*, thumb, stars, reason, comment, edited_text, outcome) -> None:
    errors: dict[str, list[str]] = {}
    if thumb is not _UNSET and thumb not in ("", *Thumb.values):
        errors["thumb"] = [f"One of: {', '.join(Thumb.values)}."]
    if stars is not _UNSET and stars is not None and not (isinstance(stars, int) and 1 <= stars <= 5):
        errors["stars"] = ["A whole number from 1 to 5."]
    if reason is not _UNSET and reason not in ("", *FeedbackReason.values):
        errors["reason"] = [f"One of: {', '.join(FeedbackReason.values)}."]
    if outcome is not _UNSET and outcome not in ("", *Outcome.values):
        errors["outcome"] = [f"One of: {', '.join(Outcome.values)}."]
    limit = settings.GENAI_REVIEW_MAX_COMMENT_CHARS
    if comment is not _UNSET and len(comment or "") > limit:
        errors["comment"] = [f"At most {limit} characters (GENAI_REVIEW_MAX_COMMENT_CHARS)."]
    text_limit = settings.GENAI_REVIEW_MAX_TEXT_CHARS
    if edited_text is not _UNSET and len(edited_text or "") > text_limit:
        errors["edited_text"] = [f"At most {text_limit} characters (GENAI_REVIEW_MAX_TEXT_CHARS)."]
    if outcome == Outcome.SENT_EDITED and edited_text is not _UNSET and not (edited_text or "").strip():
        errors["edited_text"] = ["Sent edited needs the edited text."]
    if errors:
        raise InvalidInput(errors)


@transaction.atomic
def feedback_submit(
    *,
    candidate: Candidate,
    user: AbstractBaseUser,
    thumb: Any = _UNSET,
    stars: Any = _UNSET,
    reason: Any = _UNSET,
    comment: Any = _UNSET,
    edited_text: Any = _UNSET,
    outcome: Any = _UNSET,
) -> Feedback:
    """Create or update the user's feedback on a candidate; only the fields given change.

    Sending with text different from the draft is ``sent_edited`` (sent as is with changed text
    is corrected to it); the edit distance from the draft to the sent text is stored.
    """
    candidate_visible_check(candidate=candidate, user=user)
    _validate(thumb=thumb, stars=stars, reason=reason, comment=comment, edited_text=edited_text, outcome=outcome)
    feedback, _ = Feedback.objects.select_for_update().get_or_create(candidate=candidate, user=user)
    previous_outcome = feedback.outcome
    for name, value in (("thumb", thumb), ("stars", stars), ("reason", reason), ("comment", comment),
                        ("edited_text", edited_text), ("outcome", outcome)):
        if value is not _UNSET:
            setattr(feedback, name, value if value is not None or name == "stars" else "")
    if feedback.edited_text and feedback.edited_text.strip() == candidate.text.strip():
        feedback.edited_text = ""
    if feedback.outcome == Outcome.SENT_AS_IS and feedback.edited_text:
        feedback.outcome = Outcome.SENT_EDITED
    elif feedback.outcome == Outcome.SENT_EDITED and not feedback.edited_text:
        feedback.outcome = Outcome.SENT_AS_IS
    if feedback.outcome in (Outcome.SENT_AS_IS, Outcome.SENT_EDITED):
        feedback.edit_distance = edit_distance(candidate.text, feedback.edited_text or candidate.text)
    else:
        feedback.edit_distance = None
    # What people type is stored masked, like every other text (the distance above is measured
    # on what they sent: masking is not an edit).
    feedback.edited_text = pii_mask(feedback.edited_text or "").text
    feedback.comment = pii_mask(feedback.comment or "").text
    if feedback.outcome != previous_outcome:
        feedback.decided_at = timezone.now() if feedback.outcome else None
    feedback.save()
    if feedback.outcome and feedback.outcome != previous_outcome:
        transaction.on_commit(lambda: metrics.feedback_decided(kind=candidate.job.kind, outcome=feedback.outcome))
    if reason is not _UNSET and reason:
        transaction.on_commit(lambda: metrics.feedback_reported(kind=candidate.job.kind, reason=reason))
    return feedback


def candidate_send(*, candidate: Candidate, user: AbstractBaseUser, text: str | None = None) -> tuple[Feedback, Any]:
    """An agent sends a draft (as is, or edited). When replies need approval
    (GENAI_REVIEW_REPLIES) or the kind always does, it goes to the review queue instead and
    counts as sent only once approved. Returns ``(feedback, review_item or None)``."""
    from review.services.reviews import kind_needs_review, review_item_submit

    candidate_visible_check(candidate=candidate, user=user)
    text = candidate.text if text is None else text
    if not text.strip():
        raise InvalidInput({"text": ["The reply to send is empty."]})
    from review.services.safety import candidate_is_flagged

    if candidate_is_flagged(candidate.metadata) and not roles.user_is_reviewer(user):
        raise Forbidden("This draft was withheld by the safety filter; a reviewer must clear it.")
    if kind_needs_review(candidate.job.kind):
        item = review_item_submit(candidate=candidate, user=user, text=text)
        feedback = feedback_submit(candidate=candidate, user=user, edited_text=text if text != candidate.text else "")
        return feedback, item
    outcome = Outcome.SENT_AS_IS if text.strip() == candidate.text.strip() else Outcome.SENT_EDITED
    feedback = feedback_submit(candidate=candidate, user=user, outcome=outcome, edited_text="" if outcome == Outcome.SENT_AS_IS else text)
    return feedback, None


def feedback_outcome_from_review(*, item, actor: AbstractBaseUser) -> None:
    """A reviewed reply counts as sent (as submitted) once approved, discarded once rejected."""
    if item.kind in settings.GENAI_REVIEW_COPY_KINDS:
        return
    if item.status == ReviewStatus.APPROVED:
        outcome = Outcome.SENT_AS_IS if item.text.strip() == item.candidate.text.strip() else Outcome.SENT_EDITED
    elif item.status == ReviewStatus.REJECTED:
        outcome = Outcome.DISCARDED
    else:
        return
    feedback_submit(
        candidate=item.candidate,
        user=item.submitted_by,
        outcome=outcome,
        edited_text="" if outcome != Outcome.SENT_EDITED else item.text,
    )

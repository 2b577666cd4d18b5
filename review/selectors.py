"""The read side of review and feedback: queues, visible feedback, quality metrics."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Avg, Count, Q, QuerySet
from rapidfuzz.distance import Levenshtein

from generation import roles
from generation.exceptions import NotFound
from generation.models import Candidate
from review.models import ACCEPTED_OUTCOMES, Feedback, Outcome, ReviewItem, ReviewStatus, Thumb


def review_item_list(
    *,
    user: AbstractBaseUser,
    status: str | None = None,
    kind: str | None = None,
    assigned: str | None = None,
    flagged: bool | None = None,
) -> QuerySet[ReviewItem]:
    """Reviewers and admins see the whole queue; others see what they submitted.
    ``assigned``: ``me``, ``none`` or a username."""
    items = ReviewItem.objects.select_related("candidate__job", "submitted_by", "assigned_to", "first_approved_by")
    if not roles.user_is_reviewer(user):
        items = items.filter(submitted_by=user)
    if status:
        items = items.filter(status=status)
    if kind:
        items = items.filter(kind=kind)
    if assigned == "me":
        items = items.filter(assigned_to=user)
    elif assigned == "none":
        items = items.filter(assigned_to__isnull=True)
    elif assigned:
        items = items.filter(assigned_to__username=assigned)
    if flagged is not None:
        items = items.filter(candidate__metadata__safety__flagged=True) if flagged else items.exclude(
            candidate__metadata__safety__flagged=True
        )
    return items


def review_item_get(*, user: AbstractBaseUser, item_id: int | str) -> ReviewItem:
    try:
        return review_item_list(user=user).prefetch_related("events__actor").get(pk=int(item_id))
    except (ReviewItem.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"No review item {item_id} that you can see.") from None


def candidate_get(*, user: AbstractBaseUser, candidate_id: int | str) -> Candidate:
    """A candidate of a job the user may see (their own; reviewers and admins: any)."""
    candidates = Candidate.objects.select_related("job", "job__owner")
    if not roles.user_is_reviewer(user):
        candidates = candidates.filter(job__owner=user)
    try:
        return candidates.get(pk=int(candidate_id))
    except (Candidate.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"No candidate {candidate_id} that you can see.") from None


def feedback_list(*, user: AbstractBaseUser) -> QuerySet[Feedback]:
    """Reviewers and admins see all feedback (it quotes drafts); others their own."""
    rows = Feedback.objects.select_related("candidate__job", "user")
    if roles.user_is_reviewer(user):
        return rows
    return rows.filter(user=user)


def flagged_candidates(*, limit: int = 100) -> QuerySet[Candidate]:
    """Candidates the safety filter flagged, newest first (for reviewers)."""
    return (
        Candidate.objects.filter(metadata__safety__flagged=True)
        .select_related("job", "job__owner")
        .order_by("-created_at")[:limit]
    )


@dataclass
class QualityRow:
    """Quality of one model version on one job kind."""

    kind: str
    model_version: str
    candidates: int = 0
    sent_as_is: int = 0
    sent_edited: int = 0
    discarded: int = 0
    approved: int = 0
    rejected: int = 0
    changes_requested: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    stars_mean: float | None = None
    stars_count: int = 0
    reports: int = 0
    flagged: int = 0
    edit_distances: list[int] = field(default_factory=list, repr=False)

    @property
    def accepted(self) -> int:
        return self.sent_as_is + self.sent_edited + self.approved

    @property
    def decided(self) -> int:
        return self.accepted + self.discarded + self.rejected

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.decided if self.decided else None

    @property
    def edit_distance_mean(self) -> float | None:
        return sum(self.edit_distances) / len(self.edit_distances) if self.edit_distances else None

    @property
    def thumbs_up_rate(self) -> float | None:
        total = self.thumbs_up + self.thumbs_down
        return self.thumbs_up / total if total else None

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "model_version": self.model_version,
            "candidates": self.candidates,
            "accepted": self.accepted,
            "decided": self.decided,
            "acceptance_rate": self.acceptance_rate,
            "sent_as_is": self.sent_as_is,
            "sent_edited": self.sent_edited,
            "discarded": self.discarded,
            "approved": self.approved,
            "rejected": self.rejected,
            "changes_requested": self.changes_requested,
            "edit_distance_mean": self.edit_distance_mean,
            "thumbs_up": self.thumbs_up,
            "thumbs_down": self.thumbs_down,
            "stars_mean": self.stars_mean,
            "stars_count": self.stars_count,
            "reports": self.reports,
            "flagged": self.flagged,
        }


def quality_by_model(*, kind: str | None = None) -> list[QualityRow]:
    """Acceptance rate, edit distance between draft and sent text, ratings, reports and safety
    flags per (job kind, model version).

    Accepted: replies (and other drafts) sent as is or edited; reviewed copy approved. Decided:
    those plus discarded drafts and rejected copy. A reviewed reply's outcome is recorded as
    feedback when it is decided, so it is counted once.
    """
    rows: dict[tuple[str, str], QualityRow] = {}

    def row(k: str, mv: str) -> QualityRow:
        return rows.setdefault((k, mv or ""), QualityRow(kind=k, model_version=mv or ""))

    candidates = Candidate.objects.all()
    if kind:
        candidates = candidates.filter(job__kind=kind)
    for r in candidates.values("job__kind", "job__model_version").annotate(
        n=Count("id"), flagged=Count("id", filter=Q(metadata__safety__flagged=True))
    ).order_by():
        target = row(r["job__kind"], r["job__model_version"])
        target.candidates, target.flagged = r["n"], r["flagged"]

    feedback = Feedback.objects.all()
    if kind:
        feedback = feedback.filter(candidate__job__kind=kind)
    for r in feedback.values("candidate__job__kind", "candidate__job__model_version").annotate(
        as_is=Count("id", filter=Q(outcome=Outcome.SENT_AS_IS)),
        edited=Count("id", filter=Q(outcome=Outcome.SENT_EDITED)),
        discarded=Count("id", filter=Q(outcome=Outcome.DISCARDED)),
        up=Count("id", filter=Q(thumb=Thumb.UP)),
        down=Count("id", filter=Q(thumb=Thumb.DOWN)),
        stars_mean=Avg("stars"),
        stars_n=Count("stars"),
        reports=Count("id", filter=~Q(reason="")),
    ).order_by():
        target = row(r["candidate__job__kind"], r["candidate__job__model_version"])
        target.sent_as_is, target.sent_edited, target.discarded = r["as_is"], r["edited"], r["discarded"]
        target.thumbs_up, target.thumbs_down, target.reports = r["up"], r["down"], r["reports"]
        target.stars_mean = round(r["stars_mean"], 3) if r["stars_mean"] is not None else None
        target.stars_count = r["stars_n"]
    for k, mv, distance in feedback.filter(outcome__in=ACCEPTED_OUTCOMES, edit_distance__isnull=False).values_list(
        "candidate__job__kind", "candidate__job__model_version", "edit_distance"
    ):
        row(k, mv).edit_distances.append(distance)

    items = ReviewItem.objects.filter(kind__in=settings.GENAI_REVIEW_COPY_KINDS)
    if kind:
        items = items.filter(kind=kind)
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for r in items.values("kind", "candidate__job__model_version", "status").annotate(n=Count("id")).order_by():
        counts[(r["kind"], r["candidate__job__model_version"])][r["status"]] = r["n"]
    for (k, mv), by_status in counts.items():
        target = row(k, mv)
        target.approved = by_status.get(ReviewStatus.APPROVED, 0)
        target.rejected = by_status.get(ReviewStatus.REJECTED, 0)
        target.changes_requested = by_status.get(ReviewStatus.CHANGES_REQUESTED, 0)
    for k, mv, draft, final in items.filter(status=ReviewStatus.APPROVED).values_list(
        "kind", "candidate__job__model_version", "candidate__text", "text"
    ):
        row(k, mv).edit_distances.append(Levenshtein.distance(draft, final))
    return sorted(rows.values(), key=lambda r: (r.kind, r.model_version))

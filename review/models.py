"""What people decide about generated content: feedback on candidates, the review queue for
content that needs approval, its audit log, and the scheduled retrains fed by both."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from generation.models import Candidate, Job


class Thumb(models.TextChoices):
    UP = "up"
    DOWN = "down"


class FeedbackReason(models.TextChoices):
    INCORRECT = "incorrect", "Incorrect information"
    INAPPROPRIATE = "inappropriate", "Inappropriate"
    INCOMPLETE = "incomplete", "Incomplete"
    OUTDATED = "outdated", "Outdated"
    OFF_BRAND = "off_brand", "Off-brand"
    UNSUPPORTED_CLAIM = "unsupported_claim", "Unsupported claim"
    OTHER = "other", "Other"


class Outcome(models.TextChoices):
    SENT_AS_IS = "sent_as_is", "Sent as is"
    SENT_EDITED = "sent_edited", "Sent edited"
    DISCARDED = "discarded", "Discarded"


ACCEPTED_OUTCOMES = (Outcome.SENT_AS_IS, Outcome.SENT_EDITED)


class Feedback(models.Model):
    """One person's verdict on one candidate (one row per candidate and user, updated as they
    rate, edit, send or report it)."""

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="feedback")
    thumb = models.CharField(max_length=8, choices=Thumb.choices, blank=True)
    stars = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1 (bad) to 5 (excellent).")
    reason = models.CharField(max_length=32, choices=FeedbackReason.choices, blank=True)
    comment = models.TextField(blank=True)
    edited_text = models.TextField(blank=True, help_text="The text as the person changed it (blank: unchanged).")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    edit_distance = models.PositiveIntegerField(
        null=True, blank=True, help_text="Levenshtein distance (characters) from the draft to the sent text."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    decided_at = models.DateTimeField(null=True, blank=True, help_text="When the outcome was set.")

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["candidate", "user"], name="feedback_one_per_candidate_user"),
            models.CheckConstraint(
                condition=Q(stars__isnull=True) | Q(stars__gte=1, stars__lte=5), name="feedback_stars_range"
            ),
            models.CheckConstraint(condition=Q(thumb__in=["", *Thumb.values]), name="feedback_thumb_valid"),
            models.CheckConstraint(condition=Q(reason__in=["", *FeedbackReason.values]), name="feedback_reason_valid"),
            models.CheckConstraint(condition=Q(outcome__in=["", *Outcome.values]), name="feedback_outcome_valid"),
        ]
        indexes = [
            models.Index(fields=["outcome", "updated_at"], name="feedback_outcome_updated"),
            models.Index(fields=["reason"], name="feedback_reason"),
        ]

    def __str__(self) -> str:
        return f"feedback on {self.candidate_id} by {self.user_id}"

    @property
    def sent_text(self) -> str | None:
        if self.outcome == Outcome.SENT_EDITED:
            return self.edited_text
        if self.outcome == Outcome.SENT_AS_IS:
            return self.candidate.text
        return None


class ReviewStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"


class ReviewItem(models.Model):
    """A candidate that needs a reviewer's approval before it is published or sent (product copy
    always; replies when GENAI_REVIEW_REPLIES is on; flagged output that someone submits)."""

    candidate = models.OneToOneField(Candidate, on_delete=models.CASCADE, related_name="review_item")
    kind = models.CharField(max_length=64, help_text="The job kind of the candidate.")
    text = models.TextField(help_text="The text under review (the candidate's, or as the submitter edited it).")
    status = models.CharField(max_length=24, choices=ReviewStatus.choices, default=ReviewStatus.PENDING)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_items_submitted"
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="review_items_assigned"
    )
    needs_second_review = models.BooleanField(default=False)
    first_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ReviewStatus.values), name="reviewitem_status_valid"),
            models.CheckConstraint(
                condition=Q(published_at__isnull=True) | Q(status=ReviewStatus.APPROVED),
                name="reviewitem_published_only_if_approved",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "kind", "created_at"], name="reviewitem_status_kind"),
            models.Index(fields=["assigned_to", "status"], name="reviewitem_assignee_status"),
        ]

    def __str__(self) -> str:
        return f"review of {self.candidate_id} ({self.status})"

    @property
    def is_edited(self) -> bool:
        return self.text != self.candidate.text


class ReviewEvent(models.Model):
    """The audit log: every transition of a review item, who made it and when."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=32)
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["item", "created_at"], name="reviewevent_item_created")]

    def __str__(self) -> str:
        return f"{self.action}: {self.from_status or '-'} -> {self.to_status}"


class RetrainRun(models.Model):
    """One scheduled (or manual) retrain: the feedback exported since the previous run and the
    fine-tune job it started."""

    purpose = models.CharField(max_length=32, default="reply")
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField()
    examples = models.PositiveIntegerField(default=0)
    dataset_path = models.CharField(max_length=500, blank=True)
    job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["purpose", "-created_at"], name="retrainrun_purpose_created")]

from django.conf import settings
from rest_framework import serializers

from review.models import Feedback, FeedbackReason, Outcome, ReviewEvent, ReviewItem, Thumb


class FeedbackInputSerializer(serializers.Serializer):
    """Only the fields sent are changed (a PATCH-like upsert of your feedback on a candidate)."""

    candidate = serializers.IntegerField(min_value=1, help_text="Candidate id (GET /api/jobs/{id} lists them).")
    thumb = serializers.ChoiceField(choices=Thumb.choices, required=False, allow_blank=True)
    stars = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    reason = serializers.ChoiceField(choices=FeedbackReason.choices, required=False, allow_blank=True)
    comment = serializers.CharField(max_length=settings.GENAI_REVIEW_MAX_COMMENT_CHARS, required=False, allow_blank=True)
    edited_text = serializers.CharField(max_length=settings.GENAI_REVIEW_MAX_TEXT_CHARS, required=False, allow_blank=True, trim_whitespace=False)
    outcome = serializers.ChoiceField(choices=Outcome.choices, required=False, allow_blank=True)


class FeedbackOutputSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.get_username", read_only=True)
    job = serializers.UUIDField(source="candidate.job_id", read_only=True)
    kind = serializers.CharField(source="candidate.job.kind", read_only=True)

    class Meta:
        model = Feedback
        fields = ["id", "candidate", "job", "kind", "user", "thumb", "stars", "reason", "comment", "edited_text",
                  "outcome", "edit_distance", "created_at", "updated_at", "decided_at"]
        read_only_fields = fields


class ReviewEventOutputSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.get_username", read_only=True)

    class Meta:
        model = ReviewEvent
        fields = ["action", "from_status", "to_status", "actor", "reason", "created_at"]
        read_only_fields = fields


def _username(user) -> str | None:
    return user.get_username() if user is not None else None


class ReviewItemOutputSerializer(serializers.ModelSerializer):
    job = serializers.UUIDField(source="candidate.job_id", read_only=True)
    draft = serializers.CharField(source="candidate.text", read_only=True)
    submitted_by = serializers.SerializerMethodField()
    assigned_to = serializers.SerializerMethodField()
    first_approved_by = serializers.SerializerMethodField()
    decided_by = serializers.SerializerMethodField()
    safety = serializers.SerializerMethodField()
    events = ReviewEventOutputSerializer(many=True, read_only=True)

    class Meta:
        model = ReviewItem
        fields = ["id", "candidate", "job", "kind", "status", "text", "draft", "submitted_by", "assigned_to",
                  "needs_second_review", "first_approved_by", "decided_by", "decided_at", "published_at",
                  "safety", "created_at", "updated_at", "events"]
        read_only_fields = fields

    def get_submitted_by(self, item) -> str | None:
        return _username(item.submitted_by)

    def get_assigned_to(self, item) -> str | None:
        return _username(item.assigned_to)

    def get_first_approved_by(self, item) -> str | None:
        return _username(item.first_approved_by)

    def get_decided_by(self, item) -> str | None:
        return _username(item.decided_by)

    def get_safety(self, item) -> dict:
        return (item.candidate.metadata or {}).get("safety") or {}


class ReviewSubmitInputSerializer(serializers.Serializer):
    candidate = serializers.IntegerField(min_value=1)
    text = serializers.CharField(
        max_length=settings.GENAI_REVIEW_MAX_TEXT_CHARS, required=False, trim_whitespace=False,
        help_text="The text to review; default: the candidate's own.",
    )


class ReviewDecisionInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=settings.GENAI_REVIEW_MAX_COMMENT_CHARS, required=False, allow_blank=True, default="")


class ReviewAssignInputSerializer(serializers.Serializer):
    assignee = serializers.CharField(max_length=150, allow_null=True, help_text="A reviewer's username; null unassigns.")


class ReviewResubmitInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=settings.GENAI_REVIEW_MAX_TEXT_CHARS, trim_whitespace=False)


class CandidateSendInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=settings.GENAI_REVIEW_MAX_TEXT_CHARS, required=False, trim_whitespace=False,
                                 help_text="The text sent; default: the draft as is.")


class CandidateSendOutputSerializer(serializers.Serializer):
    feedback = FeedbackOutputSerializer()
    review_item = ReviewItemOutputSerializer(allow_null=True)


class QualityRowSerializer(serializers.Serializer):
    kind = serializers.CharField()
    model_version = serializers.CharField()
    candidates = serializers.IntegerField()
    accepted = serializers.IntegerField()
    decided = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(allow_null=True)
    sent_as_is = serializers.IntegerField()
    sent_edited = serializers.IntegerField()
    discarded = serializers.IntegerField()
    approved = serializers.IntegerField()
    rejected = serializers.IntegerField()
    changes_requested = serializers.IntegerField()
    edit_distance_mean = serializers.FloatField(allow_null=True)
    thumbs_up = serializers.IntegerField()
    thumbs_down = serializers.IntegerField()
    stars_mean = serializers.FloatField(allow_null=True)
    stars_count = serializers.IntegerField()
    reports = serializers.IntegerField()
    flagged = serializers.IntegerField()

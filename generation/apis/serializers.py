from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from generation.models import PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN, Candidate, Job
from generation.selectors import candidate_withheld


class JobCreateInputSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=64, help_text="A job kind; GET /api/kinds/ lists them.")
    params = serializers.JSONField(help_text="Parameters of the kind (see the kind's schema in GET /api/kinds/).")
    priority = serializers.IntegerField(min_value=PRIORITY_MIN, max_value=PRIORITY_MAX, default=PRIORITY_DEFAULT)


class CandidateOutputSerializer(serializers.ModelSerializer):
    withheld = serializers.SerializerMethodField(
        help_text="True when the safety filter flagged the text: it is empty here until a reviewer clears it."
    )

    class Meta:
        model = Candidate
        fields = [
            "index", "text", "score", "finish_reason", "prompt_tokens", "completion_tokens", "metadata", "withheld",
        ]  # fmt: skip
        # Output only: no input limits, which would come from the database's column ranges and
        # make the schema differ between SQLite and PostgreSQL.
        read_only_fields = fields

    def _viewer(self):
        request = self.context.get("request")
        return self.context.get("viewer") or (request.user if request is not None else None)

    def get_withheld(self, candidate: Candidate) -> bool:
        return candidate_withheld(candidate, self._viewer())

    def to_representation(self, candidate: Candidate) -> dict:
        data = super().to_representation(candidate)
        if data["withheld"]:
            data["text"] = ""
        return data


class JobErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class JobProgressSerializer(serializers.Serializer):
    fraction = serializers.FloatField()
    message = serializers.CharField()


class JobOutputSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    error = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    candidates = CandidateOutputSerializer(many=True, read_only=True)
    links = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "kind", "status", "queue", "priority", "owner", "params", "attempts", "max_attempts", "error",
            "progress", "worker_id", "model_version", "usage", "created_at", "started_at", "first_token_at",
            "heartbeat_at", "finished_at", "candidates", "links",
        ]
        read_only_fields = fields  # as CandidateOutputSerializer's

    @extend_schema_field(JobErrorSerializer(allow_null=True))
    def get_error(self, job: Job) -> dict | None:
        return {"code": job.error_code, "message": job.error_message} if job.error_code else None

    @extend_schema_field(JobProgressSerializer)
    def get_progress(self, job: Job) -> dict:
        return {"fraction": job.progress, "message": job.progress_message}

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_links(self, job: Job) -> dict:
        return {
            "self": reverse("api-job-detail", args=[job.id]),
            "stream": reverse("api-job-stream", args=[job.id]),
            "cancel": reverse("api-job-cancel", args=[job.id]),
        }


class JobKindOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    queue = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    allowed = serializers.BooleanField(help_text="Whether the caller's roles may create it.")
    params = serializers.DictField(help_text="Parameter names with type, default and limits.")


class TokenCreateInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField()
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())


IDEMPOTENCY_KEY_MAX = settings.GENAI_IDEMPOTENCY_KEY_MAX_CHARS

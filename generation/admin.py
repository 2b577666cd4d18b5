from django.contrib import admin, messages
from django.db import models

from generation import roles
from generation.exceptions import DomainError
from generation.models import (
    BrandExample,
    Candidate,
    CompanyProfile,
    Conversation,
    Job,
    JobEvent,
    KnowledgeDoc,
    ModelVersion,
    WorkerHeartbeat,
)
from generation.services.company import FIELDS as COMPANY_PROFILE_FIELDS
from generation.services.company import WRITE_ROLES as COMPANY_PROFILE_WRITE_ROLES
from generation.services.company import company_profile_update
from generation.services.jobs import job_cancel, job_retry
from generation.services.knowledge import knowledge_active_set
from generation.services.model_versions import model_version_promote


class CandidateInline(admin.TabularInline):
    model = Candidate
    extra = 0
    can_delete = False
    fields = ["index", "text", "score", "finish_reason", "prompt_tokens", "completion_tokens"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "owner", "priority", "attempts", "progress", "created_at", "finished_at"]
    list_filter = ["status", "kind", "queue", "created_at"]
    search_fields = ["id", "owner__username", "idempotency_key", "error_code", "error_message", "worker_id"]
    date_hierarchy = "created_at"
    inlines = [CandidateInline]
    actions = ["cancel_jobs", "retry_jobs"]
    list_select_related = ["owner"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Job._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # jobs are created through the API, with validation and admission control

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request, queryset):
        self._each(request, queryset, lambda job: job_cancel(job=job, user=request.user), "cancelled")

    @admin.action(description="Retry selected failed or cancelled jobs")
    def retry_jobs(self, request, queryset):
        self._each(request, queryset, lambda job: job_retry(job=job), "requeued")

    def _each(self, request, queryset, action, verb: str) -> None:
        done = 0
        for job in queryset:
            try:
                action(job)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{job.id}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{done} job(s) {verb}.", messages.SUCCESS)


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "queues", "device", "pid", "started_at", "last_seen_at"]
    readonly_fields = list_display


admin.site.register(JobEvent, list_display=["id", "job", "attempt", "created_at"], readonly_fields=["job", "attempt", "deltas"])


class _KnowledgeAdmin(admin.ModelAdmin):
    """Read-only: rows come from imports (services/knowledge.py), which keep hashes and
    embeddings consistent; (de)activation goes through the service too."""

    kind = ""
    list_filter = ["active", "source", "language", "embedding_model"]
    actions = ["activate", "deactivate"]
    exclude = ["embedding"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "embedding"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Activate selected rows (searched)")
    def activate(self, request, queryset):
        changed = knowledge_active_set(kind=self.kind, ids=queryset.values_list("pk", flat=True), active=True)
        self.message_user(request, f"{changed} row(s) activated.", messages.SUCCESS)

    @admin.action(description="Deactivate selected rows (not searched)")
    def deactivate(self, request, queryset):
        changed = knowledge_active_set(kind=self.kind, ids=queryset.values_list("pk", flat=True), active=False)
        self.message_user(request, f"{changed} row(s) deactivated.", messages.SUCCESS)


@admin.register(KnowledgeDoc)
class KnowledgeDocAdmin(_KnowledgeAdmin):
    kind = "docs"
    list_display = ["id", "title", "source", "language", "active", "embedded_at", "updated_at"]
    search_fields = ["title", "body", "external_id"]


@admin.register(Conversation)
class ConversationAdmin(_KnowledgeAdmin):
    kind = "conversations"
    list_display = ["id", "customer_message", "intent", "category", "source", "active", "embedded_at"]
    list_filter = ["active", "source", "category", "intent", "language"]
    search_fields = ["customer_message", "agent_reply", "external_id"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["label", "family", "purpose", "status", "is_default", "created_at", "promoted_at"]
    list_filter = ["family", "purpose", "status", "is_default"]
    search_fields = ["name", "base_model"]
    actions = ["promote"]

    def get_readonly_fields(self, request, obj=None):
        # Promotion goes through the service (one default per family and purpose, who and when).
        return [f.name for f in ModelVersion._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # training jobs register versions

    @admin.action(description="Promote the selected version to default")
    def promote(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to promote.", messages.WARNING)
            return
        try:
            version = model_version_promote(version=queryset.get(), user=request.user)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.WARNING)
            return
        self.message_user(request, f"{version.label} is now the default.", messages.SUCCESS)


@admin.register(BrandExample)
class BrandExampleAdmin(admin.ModelAdmin):
    """Read-only here: examples are written through the API, whose service queues their embedding."""

    list_display = ["brand", "collection", "active", "embedding_model", "updated_at"]
    list_filter = ["active", "brand"]
    search_fields = ["brand", "collection", "text"]
    exclude = ["embedding"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in BrandExample._meta.fields if f.name != "embedding"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(CompanyProfile)
class CompanyProfileAdmin(admin.ModelAdmin):
    """The one profile row: its values fill ``{{Placeholders}}`` in every reply draft. Saved
    through the service (who changed it, the same checks as the API and the page)."""

    list_display = ["__str__", "website_name", "support_phone", "support_email", "updated_by", "updated_at"]
    fields = [*COMPANY_PROFILE_FIELDS, "updated_by", "updated_at"]
    readonly_fields = ["updated_by", "updated_at"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request) -> bool:
        return self.has_change_permission(request) and not CompanyProfile.objects.exists()

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and roles.user_has_role(request.user, *COMPANY_PROFILE_WRITE_ROLES)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        saved = company_profile_update(user=request.user, **{name: getattr(obj, name) for name in COMPANY_PROFILE_FIELDS})
        obj.pk, obj.updated_by, obj.updated_at = saved.pk, saved.updated_by, saved.updated_at

"""Admin for feedback and the review queue. Review status is read-only here: transitions go
through the services (with the audit log), and only approved items can be published or exported."""

import csv

from django.contrib import admin, messages
from django.http import HttpResponse

from generation.exceptions import DomainError
from review.models import Feedback, RetrainRun, ReviewEvent, ReviewItem, ReviewStatus
from review.services import reviews


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["id", "candidate", "user", "thumb", "stars", "reason", "outcome", "edit_distance", "updated_at"]
    list_filter = ["outcome", "reason", "thumb", "stars", "candidate__job__kind"]
    search_fields = ["comment", "edited_text", "user__username"]
    raw_id_fields = ["candidate", "user"]
    list_select_related = ["user"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Feedback._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


class ReviewEventInline(admin.TabularInline):
    model = ReviewEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "actor", "action", "from_status", "to_status", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "submitted_by", "assigned_to", "published_at", "created_at"]
    list_filter = ["status", "kind", "needs_second_review"]
    search_fields = ["text", "submitted_by__username", "assigned_to__username"]
    inlines = [ReviewEventInline]
    actions = ["approve", "publish", "export_csv"]
    list_select_related = ["submitted_by", "assigned_to"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in ReviewItem._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the audit log stays

    @admin.action(description="Approve selected pending items")
    def approve(self, request, queryset):
        self._each(request, queryset, lambda item: reviews.review_item_approve(item=item, user=request.user), "approved")

    @admin.action(description="Publish selected approved items")
    def publish(self, request, queryset):
        self._each(request, queryset, lambda item: reviews.review_item_publish(item=item, user=request.user), "published")

    @admin.action(description="Export selected approved items as CSV")
    def export_csv(self, request, queryset):
        refused = queryset.exclude(status=ReviewStatus.APPROVED)
        if refused.exists():
            ids = ", ".join(str(pk) for pk in refused.values_list("pk", flat=True)[:20])
            self.message_user(request, f"Only approved content can be exported; not approved: {ids}.", messages.ERROR)
            return None
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="approved-content.csv"'
        writer = csv.writer(response)
        writer.writerow(["id", "kind", "job", "text", "approved_by", "approved_at"])
        for item in queryset.select_related("candidate", "decided_by"):
            writer.writerow([item.pk, item.kind, item.candidate.job_id, item.text,
                             item.decided_by.get_username() if item.decided_by else "", item.decided_at])
        return response

    def _each(self, request, queryset, action, verb: str) -> None:
        done = 0
        for item in queryset:
            try:
                action(item)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"Item {item.pk}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{done} item(s) {verb}.", messages.SUCCESS if done else messages.WARNING)


@admin.register(RetrainRun)
class RetrainRunAdmin(admin.ModelAdmin):
    list_display = ["id", "purpose", "since", "until", "examples", "job", "note", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in RetrainRun._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

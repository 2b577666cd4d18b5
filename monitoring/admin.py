from django.contrib import admin

from monitoring.models import (
    Alert,
    AlertRule,
    AlertTransition,
    Delivery,
    DeliveryAlert,
    DeliveryAttempt,
    Feed,
    NewsItem,
    SentimentScore,
    Silence,
    WatchedEntity,
)


@admin.register(NewsItem)
class NewsItemAdmin(admin.ModelAdmin):
    list_display = ("id", "published_at", "source", "sentiment_label", "sentiment_score", "text")
    list_filter = ("source", "sentiment_label")
    search_fields = ("text", "url", "title")


@admin.register(WatchedEntity)
class WatchedEntityAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "active")


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    list_display = ("url", "source", "enabled", "last_polled_at", "items_created", "last_error")


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "enabled", "entity", "aggregate", "condition", "threshold", "window_minutes", "severity",
                    "group_by", "group_wait_seconds", "group_interval_seconds", "inhibits")
    list_filter = ("enabled", "group_by", "inhibits")


class TransitionInline(admin.TabularInline):
    model = AlertTransition
    extra = 0


class NoticeInline(admin.TabularInline):
    model = DeliveryAlert
    extra = 0
    readonly_fields = ("delivery", "alert", "state", "channel", "target")
    can_delete = False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("id", "rule", "entity", "status", "severity", "started_at", "fired_at", "resolved_at",
                    "silenced_by", "inhibited_by")
    list_filter = ("status", "severity")
    inlines = [TransitionInline, NoticeInline]


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    list_display = ("id", "rule", "entity", "severity", "starts_at", "ends_at", "recurrence", "repeat_until",
                    "created_by", "comment")
    list_filter = ("recurrence",)
    readonly_fields = ("created_by",)

    def save_model(self, request, obj, form, change):
        if not change or obj.created_by_id is None:
            obj.created_by = request.user  # the author is whoever saved it first
        super().save_model(request, obj, form, change)


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "rule", "group_key", "state", "channel", "target", "status", "attempts", "sealed_at")
    list_filter = ("status", "channel", "state")
    inlines = [NoticeInline, AttemptInline]


admin.site.register(SentimentScore)

from django.contrib import admin

from monitoring.models import (
    Alert,
    AlertRule,
    AlertTransition,
    Delivery,
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
    list_display = ("name", "enabled", "entity", "condition", "threshold", "window_minutes", "severity")


class TransitionInline(admin.TabularInline):
    model = AlertTransition
    extra = 0


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("id", "rule", "entity", "status", "severity", "started_at", "fired_at", "resolved_at")
    list_filter = ("status", "severity")
    inlines = [TransitionInline]


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    list_display = ("id", "rule", "entity", "severity", "starts_at", "ends_at")


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "alert", "state", "channel", "target", "status", "attempts")
    inlines = [AttemptInline]


admin.site.register(SentimentScore)

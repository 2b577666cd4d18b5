"""Validation of news items as they come in (the API's JSON and uploads, ``manage.py news_import``):
one serializer, so every way in accepts the same items."""

from django.conf import settings
from rest_framework import serializers

DATE_HELP = "ISO 8601 with a time zone, e.g. 2026-11-30T09:00:00Z; a date alone means midnight UTC."


class NewsItemInputSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=64, default="api")
    text = serializers.CharField(max_length=settings.GENAI_NEWS_MAX_TEXT_CHARS, allow_blank=False, trim_whitespace=True)
    published_at = serializers.DateTimeField(help_text=DATE_HELP, required=False)
    url = serializers.URLField(max_length=2000, required=False, allow_blank=True, default="")
    title = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    language = serializers.CharField(max_length=16, required=False, default="en")
    entities = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, default=list,
        max_length=settings.GENAI_NEWS_MAX_ENTITIES, help_text="Entity keys to add to those found in the text.",
    )

    def validate(self, attrs: dict) -> dict:
        from django.utils import timezone

        attrs.setdefault("published_at", timezone.now())
        return attrs

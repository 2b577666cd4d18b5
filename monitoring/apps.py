from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """Financial sentiment monitoring: news ingestion, scoring, alert rules, summaries, delivery."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"

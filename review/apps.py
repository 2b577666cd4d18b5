from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review and feedback"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the scheduled-retrain task with Celery (web, worker and beat all load apps).
        from review import tasks  # noqa: F401

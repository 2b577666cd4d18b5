from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review and feedback"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every job's candidates pass the output safety filter before they are stored.
        from generation.metrics import collectors_register
        from generation.services.jobs import candidate_screen_register
        from review.metrics import review_collectors
        from review.services.safety import candidates_screen

        candidate_screen_register(candidates_screen)
        collectors_register(review_collectors)  # feedback, review queue and quality per model version

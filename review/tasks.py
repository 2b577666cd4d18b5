"""Celery tasks of the review app. The beat entry (``feedback_retrain``) is added by
``genai_site.celery`` only when GENAI_RETRAIN_ENABLED is on."""

from celery import shared_task


@shared_task(name="review.tasks.feedback_retrain", ignore_result=True)
def feedback_retrain(purpose: str = "reply") -> str:
    from review.services.retrain import retrain_run

    run = retrain_run(purpose=purpose)
    return run.note if run is not None else "retraining is off (GENAI_RETRAIN_ENABLED)"

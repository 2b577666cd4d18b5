"""The Celery app: queues, routing defaults and the beat schedule (the job sweeper).

Routing is per job kind (``generation.kinds``): ``job_enqueue`` sends each job's task to the queue
its kind declares. Tasks carry only the job id; the database row is the truth.
"""

import os

from celery import Celery

# Production unless told otherwise, like wsgi.py (make run and the tests set local / test).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.production")

app = Celery("genai_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Queues come from settings (CELERY_TASK_QUEUES); every installed app's tasks.py is a task module.
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule_sweeper(sender: Celery, **kwargs) -> None:
    from django.conf import settings

    sender.add_periodic_task(
        settings.GENAI_SWEEP_INTERVAL_SECONDS,
        sender.signature("workers.tasks.jobs_sweep", queue="cpu"),
        name="jobs_sweep",
    )
    # monitoring: alert rules (also evaluated after every scoring job) and RSS/Atom feeds
    sender.add_periodic_task(
        settings.GENAI_ALERT_EVAL_INTERVAL_SECONDS,
        sender.signature("monitoring.tasks.alert_rules_evaluate", queue="cpu"),
        name="alert_rules_evaluate",
    )
    sender.add_periodic_task(
        settings.GENAI_FEED_POLL_INTERVAL_SECONDS,
        sender.signature("monitoring.tasks.feeds_poll", queue="cpu"),
        name="feeds_poll",
    )
    if settings.GENAI_RETRAIN_ENABLED:  # review app: fine-tune from new approved feedback (off by default)
        sender.add_periodic_task(
            settings.GENAI_RETRAIN_INTERVAL_SECONDS,
            sender.signature("review.tasks.feedback_retrain", queue="cpu"),
            name="feedback_retrain",
        )

"""Celery tasks of monitoring (queue cpu): thin, they call services."""

from celery import shared_task


@shared_task(name="monitoring.tasks.alert_rules_evaluate", acks_late=True)
def alert_rules_evaluate() -> dict:
    """Beat (GENAI_ALERT_EVAL_INTERVAL_SECONDS): queue scoring for items no job scored yet (an
    ingestion whose job could not be queued, or a newly promoted classifier), then evaluate every
    enabled rule now."""
    from monitoring.services.alerts import alert_rules_evaluate as evaluate
    from monitoring.services.scoring import sentiment_unscored_enqueue

    sentiment_unscored_enqueue()
    return evaluate().as_dict()


@shared_task(name="monitoring.tasks.delivery_send", acks_late=True)
def delivery_send(delivery_id: int) -> str:
    """One attempt; the next one is scheduled with exponential backoff until it is delivered or
    GENAI_ALERT_DELIVERY_MAX_ATTEMPTS are used up."""
    from monitoring.services.alerts import delivery_schedule
    from monitoring.services.delivery import delivery_attempt

    outcome = delivery_attempt(delivery_id=delivery_id)
    if outcome.result in ("retry", "wait"):
        delivery_schedule(delivery_id=delivery_id, countdown=outcome.countdown)
    return outcome.result


@shared_task(name="monitoring.tasks.feeds_poll", acks_late=True)
def feeds_poll() -> dict:
    """Beat (GENAI_FEED_POLL_INTERVAL_SECONDS): read every enabled RSS/Atom feed."""
    from monitoring.services.feeds import feeds_poll as poll

    return poll()

"""Sentiment scores: which classifier version scores, the scoring job, and storing its output."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from generation import roles
from generation.models import Job, JobStatus
from generation.selectors import sentiment_model_resolve
from monitoring.models import NewsItem, SentimentScore

SCORE_KIND = "sentiment_score"
SUMMARY_KIND = "alert_summary"
PURPOSE = "sentiment"

logger = logging.getLogger(__name__)


def monitor_system_user() -> AbstractBaseUser:
    """The account that owns the jobs monitoring queues by itself (analyst)."""
    from generation.services.users import system_user_get

    return system_user_get(username=settings.GENAI_MONITOR_SYSTEM_USER, role=roles.ANALYST)


def sentiment_score_enqueue(*, owner: AbstractBaseUser | None = None, model: str | None = None) -> Job | None:
    """A scoring job for the unscored items: the queued one if any (it scores everything
    pending when it runs), else a new one. None when no classifier is trained yet."""
    from generation.services.jobs import job_create

    if sentiment_model_resolve(model) is None:
        return None
    queued = Job.objects.filter(kind=SCORE_KIND, status=JobStatus.QUEUED).order_by("created_at").first()
    if queued is not None and queued.params.get("model", "") == (model or ""):
        return queued
    params = {"model": model} if model else {}
    job, _ = job_create(owner=owner or monitor_system_user(), kind=SCORE_KIND, params=params)
    return job


def sentiment_unscored_enqueue() -> Job | None:
    """A scoring job if some item is not scored by the current classifier (and none is queued)."""
    from generation.exceptions import DomainError

    version = sentiment_model_resolve()
    if version is None or not NewsItem.objects.exclude(scored_version=version.label).exists():
        return None
    try:
        return sentiment_score_enqueue()
    except DomainError:  # the queue is full: next time
        return None


def sentiment_scoring_finished(*, version: str, scored: int, evaluate: bool = True) -> bool:
    """What follows a scoring job: the alert rules are evaluated by their own task on the cpu
    queue after the scores are committed, so a rule's failure never fails the scoring (and the
    beat evaluates them anyway). True when the evaluation was queued."""
    if not (evaluate and scored):
        return False
    from monitoring.tasks import alert_rules_evaluate

    def send() -> None:
        try:
            alert_rules_evaluate.apply_async(queue="cpu")
        except Exception:  # noqa: BLE001 - broker down: the beat evaluates the rules on its interval
            logger.exception("alert rule evaluation not queued after scoring", extra={"version": version})

    transaction.on_commit(send)
    return True


def sentiment_scores_store(*, version: str, rows: list[tuple[int, dict[str, float]]]) -> int:
    """Store one version's probabilities per item and make them the items' current scores."""
    now = timezone.now()
    stored = 0
    with transaction.atomic():
        existing = set(
            SentimentScore.objects.filter(item_id__in=[r[0] for r in rows], model_version=version).values_list(
                "item_id", flat=True
            )
        )
        new_scores = []
        for item_id, probs in rows:
            label = max(probs, key=probs.get)
            score = max(-1.0, min(1.0, probs["positive"] - probs["negative"]))
            if item_id not in existing:
                new_scores.append(
                    SentimentScore(
                        item_id=item_id,
                        model_version=version,
                        label=label,
                        p_negative=probs["negative"],
                        p_neutral=probs["neutral"],
                        p_positive=probs["positive"],
                        score=score,
                    )
                )
            stored += NewsItem.objects.filter(pk=item_id).update(
                sentiment_label=label, sentiment_score=score, scored_version=version, scored_at=now, updated_at=now
            )
        SentimentScore.objects.bulk_create(new_scores)
    return stored

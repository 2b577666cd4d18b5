"""Sentiment scores: which classifier version scores, the scoring job, and storing its output."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from generation import roles
from generation.models import Job, JobStatus, ModelVersion
from monitoring.models import NewsItem, SentimentScore

SCORE_KIND = "sentiment_score"
SUMMARY_KIND = "alert_summary"
PURPOSE = "sentiment"


def sentiment_model_resolve(name: str | None = None) -> ModelVersion | None:
    """The classifier that scores: ``name`` ("finsent" or "finsent@2"), else GENAI_SENTIMENT_MODEL,
    else the promoted sentiment version, else the newest ready one."""
    from generation.selectors import model_version_resolve

    name = name or settings.GENAI_SENTIMENT_MODEL or None
    return model_version_resolve(family="sentiment", name=name, purpose=None if name else PURPOSE)


def monitor_system_user() -> AbstractBaseUser:
    """The account that owns the jobs monitoring queues by itself (analyst role, cannot log in)."""
    from generation.services.users import role_group

    User = get_user_model()
    user, created = User.objects.get_or_create(username=settings.GENAI_MONITOR_SYSTEM_USER)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        user.groups.add(role_group(role=roles.ANALYST))
    return user


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

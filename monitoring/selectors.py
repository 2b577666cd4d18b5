"""The read side of monitoring: querysets the APIs, pages and jobs use."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Avg, Count, Q, QuerySet
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from generation.exceptions import NotFound
from monitoring.models import (
    Alert,
    AlertRule,
    NewsItem,
    NewsMention,
    SentimentScore,
    Silence,
    WatchedEntity,
)


def news_list(*, entity: str = "", source: str = "", label: str = "", since: datetime | None = None,
              until: datetime | None = None) -> QuerySet[NewsItem]:
    items = NewsItem.objects.all()
    if entity:
        items = items.filter(mentions__entity=entity.upper())
    if source:
        items = items.filter(source=source)
    if label:
        items = items.filter(sentiment_label=label)
    if since:
        items = items.filter(published_at__gte=since)
    if until:
        items = items.filter(published_at__lt=until)
    return items.order_by("-published_at", "-id")


def news_get(*, item_id: int) -> NewsItem:
    item = NewsItem.objects.filter(pk=item_id).first()
    if item is None:
        raise NotFound(f"No news item {item_id}.")
    return item


def news_unscored(*, version: str, rescore: bool = False) -> QuerySet[NewsItem]:
    """Items the classifier ``version`` has not scored (all items with ``rescore``)."""
    items = NewsItem.objects.all()
    return items if rescore else items.exclude(scored_version=version)


def score_list(*, entity: str = "", model_version: str = "", item_id: int | None = None) -> QuerySet[SentimentScore]:
    scores = SentimentScore.objects.select_related("item")
    if entity:
        scores = scores.filter(item__mentions__entity=entity.upper())
    if model_version:
        scores = scores.filter(model_version=model_version)
    if item_id:
        scores = scores.filter(item_id=item_id)
    return scores.order_by("-created_at", "-id")


def sentiment_series(*, entities: list[str] | None = None, since: datetime, until: datetime | None = None,
                     bucket: str = "hour") -> dict[str, list[dict]]:
    """Per entity, per hour or day: scored item count, negative count and mean score."""
    until = until or timezone.now()
    trunc = TruncHour if bucket == "hour" else TruncDay
    mentions = NewsMention.objects.filter(published_at__gte=since, published_at__lt=until, item__sentiment_score__isnull=False)
    if entities:
        mentions = mentions.filter(entity__in=[e.upper() for e in entities])
    rows = (
        mentions.annotate(bucket=trunc("published_at"))
        .values("entity", "bucket")
        .annotate(n=Count("id"), negative=Count("id", filter=Q(item__sentiment_label="negative")), mean=Avg("item__sentiment_score"))
        .order_by("entity", "bucket")
    )
    series: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        series[row["entity"]].append(
            {"at": row["bucket"], "count": row["n"], "negative": row["negative"], "mean_score": round(row["mean"], 4)}
        )
    return dict(series)


def entities_top(*, since: datetime, limit: int = 8) -> list[str]:
    """The entities mentioned most since ``since`` (watched ones first)."""
    watched = list(WatchedEntity.objects.filter(active=True).values_list("key", flat=True))
    busy = (
        NewsMention.objects.filter(published_at__gte=since)
        .values("entity")
        .annotate(n=Count("id"))
        .order_by("-n", "entity")
        .values_list("entity", flat=True)[: limit * 2]
    )
    ordered = list(dict.fromkeys([*[w for w in watched if w in set(busy)], *busy]))
    return ordered[:limit]


def entity_terms(*, key: str) -> list[str]:
    """What text may call an entity: its key, and its watch-list name and aliases if it is watched."""
    if not key or key == "*":
        return []
    entity = WatchedEntity.objects.filter(key=key).first()
    return [key] + ([entity.name, *(entity.aliases or [])] if entity else [])


def watched_entity_list() -> QuerySet[WatchedEntity]:
    return WatchedEntity.objects.all()


def watched_entity_get(*, entity_id: int) -> WatchedEntity:
    entity = WatchedEntity.objects.filter(pk=entity_id).first()
    if entity is None:
        raise NotFound(f"No watched entity {entity_id}.")
    return entity


def alert_rule_list() -> QuerySet[AlertRule]:
    return AlertRule.objects.all()


def alert_rule_get(*, rule_id: int) -> AlertRule:
    rule = AlertRule.objects.filter(pk=rule_id).first()
    if rule is None:
        raise NotFound(f"No alert rule {rule_id}.")
    return rule


def alert_list(*, status: str = "", entity: str = "", rule_id: int | None = None) -> QuerySet[Alert]:
    alerts = Alert.objects.select_related("rule", "acknowledged_by", "silenced_by")
    if status:
        alerts = alerts.filter(status__in=status.split(","))
    if entity:
        alerts = alerts.filter(entity=entity.upper())
    if rule_id:
        alerts = alerts.filter(rule_id=rule_id)
    return alerts.order_by("-started_at", "-id")


def alert_get(*, alert_id: int) -> Alert:
    alert = (
        Alert.objects.select_related("rule", "acknowledged_by", "silenced_by", "inhibited_by")
        .prefetch_related("transitions", "deliveries__attempt_log", "deliveries__notices")
        .filter(pk=alert_id)
        .first()
    )
    if alert is None:
        raise NotFound(f"No alert {alert_id}.")
    return alert


def silence_list(*, active_only: bool = False) -> QuerySet[Silence]:
    """Silences, newest first; ``active_only``: those muting now (a recurring one in its window)."""
    silences = Silence.objects.select_related("rule", "created_by")
    if active_only:
        now = timezone.now()
        silences = silences.filter(starts_at__lte=now).filter(
            Q(recurrence="", ends_at__gt=now) | (~Q(recurrence="") & Q(repeat_until__gt=now))
        )
        return silences.filter(pk__in=[s.pk for s in silences if s.active_at(now)])
    return silences


def silence_get(*, silence_id: int) -> Silence:
    silence = Silence.objects.filter(pk=silence_id).first()
    if silence is None:
        raise NotFound(f"No silence {silence_id}.")
    return silence


def default_series_since(days: int = 7) -> datetime:
    return timezone.now() - timedelta(days=days)

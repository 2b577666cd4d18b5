"""Alert rules, watched entities and silences: create, update, delete, with the checks that
name the field at fault."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from generation.exceptions import Conflict, InvalidInput
from monitoring.models import AlertRule, Silence, WatchedEntity, rule_params_check, silence_params_check

RULE_FIELDS = (
    "name", "description", "enabled", "entity", "aggregate", "sources", "window_minutes", "min_count", "condition",
    "threshold", "baseline_windows", "for_evaluations", "cooldown_minutes", "severity", "group_by", "group_wait_seconds",
    "group_interval_seconds", "inhibits", "webhook_url", "emails",
)


def alert_rule_create(*, user: AbstractBaseUser, data: dict[str, Any]) -> AlertRule:
    data = {k: v for k, v in data.items() if k in RULE_FIELDS}
    errors = rule_params_check(
        condition=data["condition"], threshold=data["threshold"], entity=data.get("entity", ""),
        aggregate=data.get("aggregate", False), inhibits=data.get("inhibits", False),
    )
    if errors:
        raise InvalidInput(errors)
    try:
        with transaction.atomic():
            return AlertRule.objects.create(created_by=user, **data)
    except IntegrityError:
        raise Conflict(f"A rule named {data['name']!r} exists already.", field="name") from None


def alert_rule_update(*, rule: AlertRule, data: dict[str, Any]) -> AlertRule:
    for key, value in data.items():
        if key in RULE_FIELDS:
            setattr(rule, key, value)
    errors = rule_params_check(
        condition=rule.condition, threshold=rule.threshold, entity=rule.entity, aggregate=rule.aggregate, inhibits=rule.inhibits
    )
    if errors:
        raise InvalidInput(errors)
    try:
        with transaction.atomic():
            rule.save()
    except IntegrityError:
        raise Conflict(f"A rule named {rule.name!r} exists already.", field="name") from None
    return rule


def alert_rule_delete(*, rule: AlertRule) -> None:
    rule.delete()


def watched_entity_save(*, data: dict[str, Any], entity: WatchedEntity | None = None) -> WatchedEntity:
    """Create or update a watched entity (keys are upper-cased, like cashtags)."""
    if "key" in data:
        data["key"] = data["key"].strip().upper()
    if "aliases" in data:
        aliases = [a.strip() for a in data["aliases"] if a and a.strip()]
        if len(aliases) > settings.GENAI_NEWS_MAX_ALIASES:
            raise InvalidInput({"aliases": [f"At most {settings.GENAI_NEWS_MAX_ALIASES} (GENAI_NEWS_MAX_ALIASES)."]})
        data["aliases"] = list(dict.fromkeys(aliases))
    entity = entity or WatchedEntity()
    for key, value in data.items():
        setattr(entity, key, value)
    try:
        with transaction.atomic():
            entity.save()
    except IntegrityError:
        raise Conflict(f"The entity {entity.key!r} is on the watch list already.", field="key") from None
    return entity


def silence_create(*, user: AbstractBaseUser, data: dict[str, Any]) -> Silence:
    """A silence by ``user`` (its author), with the comment that says why: once, or a daily or
    weekly window until ``repeat_until``, each window at most GENAI_SILENCE_MAX_HOURS long."""
    comment = (data.get("comment") or "").strip()
    recurrence = data.get("recurrence") or ""
    timezone_name = data.get("timezone") or "UTC"
    errors = silence_params_check(
        starts_at=data["starts_at"], ends_at=data["ends_at"], recurrence=recurrence,
        repeat_until=data.get("repeat_until"), timezone_name=timezone_name,
    )
    if not comment:
        errors["comment"] = ["Say why (who asked, what is expected): a silence needs a comment."]
    if errors:
        raise InvalidInput(errors)
    return Silence.objects.create(
        rule=data.get("rule"),
        entity=(data.get("entity") or "").strip().upper(),
        severity=data.get("severity") or "",
        starts_at=data["starts_at"],
        ends_at=data["ends_at"],
        recurrence=recurrence,
        repeat_until=data.get("repeat_until"),
        timezone=timezone_name,
        comment=comment,
        created_by=user,
    )


def silence_expire(*, silence: Silence) -> Silence:
    """End a silence now (kept for the record); a recurring one stops repeating."""
    now = timezone.now()
    fields = []
    if silence.recurrence and (silence.repeat_until is None or silence.repeat_until > now):
        silence.repeat_until = now
        fields.append("repeat_until")
    if silence.ends_at > now:
        silence.ends_at = now
        if silence.starts_at >= now:  # not begun yet (or just now): it never applied
            silence.starts_at = now - timedelta(seconds=1)
        fields += ["starts_at", "ends_at"]
    if fields:
        silence.save(update_fields=[*fields, "updated_at"])
    return silence

"""A first look that shows something: `manage.py demo_setup` seeds a watch list of a handful of
entities, a few hundred dated news items about them over the last days and two alert rules, so
that once the sentiment model has scored the items an analyst sees their series on the dashboard
and at least one alert with its summary and delivery.

The items are finance tweets of the shipped training split (``GENAI_SENTIMENT_TRAIN_CSV``; no
held-out data). Their dates tell a story: over the last days every entity has a mix of news,
then in the last hours Boeing's turn negative (its negative tweets, with a few others), while the
other entities' negative tweets all lie before the rules' window. The labels of the file only
place the items in time: the items are stored unscored and the model scores them like any news.
Seeding again adds nothing (items are deduplicated, entities and rules looked up by key and name).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser

from generation.sentiment_labels import DEFAULT_LABEL_MAP
from generation.text.tables import csv_read
from monitoring.models import AlertRule, Condition, GroupBy, NewsItem, Severity, WatchedEntity

DEMO_SOURCE = "demo-tweets"
# key, name, aliases: entities the shipped tweets talk about often enough.
DEMO_ENTITIES = (
    ("BA", "Boeing", ["Boeing Co"]),
    ("TSLA", "Tesla", ["Tesla Inc", "Elon Musk"]),
    ("AMZN", "Amazon", ["Amazon.com"]),
    ("AAPL", "Apple", ["Apple Inc", "iPhone"]),
    ("OIL", "Crude oil", ["oil", "crude", "OPEC", "Brent"]),
)
STORM_ENTITY = "BA"  # its news turns negative in the last hours
WINDOW = timedelta(hours=6)  # the rules' window
DEMO_EMAIL = "analysts@example.com"
ENTITY_RULE = "Negative news share (demo)"
MARKET_RULE = "Market-wide sell-off (demo)"


@dataclass(frozen=True)
class DemoItem:
    entity: str
    text: str
    label: str  # the file's label: places the item in time, never stored as its score
    published_at: datetime


@dataclass
class DemoReport:
    items_created: int = 0
    items: int = 0
    entities: list[str] = field(default_factory=list)
    rules_created: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _pattern(key: str, name: str, aliases: list[str]) -> re.Pattern:
    names = "|".join(re.escape(n) for n in sorted([name, *aliases], key=len, reverse=True))
    return re.compile(rf"(?<![\w$])(?:\${re.escape(key)}|{names})(?!\w)", re.IGNORECASE)


def demo_news_plan(
    *, csv: Path | str, now: datetime, days: int = 3, per_entity: int = 60, burst_negative: int = 12, burst_other: int = 3,
    seed: int = 21,
) -> list[DemoItem]:
    """The demo's items and their dates (see the module's docstring). Tweets that mention two
    demo entities are left out, so each item tells one entity's story."""
    table = csv_read(csv, columns=["text", "label"])
    patterns = {key: _pattern(key, name, aliases) for key, name, aliases in DEMO_ENTITIES}
    rows: dict[str, list[tuple[str, str]]] = {key: [] for key in patterns}
    for row in table.rows:
        text = " ".join((row.get("text") or "").split())
        label = DEFAULT_LABEL_MAP.get((row.get("label") or "").strip(), "")
        found = [key for key, pattern in patterns.items() if pattern.search(text)]
        if text and label and len(found) == 1:
            rows[found[0]].append((text, label))
    rng = random.Random(seed)
    start, calm_until = now - timedelta(days=days), now - WINDOW - timedelta(minutes=30)

    def at(low: datetime, high: datetime) -> datetime:
        return low + (high - low) * rng.random()

    plan = []
    for key in patterns:
        chosen = rng.sample(rows[key], min(per_entity, len(rows[key])))
        if key == STORM_ENTITY:
            negatives = [r for r in chosen if r[1] == "negative"][:burst_negative]
            others = [r for r in chosen if r[1] != "negative"][:burst_other]
            burst = negatives + others
            rng.shuffle(burst)
            step = (WINDOW / 2) / max(1, len(burst))
            plan += [DemoItem(key, text, label, now - WINDOW / 2 + step * i) for i, (text, label) in enumerate(burst)]
            plan += [DemoItem(key, text, label, at(start, calm_until)) for text, label in chosen if (text, label) not in burst]
        else:  # calm lately: its negative news is older than the rules' window
            plan += [
                DemoItem(key, text, label, at(start, calm_until if label == "negative" else now - timedelta(minutes=10)))
                for text, label in chosen
            ]
    return sorted(plan, key=lambda item: item.published_at)


def monitoring_demo_seed(
    *, csv: Path | str, now: datetime, user: AbstractBaseUser | None = None, days: int = 3, per_entity: int = 60,
) -> DemoReport:
    """Seed the watch list, the demo news (scored by a job once a sentiment model exists) and
    the two demo rules: negative news share per entity (one grouped notification per rule) and a
    market-wide sell-off that inhibits per-entity alerts."""
    from monitoring.services.news import news_ingest
    from monitoring.services.rules import alert_rule_create, watched_entity_save

    report = DemoReport(entities=[key for key, _, _ in DEMO_ENTITIES])
    for key, name, aliases in DEMO_ENTITIES:
        if not WatchedEntity.objects.filter(key=key).exists():
            watched_entity_save(data={"key": key, "name": name, "aliases": aliases})
    if NewsItem.objects.filter(source=DEMO_SOURCE).exists():
        report.notes.append("The demo news is there already.")
    else:
        plan = demo_news_plan(csv=csv, now=now, days=days, per_entity=per_entity)
        ingested = news_ingest(
            items=[{"source": DEMO_SOURCE, "text": i.text, "published_at": i.published_at} for i in plan], user=user
        )
        report.items_created = ingested.created
        report.notes += ingested.notes
    report.items = NewsItem.objects.filter(source=DEMO_SOURCE).count()
    rules = {
        ENTITY_RULE: {
            "description": "Demo: half or more of an entity's news in the last 6 hours is negative.",
            "condition": Condition.NEGATIVE_SHARE, "threshold": 0.5, "min_count": 6, "cooldown_minutes": 120,
            "severity": Severity.WARNING, "group_by": GroupBy.RULE,
        },
        MARKET_RULE: {
            "description": "Demo: the mean score of all news in the last 6 hours is -0.5 or lower; while it fires, "
                           "per-entity alerts are muted.",
            "condition": Condition.MEAN_SCORE, "threshold": -0.5, "min_count": 20, "aggregate": True, "inhibits": True,
            "severity": Severity.CRITICAL, "group_by": GroupBy.RULE,
        },
    }
    for name, data in rules.items():
        if AlertRule.objects.filter(name=name).exists():
            continue
        # Group wait and interval: the settings' defaults (GENAI_ALERT_GROUP_WAIT_SECONDS, ...).
        alert_rule_create(user=user, data={"name": name, "window_minutes": int(WINDOW.total_seconds() // 60),
                                           "emails": [DEMO_EMAIL], **data})
        report.rules_created.append(name)
    return report

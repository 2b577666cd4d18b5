"""The monitoring demo: its story in dates, and what the rules make of it once the items are
scored (here with the file's labels standing in for the model, which the e2e test runs)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from monitoring.models import Alert, AlertRule, NewsItem, NewsMention, WatchedEntity
from monitoring.services.alerts import alert_rules_evaluate
from monitoring.services.demo import (
    DEMO_SOURCE,
    ENTITY_RULE,
    MARKET_RULE,
    STORM_ENTITY,
    WINDOW,
    demo_news_plan,
    monitoring_demo_seed,
)

pytestmark = pytest.mark.django_db
SCORES = {"negative": -0.8, "neutral": 0.0, "positive": 0.7}


def test_the_plan_dates_a_few_hundred_tweets_and_turns_one_entitys_news_negative_lately():
    now = timezone.now()
    plan = demo_news_plan(csv=settings.GENAI_SENTIMENT_TRAIN_CSV, now=now)
    assert 200 <= len(plan) <= 400 and len({i.text for i in plan}) == len(plan)
    assert all(now - timedelta(days=3) <= i.published_at < now for i in plan)
    recent = [i for i in plan if i.published_at >= now - WINDOW]
    storm = [i for i in recent if i.entity == STORM_ENTITY]
    assert len(storm) >= 10 and sum(i.label == "negative" for i in storm) / len(storm) >= 0.75
    assert not [i for i in recent if i.entity != STORM_ENTITY and i.label == "negative"]
    assert {i.entity for i in plan} == {"BA", "TSLA", "AMZN", "AAPL", "OIL"}


def test_seeding_is_idempotent_and_once_scored_one_alert_fires_for_the_storm_entity(no_broker):
    now = timezone.now()
    report = monitoring_demo_seed(csv=settings.GENAI_SENTIMENT_TRAIN_CSV, now=now)
    items = NewsItem.objects.filter(source=DEMO_SOURCE)
    assert report.items_created == items.count() == report.items and 200 <= report.items <= 400
    assert "No sentiment model is trained yet: the items are stored unscored." in report.notes
    assert sorted(report.rules_created) == sorted([ENTITY_RULE, MARKET_RULE])
    assert NewsMention.objects.filter(entity=STORM_ENTITY, item__source=DEMO_SOURCE).count() >= 30
    market = AlertRule.objects.get(name=MARKET_RULE)
    assert market.aggregate and market.inhibits and AlertRule.objects.get(name=ENTITY_RULE).group_by == "rule"

    again = monitoring_demo_seed(csv=settings.GENAI_SENTIMENT_TRAIN_CSV, now=now + timedelta(hours=1))
    assert (again.items_created, again.rules_created) == (0, [])
    assert items.count() == report.items and WatchedEntity.objects.count() == 5 and AlertRule.objects.count() == 2

    # A model that agreed with the file's labels would raise exactly one alert: Boeing's.
    plan = {i.text: i.label for i in demo_news_plan(csv=settings.GENAI_SENTIMENT_TRAIN_CSV, now=now)}
    for item in items:
        label = plan[item.text]
        NewsItem.objects.filter(pk=item.pk).update(sentiment_label=label, sentiment_score=SCORES[label], scored_version="t@1")
    evaluation = alert_rules_evaluate(now=now + timedelta(minutes=5))
    (alert,) = Alert.objects.all()
    assert (alert.rule.name, alert.entity, alert.status, evaluation.inhibited) == (ENTITY_RULE, STORM_ENTITY, "firing", 0)
    assert alert.summary_method == "extractive" and f"[#{alert.summary_item_ids[0]}]" in alert.summary
    assert list(alert.deliveries.values_list("channel", "target")) == [("email", "analysts@example.com")]

import hashlib
from datetime import timedelta

import factory
from django.utils import timezone

from monitoring.models import AlertRule, NewsItem, NewsMention


class NewsItemFactory(factory.django.DjangoModelFactory):
    """A scored item; ``entity`` adds its mention row (what rule windows count)."""

    class Meta:
        model = NewsItem
        skip_postgeneration_save = True

    source = "wire"
    text = factory.Sequence(lambda n: f"News item number {n} about the market")
    published_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=5))
    content_hash = factory.LazyAttribute(lambda o: hashlib.sha256(o.text.encode()).hexdigest())
    sentiment_label = "neutral"
    sentiment_score = 0.0
    scored_version = "test@1"

    @factory.post_generation
    def entity(self, create, extracted, **kwargs):
        if create and extracted:
            self.entities = [extracted]
            self.save(update_fields=["entities"])
            NewsMention.objects.create(item=self, entity=extracted, source=self.source, published_at=self.published_at)


class AlertRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertRule

    name = factory.Sequence(lambda n: f"rule-{n}")
    entity = "AAPL"
    window_minutes = 60
    min_count = 5
    condition = "negative_share"
    threshold = 0.5
    for_evaluations = 1
    cooldown_minutes = 0
    severity = "warning"
    # Each alert state is sent as soon as it is due, as before grouping; tests of grouping set these.
    group_wait_seconds = 0
    group_interval_seconds = 0

"""Prometheus metrics of feedback and review: counters where people act, gauges of quality per
model version and job kind read from the database at scrape time (``ReviewCollector``)."""

from __future__ import annotations

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

FEEDBACK_DECIDED = Counter(
    "genai_feedback_outcomes_total", "Drafts sent as is, sent edited or discarded.", ["kind", "outcome"]
)
FEEDBACK_REPORTED = Counter("genai_feedback_reports_total", "Drafts reported, by reason.", ["kind", "reason"])
REVIEW_TRANSITIONS = Counter(
    "genai_review_transitions_total", "Review queue transitions.", ["kind", "action", "to_status"]
)
COUNTERS = (FEEDBACK_DECIDED, FEEDBACK_REPORTED, REVIEW_TRANSITIONS)


def feedback_decided(*, kind: str, outcome: str) -> None:
    FEEDBACK_DECIDED.labels(kind, outcome).inc()


def feedback_reported(*, kind: str, reason: str) -> None:
    FEEDBACK_REPORTED.labels(kind, reason).inc()


def review_transition(*, kind: str, action: str, to_status: str) -> None:
    REVIEW_TRANSITIONS.labels(kind, action, to_status).inc()


class ReviewCollector(Collector):
    """Quality per (kind, model version) and the review queue by status, from the database."""

    def collect(self):
        from django.db.models import Count

        from review.models import ReviewItem
        from review.selectors import quality_by_model

        labels = ["kind", "model_version"]
        acceptance = GaugeMetricFamily(
            "genai_quality_acceptance_rate", "Accepted / decided drafts (sent or approved vs discarded or rejected).", labels=labels
        )
        edit = GaugeMetricFamily(
            "genai_quality_edit_distance_mean", "Mean Levenshtein distance from draft to sent text (characters).", labels=labels
        )
        stars = GaugeMetricFamily("genai_quality_rating_mean", "Mean 1-5 rating.", labels=labels)
        thumbs = GaugeMetricFamily("genai_quality_thumbs_up_rate", "Thumbs up / (up + down).", labels=labels)
        decided = GaugeMetricFamily("genai_quality_decided", "Drafts with a decision.", labels=labels)
        flagged = GaugeMetricFamily("genai_safety_flagged_candidates", "Candidates the safety filter flagged.", labels=labels)
        for row in quality_by_model():
            key = [row.kind, row.model_version]
            decided.add_metric(key, row.decided)
            flagged.add_metric(key, row.flagged)
            for family, value in ((acceptance, row.acceptance_rate), (edit, row.edit_distance_mean),
                                  (stars, row.stars_mean), (thumbs, row.thumbs_up_rate)):
                if value is not None:
                    family.add_metric(key, value)
        yield from (acceptance, edit, stars, thumbs, decided, flagged)

        queue = GaugeMetricFamily("genai_review_items", "Review items by kind and status.", labels=["kind", "status"])
        for r in ReviewItem.objects.values("kind", "status").annotate(n=Count("id")).order_by():
            queue.add_metric([r["kind"], r["status"]], r["n"])
        yield queue


def review_collectors(*, multiprocess: bool) -> list[Collector]:
    """What ``/metrics`` registers: the database gauges, and the counters unless every process
    writes its samples to the multiprocess folder (then they are merged from there)."""
    return [ReviewCollector()] if multiprocess else [*COUNTERS, ReviewCollector()]

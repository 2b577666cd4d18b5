"""Alert summaries: 2-4 sentences about the items behind an alert, citing their ids as ``[#12]``.

The ``alert_summary`` job (``workers.runners.alert_summary``: its prompt and the check its text
must pass) asks the language model. Until it is done, and when its text fails the check, the
alert carries the extractive summary built here from the items themselves.
"""

from __future__ import annotations

import logging
import re

from django.db import transaction

from monitoring.models import Alert, NewsItem

logger = logging.getLogger(__name__)

_CLIP = 160


def _clip(text: str) -> str:
    text = " ".join(text.split())
    text = re.sub(r"https?://\S+", "", text).strip()
    return text if len(text) <= _CLIP else text[: _CLIP - 1].rsplit(" ", 1)[0] + "…"


def alert_summary_extractive(*, item_ids: list[int]) -> tuple[str, list[int]]:
    """Counts, then the most negative items quoted with their ids (2-4 sentences)."""
    items = NewsItem.objects.in_bulk(item_ids)
    return summary_extractive(items=[items[i] for i in item_ids if i in items])


def summary_extractive(*, items: list) -> tuple[str, list[int]]:
    """The extractive summary of ``items`` (most negative first; each has ``pk``, ``source``,
    ``title``, ``text``, ``sentiment_label`` and ``sentiment_score``) and the ids it quotes."""
    ordered = list(items)
    if not ordered:
        return "No scored items are behind this alert. It was raised on an empty window.", []
    negatives = [i for i in ordered if i.sentiment_label == "negative"]
    mean = sum(i.sentiment_score or 0.0 for i in ordered) / len(ordered)
    quoted = (negatives or ordered)[:2]
    sentences = [
        f"{len(negatives)} of the {len(ordered)} most negative items behind this alert are negative "
        f"(mean score {mean:+.2f})."
    ]
    for item in quoted:
        sentences.append(f'[#{item.pk}] {item.source}: "{_clip(item.title or item.text).rstrip(".")}".')
    cited = [i.pk for i in quoted]
    return " ".join(sentences), cited


def alert_summary_enqueue(*, alert_id: int) -> None:
    """Queue the model's summary of a firing alert (after the firing committed)."""
    from generation.services.jobs import job_create
    from monitoring.services.scoring import SUMMARY_KIND, monitor_system_user

    try:
        job, _ = job_create(owner=monitor_system_user(), kind=SUMMARY_KIND, params={"alert_id": alert_id})
    except Exception:  # noqa: BLE001 - the alert keeps its extractive summary
        logger.exception("alert summary job not created", extra={"alert": alert_id})
        return
    Alert.objects.filter(pk=alert_id).update(summary_job=job)


def alert_summary_store(*, alert_id: int, text: str, cited: list[int], method: str) -> None:
    with transaction.atomic():
        Alert.objects.filter(pk=alert_id).update(summary=text, summary_item_ids=cited, summary_method=method)

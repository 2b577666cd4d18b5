"""RSS/Atom polling with feedparser: new entries become news items (title + summary), with the
feed's ETag/Last-Modified sent back so an unchanged feed costs one request."""

from __future__ import annotations

import calendar
import logging
import re
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone

from monitoring.models import Feed
from monitoring.services.news import news_ingest

logger = logging.getLogger(__name__)
_TAGS = re.compile(r"<[^>]+>")


def _entry_item(entry, *, source: str) -> dict | None:
    title = (entry.get("title") or "").strip()
    summary = _TAGS.sub(" ", entry.get("summary") or entry.get("description") or "")
    summary = " ".join(summary.split())
    text = title if not summary or summary.lower().startswith(title.lower()) else f"{title}. {summary}" if title else summary
    text = text[: settings.GENAI_NEWS_MAX_TEXT_CHARS].strip()
    if not text:
        return None
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    published = datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC) if parsed else timezone.now()
    link = (entry.get("link") or "").strip()
    return {
        "source": source,
        "url": link if link.startswith(("http://", "https://")) else "",
        "title": title[:500],
        "text": text,
        "published_at": published,
        "language": (entry.get("language") or "en")[:16],
    }


def feed_poll(*, feed: Feed) -> dict:
    """Read one feed now. Network or parse errors are stored on the feed, not raised."""
    import feedparser

    now = timezone.now()
    try:
        parsed = feedparser.parse(feed.url, etag=feed.etag or None, modified=feed.modified or None)
    except Exception as exc:  # noqa: BLE001 - a broken feed must not stop the others
        Feed.objects.filter(pk=feed.pk).update(last_polled_at=now, last_error=f"{type(exc).__name__}: {exc}"[:2000])
        return {"feed": feed.url, "created": 0, "error": str(exc)}
    if parsed.get("bozo") and not parsed.entries:
        error = str(parsed.get("bozo_exception") or "unreadable feed")
        Feed.objects.filter(pk=feed.pk).update(last_polled_at=now, last_error=error[:2000])
        return {"feed": feed.url, "created": 0, "error": error}
    items = [i for i in (_entry_item(e, source=feed.source) for e in parsed.entries[: settings.GENAI_FEED_MAX_ITEMS]) if i]
    report = news_ingest(items=items) if items else None
    created = report.created if report else 0
    Feed.objects.filter(pk=feed.pk).update(
        last_polled_at=now,
        last_error="",
        etag=(parsed.get("etag") or "")[:255],
        modified=(parsed.get("modified") or "")[:255],
        items_created=feed.items_created + created,
    )
    return {"feed": feed.url, "created": created, "duplicates": (report.duplicates + report.duplicates_in_batch) if report else 0}


def feeds_poll() -> dict:
    results = [feed_poll(feed=feed) for feed in Feed.objects.filter(enabled=True)]
    return {"feeds": len(results), "created": sum(r["created"] for r in results), "results": results}

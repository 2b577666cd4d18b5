"""News ingestion: validated items in, duplicates (same url or same normalised text) skipped and
counted, entities found, and a scoring job queued after commit (whose end evaluates the rules)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q

from generation.exceptions import DomainError, InvalidInput
from generation.text.tables import CsvError, csv_read
from monitoring.entities import entities_extract
from monitoring.models import NewsItem, NewsMention

_SPACES = re.compile(r"\s+")


def content_hash(text: str) -> str:
    return hashlib.sha256(_SPACES.sub(" ", text).strip().lower().encode()).hexdigest()


@dataclass
class IngestReport:
    received: int = 0
    created: int = 0
    duplicates: int = 0  # already stored (same url or text)
    duplicates_in_batch: int = 0  # repeated within this batch
    item_ids: list[int] = field(default_factory=list)
    score_job_id: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "created": self.created,
            "duplicates": self.duplicates,
            "duplicates_in_batch": self.duplicates_in_batch,
            "item_ids": self.item_ids,
            "score_job_id": self.score_job_id,
            "notes": self.notes,
        }


def news_ingest(
    *, items: list[dict], user: AbstractBaseUser | None = None, score: bool = True
) -> IngestReport:
    """Store ``items`` (validated dicts: source, text, published_at, url?, title?, language?,
    entities?). One transaction; the scoring job is queued after it commits."""
    if len(items) > settings.GENAI_NEWS_MAX_BULK and user is not None:
        raise InvalidInput({"items": [f"At most {settings.GENAI_NEWS_MAX_BULK} items per request (GENAI_NEWS_MAX_BULK)."]})
    report = IngestReport(received=len(items))
    prepared = []
    seen_urls: set[str] = set()
    seen_hashes: set[str] = set()
    for item in items:
        text = item["text"].strip()
        digest = content_hash(text)
        url = (item.get("url") or "").strip()
        if digest in seen_hashes or (url and url in seen_urls):
            report.duplicates_in_batch += 1
            continue
        seen_hashes.add(digest)
        if url:
            seen_urls.add(url)
        prepared.append((item, text, digest, url))

    with transaction.atomic():
        known = NewsItem.objects.filter(
            Q(content_hash__in=[p[2] for p in prepared]) | Q(url__in=[p[3] for p in prepared if p[3]])
        ).values_list("content_hash", "url")
        known_hashes = {h for h, _ in known}
        known_urls = {u for _, u in known if u}
        for item, text, digest, url in prepared:
            if digest in known_hashes or (url and url in known_urls):
                report.duplicates += 1
                continue
            title = (item.get("title") or "").strip()
            entities = entities_extract(f"{title}\n{text}" if title else text, extra=item.get("entities"))
            try:
                with transaction.atomic():  # a concurrent ingestion may store the same item first
                    news = NewsItem.objects.create(
                        source=item["source"],
                        url=url,
                        title=title[:500],
                        text=text,
                        published_at=item["published_at"],
                        language=item.get("language") or "en",
                        entities=entities,
                        content_hash=digest,
                        ingested_by=user,
                    )
            except IntegrityError:
                report.duplicates += 1
                continue
            NewsMention.objects.bulk_create(
                [NewsMention(item=news, entity=e, source=news.source, published_at=news.published_at) for e in entities]
            )
            report.created += 1
            report.item_ids.append(news.pk)
        if score and report.created:
            from monitoring.services.scoring import sentiment_score_enqueue

            try:
                with transaction.atomic():
                    job = sentiment_score_enqueue()
            except DomainError as exc:  # a full queue must not lose the items: beat queues it later
                job = None
                report.notes.append(f"Scoring not queued now ({exc.message}); the next evaluation queues it.")
            else:
                if job is None:
                    report.notes.append("No sentiment model is trained yet: the items are stored unscored.")
                else:
                    report.score_job_id = str(job.pk)
    return report


# --- files ----------------------------------------------------------------------------------

TEXT_COLUMNS = ("text", "body", "content", "summary", "sentence", "headline")
DATE_COLUMNS = ("published_at", "published", "date", "datetime", "time", "timestamp")


def news_rows_from_file(*, data: bytes, name: str, max_rows: int) -> list[dict]:
    """Rows of a CSV (header row) or a JSON array / JSONL file as dicts with our field names:
    the text column may be called text, body, content, summary, sentence or headline, the date
    published_at, published, date, ...; a missing date means now. Raises InvalidInput naming
    the file field for an unreadable file or too many rows."""
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput({"file": ["The file is not UTF-8 text."]}) from None
    stripped = content.lstrip()
    rows: list[dict]
    if name.lower().endswith((".json", ".jsonl")) or stripped.startswith(("[", "{")):
        try:
            if stripped.startswith("["):
                rows = json.loads(stripped)
            else:
                rows = [json.loads(line) for line in content.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise InvalidInput({"file": [f"Invalid JSON: {exc.msg} (line {exc.lineno})."]}) from None
        if not all(isinstance(r, dict) for r in rows):
            raise InvalidInput({"file": ["Expected JSON objects, one per item."]})
    else:
        try:
            rows = csv_read(content=content, max_rows=max_rows + 1).rows
        except CsvError as exc:
            raise InvalidInput({"file": [f"{exc}."]}) from None
    if len(rows) > max_rows:
        raise InvalidInput({"file": [f"At most {max_rows} items per file; this one has more."]})
    return [_row_normalise(row) for row in rows]


def _row_normalise(row: dict) -> dict:
    lowered = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    out = {k: lowered[k] for k in ("source", "url", "title", "language", "entities") if lowered.get(k) not in (None, "")}
    for column in TEXT_COLUMNS:
        if lowered.get(column) not in (None, ""):
            out["text"] = lowered[column]
            break
    else:
        out["text"] = ""
    for column in DATE_COLUMNS:
        if lowered.get(column) not in (None, ""):
            out["published_at"] = lowered[column]
            break
    if isinstance(out.get("entities"), str):
        out["entities"] = [e for e in re.split(r"[,;| ]+", out["entities"]) if e]
    return out


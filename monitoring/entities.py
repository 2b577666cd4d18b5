"""Entities in a text: ``$AAPL`` cashtags, and the watch list's names and aliases (whole words,
case-insensitive). The watch list is compiled once and rebuilt when it changes."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from django.conf import settings

# $ followed by 1-6 letters (an optional .X class suffix, as in $BRK.B), not part of a word or a
# dollar amount ($5, $3.2bn).
CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?)(?![\w])")


def cashtags_parse(text: str) -> list[str]:
    """Upper-cased tickers in order of first appearance."""
    seen: dict[str, None] = {}
    for match in CASHTAG.finditer(text or ""):
        seen.setdefault(match.group(1).upper(), None)
    return list(seen)


@dataclass(frozen=True)
class WatchList:
    version: tuple  # what it was built from, to notice changes
    pattern: re.Pattern | None
    by_phrase: dict[str, str]  # lower-cased name/alias -> entity key
    keys: frozenset[str]

    def find(self, text: str) -> list[str]:
        if self.pattern is None:
            return []
        found: dict[str, None] = {}
        for match in self.pattern.finditer(text or ""):
            found.setdefault(self.by_phrase[match.group(0).lower()], None)
        return list(found)


_cache: WatchList | None = None
_lock = threading.Lock()


def watch_list_get() -> WatchList:
    """The active watch list, compiled; rebuilt when an entity was added or changed."""
    global _cache
    from django.db.models import Count, Max

    from monitoring.models import WatchedEntity

    active = WatchedEntity.objects.filter(active=True)
    stamp = active.aggregate(n=Count("id"), changed=Max("updated_at"))
    version = (stamp["n"], stamp["changed"])
    if _cache is not None and _cache.version == version:
        return _cache
    with _lock:
        by_phrase: dict[str, str] = {}
        for key, name, aliases in active.values_list("key", "name", "aliases"):
            for phrase in [name, *(aliases or [])]:
                phrase = (phrase or "").strip()
                if len(phrase) >= 2:
                    by_phrase.setdefault(phrase.lower(), key)
        pattern = None
        if by_phrase:
            # Longest first, so "Apple Inc" wins over "Apple".
            alternatives = "|".join(re.escape(p) for p in sorted(by_phrase, key=len, reverse=True))
            pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
        keys = frozenset(active.values_list("key", flat=True))
        _cache = WatchList(version=version, pattern=pattern, by_phrase=by_phrase, keys=keys)
        return _cache


def entities_extract(text: str, *, extra: list[str] | None = None) -> list[str]:
    """Entity keys of a text: its cashtags, then watch-list matches, then ``extra`` (given by the
    uploader), de-duplicated, at most GENAI_NEWS_MAX_ENTITIES."""
    found: dict[str, None] = {}
    for key in cashtags_parse(text) + watch_list_get().find(text) + [e.strip().upper() for e in extra or [] if e.strip()]:
        found.setdefault(key, None)
    return list(found)[: settings.GENAI_NEWS_MAX_ENTITIES]

"""Top-k retrieval over the knowledge base: the entry point replies use to ground themselves.

``knowledge_search(query, k)`` embeds the query with the process's embedding model and scores it
against every searchable row (active, embedded by the configured model) by dot product of
normalised vectors (= cosine similarity), over an in-process matrix per kind:

- the matrix is built from the rows' stored float32 bytes on first use and cached for the
  process; at most every ``GENAI_KB_INDEX_REFRESH_SECONDS`` a search checks a fingerprint of the
  table (row count, sum of ids, latest ``updated_at`` and ``embedded_at``) and rebuilds the
  matrix when it changed, so imports, edits, deactivations and new embeddings show up without a
  restart and an unchanged table costs one aggregate query per interval;
- near duplicates are removed: a hit whose embedding has cosine > ``GENAI_KB_DEDUPE_COSINE`` with
  a better hit already kept is dropped (the Bitext data has many near-identical answers);
- a relevance floor (``min_score``: replies pass ``GENAI_REPLY_MIN_SOURCE_SCORE``) drops rows
  whose cosine is below it, and a boost (``boost_intent``, ``intent_boost``: replies pass the
  message's intent when the classifier is confident) ranks rows of that intent higher;
- the text of the hits is read from the database after ranking, so a hit is never a row that
  was deactivated since the matrix was built.

A row whose text changed but is not re-embedded yet is still found by its previous vector (and
returned with its current text) until the ``knowledge_embed`` job catches up.

Runs where the embedding model can be loaded (workers): the web process never imports torch.
Callers should mask personal data in the query first (``generation.privacy.pii_mask``): stored
conversations are masked, so masked queries also match them better.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from django.conf import settings

from generation.services.knowledge import KINDS, KnowledgeKind
from generation.text.sentences import line_ends_normalise

logger = logging.getLogger(__name__)

__all__ = ["KnowledgeHit", "knowledge_search", "knowledge_search_batch", "knowledge_index_clear"]


@dataclass(frozen=True)
class KnowledgeHit:
    """One retrieved row. ``title``/``text`` are a doc's title and body, or a conversation's
    customer message and agent reply (personal data already masked)."""

    kind: KnowledgeKind
    id: int
    score: float  # cosine similarity of the query and the row, in [-1, 1]
    title: str
    text: str
    source: str
    external_id: str
    language: str
    tags: tuple[str, ...] = ()  # docs
    intent: str = ""  # conversations
    category: str = ""  # conversations
    boosted: bool = False  # ranked up for being of the message's predicted intent (``boost_intents``)

    @property
    def ref(self) -> str:
        """A short stable reference for citing the hit: ``docs:12``, ``conversations:345``."""
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class _Index:
    kind: str
    model_name: str
    fingerprint: tuple
    ids: np.ndarray  # (n,) int64: the row each vector is of (a doc's title and whole text: two)
    matrix: np.ndarray  # (n, dim) float32, vectors of unit length
    checked_at: float


_indexes: dict[str, _Index] = {}
_index_lock = threading.Lock()


def knowledge_index_clear() -> None:
    """Forget the cached matrices (tests; a rebuild happens on the next search anyway)."""
    with _index_lock:
        _indexes.clear()


def _index_get(kind: str, model_name: str, dim: int) -> _Index:
    from generation.selectors import (
        knowledge_index_fingerprint,
        knowledge_index_vectors,
    )

    index = _indexes.get(kind)
    now = time.monotonic()
    if (
        index is not None
        and index.model_name == model_name
        and now - index.checked_at < settings.GENAI_KB_INDEX_REFRESH_SECONDS
    ):
        return index
    with _index_lock:
        index = _indexes.get(kind)
        if index is not None and index.model_name == model_name and now - index.checked_at < settings.GENAI_KB_INDEX_REFRESH_SECONDS:
            return index  # another thread refreshed it meanwhile
        # Fingerprint first: a change between the two reads makes the next check rebuild again.
        fingerprint = knowledge_index_fingerprint(kind=kind, model_name=model_name)
        if index is not None and index.model_name == model_name and index.fingerprint == fingerprint:
            index = replace(index, checked_at=now)
        else:
            started = time.monotonic()
            rows = knowledge_index_vectors(kind=kind, model_name=model_name)
            width = dim * 4  # a row holds one vector per text it is searched by (embedding_texts)
            good = [(pk, vector) for pk, vector in rows if vector and len(vector) % width == 0]
            if len(good) != len(rows):
                logger.warning("%d %s rows have embeddings of another size; left out", len(rows) - len(good), kind)
            counts = np.fromiter((len(v) // width for _, v in good), dtype=np.int64, count=len(good))
            ids = np.repeat(np.fromiter((pk for pk, _ in good), dtype=np.int64, count=len(good)), counts)
            matrix = np.frombuffer(b"".join(v for _, v in good), dtype=np.float32).reshape(len(ids), dim)
            index = _Index(kind, model_name, fingerprint, ids, matrix, now)
            logger.info("knowledge index %s: %d rows (%d vectors) in %.3f s", kind, len(good), len(ids),
                        time.monotonic() - started)
        _indexes[kind] = index
        return index


def knowledge_search(
    query: str,
    k: int = 5,
    kinds: Sequence[KnowledgeKind] = KINDS,
    *,
    min_score: float | None = None,
    dedupe_cosine: float | None = None,
    boost_intent: str | None = None,
    intent_boost: float = 0.0,
    kind_boosts: dict[str, float] | None = None,
) -> list[KnowledgeHit]:
    """The ``k`` rows of ``kinds`` most similar to ``query``, best first, near duplicates removed.

    ``min_score`` drops hits below that cosine; ``dedupe_cosine`` overrides
    ``GENAI_KB_DEDUPE_COSINE`` (1.0 keeps duplicates). ``boost_intent``: rows of that intent (a
    conversation's intent, a doc's tag) rank as if their cosine were ``intent_boost`` higher; the
    hit's ``score`` stays its cosine. ``kind_boosts``: rows of a kind rank as if their cosine were
    that much higher (``{"docs": 0.08}``: a help-centre answer before past conversations that are
    about as close). Returns fewer than ``k`` hits when the knowledge base has
    fewer distinct rows (or fewer above ``min_score``).
    """
    return knowledge_search_batch(
        [query], k, kinds, min_score=min_score, dedupe_cosine=dedupe_cosine,
        boost_intents=[boost_intent], intent_boost=intent_boost, kind_boosts=kind_boosts,
    )[0]


def knowledge_search_batch(
    queries: Sequence[str],
    k: int = 5,
    kinds: Sequence[KnowledgeKind] = KINDS,
    *,
    min_score: float | None = None,
    dedupe_cosine: float | None = None,
    boost_intents: Sequence[str | None] | None = None,
    intent_boost: float = 0.0,
    kind_boosts: dict[str, float] | None = None,
) -> list[list[KnowledgeHit]]:
    """``knowledge_search`` for many queries, embedded in batches (batch drafting, evaluation);
    ``boost_intents[i]`` is query i's ``boost_intent``."""
    from workers.runtime.embeddings import embedder_get

    if not 1 <= k <= settings.GENAI_KB_SEARCH_MAX_K:
        raise ValueError(f"k must be 1 to {settings.GENAI_KB_SEARCH_MAX_K} (GENAI_KB_SEARCH_MAX_K), not {k}")
    unknown = set(kinds) - set(KINDS)
    if unknown or not kinds:
        raise ValueError(f"kinds must be some of {KINDS}, not {tuple(kinds)}")
    if not queries:
        return []
    threshold = settings.GENAI_KB_DEDUPE_COSINE if dedupe_cosine is None else dedupe_cosine
    embedder = embedder_get()
    indexes = [_index_get(kind, embedder.name, embedder.dim) for kind in dict.fromkeys(kinds)]
    indexes = [index for index in indexes if len(index.ids)]
    if not indexes:
        return [[] for _ in queries]
    vectors = embedder.encode(list(queries), batch_size=settings.GENAI_KB_EMBED_BATCH)
    # Enough candidates that dropping near duplicates and rows deactivated since the matrix
    # was built still leaves k.
    pool = 4 * k + 16
    candidates: list[list[tuple[float, int, int]]] = []  # per query: (score, index number, row)
    for vector in vectors:
        mine: list[tuple[float, int, int]] = []
        for number, index in enumerate(indexes):
            scores = index.matrix @ vector
            take = min(pool, len(scores))
            top = np.argpartition(-scores, take - 1)[:take]
            mine += [(float(scores[row]), number, int(row)) for row in top]
        mine.sort(key=lambda c: -c[0])
        candidates.append(mine)
    rows = _rows_load(candidates, indexes)
    results = []
    for position, mine in enumerate(candidates):
        boosted = (boost_intents[position] if boost_intents else None) or None
        ranked = []  # (rank score, cosine, index number, row, row item, boosted)
        taken = set()  # (index number, row id): a row searched by several texts counts its best
        for score, number, row in mine:
            if min_score is not None and score < min_score:
                break  # the relevance floor is on the cosine, before any boost
            pk = int(indexes[number].ids[row])
            item = rows[number].get(pk)
            if item is None or (number, pk) in taken:  # deactivated or deleted since the matrix was built
                continue
            taken.add((number, pk))
            kind = indexes[number].kind
            lift = bool(boosted) and intent_boost > 0 and _of_intent(kind, item, boosted)
            rank = score + (intent_boost if lift else 0.0) + (kind_boosts or {}).get(kind, 0.0)
            ranked.append((rank, score, number, row, item, lift))
        if boosted or kind_boosts:
            ranked.sort(key=lambda r: -r[0])  # stable: equal ranks keep the cosine order
        hits: list[KnowledgeHit] = []
        kept_vectors: list[np.ndarray] = []
        for _, score, number, row, item, lift in ranked:
            embedding = indexes[number].matrix[row]
            if kept_vectors and float(np.max(np.stack(kept_vectors) @ embedding)) > threshold:
                continue
            hits.append(_hit(indexes[number].kind, item, score, boosted=lift))
            kept_vectors.append(embedding)
            if len(hits) == k:
                break
        results.append(hits)
    return results


def _of_intent(kind: str, item, intent: str) -> bool:
    """A conversation of ``intent``, or a doc tagged with it (Bitext docs are tagged with theirs)."""
    wanted = intent.strip().lower()
    if kind == "docs":
        return wanted in (t.lower() for t in item.tags or ())
    return (item.intent or "").strip().lower() == wanted


def _rows_load(candidates: list[list[tuple[float, int, int]]], indexes: list[_Index]) -> dict[int, dict]:
    """index number -> {row id: active row}, one query per kind for all queries' candidates."""
    from generation.selectors import knowledge_rows_by_id

    wanted: dict[int, set[int]] = {number: set() for number in range(len(indexes))}
    for mine in candidates:
        for _, number, row in mine:
            wanted[number].add(int(indexes[number].ids[row]))
    return {
        number: knowledge_rows_by_id(kind=indexes[number].kind, ids=sorted(ids)) if ids else {}
        for number, ids in wanted.items()
    }


def _hit(kind: str, item, score: float, *, boosted: bool = False) -> KnowledgeHit:
    common = {
        "kind": kind,
        "id": item.pk,
        "score": round(score, 6),
        "boosted": boosted,
        "source": item.source,
        "external_id": item.external_id,
        "language": item.language,
    }
    # Rows imported before line ends were normalised may still hold "\r\n".
    if kind == "docs":
        return KnowledgeHit(
            title=line_ends_normalise(item.title), text=line_ends_normalise(item.body), tags=tuple(item.tags), **common
        )
    return KnowledgeHit(
        title=line_ends_normalise(item.customer_message), text=line_ends_normalise(item.agent_reply),
        intent=item.intent, category=item.category, **common,
    )

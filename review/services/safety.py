"""The output safety filter every generated candidate passes before anyone sees it.

Checks, each giving reasons ``{"category", "detail"}``:

- ``blocked_term``: a term of GENAI_SAFETY_BLOCKED_TERMS, as a whole word or phrase;
- ``blocked_topic``: a keyword of a topic in GENAI_SAFETY_BLOCKED_TOPICS;
- ``personal_data``: an e-mail, phone, card or IBAN (the patterns of ``generation.privacy``) that
  neither the job's own input nor the company profile provided (a reply may quote the order
  number the agent gave it, and the company's support phone);
- ``toxicity``: alt-profanity-check's shipped linear classifier (trained on ~200k human-labelled
  comments) at or above GENAI_SAFETY_TOXICITY_THRESHOLD, or a word of better-profanity's
  maintained list (which also catches leetspeak spellings).

The verdict is stored in ``candidate.metadata["safety"]``: ``{"flagged": bool, "reasons": [...],
"toxicity": p}``. Flagged candidates are hidden from agents and shown to reviewers with the reasons.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings

from generation.privacy import pii_mask
from generation.text import masking
from generation.text.sentences import sentences_split

if TYPE_CHECKING:
    from generation.models import Job
    from generation.runner import CandidateResult

_LOCK = threading.Lock()

def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern | None:
    cleaned = sorted({p.strip().lower() for p in phrases if p and p.strip()}, key=len, reverse=True)
    if not cleaned:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(p) for p in cleaned) + r")(?!\w)", re.IGNORECASE)


@lru_cache(maxsize=8)
def _terms_pattern(terms: tuple[str, ...]) -> re.Pattern | None:
    return _phrase_pattern(terms)


@lru_cache(maxsize=8)
def _topic_patterns(topics: tuple[tuple[str, str], ...]) -> list[tuple[str, re.Pattern]]:
    patterns = []
    for name, keywords in topics:
        pattern = _phrase_pattern(keywords.split("|"))
        if pattern is not None:
            patterns.append((name, pattern))
    return patterns


# better-profanity's substitutions (leetspeak and masking) for each letter of its word list.
_LEET = {"a": "a@*4", "i": "i*l1", "o": "o*0@", "u": "u*v", "v": "v*u", "l": "l1", "e": "e*3", "s": "s$5", "t": "t7"}


@lru_cache(maxsize=1)
def _profanity_pattern() -> re.Pattern:
    """better-profanity's maintained word list as one compiled pattern of whole words, each
    letter allowing the package's substitutions (``f*ck``, ``sh1t``). Its own matcher takes
    ~0.6 s on a 1,000-character reply (it builds every variant of every word); this takes
    well under a millisecond (bench/safety_filter.py)."""
    from importlib.resources import files

    words = files("better_profanity").joinpath("profanity_wordlist.txt").read_text(encoding="utf-8").split("\n")
    alternatives = []
    for word in sorted({w.strip().lower() for w in words if w.strip()}, key=len, reverse=True):
        parts = []
        for char in word:
            options = _LEET.get(char)
            parts.append("[" + re.escape(options) + "]" if options else (r"\s+" if char == " " else re.escape(char)))
        alternatives.append("".join(parts))
    return re.compile(r"(?<![\w@$*])(?:" + "|".join(alternatives) + r")(?![\w@$*])", re.IGNORECASE)


def profane_words(text: str) -> list[str]:
    return sorted({m.group().lower() for m in _profanity_pattern().finditer(text)})




def toxicity_scores(texts: Sequence[str]) -> list[float]:
    """Probability that each text is offensive: alt-profanity-check's shipped classifier on
    each sentence, the highest per text (on a whole reply, one abusive sentence is diluted by the
    polite rest: bench/safety_filter.py)."""
    if not texts:
        return []
    from profanity_check import predict_prob

    owners, sentences = [], []
    for i, text in enumerate(texts):
        parts = sentences_split(text) or [text]
        owners += [i] * len(parts)
        sentences += parts
    with _LOCK:  # the vectorizer is not documented as thread-safe
        probabilities = predict_prob(sentences)
    scores = [0.0] * len(texts)
    for owner, p in zip(owners, probabilities):
        scores[owner] = max(scores[owner], float(p))
    return scores


def text_screen(
    text: str, *, allowed: Iterable[str] = (), toxicity: float | None = None, fast: bool = False
) -> dict[str, Any]:
    """The safety verdict of one text. ``allowed``: values the job's input provided (not leaks).
    ``toxicity``: a precomputed classifier score. ``fast``: skip the classifier (partial text
    while streaming)."""
    reasons: list[dict[str, str]] = []
    terms = _terms_pattern(tuple(settings.GENAI_SAFETY_BLOCKED_TERMS))
    if terms is not None:
        for found in sorted({m.group().lower() for m in terms.finditer(text)}):
            reasons.append({"category": "blocked_term", "detail": f"Blocked term “{found}”."})
    for name, pattern in _topic_patterns(tuple(sorted(settings.GENAI_SAFETY_BLOCKED_TOPICS.items()))):
        match = pattern.search(text)
        if match:
            reasons.append({"category": "blocked_topic", "detail": f"Blocked topic {name} (“{match.group()}”)."})

    stripped = text
    for value in allowed:
        if isinstance(value, str) and value.strip():
            stripped = stripped.replace(value, " ")
    # A number that follows "order", "purchase", "reference" ... is the order's id, which the
    # masking patterns may type as a phone or card number (long digit runs); ids are not flagged.
    stripped = masking.ORDER_NUMBER.sub(lambda m: m.group("lead") + "[ORDER_ID]", stripped)
    leaked = sorted({str(kind) for kind in pii_mask(stripped).found} & set(settings.GENAI_SAFETY_PII_KINDS))
    if leaked:
        reasons.append({"category": "personal_data", "detail": "Personal data in the output: " + ", ".join(leaked) + "."})

    words_hit = profane_words(text)
    if not fast and toxicity is None:
        toxicity = toxicity_scores([text])[0]
    if words_hit or (toxicity is not None and toxicity >= settings.GENAI_SAFETY_TOXICITY_THRESHOLD):
        detail = "Abusive or profane language"
        if toxicity is not None:
            detail += f" (classifier {toxicity:.2f})"
        if words_hit:
            detail += f": “{'”, “'.join(words_hit[:5])}”"
        reasons.append({"category": "toxicity", "detail": detail + "."})
    verdict: dict[str, Any] = {"flagged": bool(reasons), "reasons": reasons}
    if toxicity is not None:
        verdict["toxicity"] = round(toxicity, 4)
    return verdict


def _allowed_values(params: dict) -> list[str]:
    """Values a job's own input gave it (context variables) and the company profile's (its own
    support phone and e-mail, which fill reply placeholders): quoting them is no leak."""
    from generation.selectors import company_profile_values

    context = params.get("context") if isinstance(params, dict) else None
    given = [v for v in (context or {}).values() if isinstance(v, str)]
    return given + list(dict.fromkeys(company_profile_values().values()))


def candidates_screen(*, job: Job, candidates: Sequence[CandidateResult]) -> list[dict]:
    """The metadata each candidate is stored with: its own plus the ``safety`` verdict.
    Called by ``job_succeed`` before the candidates are written."""
    if job.kind in settings.GENAI_SAFETY_SKIP_KINDS or job.queue == "train":  # training summaries are not content
        return [dict(c.metadata) for c in candidates]
    allowed = _allowed_values(job.params)
    scores = toxicity_scores([c.text for c in candidates])
    return [
        {**c.metadata, "safety": text_screen(c.text, allowed=allowed, toxicity=score)}
        for c, score in zip(candidates, scores)
    ]


def candidate_is_flagged(metadata: dict | None) -> bool:
    return bool(((metadata or {}).get("safety") or {}).get("flagged"))


def candidate_flag_reasons(metadata: dict | None) -> list[dict]:
    return list(((metadata or {}).get("safety") or {}).get("reasons") or [])


def candidate_flag_clear(*, candidate, user) -> None:
    """A reviewer releases a flagged candidate to its owner (a false alarm): it stays recorded
    as flagged once, with who cleared it and when."""
    from django.db import transaction
    from django.utils import timezone

    from generation import roles
    from generation.exceptions import Conflict, Forbidden
    from generation.models import Candidate

    if not roles.user_is_reviewer(user):
        raise Forbidden("Only reviewers and admins may clear the safety filter's flag.")
    with transaction.atomic():
        locked = Candidate.objects.select_for_update().get(pk=candidate.pk)
        safety = dict((locked.metadata or {}).get("safety") or {})
        if not safety.get("flagged"):
            raise Conflict("This candidate is not flagged.")
        safety.update(flagged=False, cleared_by=user.get_username(), cleared_at=timezone.now().isoformat())
        locked.metadata = {**(locked.metadata or {}), "safety": safety}
        locked.save(update_fields=["metadata"])
    candidate.metadata = locked.metadata

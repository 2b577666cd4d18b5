"""Openings that grant what the customer asked instead of what the business says.

A small model asked "Can I pay by bank transfer?" opens with "At checkout, you can pay by bank
transfer." when the payment answer lists cards, PayPal and wallets only; asked for running shoes
in size 47 it writes "We do have a variety of shoe options that fit your size 47." Both take the
promise's words from the message. ``affirmations_unbacked`` finds such phrases so that the reply
service replaces the opening with the lead answer's own (as it does for a refusal no source makes,
``generation.text.placeholders.refusals_unbacked``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from generation.text.copycheck import content_words

# Phrases that grant or affirm: what follows them up to the end of the clause is the promise.
_AFFIRM = re.compile(
    r"\b(?:yes|you can(?: also)?|you(?:'ll| will) be able to|we (?:do |also )?(?:have|offer|accept|sell|carry|stock|"
    r"ship|deliver|support)|we can|(?:is|are) (?:available|possible|accepted|in stock))\b",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"[.!?;:\n]")


def _clause_words(text: str, match: re.Match) -> list[str]:
    """The content words after ``match`` up to the end of its clause."""
    return content_words(_CLAUSE_END.split(text[match.end():], maxsplit=1)[0])


def affirmations_unbacked(text: str, message: str, sources: Sequence[str]) -> list[str]:
    """The affirming phrases of ``text`` ("you can", "we do have", "yes", ...) whose clause takes a
    word from the customer's ``message`` that none of the ``sources`` (the answers and values the
    reply may state) has, as "phrase: word", in text order. Words are compared as the copy
    checker compares them (folded, singular, synonyms merged); the verb after "you can" and words
    of three letters or fewer ("one", "two") are no claim."""
    asked = set(content_words(message))
    have = {word for source in sources for word in content_words(source or "")}
    found = []
    for match in _AFFIRM.finditer(text):
        clause = _clause_words(text, match)
        if match.group(0).lower().endswith(("can", "can also", "able to")):
            clause = clause[1:]  # the verb the customer asked with ("you can send it back") is no claim
        taken = [w for w in clause if len(w) > 3 and w in asked and w not in have and not w[:1].isdigit()]
        if taken:
            found.append(f"{match.group(0).lower()}: {taken[0]}")
    return found


# Phrases that explain or advise: what follows them up to the end of the clause is a cause or a
# course of action the reply vouches for.
_SPECULATE = re.compile(
    r"\b(?:it(?:'s| is) (?:possible|likely) that|(?:may|might|could) (?:have been|be due to|be because)|"
    r"due to|because of|(?:i|we) (?:would )?(?:recommend|suggest|advise))\b",
    re.IGNORECASE,
)


# Verbs and words of every clause, which no answer needs to have for a clause to be backed.
_FUNCTION_WORDS = frozenset(
    "have been being were will would could should might must does done also just some which what when where "
    "there here then than very more most sure able make made need please help".split()
)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def speculations_unbacked(text: str, known: Sequence[str]) -> list[str]:
    """The explaining or advising phrases of ``text`` ("it's possible that", "may have been",
    "due to", "I recommend", ...) whose clause has two or more words that nothing ``known`` (the
    answers, the message, the values) has, as "phrase: word word", in text order: a cause the
    model guessed ("delayed due to unforeseen circumstances") or advice no answer gives ("I
    recommend using a shipping service that allows you to track"). Words of three letters or
    fewer and figures are left to the other guards."""
    have = {_stem(word) for source in known for word in content_words(source or "")}
    found = []
    for match in _SPECULATE.finditer(text):
        clause = _clause_words(text, match)
        new = [w for w in clause if len(w) > 3 and w not in _FUNCTION_WORDS and _stem(w) not in have
               and not w[:1].isdigit()]
        if len(new) >= 2:
            found.append(f"{match.group(0).lower()}: {' '.join(new[:2])}")
    return found

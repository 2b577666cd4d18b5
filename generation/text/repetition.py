"""Repetition in generated text: words, the first repeated word n-gram, cutting a loop, dropping
the sentences that repeat what came before. One implementation, used by replies, copy, the copy
checker and the VAE/GAN sample filters."""

from __future__ import annotations

import re

from generation.text.sentences import _NOT_STEP, sentence_ends

_WORD = re.compile(r"[\w']+")
# Tokens as the VAE/GAN metrics count them (``workers.ml.text_metrics.words``): a placeholder is one.
_LOOP_TOKEN = re.compile(r"\{\{[^{}]*\}\}|\w+(?:'\w+)?|[^\w\s]")


def _first_repeat(text: str, n: int) -> tuple[int, tuple[str, ...]] | None:
    words = [(m.group(0).lower(), m.start()) for m in _WORD.finditer(text)]
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - n + 1):
        gram = tuple(w for w, _ in words[i : i + n])
        if gram in seen:
            return words[i][1], gram
        seen.add(gram)
    return None


def repeated_ngram(text: str, n: int = 4) -> int | None:
    """Character offset where the first repeated word ``n``-gram starts (its second occurrence),
    or None. Words are lower-cased runs of letters, digits and apostrophes."""
    found = _first_repeat(text, n)
    return found[0] if found else None


def repeated_ngram_text(text: str, n: int = 4) -> str | None:
    """The first word ``n``-gram that occurs twice (lower-cased words, space-joined), or None."""
    found = _first_repeat(text, n)
    return " ".join(found[1]) if found else None


# A whole reply loops when it says a span of this many words twice. Written answers repeat short
# phrases ("the order with the number {{Order Number}}" in two steps): 28 % of the Bitext answers
# repeat a word 4-gram, 3.5 % a 6-gram, 0.6 % an 8-gram; a greedy 135M model that loops repeats
# whole sentences. Cutting at the first repeated 4-gram cut good drafts after two steps.
LOOP_NGRAM = 8


def reply_loops(text: str) -> bool:
    """Whether a whole written reply loops: a word ``LOOP_NGRAM``-gram said twice."""
    return repeated_ngram(text, LOOP_NGRAM) is not None


def loop_cut(text: str, n: int = 4) -> tuple[str, bool]:
    """``text`` cut before the sentence that holds the first repeated ``n``-gram (or, when that
    sentence is the first, before the repeat itself). Returns (text, whether it was cut)."""
    start = repeated_ngram(text, n)
    if start is None:
        return text, False
    ends = sentence_ends(text, end=start)
    cut = ends[-1] if ends else start
    return text[:cut].rstrip(), True


_SEGMENT = re.compile(r".*?(?:" + _NOT_STEP + r"[.!?][\"')\]]*(?=\s)|\n|$)", re.S)
_STEP = re.compile(r"^(\s*)(\d+)\.(?=\s)", re.M)


def repeats_drop(kept: str, addition: str, n: int = 4) -> tuple[str, int]:
    """``kept`` + the sentences and lines of ``addition`` that repeat no word ``n``-gram of the
    text before them (human-written answers repeat phrases such as "your order number"; dropping
    those sentences keeps the rest, where truncating would lose it). Numbered steps are
    renumbered. Returns the text and the number of dropped segments."""
    text, dropped, after_drop = kept, 0, False
    for match in _SEGMENT.finditer(addition):
        segment = match.group(0)
        if not segment or (after_drop and segment == "\n"):  # the dropped line's own end
            after_drop = False
            continue
        after_drop = False
        if segment.strip() and repeated_ngram(text + segment, n) is not None:
            dropped, after_drop = dropped + 1, True
            continue
        text += segment
    counter = {"last": 0}

    def renumber(m: re.Match) -> str:
        counter["last"] = counter["last"] + 1 if m.group(2) != "1" else 1
        return f"{m.group(1)}{counter['last']}."

    return _STEP.sub(renumber, re.sub(r"\n{3,}", "\n\n", text)).strip(), dropped


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def looping(text: str) -> bool:
    """A decoding that loops: a word right after itself ("the the") or a word 3-gram twice."""
    tokens = [token for token in _LOOP_TOKEN.findall(text.lower()) if token[0].isalnum()]
    if any(a == b for a, b in zip(tokens, tokens[1:])):
        return True
    grams = [tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)]
    return len(grams) != len(set(grams))

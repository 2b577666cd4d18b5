"""Quality and diversity figures of generated text ("Language GANs Falling Short", Caccia et al.
2020; Texygen's self-BLEU): BLEU, self-BLEU, distinct-n, novelty. Pure Python on word tokens
(lower-cased words and punctuation marks), no model.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

_TOKEN = re.compile(r"\{\{[^{}]*\}\}|\w+(?:'\w+)?|[^\w\s]")
MAX_N = 4


def words(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens; a ``{{Placeholder}}`` is one token."""
    return _TOKEN.findall(text.lower())


def text_key(text: str) -> str:
    """What "the same sentence" means for novelty: case, spacing and punctuation-spacing ignored."""
    return " ".join(words(text))


def text_hash(text: str) -> str:
    return hashlib.sha1(text_key(text).encode()).hexdigest()[:16]


def ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct n-grams / all n-grams over the set (Li et al. 2016): 1.0 = no n-gram repeats."""
    seen: set[tuple] = set()
    total = 0
    for text in texts:
        grams = ngrams(words(text), n)
        total += sum(grams.values())
        seen.update(grams)
    return len(seen) / total if total else 0.0


def _bleu_from_counts(matches: list[float], totals: list[int], hyp_len: int, ref_len: int) -> float:
    """BLEU-4 with +1 smoothing of n>1 precisions (Lin and Och 2004), so short sentences get a
    non-zero score; 0 for an empty hypothesis."""
    if hyp_len == 0:
        return 0.0
    log_precision = 0.0
    for n in range(MAX_N):
        if n == 0:
            if matches[0] == 0:
                return 0.0
            log_precision += math.log(matches[0] / totals[0])
        else:
            log_precision += math.log((matches[n] + 1) / (totals[n] + 1))
    brevity = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_precision / MAX_N)


def sentence_bleu(hypothesis: str, references: Sequence[str]) -> float:
    hyp = words(hypothesis)
    refs = [words(r) for r in references]
    matches, totals = [], []
    for n in range(1, MAX_N + 1):
        grams = ngrams(hyp, n)
        best: Counter = Counter()
        for ref in refs:
            best |= ngrams(ref, n)
        matches.append(sum(min(count, best[g]) for g, count in grams.items()))
        totals.append(max(0, len(hyp) - n + 1))
    ref_len = min((len(r) for r in refs), key=lambda length: (abs(length - len(hyp)), length), default=0)
    return _bleu_from_counts(matches, totals, len(hyp), ref_len)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-4 (Papineni et al. 2002), one reference per hypothesis, in [0, 1]."""
    matches = [0] * MAX_N
    totals = [0] * MAX_N
    hyp_len = ref_len = 0
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        hyp, ref = words(hypothesis), words(reference)
        hyp_len += len(hyp)
        ref_len += len(ref)
        for n in range(1, MAX_N + 1):
            grams, ref_grams = ngrams(hyp, n), ngrams(ref, n)
            matches[n - 1] += sum(min(count, ref_grams[g]) for g, count in grams.items())
            totals[n - 1] += max(0, len(hyp) - n + 1)
    if hyp_len == 0 or any(m == 0 for m in matches):
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / MAX_N
    brevity = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_precision)


def self_bleu(texts: Sequence[str]) -> float:
    """Mean sentence BLEU-4 of each text against all the others as references (Zhu et al. 2018):
    high = the texts repeat each other. Linear in the number of texts: the clip count of an
    n-gram over "all the others" is its largest count in any other text, so only the two largest
    counts per n-gram are kept."""
    tokenised = [words(t) for t in texts]
    if len(tokenised) < 2:
        return 0.0
    per_text = [[ngrams(tokens, n) for n in range(1, MAX_N + 1)] for tokens in tokenised]
    top: list[dict[tuple, list]] = [{} for _ in range(MAX_N)]  # gram -> [best, owner, second]
    for index, grams_by_n in enumerate(per_text):
        for n, grams in enumerate(grams_by_n):
            table = top[n]
            for gram, count in grams.items():
                entry = table.get(gram)
                if entry is None:
                    table[gram] = [count, index, 0]
                elif count > entry[0]:
                    table[gram] = [count, index, entry[0]]
                elif count > entry[2]:
                    entry[2] = count
    lengths = sorted(len(tokens) for tokens in tokenised)
    scores = []
    for index, (tokens, grams_by_n) in enumerate(zip(tokenised, per_text, strict=True)):
        matches, totals = [], []
        for n, grams in enumerate(grams_by_n):
            table = top[n]
            matched = 0
            for gram, count in grams.items():
                best, owner, second = table[gram]
                matched += min(count, second if owner == index else best)
            matches.append(matched)
            totals.append(max(0, len(tokens) - n))
        others = lengths.copy()
        others.pop(bisect.bisect_left(others, len(tokens)))
        position = bisect.bisect_left(others, len(tokens))
        nearby = others[max(0, position - 1) : position + 1]
        ref_len = min(nearby, key=lambda length: (abs(length - len(tokens)), length))
        scores.append(_bleu_from_counts(matches, totals, len(tokens), ref_len))
    return sum(scores) / len(scores)


def novelty(texts: Sequence[str], training_hashes: set[str]) -> float:
    """Share of texts that are not a training sentence (compared by ``text_key``)."""
    if not texts:
        return 0.0
    return sum(text_hash(t) not in training_hashes for t in texts) / len(texts)


_BRACKETS = {")": "(", "]": "[", "}": "{"}
_TRIPLE_INSIDE_WORD = re.compile(r"([a-z])\1\1", re.IGNORECASE)
_ALPHA_WORD = re.compile(r"[A-Za-z]+")


def broken_reason(text: str, known_words: set[str] | None = None) -> str | None:
    """Why a generated text has broken tokens, or None: ``brackets`` (unbalanced ( [ { or a
    template brace left open, as in "{{ferostststting"), ``repeated_char`` (a letter three times
    in a row inside a word, "ferostststting" has none but "cooool" has), ``non_word`` (a word of
    letters outside ``known_words``, lower-cased; skipped without a vocabulary)."""
    stack: list[str] = []
    for char in text:
        if char in "([{":
            stack.append(char)
        elif char in _BRACKETS:
            if not stack or stack.pop() != _BRACKETS[char]:
                return "brackets"
    if stack:
        return "brackets"
    for word in _ALPHA_WORD.findall(text):
        if _TRIPLE_INSIDE_WORD.search(word):
            return "repeated_char"
    if known_words:
        for word in _ALPHA_WORD.findall(text):
            if word.lower() not in known_words and len(word) > 1:
                return "non_word"
    return None


_FINISHED = re.compile(r"[.!?:\u2026][\"'\u2019\u201d)\]]*\s*$")


def unfinished(text: str) -> bool:
    """A sentence that stops without its end mark ("... made from 100% ster", "... and a"): the
    decoder ran out of tokens mid-sentence."""
    return bool(text.strip()) and not _FINISHED.search(text)


def text_words(texts: Sequence[str]) -> set[str]:
    """The lower-cased words of letters of ``texts`` (the words ``broken_reason`` checks)."""
    return {word.lower() for text in texts for word in _ALPHA_WORD.findall(text)}


def tokenizer_words(tokenizer) -> set[str]:
    """The whole words of a tokenizer's vocabulary, lower-cased: byte-level BPE tokens with their
    leading-space mark removed, WordPiece tokens that are not word pieces (letters only)."""
    words = set()
    for token in tokenizer.get_vocab():
        word = token.removeprefix("\u0120")
        if word.isalpha() and word.isascii():
            words.add(word.lower())
    return words


def broken_share(texts: Sequence[str], known_words: set[str] | None = None) -> float:
    """Share of the (non-empty) texts with a ``broken_reason``."""
    non_empty = [t for t in texts if t.strip()]
    if not non_empty:
        return 0.0
    return sum(broken_reason(t, known_words) is not None for t in non_empty) / len(non_empty)

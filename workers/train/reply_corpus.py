"""Retrieval-augmented training examples for the reply model (``manage.py reply_corpus``). No
Django, no model: the command embeds the messages and writes the files.

Each example is what the reply runner shows a ``rag1`` adapter (``reply_rag_messages``): the
customer's message, the top-k *other* conversations retrieved for it as serving retrieves them
(cosine of the masked customer messages, none below the relevance floor, near duplicates of a
better hit dropped), and, as the target, the example's own reference answer. A row never sees
itself: not its own row, nor any row with the same customer message or the same answer, so the
model learns to pick the fitting source and adapt it, not to copy the target from the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rag_neighbours(
    vectors: np.ndarray,
    *,
    messages: Sequence[str],
    answers: Sequence[str],
    k: int,
    min_score: float,
    dedupe_cosine: float,
    pool: int = 32,
) -> list[list[tuple[int, float]]]:
    """For each row, up to ``k`` (row, cosine) of the other rows, best first: rows whose message or
    answer equals this row's are never offered; below ``min_score`` nothing is; a row closer than
    ``dedupe_cosine`` to a hit already kept is skipped. ``vectors`` are unit-length rows."""
    norm_messages = [" ".join(m.lower().split()) for m in messages]
    norm_answers = [" ".join(a.lower().split()) for a in answers]
    scores = vectors @ vectors.T
    result = []
    for i in range(len(vectors)):
        row = scores[i].copy()
        row[i] = -np.inf
        take = min(pool, len(row) - 1)
        order = np.argsort(-row)[: max(take, 0)]
        kept: list[tuple[int, float]] = []
        for j in order:
            j = int(j)
            if row[j] < min_score:
                break
            if norm_messages[j] == norm_messages[i] or norm_answers[j] == norm_answers[i]:
                continue
            if kept and float(max(scores[j, h] for h, _ in kept)) > dedupe_cosine:
                continue
            kept.append((j, float(row[j])))
            if len(kept) == k:
                break
        result.append(kept)
    return result


def rag_target(answer: str, *, message: str, sources: Sequence[str]) -> str:
    """A reference answer as the reply model's training target: placeholders spelled as the service
    spells them, and every value (order number, amount, phone, e-mail, link) that neither the
    customer's message nor a source holds replaced by its placeholder, as serving replaces what a
    draft invents. Bitext's answers fill in values their masked messages never gave ("your order
    with the number 00004587345" for "[ORDER_ID]"); a model trained on them wrote digits for every
    such message and, greedily, ran on into "0000..." until its token budget."""
    from generation.text.placeholders import invented_values_replace, placeholders_normalise

    return invented_values_replace(placeholders_normalise(answer.strip()), [message, *sources])[0]

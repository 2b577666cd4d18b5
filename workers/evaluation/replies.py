"""Figures of reply drafts against reference replies (fine-tuning's held-out evaluation and
``replies_evaluate``): MiniLM similarity to the reference, length, repetition."""

from __future__ import annotations

import statistics
import time


def _figures(texts: list[str], reference_vectors) -> dict:
    from generation.text.repetition import repeated_ngram, word_count
    from workers.runtime.embeddings import embedder_get

    vectors = embedder_get().encode([t or " " for t in texts])
    similarity = (vectors * reference_vectors).sum(axis=1)
    return {
        "similarity": round(float(similarity.mean()), 4),
        "repeated_4gram_rate": round(sum(repeated_ngram(t) is not None for t in texts) / len(texts), 4),
        "mean_words": round(statistics.mean(word_count(t) for t in texts), 1),
    }


def replies_figures(rows: list[dict], lms: dict, *, max_new_tokens: int = 128, concurrency: int = 8) -> dict:
    """replies_evaluate's figures on ``rows`` (Bitext: instruction, response) for each LoadedLM
    of ``lms``: the reply service and the bare model without retrieval."""
    from concurrent.futures import ThreadPoolExecutor

    from generation.lm import chat_input_ids
    from generation.management.commands.replies_evaluate import BARE_SYSTEM
    from generation.privacy import pii_mask
    from generation.runner import NullContext
    from workers.ml.decoding import SamplingParams
    from workers.runners.reply import replies_draft
    from workers.runtime.completions import completions_run
    from workers.runtime.embeddings import embedder_get

    messages = [r["instruction"] for r in rows]
    reference_vectors = embedder_get().encode([r["response"] for r in rows])
    params = [{"message": m, "k": 3, "max_new_tokens": max_new_tokens} for m in messages]
    sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0, repetition_penalty=1.05)
    report = {"rows": len(rows), "max_new_tokens": max_new_tokens}
    for name, lm in lms.items():
        started = time.monotonic()
        service = [c[0].text for c in replies_draft(params, exclude_messages=messages, concurrency=concurrency, lm=lm)]

        def bare_one(message: str, lm=lm) -> str:
            turns = [{"role": "system", "content": BARE_SYSTEM}, {"role": "user", "content": pii_mask(message).text}]
            ids = chat_input_ids(lm.tokenizer, prompt=None, messages=turns)
            return completions_run(lm, ids, sampling, NullContext())[0].text.strip()

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            bare = list(pool.map(bare_one, messages))
        report[name] = {"service": _figures(service, reference_vectors), "bare": _figures(bare, reference_vectors),
                        "seconds": round(time.monotonic() - started, 1)}
    return report

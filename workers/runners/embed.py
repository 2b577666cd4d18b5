"""Runners that embed rows with the process's sentence encoder: ``knowledge_embed`` (knowledge
docs and past conversations, for retrieval) and ``brand_example_embed`` (the copy kind's brand
examples)."""

from __future__ import annotations

import time

from django.conf import settings

from generation.runner import CandidateResult, JobResult, RunnerContext
from workers.runtime.embeddings import embedder_get


def knowledge_embed_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    """Embed pending rows batch by batch; each batch commits, so a stopped job keeps its work
    and the next one continues where it stopped."""
    from generation.selectors import knowledge_embedding_pending
    from generation.services.knowledge import knowledge_embeddings_store

    started = time.monotonic()
    embedder = embedder_get()
    kinds, force, batch = params["kinds"], params.get("force", False), params["batch_size"]
    total = sum(
        knowledge_embedding_pending(kind=kind, model_name=embedder.name, force=force).count() for kind in kinds
    )
    done: dict[str, int] = dict.fromkeys(kinds, 0)
    ctx.progress(0.0, f"0/{total} rows embedded")
    for kind in kinds:
        after_id = 0
        while not ctx.stop_reason():
            rows = list(
                knowledge_embedding_pending(
                    kind=kind, model_name=embedder.name, after_id=after_id, limit=batch, force=force
                )
            )
            if not rows:
                break
            knowledge_embeddings_store(
                kind=kind,
                model_name=embedder.name,
                vectors=[
                    (row.pk, row.content_hash, vector)
                    for row, vector in zip(rows, knowledge_vectors_encode(embedder, rows, batch_size=batch))
                ],
            )
            after_id = rows[-1].pk
            done[kind] += len(rows)
            embedded = sum(done.values())
            ctx.progress(min(embedded / total, 1.0) if total else 1.0, f"{embedded}/{total} rows embedded")
    seconds = time.monotonic() - started
    embedded = sum(done.values())
    rate = embedded / seconds if seconds > 0 else 0.0
    summary = ", ".join(f"{kind} {n}" for kind, n in done.items())
    return JobResult(
        candidates=[
            CandidateResult(
                text=f"Embedded {embedded} rows ({summary}) with {embedder.name} on {embedder.device} in {seconds:.1f} s.",
                finish_reason="stop",
                metadata={"embedded": done, "model": embedder.name, "dim": embedder.dim},
            )
        ],
        model_version=embedder.name,
        usage={"rows": embedded, "seconds": round(seconds, 3), "rows_per_second": round(rate, 1)},
    )


def knowledge_vectors_encode(embedder, rows, *, batch_size: int) -> list[bytes]:
    """Each row's ``embedding``: the vectors of its ``embedding_texts()``, one after another
    (float32 bytes), all rows' texts encoded in one batched pass."""
    texts = [row.embedding_texts() for row in rows]
    vectors = embedder.encode([t for row_texts in texts for t in row_texts], batch_size=batch_size)
    out, start = [], 0
    for row_texts in texts:
        out.append(vectors[start : start + len(row_texts)].tobytes())
        start += len(row_texts)
    return out


def brand_example_embed_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    """Embed the active brand examples whose text changed since (or that were never embedded)."""
    from django.db.models import F, Q

    from generation.models import BrandExample
    from generation.services.copy import brand_example_embeddings_store
    from workers.runtime.embeddings import embedder_get

    started = time.monotonic()
    embedder = embedder_get()
    rows = BrandExample.objects.filter(active=True).defer("embedding").order_by("pk")
    if not params.get("force"):
        rows = rows.filter(
            Q(embedding__isnull=True) | ~Q(embedded_hash=F("content_hash")) | ~Q(embedding_model=embedder.name)
        )
    rows = list(rows)
    batch = settings.GENAI_KB_EMBED_BATCH
    done = 0
    for start in range(0, len(rows), batch):
        if ctx.stop_reason():
            break
        chunk = rows[start : start + batch]
        vectors = embedder.encode([r.embedding_text() for r in chunk])
        done += brand_example_embeddings_store(
            model_name=embedder.name, vectors=[(r.pk, r.content_hash, v.tobytes()) for r, v in zip(chunk, vectors)]
        )
        ctx.progress(min(done / len(rows), 1.0), f"{done}/{len(rows)} examples embedded")
    seconds = time.monotonic() - started
    return JobResult(
        candidates=[
            CandidateResult(
                text=f"Embedded {done} brand examples with {embedder.name} on {embedder.device} in {seconds:.1f} s.",
                finish_reason="stop",
                metadata={"embedded": done, "model": embedder.name},
            )
        ],
        model_version=embedder.name,
        usage={"rows": done, "seconds": round(seconds, 3)},
    )

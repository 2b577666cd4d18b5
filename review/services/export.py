"""Fine-tuning data from what people sent and approved, in chat format
(``{"messages": [{"role": "system"|"user"|"assistant", "content": ...}]}`` per line).

Included: replies sent as is or edited (the text that was sent), and reviewed content that was
approved (the approved text). Excluded: discarded drafts, rejected or not-yet-approved review
items, and drafts the safety filter flagged unless a reviewer approved them. Personal data is
masked in every message (``generation.privacy.pii_mask``); placeholders such as ``[ORDER_ID]``
stay, which teaches the model not to invent values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db.models import Q

from generation.privacy import pii_mask
from review.models import ACCEPTED_OUTCOMES, Feedback, ReviewItem, ReviewStatus
from review.services.safety import candidate_is_flagged

REPLY_SYSTEM = "You are a helpful, accurate customer-support agent. Answer the customer's message."
COPY_SYSTEM = "You write accurate, on-brand product copy from the product's attributes."

# A job's customer-facing input, by kind: which param holds the user turn.
_USER_PARAM = {"reply": "message"}


def _mask(text: str) -> str:
    return pii_mask(text or "").text


def _user_turns(job) -> list[dict]:
    """The conversation (or the brief) that led to the draft, as chat turns."""
    params = job.params or {}
    if job.kind == "reply":
        turns = [
            {"role": "user" if t.get("role") == "customer" else "assistant", "content": _mask(t.get("content", ""))}
            for t in params.get("history") or []
        ]
        return [*turns, {"role": "user", "content": _mask(params.get("message", ""))}]
    brief = {k: v for k, v in params.items() if k not in ("n", "seed", "temperature", "max_new_tokens")}
    return [{"role": "user", "content": _mask(json.dumps(brief, sort_keys=True, ensure_ascii=False))}]


@dataclass(frozen=True)
class ExportReport:
    path: Path
    examples: int
    skipped_flagged: int


def _examples(*, kind: str, since: datetime | None) -> Iterator[tuple[dict, bool]]:
    """``(example, flagged_and_unapproved)`` pairs, oldest first; one per candidate."""
    system = REPLY_SYSTEM if kind == "reply" else COPY_SYSTEM
    seen: set[int] = set()
    approved = ReviewItem.objects.filter(kind=kind, status=ReviewStatus.APPROVED).select_related("candidate__job")
    if since:
        approved = approved.filter(decided_at__gte=since)
    for item in approved.order_by("decided_at", "id"):
        seen.add(item.candidate_id)
        job = item.candidate.job
        yield {"messages": [{"role": "system", "content": system}, *_user_turns(job),
                            {"role": "assistant", "content": _mask(item.text)}]}, False
    if kind in settings.GENAI_REVIEW_COPY_KINDS:  # only approved copy is ever exported
        return
    # Excluded outright: anything a reviewer rejected, or that still waits for a decision.
    not_approved = ReviewItem.objects.filter(kind=kind).filter(~Q(status=ReviewStatus.APPROVED)).values("candidate_id")
    sent = (
        Feedback.objects.filter(candidate__job__kind=kind, outcome__in=ACCEPTED_OUTCOMES)
        .exclude(candidate_id__in=not_approved)
        .select_related("candidate__job")
    )
    if since:
        sent = sent.filter(decided_at__gte=since)
    for feedback in sent.order_by("decided_at", "id"):
        if feedback.candidate_id in seen:
            continue
        seen.add(feedback.candidate_id)
        candidate = feedback.candidate
        example = {"messages": [{"role": "system", "content": system}, *_user_turns(candidate.job),
                                {"role": "assistant", "content": _mask(feedback.sent_text or "")}]}
        yield example, candidate_is_flagged(candidate.metadata)


def feedback_export(*, kind: str, since: datetime | None, out: Path) -> ExportReport:
    """Write the chat-format JSONL for ``kind`` (feedback decided since ``since``) to ``out``;
    written to a temporary file first, so a failed export leaves no half-written file."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    examples = skipped = 0
    with partial.open("w", encoding="utf-8") as handle:
        for example, flagged in _examples(kind=kind, since=since):
            if flagged:
                skipped += 1
                continue
            if not example["messages"][-1]["content"].strip():
                continue
            handle.write(json.dumps(example, ensure_ascii=False) + "\n")
            examples += 1
    partial.replace(out)
    return ExportReport(path=out, examples=examples, skipped_flagged=skipped)

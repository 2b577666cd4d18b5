"""Runner of the ``alert_summary`` kind and its prompt: 2 to 4 sentences about the items behind
an alert, citing their ids as ``[#12]``. The model's text is kept only if ``summary_judge``
accepts it: ``summary_validate`` (it cites only the alert's items, 2 to 4 sentences) and then
``generation.text.summarycheck`` (each sentence is supported by the items it cites: the entity,
the direction of sentiment, every number and name); otherwise the alert keeps the extractive
summary ``monitoring.services.summaries`` builds. ``alerts_evaluate`` measures how often."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings

from generation.exceptions import PermanentJobError
from generation.runner import CandidateResult, JobResult, RunnerContext
from generation.text.sentences import sentences_split
from generation.text.summarycheck import CITATION, SentenceCheck, Source, summary_support, support_problem

_ANY_ID = re.compile(r"#(\d+)")

SUMMARY_SYSTEM = (
    "You are a financial news analyst. Summarise news items for a risk desk in 2 to 4 short sentences. "
    "After each fact, cite the item it comes from by its id in square brackets, like [#12]. Use only the ids given."
)


def alert_summary_prompt(*, entity: str, items: list) -> list[dict]:
    listing = "\n".join(f"[#{i.pk}] ({i.sentiment_label}) {' '.join(i.text.split())[:300]}" for i in items)
    subject = "the market" if entity == "*" else entity
    return [
        {"role": "system", "content": SUMMARY_SYSTEM},
        {"role": "user", "content": f"News items about {subject}:\n{listing}\n\nWhy is sentiment about {subject} negative? "
                                    "Answer in 2 to 4 sentences citing the ids like [#12]."},
    ]


def summary_validate(text: str, *, allowed_ids: set[int]) -> tuple[bool, list[int], str]:
    """(valid, cited ids, reason). Every ``#N`` in the text counts as a citation; a valid summary
    cites at least one item as ``[#id]``, no id outside ``allowed_ids``, in 2 to 4 sentences."""
    cited = [int(n) for n in _ANY_ID.findall(text)]
    if not CITATION.search(text):
        return False, cited, "cites no item as [#id]"
    unknown = sorted({c for c in cited if c not in allowed_ids})
    if unknown:
        return False, cited, f"cites ids that are not behind the alert: {unknown}"
    count = len(sentences_split(text, capitalised=True))
    if not 2 <= count <= 4:
        return False, cited, f"{count} sentences, not 2 to 4"
    return True, list(dict.fromkeys(cited)), ""


@dataclass
class SummaryVerdict:
    kept: bool  # cites only the alert's items, 2-4 sentences, every sentence supported
    cited: list[int]
    reason: str = ""  # why not kept
    structural: bool = False  # what the check before support kept: real ids, 2-4 sentences
    checks: list[SentenceCheck] = field(default_factory=list)  # per sentence, when structural

    @property
    def unsupported(self) -> list[SentenceCheck]:
        return [c for c in self.checks if not c.supported]


def summary_judge(text: str, *, entity: str, items: list, entity_terms: list[str]) -> SummaryVerdict:
    """Whether a model summary is kept: the structural check, then each sentence against the
    items it cites. ``items`` have ``pk``, ``text``, ``sentiment_label`` and ``entities``."""
    if not items:
        return SummaryVerdict(False, [], "no items")
    valid, cited, reason = summary_validate(text, allowed_ids={i.pk for i in items})
    if not valid:
        return SummaryVerdict(False, cited, reason)
    sources = {i.pk: Source(text=i.text, label=i.sentiment_label or "", entities=tuple(i.entities or ())) for i in items}
    checks = summary_support(text, sources=sources, entity=entity, entity_terms=entity_terms)
    problem = support_problem(checks)
    return SummaryVerdict(not problem, cited, problem, structural=True, checks=checks)


def alert_summary_generate(lm, *, entity: str, items: list, ctx: RunnerContext):
    """The model's summary of ``items``: (text cut to 4 sentences, the raw completion, prompt ids)."""
    from generation.lm import chat_input_ids
    from workers.ml.decoding import SamplingParams
    from workers.runtime.completions import completions_run

    ids = chat_input_ids(lm.tokenizer, prompt=None, messages=alert_summary_prompt(entity=entity, items=items))
    sampling = SamplingParams(
        max_new_tokens=settings.GENAI_ALERT_SUMMARY_MAX_NEW_TOKENS, temperature=0.0, repetition_penalty=1.2, n=1, stop=("\n\n",)
    )
    completion = completions_run(lm, ids, sampling, ctx)[0]
    generated = " ".join(completion.text.split())
    return " ".join(sentences_split(generated, capitalised=True)[:4]), completion, ids


def alert_summary_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    """The LM's summary if every sentence is supported by the items it cites, else the extractive one."""
    from monitoring.models import Alert, NewsItem
    from monitoring.selectors import entity_terms
    from monitoring.services.summaries import (
        alert_summary_extractive,
        alert_summary_store,
    )
    from workers.runtime.models import lm_get

    alert = Alert.objects.filter(pk=params["alert_id"]).first()
    if alert is None:
        raise PermanentJobError(f"Alert {params['alert_id']} no longer exists.", code="not_found")
    items_by_id = NewsItem.objects.in_bulk(alert.item_ids)
    items = [items_by_id[i] for i in alert.item_ids if i in items_by_id]
    lm = lm_get()
    candidate, completion, ids = alert_summary_generate(lm, entity=alert.entity, items=items, ctx=ctx)
    verdict = summary_judge(candidate, entity=alert.entity, items=items, entity_terms=entity_terms(key=alert.entity))
    cited = verdict.cited
    if verdict.kept:
        text, method = candidate, "model"
    else:
        text, cited = alert_summary_extractive(item_ids=alert.item_ids)
        method = "extractive"
    alert_summary_store(alert_id=alert.pk, text=text, cited=cited, method=method)
    return JobResult(
        candidates=[
            CandidateResult(
                text=text,
                finish_reason=completion.finish_reason,
                prompt_tokens=len(ids),
                completion_tokens=completion.completion_tokens,
                metadata={"alert_id": alert.pk, "method": method, "cited_item_ids": cited,
                          "model_text": " ".join(completion.text.split()),
                          "rejected_because": verdict.reason,
                          "unsupported_sentences": [{"sentence": c.sentence, "problems": list(c.problems)}
                                                    for c in verdict.unsupported]},
            )
        ],
        model_version=lm.version,
        usage={"prompt_tokens": len(ids), "completion_tokens": completion.completion_tokens},
    )

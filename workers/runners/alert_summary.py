"""Runner of the ``alert_summary`` kind and its prompt: 2 to 4 sentences about the items behind
an alert, citing their ids as ``[#12]``. The model's text is kept only if ``summary_validate``
accepts it (it cites only the alert's items, 2 to 4 sentences); otherwise the alert keeps the
extractive summary ``monitoring.services.summaries`` builds."""

from __future__ import annotations

import re

from django.conf import settings

from generation.exceptions import PermanentJobError
from generation.runner import CandidateResult, JobResult, RunnerContext
from generation.text.sentences import sentences_split

CITATION = re.compile(r"\[#(\d+)\]")
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


def alert_summary_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    """The LM's summary if it cites only the alert's items, else the extractive one."""
    from generation.lm import chat_input_ids
    from monitoring.models import Alert, NewsItem
    from monitoring.services.summaries import (
        alert_summary_extractive,
        alert_summary_store,
    )
    from workers.ml.decoding import SamplingParams
    from workers.runtime.completions import completions_run
    from workers.runtime.models import lm_get

    alert = Alert.objects.filter(pk=params["alert_id"]).first()
    if alert is None:
        raise PermanentJobError(f"Alert {params['alert_id']} no longer exists.", code="not_found")
    items_by_id = NewsItem.objects.in_bulk(alert.item_ids)
    items = [items_by_id[i] for i in alert.item_ids if i in items_by_id]
    allowed = {i.pk for i in items}
    lm = lm_get()
    ids = chat_input_ids(lm.tokenizer, prompt=None, messages=alert_summary_prompt(entity=alert.entity, items=items))
    sampling = SamplingParams(
        max_new_tokens=settings.GENAI_ALERT_SUMMARY_MAX_NEW_TOKENS, temperature=0.0, repetition_penalty=1.2, n=1, stop=("\n\n",)
    )
    completion = completions_run(lm, ids, sampling, ctx)[0]
    generated = " ".join(completion.text.split())
    candidate = " ".join(sentences_split(generated, capitalised=True)[:4])
    valid, cited, reason = summary_validate(candidate, allowed_ids=allowed) if items else (False, [], "no items")
    if valid:
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
                metadata={"alert_id": alert.pk, "method": method, "cited_item_ids": cited, "model_text": generated,
                          "rejected_because": reason},
            )
        ],
        model_version=lm.version,
        usage={"prompt_tokens": len(ids), "completion_tokens": completion.completion_tokens},
    )

"""Alert summaries measured by what an analyst reads: the model's summary of each alert's items,
whether the structural check alone (real ids, 2-4 sentences: the rule before issue 21) would have
kept it, whether the support check keeps it (each sentence supported by the items it cites), which
sentences fail and why, and the extractive summary the analyst reads instead. Used by
``manage.py alerts_evaluate``.

The baseline in the same run is the structural check: ``kept_by_structure_share`` is what
analysts were shown before, ``kept_by_structure_but_unsupported_share`` how much of it was not
borne out by its own citations. ``self_support_share`` runs the checker on each item's own text
citing itself: what it rejects there (a neutral item that says "fell") is the checker's own
false-positive rate.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace

from generation.runner import NullContext
from generation.text.summarycheck import SentenceCheck, Source, sentence_support, summary_support

LABEL_SCORES = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}
_LABEL_ORDER = {"negative": 0, "neutral": 1, "positive": 2}
_URL = re.compile(r"https?://\S+")


@dataclass
class EvalAlert:
    """An alert to summarise: its entity and its items, most negative first (each has ``pk``,
    ``text``, ``title``, ``source``, ``sentiment_label``, ``sentiment_score``, ``entities``)."""

    entity: str
    items: list
    alert_id: int | None = None


@dataclass
class SummaryOutcome:
    alert: EvalAlert
    model_text: str
    kept: bool
    kept_by_structure: bool
    reason: str
    checks: list[SentenceCheck]
    shown: str  # what the analyst reads: the model's text if kept, else the extractive summary
    seconds: float = 0.0
    self_checks: list[SentenceCheck] = field(default_factory=list)

    @property
    def unsupported(self) -> list[SentenceCheck]:
        return [c for c in self.checks if not c.supported]


def csv_item(*, pk: int, text: str, label: str, entities: Sequence[str]) -> SimpleNamespace:
    """A CSV row as an item: its gold label as the sentiment, a score of -1/0/+1 from it."""
    return SimpleNamespace(pk=pk, text=text, title="", source="csv", sentiment_label=label,
                           sentiment_score=LABEL_SCORES.get(label, 0.0), entities=list(entities))


def alerts_from_items(items: Sequence, *, evidence: int, min_items: int = 3) -> list[EvalAlert]:
    """Per entity, its items most negative first (then in file order), cut into alerts of
    ``evidence`` items (the evidence an alert keeps); a last piece under ``min_items`` is dropped.
    Entities take turns, so the first alerts cover as many entities as there are."""
    by_entity: dict[str, list] = {}
    for item in items:
        for entity in item.entities:
            by_entity.setdefault(entity, []).append(item)
    queues = []
    for entity in sorted(by_entity):
        ordered = sorted(by_entity[entity], key=lambda i: (_LABEL_ORDER.get(i.sentiment_label, 1), i.pk))
        chunks = [ordered[k : k + evidence] for k in range(0, len(ordered), evidence)]
        queues.append([EvalAlert(entity=entity, items=c) for c in chunks if len(c) >= min_items])
    alerts = []
    while any(queues):
        for queue in queues:
            if queue:
                alerts.append(queue.pop(0))
    return alerts


def _sources(items: Sequence) -> dict[int, Source]:
    return {i.pk: Source(text=i.text, label=i.sentiment_label or "", entities=tuple(i.entities or ())) for i in items}


def summaries_evaluate(
    alerts: Sequence[EvalAlert], *, lm, entity_terms: Callable[[str], list[str]], concurrency: int = 4,
    progress: Callable[[str], object] | None = None,
) -> list[SummaryOutcome]:
    """The model's summary of each alert (as the ``alert_summary`` job writes it), judged."""
    from monitoring.services.summaries import summary_extractive
    from workers.runners.alert_summary import alert_summary_generate, summary_judge

    terms = {a.entity: entity_terms(a.entity) for a in alerts}

    def one(alert: EvalAlert) -> SummaryOutcome:
        started = time.monotonic()
        text, _, _ = alert_summary_generate(lm, entity=alert.entity, items=alert.items, ctx=NullContext())
        seconds = time.monotonic() - started
        verdict = summary_judge(text, entity=alert.entity, items=alert.items, entity_terms=terms[alert.entity])
        sources = _sources(alert.items)
        checks = verdict.checks or summary_support(text, sources=sources, entity=alert.entity, entity_terms=terms[alert.entity])
        self_checks = [
            sentence_support(" ".join(_URL.sub(" ", i.text).split()), [i.pk], sources=sources, entity=alert.entity,
                             entity_terms=terms[alert.entity])
            for i in alert.items
        ]
        shown = text if verdict.kept else summary_extractive(items=alert.items)[0]
        return SummaryOutcome(alert=alert, model_text=text, kept=verdict.kept, kept_by_structure=verdict.structural,
                              reason=verdict.reason, checks=checks, shown=shown, seconds=seconds, self_checks=self_checks)

    outcomes: list[SummaryOutcome] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for done, outcome in enumerate(pool.map(one, alerts), start=1):
            outcomes.append(outcome)
            if progress and (done % 5 == 0 or done == len(alerts)):
                progress(f"{done}/{len(alerts)} alerts summarised")
    return outcomes


def _problem_kind(problem: str) -> str:
    for prefix, kind in (("cites no item", "no_citation"), ("cites #", "unknown_id"), ("says sentiment", "direction"),
                         ("the number", "number"), ("the name", "name")):
        if problem.startswith(prefix):
            return kind
    return "entity" if " is not about " in problem else "other"


def _share(flags) -> float:
    flags = list(flags)
    return round(sum(1 for f in flags if f) / len(flags), 4) if flags else 0.0


def summary_figures(outcomes: Sequence[SummaryOutcome]) -> dict:
    """The figures of one run: shares of alerts, and the problems of the unsupported sentences."""
    sentences = [c for o in outcomes for c in o.checks]
    problems = Counter(_problem_kind(p) for c in sentences for p in c.problems)
    self_checks = [c for o in outcomes for c in o.self_checks]
    return {
        "alerts": len(outcomes),
        "kept_share": _share(o.kept for o in outcomes),
        "kept_by_structure_share": _share(o.kept_by_structure for o in outcomes),
        "unsupported_share": _share(o.unsupported for o in outcomes),
        "kept_by_structure_but_unsupported_share": _share(o.kept_by_structure and o.unsupported for o in outcomes),
        "unsupported_sentence_share": _share(not c.supported for c in sentences),
        "sentences_per_summary": round(len(sentences) / len(outcomes), 2) if outcomes else 0.0,
        "problems": dict(sorted(problems.items())),
        "structure_failures": dict(sorted(Counter(
            o.reason.split(":")[0] for o in outcomes if not o.kept_by_structure
        ).items())),
        "self_support_share": _share(c.supported for c in self_checks),
        "seconds_per_summary": round(statistics.mean(o.seconds for o in outcomes), 2) if outcomes else 0.0,
    }


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" for line in (text or "(empty)").splitlines() or ["(empty)"])


def sample_markdown(outcomes: Sequence[SummaryOutcome], *, figures: dict, title: str) -> str:
    """A page to read: each alert's items, the model's summary with every sentence's verdict, and
    what the analyst is shown."""
    lines = [f"# {title}", "", "Figures of the whole run:", "", "```", *[f"{k}: {v}" for k, v in figures.items()], "```", ""]
    for number, o in enumerate(outcomes, start=1):
        verdict = "kept" if o.kept else ("rejected: " + o.reason if o.reason else "rejected")
        where = f" (alert #{o.alert.alert_id})" if o.alert.alert_id else ""
        lines += [f"## {number}. {o.alert.entity}{where}: {verdict}", "", "Items:", ""]
        lines += [f"- [#{i.pk}] ({i.sentiment_label or 'unscored'}) {' '.join(i.text.split())}" for i in o.alert.items]
        lines += ["", "Model summary:", "", _quote(o.model_text), "", "Sentences:", ""]
        for check in o.checks:
            mark = "supported" if check.supported else "UNSUPPORTED: " + "; ".join(check.problems)
            lines.append(f"- {check.sentence} — {mark}")
        if not o.checks:
            lines.append("- (no sentence)")
        lines += ["", f"The analyst reads ({'model' if o.kept else 'extractive'}):", "", _quote(o.shown), ""]
    return "\n".join(lines)

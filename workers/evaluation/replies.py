"""Reply drafts against reference replies: the figures of ``manage.py replies_evaluate`` (the
service, retrieval only and the bare model in one run) and of fine-tuning's held-out evaluation
(``replies_figures``), computed one way for both.

Per system: mean MiniLM cosine to the references; intent match (the share of replies whose
intent, as the registered intent classifier predicts it among the knowledge base's intents as
replies do, is the one it predicts for the reference); looping (the share that says a word 8-gram twice, ``reply_loops``; the share with
a repeated 4-gram is also given, but 28 % of the team's answers have one); visible ``{{Placeholders}}`` per
reply without a company profile and with one (and how many of those the profile has a value
for: none should stay visible); mean length in words.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from generation.runner import NullContext

BARE_SYSTEM = "You are a customer support agent. Reply to the customer's message."
NO_INTENT_MODEL = "no intent model is registered (train one with `manage.py intent_train`)"


class TimingContext(NullContext):
    """A NullContext that notes when the model's first token arrived (as a job's
    ``first_token_at`` does: the first streamed text that counts tokens)."""

    def __init__(self):
        super().__init__()
        self.started = time.monotonic()
        self.first_token: float | None = None

    def text_emit(self, deltas: dict[int, str], *, tokens: int = 0) -> None:
        if tokens and self.first_token is None:
            self.first_token = time.monotonic() - self.started


def bare_replies(messages: Sequence[str], *, lm, max_new_tokens: int, concurrency: int = 8) -> list[str]:
    """The bare model's reply to each (masked) message: no retrieval, no post-processing, greedy."""
    from generation.lm import chat_input_ids
    from generation.privacy import pii_mask
    from workers.ml.decoding import SamplingParams
    from workers.runtime.completions import completions_run

    sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0, repetition_penalty=1.05)

    def one(message: str) -> str:
        turns = [{"role": "system", "content": BARE_SYSTEM}, {"role": "user", "content": pii_mask(message).text}]
        ids = chat_input_ids(lm.tokenizer, prompt=None, messages=turns)
        return completions_run(lm, ids, sampling, NullContext())[0].text.strip()

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(one, messages))


def placeholder_counts(texts: Sequence[str], profile: dict[str, str] | None = None) -> tuple[float, float]:
    """(visible ``{{Placeholders}}`` per text, of those per text the ones ``profile`` has a value for)."""
    from generation.text.placeholders import PLACEHOLDER, key_normalise

    known = {key_normalise(k) for k in profile or {}}
    names = [[m.group(1) for m in PLACEHOLDER.finditer(t)] for t in texts]
    visible = sum(len(n) for n in names)
    fillable = sum(1 for n in names for name in n if key_normalise(name) in known)
    return round(visible / max(1, len(texts)), 3), round(fillable / max(1, len(texts)), 3)


@dataclass
class Intents:
    """The registered intent classifier's predictions for references and replies."""

    model: str | None
    reason: str | None = None
    references: list[str] = field(default_factory=list)
    labels: set[str] | None = None  # chosen among these (the knowledge base's, as replies are)
    labelled: bool = False  # ``references``: the CSV's intent labels, not predictions

    @classmethod
    def of_references(cls, references: Sequence[str], *, labelled: Sequence[str] | None = None) -> Intents:
        """The reference replies' intents: ``labelled`` (a CSV's intent column) when given, else
        as the classifier predicts them from the reference text."""
        from workers.runners.reply import reply_intent_labels
        from workers.runtime.intent import intent_predict

        labels = reply_intent_labels()
        model, predictions = intent_predict(list(references), labels=labels)
        if model is None:
            return cls(model=None, reason=NO_INTENT_MODEL)
        if labelled is not None:
            return cls(model=model, references=[i.strip().lower() for i in labelled], labels=labels, labelled=True)
        return cls(model=model, references=[label for label, _ in predictions], labels=labels)

    def match(self, texts: Sequence[str]) -> float | None:
        """The share of ``texts`` whose predicted intent is their reference's (None without a model)."""
        from workers.runtime.intent import intent_predict

        if self.model is None:
            return None
        _, predictions = intent_predict([t or " " for t in texts], name=self.model, labels=self.labels)
        return round(sum(p.lower() == r for (p, _), r in zip(predictions, self.references)) / max(1, len(texts)), 4)


def texts_figures(texts: Sequence[str], reference_vectors, *, intents: Intents | None = None,
                  profile: dict[str, str] | None = None, with_profile: Sequence[str] | None = None) -> dict:
    """The figures of one system's ``texts`` (see the module docstring); ``with_profile``: the
    same replies drafted with the placeholder values ``profile``."""
    from generation.text.repetition import repeated_ngram, reply_loops, word_count
    from workers.runtime.embeddings import scorer_get

    vectors = scorer_get().encode([t or " " for t in texts])
    figures = {
        "similarity": round(float((vectors * reference_vectors).sum(axis=1).mean()), 4),
        "intent_match": intents.match(texts) if intents is not None else None,
        "looping_rate": round(sum(reply_loops(t) for t in texts) / len(texts), 4),
        "repeated_4gram_rate": round(sum(repeated_ngram(t) is not None for t in texts) / len(texts), 4),
        "mean_words": round(statistics.mean(word_count(t) for t in texts), 1),
        "placeholders": placeholder_counts(texts)[0],
    }
    if with_profile is not None:
        visible, fillable = placeholder_counts(with_profile, profile)
        profile_vectors = scorer_get().encode([t or " " for t in with_profile])
        figures.update({
            "placeholders_with_profile": visible,
            "profile_placeholders_visible": fillable,
            "similarity_with_profile": round(float((profile_vectors * reference_vectors).sum(axis=1).mean()), 4),
        })
    return figures


def draft_latency(messages: Sequence[str], *, k: int, max_new_tokens: int, model: str | None = None) -> dict:
    """First-token and whole-draft seconds of single reply drafts, one after the other, each as
    a job runs it (``reply_run``: retrieval, intent, generation, post-processing)."""
    from workers.runners.reply import reply_run

    first, whole = [], []
    for message in messages:
        ctx = TimingContext()
        params = {"message": message, "k": k, "max_new_tokens": max_new_tokens}
        if model:
            params["model"] = model
        reply_run(params=params, ctx=ctx)
        whole.append(time.monotonic() - ctx.started)
        if ctx.first_token is not None:
            first.append(ctx.first_token)

    def summary(values: list[float]) -> dict | None:
        if not values:
            return None
        return {"mean": round(statistics.mean(values), 3), "max": round(max(values), 3),
                "each": [round(v, 3) for v in values]}

    return {"drafts": len(messages), "first_token_seconds": summary(first), "draft_seconds": summary(whole)}


@dataclass
class RepliesEvaluation:
    report: dict
    messages: list[str]
    references: list[str]
    texts: dict[str, list[str]]  # system -> replies without a profile
    texts_with_profile: dict[str, list[str]]
    reference_intents: list[str]


def replies_evaluate(
    messages: Sequence[str],
    references: Sequence[str],
    *,
    k: int = 3,
    max_new_tokens: int = 256,
    concurrency: int = 8,
    profile: dict[str, str],
    latency_drafts: int = 0,
    models: Sequence[str] | None = None,
    reference_intents: Sequence[str] | None = None,
) -> RepliesEvaluation:
    """The service, retrieval only (the best retrieved answer as is) and the bare model on
    ``messages`` against ``references``, in one run. Knowledge rows whose customer message is
    exactly the evaluated one are left out of its retrieval. The service's drafts are generated
    once and post-processed twice: with no company profile and with the placeholder values
    ``profile`` (the model never sees the profile, so the drafts differ only there).
    ``models``: the service once per model a reply job may name ("reply-rag@1", "base"), as the
    systems "service (name)"; the first is the one the sample shows and the latency measures.
    Without it, one "service" with the model jobs use by default (the promoted reply adapter).
    ``reference_intents``: the references' labelled intents (intent match is then against these;
    the "references" system's own match shows how often the classifier misreads a reply)."""
    from generation.privacy import pii_mask
    from generation.text.placeholders import placeholders_fill, placeholders_normalise
    from workers.runners.reply import replies_generate, reply_candidates
    from workers.runtime.embeddings import scorer_get
    from workers.runtime.models import lm_get

    messages, references = list(messages), list(references)
    seconds, texts, with_profile = {}, {}, {}
    retrieval = None
    for model in models or [None]:
        name = "service" if model is None else f"service ({model})"
        params = [{"message": m, "k": k, "max_new_tokens": max_new_tokens, **({"model": model} if model else {})}
                  for m in messages]
        started = time.monotonic()
        generated = replies_generate(params, exclude_messages=messages, concurrency=concurrency)
        texts[name] = [reply_candidates(r, c, t, profile={})[0].text for r, c, t in generated]
        with_profile[name] = [reply_candidates(r, c, t, profile=profile)[0].text for r, c, t in generated]
        seconds[name] = time.monotonic() - started
        if retrieval is None:
            # The hits the service retrieved (its relevance floor and intent boost): the best ranked one
            # as is (the service's lead source may be another one: reply.lead_first).
            retrieval = [placeholders_normalise(r.top_hit.text) if r.top_hit else "" for r, _, _ in generated]
    services = list(texts)

    started = time.monotonic()
    lm = lm_get()
    bare = bare_replies(messages, lm=lm, max_new_tokens=max_new_tokens, concurrency=concurrency)
    seconds["bare model"] = time.monotonic() - started

    texts.update({"retrieval only": retrieval, "bare model": bare, "references": references})
    with_profile.update(
        {name: [placeholders_fill(t, profile) for t in texts[name]] for name in ("retrieval only", "bare model", "references")}
    )
    reference_vectors = scorer_get().encode(references)
    intents = Intents.of_references(references, labelled=reference_intents)
    systems = {
        name: texts_figures(texts[name], reference_vectors, intents=intents, profile=profile,
                            with_profile=with_profile[name])
        for name in texts
    }
    systems["references"]["similarity"] = 1.0
    report = {
        "rows": len(messages),
        "k": k,
        "max_new_tokens": max_new_tokens,
        "model": lm.version,
        "device": lm.device,
        "intent_model": intents.model,
        "intent_references": "labelled" if intents.labelled else "predicted",
        "services": services,
        **({"intent_match_unavailable": intents.reason} if intents.reason else {}),
        "profile_placeholders": len(profile),
        "systems": systems,
        "seconds": {name: round(s, 1) for name, s in seconds.items()},
    }
    if latency_drafts:
        report["latency"] = draft_latency(messages[:latency_drafts], k=k, max_new_tokens=max_new_tokens,
                                          model=(models or [None])[0])
    return RepliesEvaluation(
        report=report,
        messages=[pii_mask(m).text for m in messages],
        references=references,
        texts=texts,
        texts_with_profile=with_profile,
        reference_intents=intents.references,
    )


def replies_sample_write(path, evaluation: RepliesEvaluation, *, size: int = 20, seed: int = 0) -> None:
    """``size`` random messages (Markdown) with the service's draft (with the profile, as an agent
    sees it), the best retrieved answer as is and the reference, for people to read."""
    rows = len(evaluation.messages)
    picked = sorted(random.Random(seed).sample(range(rows), min(size, rows)))
    report = evaluation.report
    lines = [
        f"# Replies sample: {len(picked)} random messages of {rows}", "",
        f"`manage.py replies_evaluate`: model {report['model']}, k={report['k']}, max_new_tokens="
        f"{report['max_new_tokens']}, intent model {report['intent_model'] or 'none'}; the service's drafts "
        "with the demo company profile.", "",
    ]
    services = report.get("services", ["service"])
    systems = (*((f"{name} (demo profile)", evaluation.texts_with_profile[name]) for name in services),
               ("retrieval only", evaluation.texts["retrieval only"]),
               ("reference", evaluation.references))
    for i in picked:
        intent = f" (intent of the reference: {evaluation.reference_intents[i]})" if evaluation.reference_intents else ""
        lines += [f"## Row {i + 1}{intent}", "", "**Message**", ""]
        lines += [f"> {line}" if line else ">" for line in evaluation.messages[i].splitlines()] + [""]
        for name, texts in systems:
            lines += [f"**{name}**", ""]
            lines += [f"> {line}" if line else ">" for line in (texts[i] or "(empty)").splitlines()] + [""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def replies_figures(rows: list[dict], lms: dict, *, max_new_tokens: int = 128, concurrency: int = 8) -> dict:
    """Fine-tuning's held-out figures on ``rows`` (Bitext: instruction, response) for each
    LoadedLM of ``lms``: the reply service and the bare model, as ``replies_evaluate`` measures them."""
    from workers.runners.reply import replies_draft
    from workers.runtime.embeddings import scorer_get

    messages = [r["instruction"] for r in rows]
    reference_vectors = scorer_get().encode([r["response"] for r in rows])
    params = [{"message": m, "k": 3, "max_new_tokens": max_new_tokens} for m in messages]
    report = {"rows": len(rows), "max_new_tokens": max_new_tokens}
    for name, lm in lms.items():
        started = time.monotonic()
        service = [c[0].text for c in replies_draft(params, exclude_messages=messages, concurrency=concurrency, lm=lm)]
        bare = bare_replies(messages, lm=lm, max_new_tokens=max_new_tokens, concurrency=concurrency)
        report[name] = {"service": texts_figures(service, reference_vectors),
                        "bare": texts_figures(bare, reference_vectors),
                        "seconds": round(time.monotonic() - started, 1)}
    return report

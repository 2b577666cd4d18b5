"""Runner of the ``reply`` kind: draft replies to a customer's message, grounded in the knowledge base.

One reply job, in order:

1. the message and history arrive masked (``generation.kinds.reply`` masks them in validation,
   so the stored params are masked too); they are masked again here, which changes nothing for
   masked text and protects callers that skip the serializer;
2. ``knowledge_search`` finds the top-k past conversations and docs for the masked message: none
   whose cosine is below ``GENAI_REPLY_MIN_SOURCE_SCORE``, and, when the intent classifier gives
   the message's intent with at least ``GENAI_REPLY_INTENT_CONFIDENCE``, those of that intent
   ranked as if ``GENAI_REPLY_INTENT_BOOST`` more similar (``metadata.sources[].boosted``), and
   help-centre docs as if ``GENAI_REPLY_DOC_BOOST`` more; the *lead* source goes first
   (``lead_first``: a doc that ranks first, else of the ``GENAI_REPLY_CONSENSUS_POOL`` most
   relevant answers the one most like the others), and "the best answer" below is that one;
3. a chat prompt shows the model the best ``GENAI_REPLY_PROMPT_SOURCES`` hits as earlier turns
   (their customer message, then the first paragraph of their answer), then the history and the
   message, and starts the assistant's turn with the first words of the best answer: the model
   writes the *opening* of the reply, the part that depends on this message. The body of the
   reply (steps, facts) is the best answer after its first paragraph. The context variables are
   *not* in the prompt: the model writes ``{{Placeholder}}`` tokens, as the answers do. Without
   any source the model writes the whole reply. A reply adapter trained retrieval-augmented
   (``prompt_format`` ``rag1`` in its training.json: ``manage.py reply_corpus``) gets the prompt
   it was trained on instead (``reply_rag_messages``: the best sources' messages and answers, then
   the customer's message) and writes the whole reply, no prefix, no pasted body;
4. ``n`` candidates are generated on the process's engine (``workers.runtime.completions.completions_run``,
   the path ``generate`` uses, with its streaming and cancellation);
5. post-processing of each candidate (``reply_postprocess``): placeholder spellings normalised,
   masked personal data (``[ORDER_ID]``) turned back into placeholders, values the model made up
   (a number, e-mail, URL or phone in the reply that is in neither the sources, the message nor
   the context variables) replaced by a placeholder, repetition loops cut (``loop_cut``: the text
   ends before the sentence holding the first repeated 4-gram), an unfinished last sentence
   dropped, then placeholders filled from the company profile and the context variables (the
   context wins; case-insensitive names; unknown ones stay visible as ``{{Name}}`` and are listed
   in ``metadata.unfilled_placeholders``); with the opening prompt, an opening that drifted from
   the message (less similar to it than the best answer's own opening) or states a figure no
   source, message or value states (``figures_unbacked``) or turns the customer down where no
   source does (``refusals_unbacked``: "there is no refund available for Klarna") or grants what
   the customer asked in their words where no source does (``affirmations_unbacked``: "you can pay
   by bank transfer") or guesses a cause or advises what no source does (``speculations_unbacked``:
   "it may have been delayed due to unforeseen circumstances") is replaced by the latter,
   and the body loses every sentence that would repeat a word 4-gram;
   A message no source answers gets a holding reply instead of the model's unaided text
   (``GENAI_REPLY_WITHOUT_SOURCES``; ``metadata.no_source``), which the agent page points out;
6. a candidate left with fewer than ``GENAI_REPLY_MIN_WORDS`` words is replaced by the best
   retrieved answer, placeholders filled (``metadata.fallback = true``);
7. grounding score: the maximum MiniLM cosine between the candidate and the retrieved answers
   (the same all-MiniLM-L6-v2 embeddings retrieval uses).

``replies_draft`` runs the same steps in this process for many messages (``manage.py
replies_batch`` and ``replies_evaluate``), retrieving in batches and generating concurrently on
the engine.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings

from generation.privacy import pii_mask
from generation.runner import (
    CandidateResult,
    JobResult,
    NullContext,
    OffsetContext,
    RunnerContext,
)
from generation.text.placeholders import (
    figures_unbacked,
    invented_values_replace,
    key_normalise,
    placeholders_fill,
    placeholders_normalise,
    placeholders_unfilled,
    refusals_unbacked,
)
from generation.text.promises import affirmations_unbacked, speculations_unbacked
from generation.text.repetition import LOOP_NGRAM, loop_cut, repeats_drop, word_count
from generation.text.sentences import LIST_START, SENTENCE_END, line_ends_normalise, list_end_paragraph, unfinished_cut

TONE_WORDS = {
    "neutral": "clear and helpful",
    "friendly": "warm and friendly",
    "formal": "polite and formal",
    "empathetic": "empathetic and reassuring",
}
CHANNEL_WORDS = {
    "email": "an e-mail",
    "chat": "a chat message",
    "phone": "what to say on a phone call",
}


# --- post-processing (pure functions, no model) ----------------------------------------------


@dataclass(frozen=True)
class Processed:
    text: str
    loop_cut: bool
    invented: list[str]
    fallback: bool
    unfilled: list[str] = field(default_factory=list)  # placeholders no value filled, in order


def reply_postprocess(
    raw: str,
    *,
    finish_reason: str,
    sources: Sequence[str],
    message: str,
    context: dict[str, str],
    body: str = "",
    fallback_text: str | None = None,
    channel: str = "chat",
    tone: str = "neutral",
    name: str | None = None,
) -> Processed:
    """A generated candidate made safe to show (see the module docstring, steps 5 and 6):
    ``raw`` is the model's text, ``body`` the part of the best answer that follows it,
    ``context`` the placeholder values (the company profile's, then the job's own), ``name`` the
    customer's, to greet them by (``reply_format``)."""
    raw, body = line_ends_normalise(raw), line_ends_normalise(body)
    fallback_text = line_ends_normalise(fallback_text) if fallback_text else fallback_text
    text = placeholders_normalise(raw.strip())
    text, invented = invented_values_replace(text, [*sources, message, *context.values()])
    # An opening (``body`` follows it) is two sentences: any repeated 4-gram there is a loop. A
    # whole reply repeats short phrases as the team's answers do; only a long span said twice is.
    loop_n = 4 if body else LOOP_NGRAM
    text, was_cut = loop_cut(text, loop_n)
    if finish_reason == "length" or was_cut:
        text = unfinished_cut(text)
    if body:
        ends = [m.end() for m in SENTENCE_END.finditer(text)]
        if len(ends) > OPENING_MAX_SENTENCES:
            text = text[: ends[OPENING_MAX_SENTENCES - 1]].rstrip()
    opening_words = word_count(text)
    if body and text:
        text, _ = repeats_drop(text + "\n\n", placeholders_normalise(body))
    elif body:
        text = ""
    fallback = False
    if fallback_text and (word_count(text) < settings.GENAI_REPLY_MIN_WORDS or (body and opening_words < 3)):
        text, fallback = repeats_drop("", placeholders_normalise(fallback_text.strip()))[0], True
    text = list_end_paragraph(loop_cut(text, loop_n)[0])  # loop_cut: a no-op but for text that came from nowhere else
    text = placeholders_fill(reply_format(text, channel=channel, tone=tone, name=name), context)
    return Processed(text, was_cut, invented, fallback, placeholders_unfilled(text))


# The context variables that name the customer (compared as placeholders are).
CUSTOMER_NAME_KEYS = ("customer name", "customer first name", "first name", "name")
_GREETING = re.compile(r"^(?:hi|hello|hey|dear|greetings|good (?:morning|afternoon|evening))\b", re.IGNORECASE)
_SIGNED = re.compile(r"\b(?:regards|sincerely|best wishes|cheers),?\s*(?:\n[^\n]*)?$", re.IGNORECASE)
EMAIL_SALUTATIONS = {"formal": "Dear {name},", "friendly": "Hi {name},"}  # others: "Hello {name},"
EMAIL_SALUTATIONS_UNNAMED = {"formal": "Dear customer,"}  # others: "Hello,"
EMAIL_SIGN_OFFS = {"formal": "Yours sincerely", "friendly": "Best wishes"}  # others: "Kind regards"
EMAIL_SIGNATURE = "{{Company Name}} Customer Support"  # filled from the company profile


def reply_customer_name(context: dict[str, str]) -> str | None:
    """The customer's name from the job's context ("Customer Name", "first name", ...), when it
    is one: a masked value ("[EMAIL]"), a placeholder or several lines greet nobody."""
    values = {key_normalise(key): str(value).strip() for key, value in context.items()}
    for key in CUSTOMER_NAME_KEYS:
        name = values.get(key)
        if name and len(name) <= 60 and not any(c in name for c in "[]{}\n"):
            return name
    return None


def reply_format(text: str, *, channel: str, tone: str, name: str | None) -> str:
    """The channel's format. An e-mail: a salutation (by name when known), the reply, a sign-off
    and the company's name (``{{Company Name}}``, filled from the company profile). A chat
    message or a call: greets by name in the first line when the name is known, no sign-off.
    A text that already greets or signs off is not given a second one."""
    text = text.strip()
    if not text:
        return text
    greeted = bool(_GREETING.match(text))
    if channel == "email":
        parts = []
        if not greeted:
            if name:
                parts.append(EMAIL_SALUTATIONS.get(tone, "Hello {name},").format(name=name))
            else:
                parts.append(EMAIL_SALUTATIONS_UNNAMED.get(tone, "Hello,"))
        parts.append(text)
        if not _SIGNED.search(text):
            parts.append(f"{EMAIL_SIGN_OFFS.get(tone, 'Kind regards')},\n{EMAIL_SIGNATURE}")
        return "\n\n".join(parts)
    if name and not greeted:
        return f"Hi {name}! {text}" if channel == "chat" else f"Hello {name}. {text}"
    return text


# --- prompt -----------------------------------------------------------------------------------


def answer_split(text: str) -> tuple[str, str]:
    """(opening, body) of an answer: its first paragraph and the rest, the first paragraph ending
    where a list begins ("Here is what usually causes it:\n1. ..." keeps its list in the body);
    a one-paragraph answer splits after its first sentence."""
    text = text.strip()
    head, sep, rest = text.partition("\n\n")
    if not sep:
        head, sep, rest = text.partition("\n")
    listed = LIST_START.search(head)
    if listed and head[: listed.start()].strip():
        head, sep, rest = head[: listed.start()], "\n", head[listed.start() :] + sep + rest
    if sep and rest.strip():
        return head.strip(), rest.strip()
    first = SENTENCE_END.search(text)
    if first and text[first.end() :].strip():
        return text[: first.end()].strip(), text[first.end() :].strip()
    return text, ""


def reply_messages(*, message: str, history: Sequence[dict], channel: str, tone: str, answers: Sequence[tuple[str, str]]) -> list[dict]:
    """The chat prompt. With retrieved (customer message, answer) pairs, the model writes the
    opening of the reply (the part that answers *this* message: what it asks, its details),
    following the openings our team wrote for the similar messages, shown as earlier turns, best
    last; the steps and facts that follow come from the best answer. Without sources it writes
    the whole reply."""
    system = (
        "You are a customer support agent. Reply to the customer's message as "
        f"{CHANNEL_WORDS.get(channel, 'a message')}, {TONE_WORDS.get(tone, 'clear and helpful')}. "
        "Keep placeholders such as {{Order Number}} exactly as written; never make up numbers, names, links or dates."
    )
    turns = [{"role": "system", "content": system}]
    for question, answer in reversed(answers):
        turns.append({"role": "user", "content": question.strip()})
        turns.append({"role": "assistant", "content": answer_split(answer)[0]})
    for turn in history:
        turns.append({"role": "user" if turn["role"] == "customer" else "assistant", "content": turn["content"]})
    turns.append({"role": "user", "content": message})
    return turns


# The prompt of a reply adapter trained retrieval-augmented (``manage.py reply_corpus``, its
# training.json's ``params.prompt_format``): the model sees the customer's message and the best
# retrieved conversations, and writes the whole reply. Changing it means retraining the adapter.
PROMPT_FORMAT_OPENING = "opening"  # the base model: it writes the opening, the best answer gives the body
PROMPT_FORMAT_RAG = "rag1"
PROMPT_FORMATS = (PROMPT_FORMAT_OPENING, PROMPT_FORMAT_RAG)
RAG_SOURCE_MAX_WORDS = 130  # a source's answer is cut here in the prompt (Bitext answers: 110 words on average, 80 % under 135)


def reply_rag_messages(
    *, message: str, history: Sequence[dict], channel: str, tone: str, answers: Sequence[tuple[str, str]]
) -> list[dict]:
    """The ``rag1`` prompt: one user turn that lists the retrieved (customer message, answer)
    pairs, best first, then the customer's message; earlier turns of the conversation before it.
    The adapter learned to write the answer to *this* message from them (which source fits, what
    to change), with ``{{Placeholders}}`` as the answers have them."""
    system = (
        "You are a customer support agent. Reply to the customer's message as "
        f"{CHANNEL_WORDS.get(channel, 'a message')}, {TONE_WORDS.get(tone, 'clear and helpful')}. "
        "Use the answers our team gave to similar messages: follow the one that fits this message and adapt it. "
        "Keep placeholders such as {{Order Number}} exactly as written; never make up numbers, names, links or dates."
    )
    parts = []
    for number, (question, answer) in enumerate(answers, start=1):
        words = answer.strip().split(" ")
        text = answer.strip() if len(words) <= RAG_SOURCE_MAX_WORDS else " ".join(words[:RAG_SOURCE_MAX_WORDS]) + " ..."
        parts.append(f"[{number}] Customer: {question.strip()}\nAnswer: {text}")
    sources = "\n\n".join(parts) if parts else "(none found)"
    turns = [{"role": "system", "content": system}]
    for turn in history:
        turns.append({"role": "user" if turn["role"] == "customer" else "assistant", "content": turn["content"]})
    turns.append({"role": "user", "content": f"Similar messages and our answers:\n\n{sources}\n\nCustomer's message: {message}"})
    return turns


# --- the runner -------------------------------------------------------------------------------


@dataclass
class ReplyRequest:
    """One reply, prepared: masked texts, retrieved hits, the prompt."""

    params: dict
    message: str
    history: list[dict]
    hits: list = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    intent: dict = field(default_factory=dict)  # reply_intent's: the metadata fields of the intent
    prompt_format: str = PROMPT_FORMAT_OPENING  # the LM's (reply_generate sets it)
    top_hit: object = None  # the best ranked hit (``hits`` starts with the lead source instead: lead_first)



def reply_prepare(
    params_list: Sequence[dict], *, exclude_messages: Sequence[str | None] | None = None
) -> list[ReplyRequest]:
    """Mask, predict the intent, retrieve (one batch for all), build prompts. Sources below
    ``GENAI_REPLY_MIN_SOURCE_SCORE`` are not offered; when the intent classifier is confident
    (``GENAI_REPLY_INTENT_CONFIDENCE``) sources of its intent rank ``GENAI_REPLY_INTENT_BOOST``
    higher; the lead source goes first (``lead_first``). ``exclude_messages[i]`` drops hits whose customer message (or doc title) is exactly
    that text (evaluation on rows the KB holds)."""
    from workers.runtime.intent import intent_predict
    from workers.runtime.retrieval import knowledge_search_batch

    requests = []
    for params in params_list:
        history = [
            {"role": t["role"], "content": line_ends_normalise(pii_mask(t["content"]).text)}
            for t in params.get("history") or []
        ]
        message = line_ends_normalise(pii_mask(params["message"]).text)
        requests.append(ReplyRequest(params=params, message=message, history=history))
    if not requests:
        return []
    k_max = max(max(r.params.get("k", 3) for r in requests), settings.GENAI_REPLY_CONSENSUS_POOL)
    extra = 2 if exclude_messages else 0
    model, predictions = intent_predict([r.message for r in requests], labels=reply_intent_labels())
    confident = [label if confidence >= settings.GENAI_REPLY_INTENT_CONFIDENCE else None for label, confidence in predictions]
    results = knowledge_search_batch(
        [r.message for r in requests],
        min(k_max + extra, settings.GENAI_KB_SEARCH_MAX_K),
        min_score=settings.GENAI_REPLY_MIN_SOURCE_SCORE,
        boost_intents=confident or None,
        intent_boost=settings.GENAI_REPLY_INTENT_BOOST,
        kind_boosts={"docs": settings.GENAI_REPLY_DOC_BOOST} if settings.GENAI_REPLY_DOC_BOOST else None,
    )
    kept = []
    for i, hits in enumerate(results):
        excluded = (exclude_messages or [None] * len(requests))[i]
        if excluded is not None:
            masked = pii_mask(excluded).text.strip()
            hits = [h for h in hits if h.title.strip() not in (excluded.strip(), masked)]
        kept.append(hits)
    pool_vectors = _pools_encode(kept)  # every request's candidate leads in one encoder batch
    for i, (request, hits, vectors) in enumerate(zip(requests, kept, pool_vectors)):
        request.top_hit = hits[0] if hits else None
        request.hits = lead_first(hits, request.params.get("k", 3), vectors=vectors)
        request.intent = reply_intent(request.hits, model=model, prediction=predictions[i] if predictions else None)
        request.messages = reply_prompt(request)
    return requests


def reply_intent_labels() -> set[str] | None:
    """The intents a reply's message is classified among: the knowledge base's
    (``GENAI_REPLY_INTENTS_FROM_KB``; a classifier trained on several datasets would otherwise
    take "cancel my order" for Banking77's ``request_refund``), None for all of the model's."""
    from generation.selectors import knowledge_intents

    return knowledge_intents() if settings.GENAI_REPLY_INTENTS_FROM_KB else None


def _pools_encode(hit_lists: Sequence[Sequence]) -> list:
    """MiniLM vectors of each list's ``GENAI_REPLY_CONSENSUS_POOL`` first answers (None for a list
    too short to choose from), encoded in one batch."""
    from workers.runtime.embeddings import scorer_get

    pools = [list(hits[: settings.GENAI_REPLY_CONSENSUS_POOL]) for hits in hit_lists]
    texts = [placeholders_normalise(h.text) for pool in pools if len(pool) >= 3 for h in pool]
    if not texts:
        return [None] * len(pools)
    vectors, start, out = scorer_get().encode(texts), 0, []
    for pool in pools:
        if len(pool) < 3:
            out.append(None)
            continue
        out.append(vectors[start : start + len(pool)])
        start += len(pool)
    return out


def lead_first(hits: Sequence, k: int, *, vectors=None) -> list:
    """The ``k`` sources to offer, the lead first: of the ``GENAI_REPLY_CONSENSUS_POOL`` most
    relevant answers, the one most like the others (mean MiniLM cosine to them) plus
    ``GENAI_REPLY_CONSENSUS_RELEVANCE`` times its relevance, then the most relevant others. The
    single most relevant answer is sometimes an odd one (another intent's, or one writer's
    unusual take); the one its neighbours agree with is what most answers to such a message say
    (minimum-Bayes-risk selection over the retrieved answers). A help-centre doc that ranks first
    (``GENAI_REPLY_DOC_BOOST``) leads as it is: it is the business's answer, not one take of many."""
    import numpy as np

    pool = hits[: settings.GENAI_REPLY_CONSENSUS_POOL]
    if len(pool) < 3 or k < 1 or hits[0].kind == "docs":  # a doc that ranks first is the answer
        return list(hits[:k])
    if vectors is None:  # ``vectors``: the pool's, when reply_prepare encoded them with others
        vectors = _pools_encode([pool])[0]
    agreement = vectors @ vectors.T
    np.fill_diagonal(agreement, 0.0)
    scores = agreement.sum(axis=1) / (len(pool) - 1) + settings.GENAI_REPLY_CONSENSUS_RELEVANCE * np.array(
        [h.score for h in pool])
    lead = int(scores.argmax())
    return [pool[lead], *[h for i, h in enumerate(hits) if i != lead][: k - 1]]


def _samplings(params: dict, *, grounded: bool) -> list:
    from workers.ml.decoding import SamplingParams

    n, temperature = params.get("n", 1), params.get("temperature", 0.0)
    max_new_tokens = params.get("max_new_tokens", 256)
    common = {"max_new_tokens": min(max_new_tokens, settings.GENAI_REPLY_OPENING_MAX_TOKENS) if grounded else max_new_tokens,
              "stop": ("\n",) if grounded else (), "top_p": 0.95, "top_k": 50,
              "repetition_penalty": 1.05, "seed": params.get("seed")}
    if temperature > 0 or n == 1:
        return [SamplingParams(temperature=temperature, n=n, **common)]
    # Greedy first candidate; the others sampled, so they differ.
    return [SamplingParams(temperature=0.0, n=1, **common), SamplingParams(temperature=0.7, n=n - 1, **common)]


PREFIX_WORDS = 5  # tuned on a split other than the reported one: 3 -> 0.8106, 5 -> 0.8127, 8 -> 0.8123
OPENING_MAX_SENTENCES = 2
# The draft when no knowledge-base row answers the message (GENAI_REPLY_WITHOUT_SOURCES=holding):
# it promises nothing but an answer, and the agent is told no source matched.
HOLDING_REPLY = (
    "Thank you for your message. I'm looking into your question and will get back to you with an answer "
    "as soon as possible."
)
# A generated opening less similar to the message than the best answer's own opening by more
# than this (MiniLM cosine) has drifted: the best answer's opening is used instead.
OPENING_DRIFT_MARGIN = 0.05



def opening_prefix(request: ReplyRequest) -> str:
    """The first words of the best answer's opening, which start the model's opening: a 135M model
    given them follows the team's way of answering instead of drifting (refusals, chit-chat)."""
    if not request.hits:
        return ""
    return " ".join(answer_split(request.hits[0].text)[0].split()[:PREFIX_WORDS])


def reply_prompt(request: ReplyRequest) -> list[dict]:
    """The chat prompt of ``request`` in its ``prompt_format``, from its hits and history."""
    build = reply_rag_messages if request.prompt_format == PROMPT_FORMAT_RAG else reply_messages
    return build(
        message=request.message,
        history=request.history,
        channel=request.params.get("channel", "chat"),
        tone=request.params.get("tone", "neutral"),
        answers=[(h.title, h.text) for h in request.hits[: settings.GENAI_REPLY_PROMPT_SOURCES]],
    )


def holding_reply_due(request: ReplyRequest) -> bool:
    """No source answers the message and GENAI_REPLY_WITHOUT_SOURCES asks for a holding reply."""
    return not request.hits and settings.GENAI_REPLY_WITHOUT_SOURCES == "holding"


def reply_generate(request: ReplyRequest, ctx, lm=None) -> tuple[list, int]:
    """The candidates' completions on ``lm`` (default: the params' ``model``, else the LoRA adapter
    promoted for replies, else the base LM; their text starts with the prefix), and the prompt's
    token count. The prompt is the one ``lm`` was trained with (``LoadedLM.prompt_format``): a
    ``rag1`` adapter writes the whole reply from the sources, the base model the opening."""
    from workers.ml.decoding import Completion
    from workers.runtime.adapters import lm_for
    from workers.runtime.completions import completions_run

    if holding_reply_due(request):  # nothing to ground a reply in: no model text (reply_candidates)
        return [Completion("", "stop", 0, None) for _ in range(request.params.get("n", 1))], 0
    lm = lm or lm_for(request.params.get("model"), purpose="reply")
    if getattr(lm, "prompt_format", PROMPT_FORMAT_OPENING) != request.prompt_format:
        request.prompt_format = lm.prompt_format
        request.messages = reply_prompt(request)
    rag = request.prompt_format == PROMPT_FORMAT_RAG
    prefix = "" if rag else opening_prefix(request)
    while True:
        rendered = lm.tokenizer.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
        ids = lm.tokenizer(rendered + prefix, add_special_tokens=False)["input_ids"]
        if len(ids) <= settings.GENAI_MAX_PROMPT_TOKENS or not request.history:
            break
        request.history = request.history[1:]  # the oldest turn goes first
        request.messages = reply_prompt(request)
    completions = []
    offset = 0
    for sampling in _samplings(request.params, grounded=bool(request.hits) and not rag):
        if prefix:
            ctx.text_emit({offset + i: prefix for i in range(sampling.n)})
        completions += completions_run(lm, ids, sampling, OffsetContext(ctx, offset) if offset else ctx)
        offset += sampling.n
    completions = [
        Completion(prefix + c.text, c.finish_reason, c.completion_tokens, c.mean_logprob) for c in completions
    ]
    return completions, len(ids)


def reply_intent(hits: Sequence, *, model: str | None, prediction: tuple[str, float] | None) -> dict:
    """The message's intent: the trained intent classifier's ``prediction`` (``workers.runtime.intent``)
    when one is registered, else the intent of the top retrieved source (a doc's first tag; no
    confidence then).
    ``intent_boost``: whether sources of that intent were ranked up (a confident prediction)."""
    if prediction is not None:
        label, confidence = prediction
        return {"intent": label, "intent_confidence": round(confidence, 4), "intent_source": "classifier",
                "intent_model": model, "intent_boost": confidence >= settings.GENAI_REPLY_INTENT_CONFIDENCE}
    top = hits[0] if hits else None  # a doc's first tag: Bitext docs and the demo FAQ put their intent first
    intent = (top.intent or (top.tags[0] if top.tags else "")) if top else ""
    return {"intent": intent, "intent_confidence": None, "intent_source": "retrieval", "intent_boost": False}


def reply_values(context: dict[str, str], *, profile: dict[str, str] | None = None) -> dict[str, str]:
    """The values that fill a draft's placeholders: the company profile's (``profile``: these
    placeholder values instead of the stored profile's), then the job's own ``context``, which
    wins (names compared case- and separator-insensitively by the filling)."""
    from generation.selectors import company_profile_values

    return {**(company_profile_values() if profile is None else profile), **context}


def reply_candidates(
    request: ReplyRequest,
    completions: Sequence,
    prompt_tokens: int,
    stop_reason: str | None = None,
    *,
    profile: dict[str, str] | None = None,
) -> list[CandidateResult]:
    """Post-processed, scored candidates with their sources. ``profile``: placeholder values to
    use instead of the stored company profile's (evaluation with and without one)."""
    from workers.runtime.embeddings import scorer_get

    params, hits = request.params, request.hits
    context = reply_values(params.get("context") or {}, profile=profile)
    sources_text = [h.text for h in hits]
    best = hits[0].text if hits else None
    rag = request.prompt_format == PROMPT_FORMAT_RAG  # the model wrote the whole reply: no body, no drift guard
    body = answer_split(best)[1] if best and not rag else ""
    raws = [c.text for c in completions]
    drifted = [False] * len(raws)
    if best and raws and not rag:
        # The drift guard: an opening further from the message than the best answer's own opening.
        top_opening = answer_split(best)[0]
        vectors = scorer_get().encode([request.message, top_opening, *raws])
        message_vector, top_score = vectors[0], float(vectors[1] @ vectors[0])
        known = [*sources_text, *(h.title for h in hits), request.message, *context.values()]
        for i, vector in enumerate(vectors[2:]):
            # An opening that states a figure no source, message or value states ("a 10-year
            # warranty" where the doc says 2) promises what the business did not: the answer's own.
            # So does one that turns the customer down where no source does ("there is no refund
            # available for Klarna"), or grants what the customer asked in their own words where no
            # source does ("you can pay by bank transfer"), or guesses a cause or gives advice no
            # source gives ("it may have been delayed due to unforeseen circumstances").
            if (float(vector @ message_vector) < top_score - OPENING_DRIFT_MARGIN or figures_unbacked(raws[i], known)
                    or refusals_unbacked(raws[i], known)
                    or affirmations_unbacked(raws[i], request.message, [*sources_text, *context.values()])
                    or speculations_unbacked(raws[i], known)):
                raws[i], drifted[i] = top_opening, True
    holding = holding_reply_due(request)
    if holding:
        text = placeholders_fill(reply_format(HOLDING_REPLY, channel=params.get("channel", "chat"),
                                              tone=params.get("tone", "neutral"),
                                              name=reply_customer_name(params.get("context") or {})), context)
    processed = [Processed(text, False, [], True, placeholders_unfilled(text))] * len(raws) if holding else [
        reply_postprocess(
            raw,
            finish_reason=c.finish_reason,
            sources=[*sources_text, *(h.title for h in hits)],
            message=request.message + "\n" + "\n".join(t["content"] for t in request.history),
            context=context,
            body=body,
            fallback_text=best,
            channel=params.get("channel", "chat"),
            tone=params.get("tone", "neutral"),
            name=reply_customer_name(params.get("context") or {}),
        )
        for c, raw in zip(completions, raws)
    ]
    grounding = [None] * len(processed)
    if hits and processed:
        embedder = scorer_get()
        vectors = embedder.encode([p.text for p in processed] + sources_text)
        cands, srcs = vectors[: len(processed)], vectors[len(processed) :]
        grounding = [round(float((srcs @ v).max()), 4) for v in cands]
    sources = [{"ref": h.ref, "score": round(h.score, 4), "snippet": h.text[:240], "title": h.title[:240],
                "boosted": h.boosted} for h in hits]
    intent = request.intent or reply_intent(hits, model=None, prediction=None)
    candidates = []
    for c, p, g, d in zip(completions, processed, grounding, drifted):
        finish = stop_reason if c.finish_reason == "cancelled" and stop_reason else c.finish_reason
        metadata = {"sources": sources, **intent, "grounding": g, "fallback": p.fallback, "loop_cut": p.loop_cut,
                    "opening": "retrieved" if d else "generated", "prompt_format": request.prompt_format}
        metadata["unfilled_placeholders"] = p.unfilled
        if holding:  # the agent page says no knowledge-base answer matched
            metadata.update(no_source=True, opening="holding")
        if p.invented:
            metadata["invented_values_removed"] = p.invented
        if p.fallback or d:
            metadata["generated"] = placeholders_fill(c.text.strip(), {})[:2000]
        candidates.append(
            CandidateResult(
                text=p.text,
                finish_reason=finish,
                score=g,
                prompt_tokens=prompt_tokens,
                completion_tokens=c.completion_tokens,
                metadata=metadata,
            )
        )
    return candidates


def reply_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    from workers.runtime.adapters import lm_for
    from workers.runtime.models import engine_name

    started = time.monotonic()
    lm = lm_for(params.get("model"), purpose="reply")
    (request,) = reply_prepare([params])
    ctx.progress(0.1, f"{len(request.hits)} sources retrieved")
    completions, prompt_tokens = reply_generate(request, ctx, lm)
    seconds = time.monotonic() - started
    return JobResult(
        candidates=reply_candidates(request, completions, prompt_tokens, ctx.stop_reason()),
        model_version=lm.version,
        usage={
            "prompt_tokens": prompt_tokens,
            "completion_tokens": sum(c.completion_tokens for c in completions),
            "seconds": round(seconds, 4),
            "sources": len(request.hits),
            "device": lm.device,
            "engine": engine_name(lm),
        },
    )


def replies_generate(
    params_list: Sequence[dict],
    *,
    exclude_messages: Sequence[str | None] | None = None,
    concurrency: int = 8,
    on_done: Callable[[int], None] | None = None,
    lm=None,
) -> list[tuple[ReplyRequest, list, int]]:
    """The reply runner's steps up to generation for many requests in this process: params are
    validated by the kind's serializer first; retrieval in one batch; generation from
    ``concurrency`` threads, so the engine batches them. (request, completions, prompt tokens)
    per request, for ``reply_candidates``. ``lm``: generate with this LoadedLM (e.g. an adapter
    being evaluated) instead of the one the params name."""
    from generation.kinds.reply import ReplyParamsSerializer

    validated = []
    for params in params_list:
        serializer = ReplyParamsSerializer(data=params)
        serializer.is_valid(raise_exception=True)
        validated.append(dict(serializer.validated_data))
    requests = reply_prepare(validated, exclude_messages=exclude_messages)
    ctx = NullContext()
    done = [0]

    def one(request: ReplyRequest):
        result = reply_generate(request, ctx, lm)
        done[0] += 1
        if on_done:
            on_done(done[0])
        return result

    if concurrency > 1 and len(requests) > 1:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            generated = list(pool.map(one, requests))
    else:
        generated = [one(r) for r in requests]
    return [(r, completions, tokens) for r, (completions, tokens) in zip(requests, generated)]


def replies_draft(
    params_list: Sequence[dict],
    *,
    exclude_messages: Sequence[str | None] | None = None,
    concurrency: int = 8,
    on_done: Callable[[int], None] | None = None,
    lm=None,
) -> list[list[CandidateResult]]:
    """The reply runner's steps for many requests in this process (batch drafting, evaluation);
    see ``replies_generate``."""
    generated = replies_generate(params_list, exclude_messages=exclude_messages, concurrency=concurrency,
                                 on_done=on_done, lm=lm)
    return [reply_candidates(request, completions, tokens) for request, completions, tokens in generated]

"""The agent's page: paste a customer's message, watch drafts stream in, edit, copy or send,
rate, report. Drafts the safety filter flagged are withheld from agents."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from generation import roles
from generation import selectors as job_selectors
from generation.exceptions import DomainError
from generation.kinds import kind_get
from generation.kinds.reply import CHANNELS, TONES
from generation.models import JobEvent
from generation.roles import user_is_reviewer
from generation.services.jobs import job_create
from review import selectors
from review.models import Feedback, FeedbackReason, Outcome
from review.services.feedback import candidate_send, feedback_submit
from review.services.safety import candidate_flag_reasons, candidate_is_flagged, text_screen
from web.views.common import error_messages, role_required

AGENT_ROLES = (roles.AGENT,)
# Reply lengths on the form: (value, label, max_new_tokens).
LENGTHS = (("short", "Short", 96), ("medium", "Medium", 192), ("long", "Long", 320))


@role_required(*AGENT_ROLES)
def agent_page(request: HttpRequest) -> HttpResponse:
    """GET: the form and the agent's recent reply jobs. POST: create a reply job."""
    context = {
        "tones": TONES, "channels": CHANNELS, "max_chars": settings.GENAI_REPLY_MAX_MESSAGE_CHARS,
        "max_drafts": settings.GENAI_MAX_CANDIDATES, "values": {"n": 2, "tone": "neutral", "channel": "chat", "length": "medium"}, "lengths": LENGTHS,
        "recent": job_selectors.job_list(user=request.user).filter(kind="reply", owner=request.user)[:10],
    }
    if request.method != "POST":
        return render(request, "web/agent.html", context)
    data = request.POST
    values = {k: data.get(k, "").strip() for k in ("message", "tone", "channel", "n", "length", "order_number", "customer_name")}
    errors: list[str] = []
    if not values["message"]:
        errors.append("message: Paste the customer's message first; it is empty.")
    params = {"message": values["message"], "tone": values["tone"] or "neutral", "channel": values["channel"] or "chat"}
    if values["n"]:
        params["n"] = values["n"]
    tokens = {value: t for value, _, t in LENGTHS}
    if values["length"] and values["length"] not in tokens:
        errors.append(f"length: One of {', '.join(tokens)}.")
    params["max_new_tokens"] = min(tokens.get(values["length"] or "medium", 192), settings.GENAI_MAX_NEW_TOKENS)
    extra = {label: values[key] for key, label in (("order_number", "Order Number"), ("customer_name", "Customer Name")) if values[key]}
    if extra:
        params["context"] = extra
    job = None
    if not errors:
        try:
            job, _ = job_create(owner=request.user, kind="reply", params=params)
        except DomainError as exc:
            errors = error_messages(exc)
    context["values"] = values
    if request.htmx:
        if errors:
            return render(request, "web/partials/errors.html", {"errors": errors}, status=200)
        response = render(request, "web/partials/agent_job.html", _job_context(request, job))
        return response
    if errors:
        context["errors"] = errors
        return render(request, "web/agent.html", context, status=400)
    context["job_ctx"] = _job_context(request, job)
    return render(request, "web/agent.html", context, status=201)


def _streamed(job) -> dict[int, str]:
    """Text streamed so far per candidate (the running attempt)."""
    texts: dict[int, str] = {}
    for event in JobEvent.objects.filter(job=job, attempt=job.attempts).order_by("id"):
        for index, text in event.deltas.items():
            texts[int(index)] = texts.get(int(index), "") + text
    return texts


def _job_context(request: HttpRequest, job) -> dict:
    reviewer = user_is_reviewer(request.user)
    ctx = {"job": job, "poll_ms": settings.GENAI_WEB_POLL_MS, "reasons": FeedbackReason.choices, "is_reviewer": reviewer}
    if not job.is_final:
        allowed = list((job.params.get("context") or {}).values())
        drafts = []
        for index, text in sorted(_streamed(job).items()):
            verdict = text_screen(text, allowed=allowed, fast=True)
            drafts.append({"index": index, "text": text, "withheld": verdict["flagged"] and not reviewer,
                           "reasons": verdict["reasons"]})
        ctx["streaming"] = drafts
        return ctx
    feedback = {f.candidate_id: f for f in Feedback.objects.filter(candidate__job=job, user=request.user)}
    ctx["cards"] = [_card(c, feedback.get(c.pk), reviewer) for c in job.candidates.all()]
    return ctx


def _card(candidate, feedback, reviewer: bool) -> dict:
    flagged = candidate_is_flagged(candidate.metadata)
    review_item = getattr(candidate, "review_item", None)
    return {
        "c": candidate,
        "feedback": feedback,
        "withheld": flagged and not reviewer,
        "flag_reasons": candidate_flag_reasons(candidate.metadata) if reviewer else [],
        "sources": (candidate.metadata or {}).get("sources") or [],
        "unfilled": (candidate.metadata or {}).get("unfilled_placeholders") or [],
        "no_source": bool((candidate.metadata or {}).get("no_source")),
        "can_edit_profile": reviewer,  # reviewers and admins edit the company profile
        "text": (feedback.edited_text if feedback and feedback.edited_text else candidate.text),
        "done": bool(feedback and feedback.outcome) or review_item is not None,
        "review_item": review_item,
        "reasons": FeedbackReason.choices,
    }


@role_required(*AGENT_ROLES)
def agent_job_drafts(request: HttpRequest, job_id: str) -> HttpResponse:
    """The drafts partial: streamed text while the job runs (polled), the cards once final."""
    try:
        job = job_selectors.job_get(user=request.user, job_id=job_id)
    except DomainError as exc:
        return render(request, "web/partials/errors.html", {"errors": [exc.message]}, status=404)
    return render(request, "web/partials/agent_job.html", _job_context(request, job))


def _candidate_action(request: HttpRequest, candidate_id: str, action) -> HttpResponse:
    errors: list[str] = []
    try:
        candidate = selectors.candidate_get(user=request.user, candidate_id=candidate_id)
    except DomainError as exc:
        return render(request, "web/partials/errors.html", {"errors": [exc.message]}, status=404)
    note = ""
    try:
        note = action(candidate) or ""
    except DomainError as exc:
        errors = error_messages(exc)
    candidate.refresh_from_db()
    feedback = Feedback.objects.filter(candidate=candidate, user=request.user).first()
    card = _card(candidate, feedback, user_is_reviewer(request.user))
    return render(request, "web/partials/draft_card.html", {"card": card, "errors": errors, "note": note})


@require_POST
@role_required(*AGENT_ROLES)
def candidate_send_view(request: HttpRequest, candidate_id: str) -> HttpResponse:
    def send(candidate):
        _, item = candidate_send(candidate=candidate, user=request.user, text=request.POST.get("text", ""))
        return "Sent for approval: a reviewer will check it first." if item else "Sent."

    return _candidate_action(request, candidate_id, send)


@require_POST
@role_required(*AGENT_ROLES)
def candidate_discard_view(request: HttpRequest, candidate_id: str) -> HttpResponse:
    def discard(candidate):
        feedback_submit(candidate=candidate, user=request.user, outcome=Outcome.DISCARDED)
        return "Discarded."

    return _candidate_action(request, candidate_id, discard)


@require_POST
@role_required(roles.AGENT, roles.MARKETER, roles.REVIEWER)
def candidate_rate_view(request: HttpRequest, candidate_id: str) -> HttpResponse:
    def rate(candidate):
        fields = {}
        if "thumb" in request.POST:
            fields["thumb"] = request.POST["thumb"]
        if request.POST.get("stars"):
            stars = request.POST["stars"]
            fields["stars"] = int(stars) if stars.isdigit() else stars
        feedback_submit(candidate=candidate, user=request.user, **fields)
        return "Thanks, rating saved."

    return _candidate_action(request, candidate_id, rate)


@require_POST
@role_required(roles.AGENT, roles.MARKETER, roles.REVIEWER)
def candidate_report_view(request: HttpRequest, candidate_id: str) -> HttpResponse:
    def report(candidate):
        from generation.exceptions import InvalidInput

        reason = request.POST.get("reason", "")
        if not reason:
            raise InvalidInput({"reason": ["Choose what is wrong with the draft."]})
        feedback_submit(candidate=candidate, user=request.user, reason=reason,
                        comment=request.POST.get("comment", ""), thumb="down")
        return "Reported. Thank you."

    return _candidate_action(request, candidate_id, report)


def reply_kind_available() -> bool:
    return kind_get("reply") is not None

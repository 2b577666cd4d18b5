"""The reviewer's pages: the queue with filters, an item with the diff of the edited text and
approve / reject / request changes with a reason (keyboard shortcuts in web/site.js), flagged
output with the safety filter's reasons, and the quality page."""

from __future__ import annotations

import difflib
import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from generation import roles
from generation.exceptions import DomainError
from review import selectors
from review.models import ReviewItem, ReviewStatus
from review.services import reviews
from review.services.safety import candidate_flag_reasons
from web.views.common import error_messages, role_required
from web.views.marketing import checks_marks

REVIEW_ROLES = (roles.REVIEWER,)
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def text_diff(before: str, after: str):
    """Word-level diff as HTML: removed words in <del>, added in <ins>."""
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(escape("".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(f"<del>{escape(''.join(a[i1:i2]))}</del>")
        if j2 > j1:
            out.append(f"<ins>{escape(''.join(b[j1:j2]))}</ins>")
    return mark_safe("".join(out))


@role_required(*REVIEW_ROLES)
def queue_page(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", ReviewStatus.PENDING)
    if status not in ReviewStatus.values and status != "all":
        status = ReviewStatus.PENDING
    kind = request.GET.get("kind", "")
    assigned = request.GET.get("assigned", "")
    flagged = request.GET.get("flagged", "")
    items = selectors.review_item_list(
        user=request.user, status=None if status == "all" else status, kind=kind or None, assigned=assigned or None,
        flagged={"yes": True, "no": False}.get(flagged),
    )[:200]
    kinds = sorted(set(ReviewItem.objects.values_list("kind", flat=True).distinct()))
    return render(request, "web/review_queue.html", {
        "items": items, "status": status, "kind": kind, "assigned": assigned, "flagged": flagged,
        "statuses": ReviewStatus.choices, "kinds": kinds,
    })


def _neighbours(request: HttpRequest, item: ReviewItem) -> tuple[int | None, int | None]:
    ids = list(selectors.review_item_list(user=request.user, status=ReviewStatus.PENDING).values_list("pk", flat=True)[:500])
    if item.pk not in ids:
        return (ids[0] if ids else None), None
    at = ids.index(item.pk)
    return (ids[at + 1] if at + 1 < len(ids) else None), (ids[at - 1] if at > 0 else None)


@role_required(*REVIEW_ROLES)
def item_page(request: HttpRequest, item_id: str, errors: list[str] | None = None, status: int = 200) -> HttpResponse:
    try:
        item = selectors.review_item_get(user=request.user, item_id=item_id)
    except DomainError as exc:
        return render(request, "web/partials/errors.html", {"errors": [exc.message]}, status=404)
    next_id, prev_id = _neighbours(request, item)
    return render(request, "web/review_item.html", {
        "item": item, "diff": text_diff(item.candidate.text, item.text), "edited": item.is_edited,
        "flag_reasons": candidate_flag_reasons(item.candidate.metadata), "events": item.events.all(),
        "next_id": next_id, "prev_id": prev_id, "errors": errors or [],
        "params": item.candidate.job.params, "checks": checks_marks((item.candidate.metadata or {}).get("checks")),
        "can_decide": item.status == ReviewStatus.PENDING and item.submitted_by_id != request.user.pk,
    }, status=status)


@require_POST
@role_required(*REVIEW_ROLES)
def item_action(request: HttpRequest, item_id: str, action: str) -> HttpResponse:
    try:
        item = selectors.review_item_get(user=request.user, item_id=item_id)
        reason = request.POST.get("reason", "")
        if action == "approve":
            reviews.review_item_approve(item=item, user=request.user, reason=reason)
        elif action == "reject":
            reviews.review_item_reject(item=item, user=request.user, reason=reason)
        elif action == "request_changes":
            reviews.review_item_request_changes(item=item, user=request.user, reason=reason)
        elif action == "assign_me":
            reviews.review_item_assign(item=item, user=request.user, assignee=request.user)
        elif action == "publish":
            reviews.review_item_publish(item=item, user=request.user)
        else:
            return HttpResponse(status=404)
    except DomainError as exc:
        return item_page(request, item_id, errors=error_messages(exc), status=exc.status_code)
    if action in ("approve", "reject", "request_changes") and request.POST.get("go_next"):
        next_id, _ = _neighbours(request, item)
        if next_id:
            return redirect(f"/review/items/{next_id}/")
    return redirect(f"/review/items/{item.pk}/")


@role_required(*REVIEW_ROLES)
def flagged_page(request: HttpRequest) -> HttpResponse:
    errors = []
    if request.method == "POST":
        from review.services.safety import candidate_flag_clear

        try:
            candidate = selectors.candidate_get(user=request.user, candidate_id=request.POST.get("candidate", ""))
            candidate_flag_clear(candidate=candidate, user=request.user)
            return redirect("/review/flagged/")
        except DomainError as exc:
            errors = error_messages(exc)
    rows = [{"c": c, "reasons": candidate_flag_reasons(c.metadata)} for c in selectors.flagged_candidates()]
    return render(request, "web/flagged.html", {"rows": rows, "errors": errors}, status=400 if errors else 200)


@role_required(roles.REVIEWER, roles.ANALYST)
def quality_page(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind") or None
    from generation.kinds import kinds_all

    kinds = [k.name for k in kinds_all() if k.queue != "train" and k.name not in settings.GENAI_SAFETY_SKIP_KINDS]
    return render(request, "web/quality.html", {
        "rows": selectors.quality_by_model(kind=kind), "kind": kind or "", "kinds": kinds,
    })

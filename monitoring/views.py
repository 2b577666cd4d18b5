"""The monitoring dashboard (analyst): sentiment over time per entity (a uPlot chart: mean score
per entity on one axis, items per bucket on another, ``web.charts``; the inline SVG where
JavaScript does not run) and the alert list with acknowledge buttons (POST with CSRF)."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from generation import roles
from generation.exceptions import DomainError
from monitoring import selectors
from monitoring.charts import sentiment_chart_svg
from monitoring.services.alerts import alert_acknowledge
from web.charts import chart_spec

PERIODS = {"24h": (timedelta(hours=24), "hour"), "7d": (timedelta(days=7), "hour"), "30d": (timedelta(days=30), "day")}


def _analyst(request: HttpRequest) -> bool:
    return roles.user_has_role(request.user, roles.ANALYST, roles.ADMIN)


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    if not _analyst(request):
        return HttpResponseForbidden("The monitoring dashboard needs the analyst or admin role.")
    period = request.GET.get("period", "7d")
    if period not in PERIODS:
        period = "7d"
    span, bucket = PERIODS[period]
    until = timezone.now()
    since = until - span
    entity = request.GET.get("entity", "").strip().upper()
    entities = [entity] if entity else selectors.entities_top(since=since)
    series = selectors.sentiment_series(entities=entities, since=since, until=until, bucket=bucket) if entities else {}
    status = request.GET.get("status", "pending,firing")
    context = {
        "chart": mark_safe(sentiment_chart_svg(series, since=since, until=until)),  # noqa: S308 - built with escape()
        "chart_spec": sentiment_chart_spec(series),
        "totals": [
            {
                "entity": name,
                "items": sum(p["count"] for p in points),
                "negative": sum(p["negative"] for p in points),
                "mean": sum(p["mean_score"] * p["count"] for p in points) / max(1, sum(p["count"] for p in points)),
            }
            for name, points in sorted(series.items())
        ],
        "period": period,
        "periods": list(PERIODS),
        "entity": entity,
        "status": status,
        "alerts": selectors.alert_list(status=status)[:100],
        "recent": selectors.news_list(entity=entity)[:15],
    }
    return render(request, "monitoring/dashboard.html", context)


def sentiment_chart_spec(series: dict[str, list[dict]]) -> dict:
    """Per entity its mean score per bucket (the score axis), and the items per bucket of the
    entities shown, as bars (the items axis); x in Unix seconds."""
    points: dict[str, list[tuple[float, float]]] = {}
    units: dict[str, str] = {}
    items: dict[float, int] = {}
    for entity, rows in series.items():
        points[entity] = [(row["at"].timestamp(), row["mean_score"]) for row in rows]
        units[entity] = "score"
        for row in rows:
            items[row["at"].timestamp()] = items.get(row["at"].timestamp(), 0) + row["count"]
    if items:
        points["items (entities shown)"] = sorted(items.items())
        units["items (entities shown)"] = "items"
    return chart_spec(title="Mean sentiment score over time per entity", x_kind="time", points=points, units=units,
                      bars=["items (entities shown)"])


@login_required
@require_POST
def alert_acknowledge_view(request: HttpRequest, alert_id: int) -> HttpResponse:
    if not _analyst(request):
        return HttpResponseForbidden("Acknowledging alerts needs the analyst or admin role.")
    try:
        alert = alert_acknowledge(alert=selectors.alert_get(alert_id=alert_id), user=request.user)
        messages.success(request, f"Alert #{alert.pk} acknowledged.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("monitoring-dashboard")

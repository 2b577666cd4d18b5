"""Staff pages: every job with its status, model versions with their metrics and the promote
action, training jobs with progress bars and their curves (JobMetric rows: a uPlot chart with one
y-axis per unit, ``web.charts``; an inline SVG where JavaScript does not run)."""

from __future__ import annotations

from collections import defaultdict

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from generation import models as gen_models
from generation import roles
from generation import selectors as job_selectors
from generation.exceptions import DomainError
from generation.kinds import kinds_all
from generation.models import JobStatus
from review.selectors import quality_by_model
from web.charts import chart_spec, metric_unit
from web.views.common import error_messages, role_required

STAFF_ROLES = (roles.ADMIN,)
CHART_W, CHART_H, PAD = 640, 260, 40
COLOURS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989"]


@role_required(*STAFF_ROLES)
def jobs_page(request: HttpRequest) -> HttpResponse:
    jobs = job_selectors.job_list(user=request.user)
    status, kind = request.GET.get("status", ""), request.GET.get("kind", "")
    if status:
        jobs = jobs.filter(status=status)
    if kind:
        jobs = jobs.filter(kind=kind)
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    return render(request, "web/staff_jobs.html", {
        "page": page, "status": status, "kind": kind, "statuses": JobStatus.values, "kinds": [k.name for k in kinds_all()],
    })


def _model_version_model():
    return getattr(gen_models, "ModelVersion", None)


@role_required(*STAFF_ROLES, roles.REVIEWER)
def models_page(request: HttpRequest, errors: list[str] | None = None, status: int = 200) -> HttpResponse:
    ModelVersion = _model_version_model()
    versions = list(ModelVersion.objects.select_related("training_job", "promoted_by").order_by(
        "family", "purpose", "name", "-version")) if ModelVersion else []
    quality = defaultdict(list)
    for row in quality_by_model():
        quality[row.model_version].append(row)
    for v in versions:
        v.quality = [r for key, rows in quality.items() if key and (key == v.label or key.startswith(v.label) or v.label in key) for r in rows]
        defaults = [o for o in versions if o.is_default and o.family == v.family and o.purpose == v.purpose and o.pk != v.pk]
        v.current = defaults[0] if defaults else None
    return render(request, "web/staff_models.html", {
        "versions": versions, "available": ModelVersion is not None, "errors": errors or [],
        "can_promote": roles.user_is_reviewer(request.user),
    }, status=status)


@require_POST
@role_required(*STAFF_ROLES, roles.REVIEWER)
def model_promote(request: HttpRequest, version_id: int) -> HttpResponse:
    ModelVersion = _model_version_model()
    if ModelVersion is None:
        return HttpResponse(status=404)
    from generation.services.model_versions import model_version_promote

    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        return models_page(request, errors=[f"No model version {version_id}."], status=404)
    try:
        model_version_promote(version=version, user=request.user)
    except DomainError as exc:
        return models_page(request, errors=error_messages(exc), status=exc.status_code)
    return redirect("/staff/models/")


def _training_kinds() -> list[str]:
    return [k.name for k in kinds_all() if k.queue == "train"]


@role_required(*STAFF_ROLES)
def training_page(request: HttpRequest) -> HttpResponse:
    jobs = list(job_selectors.job_list(user=request.user).filter(kind__in=_training_kinds())[:30])
    running = any(not j.is_final for j in jobs)
    for job in jobs:
        series = job_metric_series(job)
        job.chart = loss_chart(series)
        job.chart_spec = training_chart_spec(series)
    template = "web/partials/training_list.html" if request.htmx else "web/staff_training.html"
    return render(request, template, {"jobs": jobs, "running": running, "poll_ms": 2000})


def job_metric_series(job) -> dict[str, list[tuple[int, float]]]:
    """Every (split, value name) series of a job's JobMetric rows: ``"validation accuracy"`` ->
    [(step, value), ...]."""
    JobMetric = getattr(gen_models, "JobMetric", None)
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    if JobMetric is None:
        return series
    for step, split, values in JobMetric.objects.filter(job=job).order_by("step", "id").values_list("step", "split", "values"):
        for name, value in (values or {}).items():
            if isinstance(value, (int, float)) and value == value:  # not NaN
                series[f"{split} {name}"].append((step, float(value)))
    return series


def training_chart_spec(series: dict[str, list[tuple[int, float]]]) -> dict | None:
    """The curves for the interactive chart: each value on the axis of its unit (loss, accuracy /
    F1, learning rate ...), by step; None when the job logged nothing."""
    if not series:
        return None
    units = {name: metric_unit(name.rsplit(" ", 1)[-1]) for name in series}
    return chart_spec(title="Training curves", x_kind="step", points=series, units=units)


def loss_chart(series: dict[str, list[tuple[int, float]]]) -> dict | None:
    """Polylines of every series, scaled to one SVG (the page's chart where JavaScript does not
    run); None when the job logged nothing."""
    if not series:
        return None
    steps = [s for points in series.values() for s, _ in points]
    values = [v for points in series.values() for _, v in points]
    s_min, s_max = min(steps), max(steps) or 1
    v_min, v_max = min(values), max(values)
    if v_max == v_min:
        v_max = v_min + 1.0
    w, h = CHART_W - 2 * PAD, CHART_H - 2 * PAD

    def xy(step, value):
        x = PAD + (step - s_min) / ((s_max - s_min) or 1) * w
        y = PAD + (1 - (value - v_min) / (v_max - v_min)) * h
        return f"{x:.1f},{y:.1f}"

    lines = []
    for i, (name, points) in enumerate(sorted(series.items())):
        lines.append({"name": name, "colour": COLOURS[i % len(COLOURS)], "points": " ".join(xy(s, v) for s, v in points),
                      "last": points[-1][1], "legend_y": PAD + 14 * i})
    return {"lines": lines, "width": CHART_W, "height": CHART_H, "pad": PAD, "s_min": s_min, "s_max": s_max,
            "v_min": round(v_min, 4), "v_max": round(v_max, 4), "bottom": CHART_H - PAD, "right": CHART_W - PAD}

"""The data of the pages' interactive charts. ``web/static/web/charts.js`` draws them with uPlot
(vendored in ``web/static/web/vendor/``, MIT; nothing comes from a CDN): one y-axis per unit
(a loss apart from an accuracy), the values under the cursor in the legend, drag to zoom and a
range picker (an overview strip below the chart). The page embeds the spec with ``json_script``
beside a server-drawn SVG that is shown where JavaScript does not run.

A spec is plain JSON: ``x`` (step numbers, or Unix seconds when ``x_kind`` is ``time``), the
``units`` (an axis each: label and an optional fixed range) and the ``series`` (name, unit,
values aligned with ``x``, ``null`` where a series has no point, and ``bars`` for counts).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

# Axis label (and fixed range, where the quantity has one) per unit, in the order the axes take.
UNITS: dict[str, dict] = {
    "loss": {"label": "loss"},
    "score": {"label": "mean score (P(pos) - P(neg))", "range": [-1, 1]},
    "ratio": {"label": "accuracy / F1", "range": [0, 1]},
    "items": {"label": "items"},
    "lr": {"label": "learning rate"},
}
_RATIO = re.compile(r"accuracy|f1|precision|recall|share|rate$")


def metric_unit(name: str) -> str:
    """The unit of a logged training value by its name: ``loss``, ``ratio`` (accuracy, F1 ...),
    ``lr``, else the name itself (a unit of its own, on an axis of its own)."""
    if "loss" in name or name in ("elbo", "kl", "perplexity"):
        return "loss"
    if name == "lr" or name.endswith("_lr"):
        return "lr"
    if _RATIO.search(name):
        return "ratio"
    return name


def chart_spec(*, title: str, x_kind: str, points: dict[str, list[tuple[float, float]]],
               units: dict[str, str], bars: Iterable[str] = ()) -> dict:
    """``points``: per series name, its (x, value) pairs; ``units``: per series name, its unit.
    Returns the spec (series aligned on the union of their x values, grouped by unit: the known
    units in ``UNITS``' order, which is also their axes' order, then by name)."""
    xs = sorted({x for pairs in points.values() for x, _ in pairs})
    index = {x: i for i, x in enumerate(xs)}
    bars = set(bars)
    series = []
    order = list(UNITS)  # the known units first, in UNITS' order (loss on the left axis, accuracy on the right ...)
    for name in sorted(points, key=lambda n: (order.index(units[n]) if units[n] in order else len(order), units[n], n)):
        values: list[float | None] = [None] * len(xs)
        for x, value in points[name]:
            if value is not None and math.isfinite(value):
                values[index[x]] = round(float(value), 6)
        series.append({"name": name, "unit": units[name], "values": values, "bars": name in bars})
    used = list(dict.fromkeys(s["unit"] for s in series))
    return {
        "title": title,
        "x_kind": x_kind,
        "x": xs,
        "units": {unit: UNITS.get(unit, {"label": unit}) for unit in used},
        "series": series,
    }

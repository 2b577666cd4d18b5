"""Server-side SVG line charts (no JavaScript, no CDN): mean sentiment score over time per entity."""

from __future__ import annotations

from datetime import datetime
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def sentiment_chart_svg(series: dict[str, list[dict]], *, since: datetime, until: datetime,
                        width: int = 760, height: int = 260) -> str:
    """One polyline per entity of its mean score (-1..1) per bucket; point size by item count.
    Returns an accessible ``<svg>`` element (a title and a description)."""
    left, right, top, bottom = 44, 120, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    span = max((until - since).total_seconds(), 1.0)

    def x(at: datetime) -> float:
        return left + plot_w * min(max((at - since).total_seconds() / span, 0.0), 1.0)

    def y(score: float) -> float:
        return top + plot_h * (1.0 - (score + 1.0) / 2.0)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="chart-title chart-desc" class="sentiment-chart">',
        '<title id="chart-title">Mean sentiment score over time per entity</title>',
        f'<desc id="chart-desc">From {escape(since.strftime("%Y-%m-%d %H:%M"))} to {escape(until.strftime("%Y-%m-%d %H:%M"))} UTC; '
        "score = P(positive) - P(negative), from -1 to 1.</desc>",
    ]
    for value in (-1.0, -0.5, 0.0, 0.5, 1.0):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="{"#888" if value == 0 else "#ddd"}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" font-size="11" text-anchor="end">{value:+.1f}</text>'
        )
    for fraction in (0.0, 0.5, 1.0):
        at = since + (until - since) * fraction
        parts.append(
            f'<text x="{left + plot_w * fraction:.1f}" y="{height - 8}" font-size="11" text-anchor="middle">'
            f'{escape(at.strftime("%m-%d %H:%M"))}</text>'
        )
    for index, (entity, points) in enumerate(sorted(series.items())):
        colour = PALETTE[index % len(PALETTE)]
        coords = [(x(p["at"]), y(p["mean_score"]), p) for p in points]
        if len(coords) > 1:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy, _ in coords)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for cx, cy, p in coords:
            radius = min(2 + p["count"] ** 0.5, 7)
            parts.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius:.1f}" fill="{colour}">'
                f'<title>{escape(entity)} {escape(p["at"].strftime("%Y-%m-%d %H:%M"))}: mean {p["mean_score"]:+.2f}, '
                f'{p["count"]} items, {p["negative"]} negative</title></circle>'
            )
        legend_y = top + 14 + index * 18
        parts.append(
            f'<rect x="{left + plot_w + 12}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + plot_w + 27}" y="{legend_y}" font-size="12">{escape(entity)}</text>'
        )
    if not series:
        parts.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" font-size="13">No scored items in this period.</text>')
    parts.append("</svg>")
    return "".join(parts)

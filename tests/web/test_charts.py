"""The charts' data (web/charts.py) and the vendored charting library they are drawn with."""

from pathlib import Path

from django.contrib.staticfiles import finders

from web.charts import chart_spec, metric_unit


def test_each_logged_value_gets_the_axis_of_its_unit():
    assert [metric_unit(n) for n in ("loss", "eval_loss", "accuracy", "macro_f1", "lr", "head_lr", "kl", "grad_norm")] == [
        "loss", "loss", "ratio", "ratio", "lr", "lr", "loss", "grad_norm"]


def test_series_are_aligned_on_the_union_of_their_x_values_with_gaps_left_empty():
    spec = chart_spec(
        title="t", x_kind="step",
        points={"train loss": [(10, 1.2), (20, 0.9)], "validation accuracy": [(20, 0.8), (30, float("nan"))]},
        units={"train loss": "loss", "validation accuracy": "ratio"},
    )
    assert spec["x"] == [10, 20, 30]
    assert [(s["name"], s["values"]) for s in spec["series"]] == [
        ("train loss", [1.2, 0.9, None]), ("validation accuracy", [None, 0.8, None])]
    assert list(spec["units"]) == ["loss", "ratio"] and spec["units"]["ratio"]["range"] == [0, 1]


def test_uplot_is_vendored_with_its_licence_and_served_from_the_site():
    script = finders.find("web/vendor/uplot.iife.min.js")
    assert script and Path(script).read_text().startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    assert finders.find("web/vendor/uplot.min.css") and "MIT" in Path(finders.find("web/vendor/uplot.LICENSE")).read_text()
    assert "new uPlot(" in Path(finders.find("web/charts.js")).read_text()

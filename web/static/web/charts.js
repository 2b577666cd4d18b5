/* genai-desk charts: each <figure data-chart="ID"> is drawn from the JSON spec in <script id="ID">
   (web/charts.py) with uPlot (vendor/uplot.iife.min.js, MIT): one y-axis per unit, the values under
   the cursor in the legend, drag across the chart to zoom, and a range picker (the overview strip
   below it: drag to choose the range; "Show all" or a double click resets). The figure's <noscript>
   SVG is what a browser without JavaScript shows. */
(function () {
  "use strict";
  var PALETTE = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0e7c86", "#8c564b"];
  var ranges = {}; // chart id -> [min, max] picked by the user, kept when htmx redraws the page part
  var built = {}; // chart id -> [main, overview]

  function fmt(v) {
    if (v == null || isNaN(v)) return "—";
    var a = Math.abs(v);
    if (a !== 0 && (a < 0.001 || a >= 1e5)) return v.toExponential(2);
    return String(Math.round(v * 10000) / 10000);
  }

  function div(cls, parent) {
    var el = document.createElement("div");
    el.className = cls;
    parent.appendChild(el);
    return el;
  }

  function overviewSelect(overview, min, max) {
    var left = overview.valToPos(min, "x"), right = overview.valToPos(max, "x");
    overview.setSelect({ left: left, width: Math.max(0, right - left), top: 0, height: overview.over.clientHeight }, false);
  }

  function build(figure) {
    var id = figure.getAttribute("data-chart");
    var node = document.getElementById(id);
    if (!node || !window.uPlot) return;
    var spec = JSON.parse(node.textContent);
    if (built[id]) built[id].forEach(function (chart) { chart.destroy(); });
    var host = figure.querySelector(".chart-live") || div("chart-live", figure);
    host.innerHTML = "";
    var time = spec.x_kind === "time";
    var width = Math.max(320, Math.min(figure.clientWidth || 760, 1100));
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));

    var scales = { x: { time: time } };
    var axes = [time ? { label: "time (your clock)", labelSize: 20 }
                     : { label: "step", labelSize: 20, incrs: [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000] }];
    Object.keys(spec.units).forEach(function (name, i) {
      var unit = spec.units[name];
      scales[name] = unit.range ? { range: unit.range } : { auto: true };
      axes.push({
        scale: name, label: unit.label, labelSize: 20, size: 56, side: i % 2 === 0 ? 3 : 1,
        grid: { show: i === 0 }, values: function (self, ticks) { return ticks.map(fmt); },
      });
    });
    var series = [{ label: time ? "time" : "step", value: time ? "{YYYY}-{MM}-{DD} {HH}:{mm}" : function (self, v) { return v == null ? "—" : v; } }];
    spec.series.forEach(function (s, i) {
      var colour = PALETTE[i % PALETTE.length];
      var opts = { label: s.name + " (" + spec.units[s.unit].label + ")", scale: s.unit, stroke: colour, width: 2, spanGaps: true,
                   value: function (self, v) { return fmt(v); }, points: { show: true, size: 5 } };
      if (s.bars) {
        opts.paths = uPlot.paths.bars({ size: [0.6, 30] });
        opts.fill = colour + "40";
        opts.points = { show: false };
      }
      series.push(opts);
    });

    var plot = div("chart-main", host);
    var overview;
    var main = new uPlot({
      width: width, height: 280, scales: scales, axes: axes, series: series,
      cursor: { drag: { x: true, y: false } },
      hooks: {
        setScale: [function (u, key) {
          if (key !== "x" || !overview) return;
          var min = u.scales.x.min, max = u.scales.x.max;
          var all = min <= spec.x[0] && max >= spec.x[spec.x.length - 1];
          if (all) { delete ranges[id]; overview.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false); }
          else { ranges[id] = [min, max]; overviewSelect(overview, min, max); }
        }],
      },
    }, data, plot);

    // The range picker: the same series, small, no legend; a drag selects the range the chart shows.
    var strip = div("chart-range", host);
    strip.setAttribute("aria-label", "Range picker: drag across this strip to choose the range shown above");
    overview = new uPlot({
      width: width, height: 70, legend: { show: false },
      scales: scales,
      axes: [{ size: 24, font: "10px sans-serif" }].concat(Object.keys(spec.units).map(function (name) { return { scale: name, show: false }; })),
      series: [{}].concat(spec.series.map(function (s, i) {
        return { scale: s.unit, stroke: PALETTE[i % PALETTE.length], width: 1, spanGaps: true, points: { show: false },
                 paths: s.bars ? uPlot.paths.bars({ size: [0.6, 30] }) : undefined };
      })),
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false }, y: false },
      hooks: {
        setSelect: [function (u) {
          if (u.select.width < 2) return;
          main.setScale("x", { min: u.posToVal(u.select.left, "x"), max: u.posToVal(u.select.left + u.select.width, "x") });
        }],
      },
    }, data, strip);

    var reset = document.createElement("button");
    reset.type = "button";
    reset.textContent = "Show all";
    reset.addEventListener("click", function () { main.setScale("x", { min: spec.x[0], max: spec.x[spec.x.length - 1] }); });
    host.appendChild(reset);

    built[id] = [main, overview];
    figure.charts = { main: main, range: overview }; // for the browser tests
    if (ranges[id]) main.setScale("x", { min: ranges[id][0], max: ranges[id][1] });
  }

  function buildAll(root) {
    if (!window.uPlot) return;
    var figures = (root || document).querySelectorAll ? (root || document).querySelectorAll("figure[data-chart]") : [];
    Array.prototype.forEach.call(figures, build);
    if (root && root.matches && root.matches("figure[data-chart]")) build(root);
  }

  document.addEventListener("DOMContentLoaded", function () { buildAll(document); });
  document.addEventListener("htmx:load", function (event) { buildAll(event.target); });
  var resizeTimer;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { buildAll(document); }, 200);
  });
})();

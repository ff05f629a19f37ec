// The overview's chart: tasks completed and failed per minute, drawn with uPlot from the numbers
// that the live fragment carries (#throughput-data), and drawn again each time htmx swaps it in.
(function () {
  "use strict";
  var chart = null;

  function readData() {
    var node = document.getElementById("throughput-data");
    if (!node) return null;
    var raw = JSON.parse(node.textContent);
    return [raw.t, raw.completed, raw.failed];
  }

  function width(box) {
    return Math.max(240, Math.floor(box.getBoundingClientRect().width));
  }

  function draw() {
    var box = document.getElementById("throughput-chart");
    var data = readData();
    if (!box || !data || typeof window.uPlot === "undefined") return;
    if (chart) {
      chart.setData(data);
      return;
    }
    // Minutes in 24-hour UTC ("21:15"), as the tables write them, whatever the browser's time
    // zone: the ticks fall on UTC minutes (tzDate) and the axis and the legend read HH:MM.
    function utc(ts) { return window.uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); }
    var hhmm = window.uPlot.fmtDate("{HH}:{mm}");
    function minute(ts) { return hhmm(utc(ts)); }
    var paths = window.uPlot.paths;
    var left = paths.bars({ size: [0.45, 14], align: 1 });
    var right = paths.bars({ size: [0.45, 14], align: -1 });
    chart = new window.uPlot(
      {
        width: width(box),
        height: 240,
        tzDate: utc,
        scales: {
          // Half a minute of room on each side, so the first and the last minute's bars show.
          x: { time: true, range: function (u, min, max) { return [min - 30, max + 30]; } },
          y: { range: function (u, min, max) { return [0, Math.max(4, max)]; } }
        },
        axes: [
          { values: function (u, splits) { return splits.map(minute); } },
          { label: "tasks per minute", size: 60 }
        ],
        series: [
          { label: "Minute (UTC)", value: function (u, ts) { return ts == null ? "--" : minute(ts); } },
          { label: "Completed", stroke: "#15803d", fill: "rgba(21, 128, 61, 0.35)", paths: left, points: { show: false } },
          { label: "Failed", stroke: "#b91c1c", fill: "rgba(185, 28, 28, 0.35)", paths: right, points: { show: false } }
        ]
      },
      data,
      box
    );
    window.mediatasksThroughput = chart;
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(function () { chart.setSize({ width: width(box), height: 240 }); }).observe(box);
    }
  }

  // The numbers per minute stay open (or closed) across the live refreshes.
  var numbersOpen = false;
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!event.detail || !event.detail.target || event.detail.target.id !== "overview-live") return;
    var details = document.getElementById("throughput-numbers");
    numbersOpen = !!(details && details.open);
  });
  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSwap", function (event) {
    if (!event.detail || !event.detail.target || event.detail.target.id !== "overview-live") return;
    var details = document.getElementById("throughput-numbers");
    if (details && numbersOpen) details.open = true;
    draw();
  });
  if (document.readyState !== "loading") draw();
})();

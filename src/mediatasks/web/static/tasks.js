// The tasks pages' live parts: /tasks/live (server-sent events) sends each watched task's status
// cell, rendered by the server, and the counts per phase; this puts them in place.  On a task's
// page, a change of phase also fetches the page's live panel again (timeline, buttons, output).
// Without JavaScript the pages still work: they just do not move until reloaded.
(function () {
  "use strict";

  var root = document.querySelector("[data-live-tasks]");
  var state = document.querySelector("[data-live-state]");
  var taskPage = document.querySelector("[data-task-page]");

  function statusCells(id) {
    return document.querySelectorAll('[data-task-status="' + CSS.escape(id) + '"]');
  }

  function watchedIds() {
    var ids = [];
    document.querySelectorAll("[data-task-status]").forEach(function (cell) {
      var id = cell.getAttribute("data-task-status");
      if (ids.indexOf(id) < 0) ids.push(id);
    });
    return ids;
  }

  function refreshPanel() {
    if (!taskPage) return;
    var id = taskPage.getAttribute("data-task-page");
    fetch("/tasks/" + encodeURIComponent(id) + "/panel", {
      headers: { "Accept": "text/html" },
      credentials: "same-origin",
    }).then(function (answer) {
      if (answer.redirected || !answer.ok) return null;
      return answer.text();
    }).then(function (html) {
      if (html === null) return;
      taskPage.innerHTML = html;
      // What the last button did is old news once the task moved on.
      var told = document.querySelector("[data-action-notice]");
      if (told) told.remove();
      if (window.htmx) window.htmx.process(taskPage);
    });
  }

  function onStatus(event) {
    var status = JSON.parse(event.data);
    statusCells(status.id).forEach(function (cell) {
      cell.innerHTML = status.html;
      cell.setAttribute("data-phase", status.phase);
    });
    if (taskPage && taskPage.getAttribute("data-task-page") === status.id) {
      if (taskPage.getAttribute("data-phase") !== status.phase) {
        taskPage.setAttribute("data-phase", status.phase);
        refreshPanel();
      }
    }
  }

  function onCounts(event) {
    var data = JSON.parse(event.data);
    var total = 0;
    Object.keys(data.counts).forEach(function (phase) {
      total += data.counts[phase];
      var cell = document.querySelector('[data-count="' + phase + '"]');
      if (cell) cell.textContent = String(data.counts[phase]);
    });
    var all = document.querySelector('[data-count="all"]');
    if (all) all.textContent = String(total);
    var notice = document.querySelector("[data-created-notice]");
    if (notice && data.created > 0) {
      notice.querySelector("span").textContent =
        data.created === 1 ? "1 new task was created." : data.created + " new tasks were created.";
      notice.hidden = false;
    }
  }

  if (root && window.EventSource) {
    var ids = watchedIds();
    var source = new EventSource(root.getAttribute("data-live-tasks") + "?ids=" + encodeURIComponent(ids.join(",")));
    source.addEventListener("status", onStatus);
    source.addEventListener("counts", onCounts);
    source.addEventListener("open", function () {
      if (state) state.textContent = "Counts and progress update live.";
    });
    source.addEventListener("error", function () {
      if (state && source.readyState === EventSource.CLOSED) {
        state.textContent = "Live updates stopped: reload the page.";
      }
    });
  }

  // Selecting several tasks.
  var selectAll = document.querySelector("[data-select-all]");
  var counter = document.querySelector("[data-selected-count]");
  var boxes = function () { return document.querySelectorAll('input[type="checkbox"][name="ids"]'); };
  function updateCount() {
    if (!counter) return;
    var n = 0;
    boxes().forEach(function (box) { if (box.checked) n += 1; });
    counter.textContent = n === 0 ? "Select tasks to act on several at once."
      : (n === 1 ? "1 task selected." : n + " tasks selected.");
    if (selectAll) {
      selectAll.checked = n > 0 && n === boxes().length;
      selectAll.indeterminate = n > 0 && n < boxes().length;
    }
  }
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      boxes().forEach(function (box) { box.checked = selectAll.checked; });
      updateCount();
    });
  }
  boxes().forEach(function (box) { box.addEventListener("change", updateCount); });
})();

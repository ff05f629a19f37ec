// A webhook's page: its delivery log (#webhook-log) refreshes itself every few seconds
// (hx-trigger="every Ns") but not while the keyboard focus is inside it, which a refresh would
// lose.  Here rather than as an hx-trigger filter, which htmx evaluates as code: the pages'
// Content-Security-Policy allows no eval.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeRequest", function (event) {
    var log = event.detail.elt;
    if (log.id === "webhook-log" && log.contains(document.activeElement)) {
      event.preventDefault();
    }
  });
})();

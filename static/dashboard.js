// The team dashboard re-reads itself every few seconds: the server renders
// the figures, this only swaps the #dashboard element in place.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root) return;
  var every = parseInt(root.getAttribute("data-refresh"), 10) || 10000;
  function refresh() {
    if (document.hidden) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.getElementById("dashboard");
        var cur = document.getElementById("dashboard");
        if (next && cur) cur.replaceWith(next);
      })
      .catch(function () { /* keep the last figures; try again next tick */ });
  }
  setInterval(refresh, every);
})();

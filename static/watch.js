// Baton live watch: re-fetches the list of bot-owned threads on every
// change announced over the websocket (and once a minute, so an ignored
// request is flagged when its timeout passes), and posts "Request control"
// with the CSRF header.
(function () {
  "use strict";

  var area = document.getElementById("watch-list");
  if (!area) return;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var timer = null;

  function refresh() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      // Keep a reason the supervisor is typing.
      var active = document.activeElement;
      if (active && active.name === "reason" && area.contains(active)) return;
      fetch("/watch?fragment=list", { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw r; return r.text(); })
        .then(function (html) { area.innerHTML = html; })
        .catch(function () {});
    }, 150);
  }

  window.BatonLive.connect(function (msg) {
    if (msg.type === "change" || msg.type === "resync") refresh();
  }, refresh);
  setInterval(refresh, 60000);

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.matches("[data-watch-request]")) return;
    ev.preventDefault();
    var err = form.querySelector(".watch-error");
    var btn = form.querySelector("button");
    if (btn) btn.disabled = true;
    fetch(form.getAttribute("action"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "X-Requested-With": "fetch", "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(form)).toString()
    }).then(function (r) {
      return r.json().catch(function () { return { ok: r.ok, error: "Unexpected answer (" + r.status + ")." }; });
    }).then(function (res) {
      if (btn) btn.disabled = false;
      if (!res.ok) { if (err) err.textContent = res.error || "Request failed."; return; }
      if (document.activeElement) document.activeElement.blur();
      refresh();
    }).catch(function () {
      if (btn) btn.disabled = false;
      if (err) err.textContent = "Network error; try again.";
    });
  });
})();

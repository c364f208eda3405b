// The person's side of Messenger. All data is rendered with textContent:
// message text comes from bots and agents and is never trusted as HTML.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var person = $("person"), log = $("log"), typing = $("typing"), qr = $("quick-replies"), status = $("status");
  var current = "", lastRendered = "", appNames = {}, primaryId = "";

  function api(method, path, body) {
    var opts = { method: method, headers: {} };
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    return fetch(path, opts).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) { throw new Error((j && j.error && j.error.message) || ("HTTP " + r.status)); }
        return j;
      });
    });
  }
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) { n.className = cls; }
    if (text !== undefined) { n.textContent = text; }
    return n;
  }
  function showError(err) { status.textContent = err ? String(err.message || err) : ""; }

  function loadState(select) {
    return api("GET", "/_emulator/state").then(function (s) {
      $("page-name").textContent = s.page.name;
      appNames = {}; primaryId = "";
      s.apps.forEach(function (a) {
        appNames[a.id] = a.name;
        if (a.role === "primary_receiver") { primaryId = a.id; }
      });
      var keep = select || person.value || current;
      person.textContent = "";
      s.users.forEach(function (u) {
        var o = el("option", "", (u.first_name + " " + u.last_name).trim());
        o.value = u.psid;
        person.appendChild(o);
      });
      if (keep) { person.value = keep; }
      if (!person.value && s.users.length) { person.value = s.users[0].psid; }
      if (person.value !== current) { current = person.value; lastRendered = ""; refresh(); }
    });
  }

  function label(m) {
    var name = m.app_name || appNames[m.app_id] || ("app " + m.app_id);
    var kind = m.app_id === primaryId ? "bot" : "agent";
    return name + " (" + kind + ")";
  }

  function render(c) {
    var key = JSON.stringify(c.messages) + c.typing;
    if (key === lastRendered) { return; }
    lastRendered = key;
    log.textContent = "";
    var lastPage = null;
    c.messages.forEach(function (m) {
      var li = el("li", "msg " + (m.from === "user" ? "user" : "page"));
      li.dataset.mid = m.mid;
      if (m.from === "page") {
        var kind = m.app_id === primaryId ? "bot" : "agent";
        li.appendChild(el("span", "label " + kind, label(m)));
        lastPage = m;
      }
      if (m.text) { li.appendChild(el("div", "bubble", m.text)); }
      (m.attachments || []).forEach(function (a) {
        if (a.type === "image" && a.url) {
          var img = el("img"); img.src = a.url; img.alt = "image"; li.appendChild(img);
        } else {
          li.appendChild(el("div", "bubble", "[" + a.type + "] " + (a.url || "")));
        }
      });
      if (m.buttons && m.buttons.length) {
        var box = el("div", "buttons");
        m.buttons.forEach(function (b) {
          var btn = el("button", "", b.title);
          btn.type = "button";
          btn.addEventListener("click", function () {
            if (b.type === "postback") {
              api("POST", "/_emulator/users/" + current + "/postbacks", { title: b.title, payload: b.payload }).then(refresh, showError);
            } else if (b.url) { window.open(b.url, "_blank", "noopener"); }
          });
          box.appendChild(btn);
        });
        li.appendChild(box);
      }
      if (m.from === "user" && m.seen) { li.appendChild(el("span", "seen", "Seen")); }
      log.appendChild(li);
    });
    qr.textContent = "";
    var last = c.messages[c.messages.length - 1];
    if (last && last === lastPage && last.quick_replies) {
      last.quick_replies.forEach(function (q) {
        var b = el("button", "", q.title);
        b.type = "button";
        b.addEventListener("click", function () {
          api("POST", "/_emulator/users/" + current + "/messages", { text: q.title, quick_reply_payload: q.payload }).then(refresh, showError);
        });
        qr.appendChild(b);
      });
    }
    typing.hidden = !c.typing;
    if (c.typing && c.typing_app_id) { typing.textContent = (appNames[c.typing_app_id] || "The page") + " is typing…"; }
    log.scrollTop = log.scrollHeight;
  }

  var unreadPage = 0;
  function refresh() {
    if (!current) { return Promise.resolve(); }
    var psid = current;
    return api("GET", "/_emulator/users/" + psid + "/conversation").then(function (c) {
      if (psid !== current) { return; }
      render(c);
      var unseen = c.messages.some(function (m) { return m.from === "page" && !m.seen; });
      if (unseen && document.visibilityState === "visible" && unreadPage === 0) {
        unreadPage = 1;
        api("POST", "/_emulator/users/" + psid + "/read").then(function () { unreadPage = 0; }, function () { unreadPage = 0; });
      }
    }, showError);
  }

  person.addEventListener("change", function () { current = person.value; lastRendered = ""; refresh(); });
  $("new-person-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    api("POST", "/_emulator/users", { first_name: $("first-name").value, last_name: $("last-name").value })
      .then(function (r) { $("first-name").value = ""; $("last-name").value = ""; return loadState(r.psid); })
      .then(function () { showError(null); }, showError);
  });
  $("composer").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!current) { showError("Create a person first."); return; }
    var text = $("message").value.trim(), url = $("image-url").value.trim();
    if (!text && !url) { return; }
    var body = { text: text };
    if (url) { body.attachments = [{ type: "image", url: url }]; }
    api("POST", "/_emulator/users/" + current + "/messages", body).then(function () {
      $("message").value = ""; $("image-url").value = ""; showError(null); return refresh();
    }, showError);
  });

  loadState().catch(showError);
  setInterval(refresh, 700);
  setInterval(function () { loadState().catch(function () {}); }, 5000);
}());

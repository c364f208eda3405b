// Baton console: live updates over a websocket, async forms, the composer.
// No framework: the server renders every fragment with the same templates
// as the page; this script only fetches and swaps them.
(function () {
  "use strict";

  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var consoleEl = document.querySelector("[data-testid=console]");
  if (!consoleEl) return;

  function currentConversation() {
    return consoleEl.getAttribute("data-conversation") || "";
  }

  // ---- fetching and swapping fragments -------------------------------

  function parse(html) {
    return new DOMParser().parseFromString(html, "text/html");
  }

  function nearBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  }

  function scrollToBottom() {
    var t = document.getElementById("thread");
    if (t) t.scrollTop = t.scrollHeight;
  }

  var listTimer = null, convTimer = null;
  // Re-reads may overlap and finish out of order: only the newest one
  // started may be applied, so an older answer never overwrites a newer.
  var listGen = 0, convGen = 0;

  function refreshList() {
    clearTimeout(listTimer);
    listTimer = setTimeout(function () {
      var q = new URLSearchParams();
      q.set("fragment", "list");
      q.set("folder", consoleEl.getAttribute("data-folder") || "inbox");
      var search = consoleEl.getAttribute("data-search");
      if (search) q.set("q", search);
      var sort = consoleEl.getAttribute("data-sort");
      if (sort && sort !== "newest") q.set("sort", sort);
      var tag = consoleEl.getAttribute("data-tag");
      if (tag) q.set("tag", tag);
      if (currentConversation()) q.set("selected", currentConversation());
      var gen = ++listGen;
      fetch("/?" + q.toString(), { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw r; return r.text(); })
        .then(function (html) {
          if (gen !== listGen) return;
          var el = document.getElementById("conversation-list");
          if (el) el.innerHTML = html;
          noticeMentions();
        })
        .catch(function () {});
    }, 120);
  }

  function refreshConversation() {
    var id = currentConversation();
    if (!id) return;
    clearTimeout(convTimer);
    convTimer = setTimeout(function () {
      var gen = ++convGen;
      fetch("/conversations/" + id + "?fragment=live", { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw r; return r.text(); })
        .then(function (html) {
          if (gen !== convGen) return;
          var doc = parse(html);
          var thread = document.getElementById("thread");
          var stick = thread ? nearBottom(thread) : true;
          swap(doc, "conversation-header");
          swap(doc, "thread");
          var fresh = doc.querySelector('[data-part="composer-area"] .composer-wrap');
          var area = document.getElementById("composer-area");
          var old = area && area.querySelector(".composer-wrap");
          // Keep what the agent is typing unless the composer itself changed.
          if (fresh && old && fresh.getAttribute("data-state") !== old.getAttribute("data-state")) {
            area.innerHTML = "";
            area.appendChild(document.importNode(fresh, true));
          }
          var seq = doc.querySelector("[data-seq]");
          if (seq) consoleEl.setAttribute("data-seq", seq.getAttribute("data-seq"));
          if (stick) scrollToBottom();
        })
        .catch(function () {});
    }, 40);
  }

  function swap(doc, id) {
    var src = doc.querySelector('[data-part="' + id + '"]');
    var dst = document.getElementById(id);
    if (!src || !dst) return;
    // Keep disclosures (the handover reason, the ownership timeline) as
    // the agent left them.
    var opened = {};
    dst.querySelectorAll("details[id]").forEach(function (d) { opened[d.id] = d.open; });
    src.querySelectorAll("details[id]").forEach(function (d) {
      if (d.id in opened) d.open = opened[d.id];
    });
    // An open dialog (an agent filling the Done form) must stay the very
    // same element: moving or cloning it would close it and drop the
    // focus and what was typed. Everything around it is replaced.
    var keep = dst.querySelector("dialog[open]") ? dst.querySelector(".actions") : null;
    if (keep && src.querySelector(".actions")) {
      replaceAround(dst, src, keep);
      return;
    }
    // A field being typed in (a new tag) keeps its text and the focus.
    var a = document.activeElement, typing = null;
    if (a && a.id && dst.contains(a) && (a.tagName === "INPUT" || a.tagName === "TEXTAREA")) {
      typing = { id: a.id, value: a.value, start: a.selectionStart, end: a.selectionEnd };
    }
    dst.innerHTML = "";
    while (src.firstChild) dst.appendChild(document.importNode(src.firstChild, true)), src.removeChild(src.firstChild);
    if (typing) {
      var f = document.getElementById(typing.id);
      if (f) {
        f.value = typing.value;
        f.focus();
        try { f.setSelectionRange(typing.start, typing.end); } catch (e) {}
      }
    }
  }

  // replaceAround makes dst's children src's, except the branch holding
  // keep, which is walked down the same way (its counterpart in src is the
  // node holding an element of the same class).
  function replaceAround(dst, src, keep) {
    if (dst === keep) return;
    var holder = null;
    Array.prototype.slice.call(dst.childNodes).forEach(function (n) {
      if (n.contains && n.contains(keep)) holder = n; else dst.removeChild(n);
    });
    var srcHolder = null;
    Array.prototype.slice.call(src.childNodes).forEach(function (n) {
      if (!srcHolder && n.nodeType === 1 && (n.matches(".actions") || n.querySelector(".actions"))) { srcHolder = n; return; }
      var copy = document.importNode(n, true);
      if (srcHolder || !holder) dst.appendChild(copy); else dst.insertBefore(copy, holder);
    });
    if (holder && srcHolder) replaceAround(holder, srcHolder, keep);
  }

  // ---- the websocket --------------------------------------------------

  // static/live.js keeps the socket; after any gap, re-read everything
  // shown.
  window.BatonLive.connect(function (msg) {
    if (msg.type === "change") {
      refreshList();
      if (String(msg.conversation) === currentConversation()) {
        var shown = parseInt(consoleEl.getAttribute("data-seq") || "0", 10);
        if (!msg.seq || msg.seq > shown) refreshConversation();
      }
    } else if (msg.type === "resync") {
      refreshList();
      refreshConversation();
    }
  }, function () { refreshList(); refreshConversation(); });

  // Presence: while a conversation is open and the tab visible, tell the
  // server every 15 s, so other agents see "Ana is viewing".
  function beat() {
    var id = currentConversation();
    if (!id || document.visibilityState !== "visible") return;
    fetch("/conversations/" + id + "/viewing", {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "X-Requested-With": "fetch" }
    }).catch(function () {});
  }
  beat();
  setInterval(beat, 15000);
  document.addEventListener("visibilitychange", beat);

  // ---- forms ------------------------------------------------------------

  function post(url, form) {
    var body = new URLSearchParams(new FormData(form));
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "X-Requested-With": "fetch", "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString()
    }).then(function (r) {
      return r.json().catch(function () { return { ok: r.ok, error: "Unexpected answer (" + r.status + ")." }; });
    });
  }

  function showError(form, text) {
    var box = form.querySelector(".form-error");
    if (!box) {
      box = document.createElement("p");
      box.className = "form-error";
      box.setAttribute("role", "alert");
      form.appendChild(box);
    }
    box.textContent = text;
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.matches("[data-async], [data-composer]")) return;
    ev.preventDefault();
    var button = form.querySelector("[type=submit]");
    if (button) button.disabled = true;
    post(form.getAttribute("action"), form).then(function (res) {
      if (button) button.disabled = false;
      if (!res.ok) { showError(form, res.error || "That did not work."); return; }
      var err = form.querySelector(".form-error");
      if (err) err.remove();
      if (form.matches("[data-composer]")) {
        form.reset();
        hidePicker(form);
        var ta = form.querySelector("textarea");
        if (ta) ta.focus();
      }
      if (form.matches("[data-reset]")) form.reset();
      var dialog = form.closest("dialog");
      if (dialog) dialog.close();
      refreshConversation();
      refreshList();
      setTimeout(scrollToBottom, 150);
    }).catch(function () {
      if (button) button.disabled = false;
      showError(form, "Baton is unreachable; your text is still here. Try again.");
    });
  });

  // Enter sends, Shift+Enter adds a line; typing shows the person a
  // typing indicator, at most every 5 seconds.
  var lastTyping = 0;
  document.addEventListener("keydown", function (ev) {
    var ta = ev.target;
    if (!ta.matches || !ta.matches("[data-composer] textarea")) return;
    var picker = pickerOf(ta.form);
    if (picker && !picker.hidden) {
      // Enter takes the first canned reply shown; Escape closes the picker.
      if (ev.key === "Enter") {
        var first = Array.prototype.find.call(picker.querySelectorAll("li"), function (li) { return !li.hidden; });
        if (first) { ev.preventDefault(); insertCanned(first.querySelector("button")); return; }
      } else if (ev.key === "Escape") {
        picker.hidden = true;
        return;
      }
    }
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      ta.form.requestSubmit();
    }
  });
  document.addEventListener("input", function (ev) {
    var t = ev.target;
    if (t.matches && t.matches("[data-composer] textarea") && t.value.trim() !== "") {
      var now = Date.now();
      if (now - lastTyping > 5000) {
        lastTyping = now;
        var id = currentConversation();
        if (id) fetch("/conversations/" + id + "/typing", {
          method: "POST", credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf, "X-Requested-With": "fetch" }
        }).catch(function () {});
      }
    }
    var done = t.closest && t.closest("form[data-done]");
    if (done) schedulePreview(done);
  });
  document.addEventListener("change", function (ev) {
    var done = ev.target.closest && ev.target.closest("form[data-done]");
    if (done) schedulePreview(done);
    var auto = ev.target.closest && ev.target.closest("form[data-autosubmit]");
    if (auto) auto.requestSubmit();
    // Sort and tag filter live in the URL, so a reload or a shared link
    // shows the same list.
    var tools = ev.target.closest && ev.target.closest("form[data-list-tools]");
    if (tools) {
      var u = new URL(location.href);
      new FormData(tools).forEach(function (v, k) {
        if (v && !(k === "sort" && v === "newest")) u.searchParams.set(k, v); else u.searchParams.delete(k);
      });
      location.assign(u.pathname + u.search);
    }
  });

  // ---- canned replies: "/" in the composer opens the picker --------------

  function pickerOf(form) { return form && form.querySelector("[data-canned]"); }

  function hidePicker(form) {
    var p = pickerOf(form);
    if (p) p.hidden = true;
  }

  function updatePicker(ta) {
    var p = pickerOf(ta.form);
    if (!p) return;
    var m = /^\/(\S*)$/.exec(ta.value);
    if (!m) { p.hidden = true; return; }
    var word = m[1].toLowerCase(), shown = 0;
    p.querySelectorAll("[data-canned-shortcut]").forEach(function (b) {
      var ok = b.getAttribute("data-canned-shortcut").toLowerCase().indexOf(word) === 0;
      b.parentNode.hidden = !ok;
      if (ok) shown++;
    });
    p.hidden = shown === 0;
  }

  // picked: the Enter that chose a canned reply must not also add a line
  // (its character may arrive after the keydown was handled).
  var picked = false;
  function insertCanned(button) {
    var form = button.closest("form");
    var ta = form.querySelector("textarea");
    ta.value = button.getAttribute("data-canned-text");
    hidePicker(form);
    ta.focus();
    picked = true;
  }
  document.addEventListener("beforeinput", function (ev) {
    if (picked && (ev.inputType === "insertLineBreak" || ev.inputType === "insertParagraph")) ev.preventDefault();
  });
  document.addEventListener("keyup", function () { picked = false; });

  document.addEventListener("input", function (ev) {
    if (ev.target.matches && ev.target.matches("[data-composer] textarea")) updatePicker(ev.target);
  });
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("[data-canned-shortcut]");
    if (b) insertCanned(b);
  });

  // The Done preview shows exactly what the bot will receive.
  var previewTimer = null;
  function schedulePreview(form) {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(function () {
      post(form.getAttribute("action") + "/preview", form).then(function (res) {
        var pre = form.querySelector("[data-testid=done-preview]");
        if (pre && res.ok) pre.textContent = res.metadata;
      });
    }, 200);
  }

  // Dialogs for Done and Request control.
  document.addEventListener("click", function (ev) {
    var opener = ev.target.closest && ev.target.closest("[data-open]");
    if (opener) {
      var d = document.getElementById(opener.getAttribute("data-open"));
      if (d && d.showModal) d.showModal();
      return;
    }
    var closer = ev.target.closest && ev.target.closest("[data-close]");
    if (closer) {
      var dlg = closer.closest("dialog");
      if (dlg) dlg.close();
      return;
    }
    var older = ev.target.closest && ev.target.closest("a[data-older]");
    if (older) {
      ev.preventDefault();
      fetch(older.getAttribute("href"), { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          var doc = parse(html);
          var list = document.querySelector("#thread .messages");
          var items = doc.querySelectorAll(".messages > li");
          for (var i = items.length - 1; i >= 0; i--) list.insertBefore(document.importNode(items[i], true), list.firstChild);
          var next = doc.querySelector("a[data-older]");
          if (next) older.setAttribute("href", next.getAttribute("href"));
          else older.parentNode.remove();
        });
    }
  });

  // On a phone the thread needs the room: the bot's reason starts folded.
  function foldReason(mq) {
    var reason = document.getElementById("handover-reason");
    if (mq.matches && reason) reason.open = false;
  }
  if (window.matchMedia) {
    var phone = window.matchMedia("(max-width: 760px)");
    foldReason(phone);
    if (phone.addEventListener) phone.addEventListener("change", foldReason);
  }

  // A colleague @mentioned the viewer: the Mentions tab's count went up
  // on a live re-render. Say so where it is seen and heard (a polite live
  // region, so screen readers announce it) with a link to the notes, and
  // keep the number in the window's title until the mentions are read.
  var mentions = null, baseTitle = document.title;
  function noticeMentions() {
    var tab = document.querySelector('[data-testid="count-mentions"]');
    var n = tab ? parseInt(tab.getAttribute("data-count"), 10) || 0 : 0;
    if (mentions !== null && n > mentions) {
      toast(n === 1 ? "A colleague mentioned you in a note." : "You have " + n + " unread mentions.", "/?folder=mentions", "Show");
    }
    mentions = n;
    document.title = (n > 0 ? "(" + n + ") " : "") + baseTitle;
  }

  var toastTimer = null;
  function toast(text, href, linkText) {
    var box = document.getElementById("toast");
    if (!box) {
      box = document.createElement("div");
      box.id = "toast";
      box.className = "toast";
      box.setAttribute("role", "status");
      box.setAttribute("data-testid", "mention-toast");
      document.body.appendChild(box);
    }
    box.textContent = text + " ";
    var a = document.createElement("a");
    a.href = href;
    a.textContent = linkText;
    box.appendChild(a);
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "\u00d7";
    close.addEventListener("click", function () { box.hidden = true; });
    box.appendChild(close);
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.hidden = true; }, 10000);
  }

  noticeMentions();
  scrollToBottom();
})();

// Baton live updates: the one websocket loop every page shares. It
// connects to /ws, reconnects with jittered backoff, marks the page
// offline while the socket is down, and after any gap tells the page to
// re-read what it shows (nothing missed, nothing doubled). Pages pass what
// to do with each message and after a reconnect.
(function () {
  "use strict";

  window.BatonLive = {
    connect: function (onMessage, onReconnect) {
      var backoff = 500, everOpen = false;
      function connect() {
        var proto = location.protocol === "https:" ? "wss://" : "ws://";
        var ws;
        try { ws = new WebSocket(proto + location.host + "/ws"); } catch (e) { retry(); return; }
        ws.onopen = function () {
          backoff = 500;
          document.documentElement.removeAttribute("data-offline");
          if (everOpen) onReconnect();
          everOpen = true;
        };
        ws.onmessage = function (ev) {
          var msg;
          try { msg = JSON.parse(ev.data); } catch (e) { return; }
          onMessage(msg);
        };
        ws.onclose = function () {
          document.documentElement.setAttribute("data-offline", "");
          retry();
        };
      }
      function retry() {
        var wait = backoff + Math.random() * backoff;
        backoff = Math.min(backoff * 2, 10000);
        setTimeout(connect, wait);
      }
      connect();
    }
  };
})();

// The console's shared behaviour: CSRF on htmx and fetch, polling helpers, keyboard shortcuts.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // Every htmx request carries the session's CSRF token (the server refuses it otherwise).
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
  });

  // A JSON request of the page itself (polls and small actions).
  window.consoleFetch = function (url, options) {
    options = options || {};
    var headers = Object.assign({ Accept: "application/json", "X-CSRFToken": csrfToken() },
                                options.headers || {});
    return fetch(url, Object.assign({}, options, { headers: headers, credentials: "same-origin" }))
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); }
        return response;
      });
  };

  // Poll `url` every `interval` ms until `onState` returns true (done) or the page goes away.
  window.consolePoll = function (url, interval, onState) {
    function tick() {
      consoleFetch(url, { headers: { "X-Console-Poll": "1" } })
        .then(function (response) { return response.json(); })
        .then(function (body) { if (!onState(body)) { setTimeout(tick, interval); } })
        .catch(function () { setTimeout(tick, interval * 2); });
    }
    setTimeout(tick, interval);
  };

  function setState(root, text) {
    var state = root.querySelector("[data-scan-state]");
    if (state) { state.textContent = text; }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var scan = document.querySelector("[data-scan-poll]");
    if (scan) {
      consolePoll(scan.dataset.scanPoll, 1500, function (body) {
        if (body.status === "logged_in") { window.location.assign(body.redirect); return true; }
        if (body.status === "expired" || body.status === "consumed") {
          setState(scan, "二维码已失效。");
          scan.querySelector("[data-scan-refresh]").hidden = false;
          return true;
        }
        return false;
      });
    }
    var link = document.querySelector("[data-link-poll]");
    if (link) {
      consolePoll(link.dataset.linkPoll, 1500, function (body) {
        if (body.status === "confirmed") { window.location.reload(); return true; }
        if (body.status === "expired") { setState(link, "二维码已过期，请刷新页面。"); return true; }
        return false;
      });
    }
  });

  // Keyboard shortcuts: an element with data-shortcut="F2" is clicked when F2 is pressed,
  // unless the person is typing in a field (the scanner field included).
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" ||
                            target.tagName === "SELECT" || target.isContentEditable);
    if (typing && !/^F\d+$/.test(event.key)) { return; }
    var button = document.querySelector('[data-shortcut="' + event.key + '"]');
    if (button && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });
})();

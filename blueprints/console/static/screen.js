// The hall TV: the board, live calls over Server-Sent Events (EventSource reconnects by itself),
// each call spoken in Chinese, or a chime where the browser has no Chinese voice.
(function () {
  "use strict";

  var body = document.body;
  var lastAnnounced = null;

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function renderBoard(board) {
    var calls = document.querySelector("[data-calls]");
    calls.replaceChildren();
    board.recent_calls.forEach(function (call) {
      var row = document.createElement("tr");
      row.dataset.call = call.display;
      cell(row, call.display);
      cell(row, call.window_name);
      calls.appendChild(row);
    });
    if (board.recent_calls.length && !document.querySelector("[data-latest]").textContent) {
      document.querySelector("[data-latest]").textContent = board.recent_calls[0].text;
    }
    var waiting = document.querySelector("[data-waiting]");
    waiting.replaceChildren();
    board.categories.forEach(function (category) {
      var row = document.createElement("tr");
      cell(row, category.name);
      cell(row, String(category.waiting)).className = "num";
      waiting.appendChild(row);
    });
  }

  function loadBoard() {
    return fetch(body.dataset.board, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(renderBoard)
      .catch(function () { /* the next event or reconnect loads it again */ });
  }

  function chime() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return; }
    var context = new Context();
    [880, 660].forEach(function (frequency, index) {
      var oscillator = context.createOscillator();
      var gain = context.createGain();
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.2, context.currentTime + index * 0.35);
      gain.gain.exponentialRampToValueAtTime(0.001, context.currentTime + index * 0.35 + 0.3);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(context.currentTime + index * 0.35);
      oscillator.stop(context.currentTime + index * 0.35 + 0.3);
    });
  }

  var voices = [];

  function loadVoices() { voices = window.speechSynthesis.getVoices(); }

  function chineseVoice() {
    if (!("speechSynthesis" in window)) { return null; }
    if (!voices.length) { loadVoices(); }
    return voices.find(function (voice) { return /^zh/i.test(voice.lang); }) || null;
  }

  function announce(text) {
    var voice = chineseVoice();
    if (!voice) { chime(); return; }
    var utterance = new SpeechSynthesisUtterance(text);
    utterance.voice = voice;
    utterance.lang = voice.lang;
    utterance.rate = 0.9;
    window.speechSynthesis.speak(utterance);
  }

  function onCall(event) {
    var call = JSON.parse(event.data);
    var text = call.text || ("请" + call.display + "号到" + call.window_name + "办理");
    document.querySelector("[data-latest]").textContent = text;
    body.dataset.lastCall = call.display;
    if (lastAnnounced !== event.lastEventId + event.type + call.at) {
      lastAnnounced = event.lastEventId + event.type + call.at;
      announce(text);
    }
    loadBoard();
  }

  function listen() {
    var source = new EventSource(body.dataset.events);
    var offline = document.querySelector("[data-offline]");
    source.addEventListener("hello", function () { offline.hidden = true; loadBoard(); });
    source.addEventListener("call", onCall);
    source.addEventListener("recall", onCall);
    source.onerror = function () { offline.hidden = false; };
  }

  function refreshCode() {
    fetch(body.dataset.code, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) { window.location.reload(); }
        return response.json();
      })
      .then(function (code) {
        document.querySelector("[data-code-image]").src = code.image;
        setTimeout(refreshCode, code.next_in_seconds * 1000 + 200);
      })
      .catch(function () { setTimeout(refreshCode, 5000); });
  }

  function tick() {
    var now = new Date();
    document.querySelector("[data-clock]").textContent = now.toLocaleString("zh-CN", {
      timeZone: "Asia/Shanghai", hour12: false, month: "long", day: "numeric",
      weekday: "long", hour: "2-digit", minute: "2-digit"
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 10000);
    loadBoard();
    // Taking a number sends no event: refresh the waiting counts now and then as well.
    setInterval(loadBoard, 15000);
    refreshCode();
    listen();
    // Voices load late in Chromium: keep the list current as it arrives.
    if ("speechSynthesis" in window) {
      loadVoices();
      window.speechSynthesis.addEventListener("voiceschanged", loadVoices);
    }
  });
})();

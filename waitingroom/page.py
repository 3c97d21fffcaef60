"""The waiting page served at /rooms/{room}: one self-contained HTML document (no third-party
assets) whose script joins, polls and sends the visitor on when admitted.

The script keeps the visitor's place in localStorage (`waitingroom:ticket:{room}`: the ticket,
the Idempotency-Key it was joined with and the first position seen), so a reload or a second tab
polls with the same ticket instead of joining again. Every URL it calls is relative to the page's
own path, so the page works behind any prefix (an API Gateway stage, a CDN path).
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

# routes for the page's own files (none yet)
router = APIRouter()

_ROOM = "__WAITINGROOM_ROOM__"

_CSS = """
:root {
  color-scheme: light dark;
  --bg: #f4f5f7; --card: #ffffff; --text: #17191c; --muted: #4a5058; --line: #d5d9df;
  --accent: #1d4ed8; --accent-text: #ffffff; --track: #e3e7ee; --warn-bg: #fff4d6;
  --warn-text: #5c3d00; --ok: #116329;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1318; --card: #181d24; --text: #eef1f5; --muted: #b4bcc6; --line: #323a45;
    --accent: #8ab4ff; --accent-text: #0b1220; --track: #2a323d; --warn-bg: #3a2e0d;
    --warn-text: #ffe29a; --ok: #7ee2a0;
  }
}
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body {
  margin: 0; min-height: 100vh; background: var(--bg); color: var(--text);
  font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    sans-serif;
  display: flex; align-items: flex-start; justify-content: center;
  padding: clamp(1rem, 5vw, 3rem) 1rem;
}
main {
  width: 100%; max-width: 34rem; background: var(--card); border: 1px solid var(--line);
  border-radius: 1rem; padding: clamp(1.25rem, 5vw, 2.25rem);
  box-shadow: 0 1px 3px rgb(0 0 0 / 8%);
}
.eyebrow {
  margin: 0 0 .25rem; color: var(--muted); font-size: .875rem; font-weight: 600;
  letter-spacing: .04em; text-transform: uppercase; overflow-wrap: anywhere;
}
h1 { margin: 0 0 1rem; font-size: clamp(1.5rem, 6vw, 2rem); line-height: 1.2; }
h1:focus { outline: none; }
h2 {
  margin: 1.5rem 0 .5rem; font-size: 1rem; color: var(--muted); font-weight: 600;
}
p { margin: 0 0 1rem; }
.position {
  display: flex; align-items: baseline; gap: .5rem; flex-wrap: wrap; margin: 0 0 1.25rem;
}
.position-number {
  font-size: clamp(3rem, 16vw, 4.5rem); font-weight: 800; line-height: 1;
  font-variant-numeric: tabular-nums; color: var(--accent);
}
.position-label { font-size: 1.125rem; color: var(--muted); }
.bar {
  height: .875rem; border-radius: 999px; background: var(--track); overflow: hidden;
  margin: 0 0 .5rem; border: 1px solid var(--line);
}
.bar-fill {
  height: 100%; width: 0; background: var(--accent); border-radius: 999px;
  transition: width .8s ease;
}
.bar-caption { font-size: .875rem; color: var(--muted); margin: 0 0 1.25rem; }
.facts {
  display: grid; grid-template-columns: repeat(auto-fit, minmax(9.5rem, 1fr)); gap: .75rem;
  margin: 0 0 1.25rem;
}
.facts div { border: 1px solid var(--line); border-radius: .75rem; padding: .75rem 1rem; }
.facts dt { font-size: .875rem; color: var(--muted); }
.facts dd { margin: 0; font-size: 1.125rem; font-weight: 700; overflow-wrap: anywhere; }
.note {
  margin: 0 0 1rem; padding: .75rem 1rem; border-radius: .75rem; background: var(--warn-bg);
  color: var(--warn-text); font-weight: 600;
}
.note:empty { padding: 0; margin: 0; }
.meta { font-size: .875rem; color: var(--muted); margin: 0 0 1rem; }
.meta:empty { margin: 0; }
body:not([data-state="waiting"]) #updated-line { display: none; }
.live-dot {
  display: inline-block; width: .5rem; height: .5rem; border-radius: 50%;
  background: var(--ok); margin-right: .4rem; vertical-align: middle;
  animation: pulse 2s ease-in-out infinite;
}
@keyframes pulse { 50% { opacity: .3; } }
.ok { color: var(--ok); }
button, .button {
  display: inline-block; font: inherit; font-weight: 700; color: var(--accent-text);
  background: var(--accent); border: 0; border-radius: .75rem; padding: .75rem 1.25rem;
  min-height: 2.75rem; cursor: pointer; text-decoration: none;
}
button:focus-visible, .button:focus-visible, a:focus-visible {
  outline: 3px solid var(--accent); outline-offset: 3px;
}
a { color: var(--accent); }
[hidden] { display: none !important; }
.visually-hidden {
  position: absolute !important; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap;
}
@media (prefers-reduced-motion: reduce) {
  *, *::before, *::after {
    animation: none !important; transition: none !important; scroll-behavior: auto !important;
  }
}
"""

_JS = r"""
(function () {
  "use strict";
  var ROOM = document.body.getAttribute("data-room") || "";
  var BASE = location.pathname.replace(/\/+$/, "");
  var KEY = "waitingroom:ticket:" + ROOM;
  var REDIRECT_KEY = "waitingroom:redirected:" + ROOM;
  var MAX_BACKOFF = 30;
  var REQUEST_TIMEOUT_MS = 10000;
  var ANNOUNCE_EVERY_MS = 15000;

  var timer = null;
  var busy = false;
  var failures = 0;
  var rejoined = false;
  var view = "joining";
  var lastAnnounced = "";
  var lastAnnouncedAt = 0;
  var memory = {};

  function el(id) { return document.getElementById(id); }

  // -- the stored place (localStorage, or memory when storage is blocked) ------------------
  function storage(kind) {
    try { var s = window[kind]; s.getItem(KEY); return s; } catch (e) { return null; }
  }
  function load() {
    var raw = null;
    var s = storage("localStorage");
    try { raw = s ? s.getItem(KEY) : memory[KEY]; } catch (e) { raw = memory[KEY]; }
    if (!raw) { return {}; }
    try {
      var rec = JSON.parse(raw);
      return rec && typeof rec === "object" ? rec : {};
    } catch (e) { return {}; }
  }
  function save(rec) {
    var raw = JSON.stringify(rec);
    memory[KEY] = raw;
    var s = storage("localStorage");
    try { if (s) { s.setItem(KEY, raw); } } catch (e) { /* full or blocked: memory only */ }
  }
  function forget() {
    delete memory[KEY];
    var s = storage("localStorage");
    try { if (s) { s.removeItem(KEY); } } catch (e) { /* nothing stored */ }
  }
  function newKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    var out = "";
    for (var i = 0; i < bytes.length; i++) { out += (bytes[i] + 256).toString(16).slice(1); }
    return "wr-" + out;
  }

  // -- rendering ---------------------------------------------------------------------------
  function show(name) {
    view = name;
    document.body.setAttribute("data-state", name);
    var views = document.querySelectorAll("[data-view]");
    var shown = null;
    for (var i = 0; i < views.length; i++) {
      var on = views[i].getAttribute("data-view") === name;
      views[i].hidden = !on;
      if (on) { shown = views[i]; }
    }
    return shown;
  }
  function focusHeading(section) {
    var h = section && section.querySelector("h1");
    if (h) { h.focus(); }
  }
  function setText(id, text) {
    var node = el(id);
    if (node && node.textContent !== text) { node.textContent = text; }
  }
  function announce(text, force) {
    var now = Date.now();
    if (text === lastAnnounced) { return; }
    if (!force && now - lastAnnouncedAt < ANNOUNCE_EVERY_MS) { return; }
    lastAnnounced = text;
    lastAnnouncedAt = now;
    setText("status", text);
  }
  function note(text) { setText("note", text); }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function clock(d) {
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function touched() {
    var now = new Date();
    var t = el("updated");
    t.setAttribute("datetime", now.toISOString());
    t.textContent = clock(now);
  }
  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }
  function span(minutes) {
    if (minutes >= 90) { return plural(Math.round(minutes / 60), "hour", "hours"); }
    return plural(minutes, "minute", "minutes");
  }
  function etaText(eta, exact) {
    if (eta === null || eta === undefined) { return "not known yet"; }
    if (eta <= 0) { return "any moment now"; }
    if (exact) {
      if (eta < 60) { return "less than a minute"; }
      return "about " + span(Math.round(eta / 60));
    }
    var low = Math.floor((eta * 0.7) / 60);
    var high = Math.max(1, Math.ceil((eta * 1.5) / 60));
    if (high <= 1) { return "about a minute or less"; }
    if (low < 1) { return "up to " + span(high); }
    if (high >= 90) {
      var lh = Math.max(1, Math.round(low / 60)), hh = Math.max(lh + 1, Math.round(high / 60));
      return "about " + lh + "\u2013" + hh + " hours";
    }
    return "about " + low + "\u2013" + high + " minutes";
  }

  function renderWaiting(body) {
    var pos = Math.max(0, Math.floor(Number(body.position) || 0));
    var exact = body.position_is_exact !== false;
    var rec = load();
    // the bar measures from the first exact place (an early estimate may be off either way)
    var reset = exact ? !rec.first_exact || pos > rec.first : !rec.first_exact;
    if (typeof rec.first !== "number") { reset = true; }
    if (reset && (rec.first !== pos || rec.first_exact !== exact)) {
      rec.first = pos;
      rec.first_exact = exact;
      save(rec);
    }
    var first = rec.first;
    var section = show("waiting");
    section.setAttribute("data-exact", exact ? "true" : "false");
    var posNode = el("position");
    posNode.setAttribute("data-position", String(pos));
    posNode.setAttribute("data-exact", exact ? "true" : "false");
    if (pos === 0) {
      setText("position", "0");
      setText("position-label", "It's your turn \u2014 letting you in\u2026");
      setText("ahead", "nobody");
      setText("eta", "any moment now");
    } else {
      setText("position", (exact ? "" : "~") + pos);
      setText("position-label", exact ? "your place in line" : "your place in line (estimate)");
      var ahead = pos - 1;
      setText(
        "ahead",
        ahead === 0
          ? (exact ? "nobody \u2014 you're next" : "probably nobody")
          : (exact ? "" : "about ") + ahead
      );
      setText("eta", etaText(body.eta_seconds, exact));
    }
    if (body.opens_at) {
      // a scheduled room: everyone who joins before opening is drawn into a random order
      var opens = new Date(Number(body.opens_at) * 1000);
      setText("position-label", "people in the pre-queue so far");
      setText("ahead", "drawn at random when the room opens");
      setText("eta", "opens at " + opens.toLocaleTimeString());
    }
    var pct = first > 0 ? Math.round((100 * (first - pos)) / first) : 100;
    pct = Math.max(0, Math.min(100, pct));
    var bar = el("progress");
    bar.setAttribute("aria-valuenow", String(pct));
    bar.setAttribute(
      "aria-valuetext",
      pct + "% of the way: from place " + first + " to place " + pos
    );
    el("progress-fill").style.width = pct + "%";
    setText("progress-caption", pct + "% of the way from where you started (place " + first + ")");
    document.title = (pos > 0 ? "(" + (exact ? "" : "~") + pos + ") " : "") + TITLE;
    var summary = pos === 0
      ? "It's your turn. Letting you in."
      : "You are " + (exact ? "" : "about ") + "number " + pos + " in line. Estimated wait: " +
        etaText(body.eta_seconds, exact) + ".";
    announce(summary, lastAnnounced === "" || pos <= 1);
    touched();
  }

  function safeUrl(raw) {
    if (!raw) { return null; }
    try {
      var u = new URL(String(raw), location.href);
      return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
    } catch (e) { return null; }
  }

  function arrive(body) {
    var url = safeUrl(body.origin_url);
    var expires = new Date(Number(body.expires_at) * 1000);
    var until = el("expires");
    until.setAttribute("datetime", isNaN(expires.getTime()) ? "" : expires.toISOString());
    until.textContent = isNaN(expires.getTime()) ? "for a while" : clock(expires);
    var go = el("go");
    var recent = false;
    var s = storage("sessionStorage");
    try {
      var last = s ? Number(s.getItem(REDIRECT_KEY) || 0) : 0;
      recent = Date.now() - last < 15000;  // sent back here at once: do not loop, offer a link
      if (s && url && !recent) { s.setItem(REDIRECT_KEY, String(Date.now())); }
    } catch (e) { recent = false; }
    if (url) { go.href = url; go.hidden = false; } else { go.hidden = true; }
    var section = show("admitted");
    document.title = "You're in \u00b7 " + TITLE;
    announce(url && !recent ? "You're in. Taking you there now." : "You're in.", true);
    touched();
    if (url && !recent) {
      setText("admitted-text", "Taking you there now\u2026");
      location.replace(url);
    } else {
      setText("admitted-text", url ? "Continue when you are ready." : "You have been admitted.");
      focusHeading(section);
    }
  }

  function ended(code, message) {
    stop();
    var section = show("ended");
    setText(
      "ended-text",
      code === "completed"
        ? "Your visit is complete. Thanks for waiting!"
        : "Your place has expired: your turn came and went, or your session has ended."
    );
    setText("ended-detail", message || "");
    document.title = "Place ended \u00b7 " + TITLE;
    announce("Your place has ended. You can join the line again.", true);
    focusHeading(section);
  }

  function closed(message) {
    stop();
    var section = show("closed");
    setText("closed-detail", message || "");
    document.title = "Closed \u00b7 " + TITLE;
    announce("This room is closed.", true);
    focusHeading(section);
  }

  function problem(message) {
    stop();
    var section = show("problem");
    setText("problem-text", message || "Something went wrong.");
    announce("Something went wrong: " + (message || ""), true);
    focusHeading(section);
  }

  // -- network -----------------------------------------------------------------------------
  function stop() { if (timer !== null) { clearTimeout(timer); timer = null; } }
  function later(fn, seconds) {
    stop();
    timer = setTimeout(function () { timer = null; fn(); }, Math.max(0.25, seconds) * 1000);
  }
  function jitter(seconds) { return seconds * (0.8 + Math.random() * 0.4); }
  function retryAfter(res) {
    var h = res && res.headers.get("Retry-After");
    if (!h) { return 0; }
    var n = Number(h);
    if (!isNaN(n)) { return Math.max(0, n); }
    var at = Date.parse(h);
    return isNaN(at) ? 0 : Math.max(0, (at - Date.now()) / 1000);
  }
  function backoff(fn, res) {
    failures += 1;
    var wait = Math.min(MAX_BACKOFF, Math.pow(2, failures - 1));
    wait = Math.max(jitter(wait), retryAfter(res));
    note("Reconnecting\u2026 your place in line is kept.");
    document.body.setAttribute("data-connection", "reconnecting");
    later(fn, wait);
  }
  function recovered() {
    failures = 0;
    note("");
    document.body.setAttribute("data-connection", "ok");
  }
  function request(path, options) {
    var ctrl = typeof AbortController === "function" ? new AbortController() : null;
    var t = ctrl ? setTimeout(function () { ctrl.abort(); }, REQUEST_TIMEOUT_MS) : null;
    options.cache = "no-store";
    options.credentials = "same-origin";
    if (ctrl) { options.signal = ctrl.signal; }
    return fetch(BASE + path, options).then(function (res) {
      return res.text().then(function (text) {
        if (t) { clearTimeout(t); }
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        return { res: res, body: body || {} };
      });
    }, function (err) { if (t) { clearTimeout(t); } throw err; });
  }
  function transient(status) { return status >= 500 || status === 429 || status === 408; }

  // A room may ask for a proof of work before it hands out a place: find a counter such that
  // sha256(challenge + ":" + counter) starts with the asked number of zero bits. The solved
  // challenge is kept for retries of the same join (the server answers with the same ticket).
  var pow = null;
  var powTries = 0;
  var POW_CODES = ["challenge_required", "challenge_expired", "bad_challenge", "wrong_solution"];
  function zeroBits(buffer) {
    var bytes = new Uint8Array(buffer);
    var n = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) { n += 8; continue; }
      var b = bytes[i];
      while ((b & 0x80) === 0) { n++; b = b << 1; }
      break;
    }
    return n;
  }
  function solve(challenge, bits) {
    var encoder = new TextEncoder();
    var counter = 0;
    return new Promise(function (resolve, reject) {
      function slice() {  // hash for ~50 ms, then yield to the event loop (the page stays live)
        var until = Date.now() + 50;
        (function step() {
          crypto.subtle.digest("SHA-256", encoder.encode(challenge + ":" + counter))
            .then(function (digest) {
              if (zeroBits(digest) >= bits) { resolve(String(counter)); return; }
              counter++;
              if (Date.now() < until) { step(); } else { setTimeout(slice, 0); }
            }, reject);
        })();
      }
      slice();
    });
  }
  function proveThenJoin() {
    if (!(window.crypto && crypto.subtle && window.TextEncoder)) {
      problem("This waiting room needs a secure (https) connection to let this browser in.");
      return;
    }
    busy = true;
    request("/challenge", { method: "GET", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.res.status !== 200) {
          busy = false;
          if (transient(r.res.status)) { backoff(join, r.res); } else {
            problem(r.body.message || "The waiting room could not start (" + r.res.status + ").");
          }
          return;
        }
        return solve(r.body.challenge, Number(r.body.difficulty_bits) || 0)
          .then(function (solution) {
            busy = false;
            pow = { challenge: r.body.challenge, solution: solution };
            join();
          });
      }).then(null, function () {
        busy = false;
        backoff(join, null);
      });
  }

  function join() {
    var rec = load();
    if (rec.ticket) { poll(); return; }  // another tab joined meanwhile
    if (!rec.idem) { rec.idem = newKey(); save(rec); }
    if (busy) { return; }
    busy = true;
    if (view === "joining" || view === "ended") { show("joining"); }
    var headers = { "Accept": "application/json", "Idempotency-Key": rec.idem };
    if (pow) {
      headers["X-Challenge"] = pow.challenge;
      headers["X-Challenge-Solution"] = pow.solution;
    }
    request("/join", {
      method: "POST",
      headers: headers
    }).then(function (r) {
      busy = false;
      var st = r.res.status;
      if ((st === 400 || st === 401) && POW_CODES.indexOf(r.body.error) >= 0 && powTries < 3) {
        powTries++;
        pow = null;
        proveThenJoin();
      } else if (st === 200 || st === 201) {
        pow = null;
        powTries = 0;
        recovered();
        var now = load();
        if (now.idem !== rec.idem && now.ticket) { poll(); return; }
        now.idem = rec.idem;
        now.ticket = r.body.ticket;
        now.number = r.body.number;
        now.joined_at = Date.now();
        delete now.first;
        delete now.first_exact;
        save(now);
        renderWaiting(r.body);
        later(poll, jitter(Number(r.body.poll_after_seconds) || 2));
      } else if (st === 409 && r.body.error === "room_closed") {
        closed(r.body.message);
      } else if (st === 404) {
        problem("There is no waiting room here. Check the address.");
      } else if (transient(st)) {
        backoff(join, r.res);
      } else {
        problem(r.body.message || "The waiting room refused to add you (" + st + ").");
      }
    }, function () {
      busy = false;
      backoff(join, null);
    });
  }

  function poll() {
    var rec = load();
    if (!rec.ticket) { join(); return; }
    if (busy) { return; }
    busy = true;
    // send back the state version we were last answered from: another server never answers
    // from an older one, so the place shown never goes back up
    request("/status" + (rec.v ? "?v=" + rec.v : ""), {
      method: "GET",
      headers: { "Accept": "application/json", "Authorization": "Bearer " + rec.ticket }
    }).then(function (r) {
      busy = false;
      var st = r.res.status;
      var code = r.body.error;
      if (st === 200 && r.body.state === "admitted") {
        recovered();
        stop();
        arrive(r.body);
      } else if (st === 200) {
        recovered();
        if (Number(r.body.state_version) > (Number(load().v) || 0)) {
          var kept = load();
          kept.v = Number(r.body.state_version);
          save(kept);
        }
        renderWaiting(r.body);
        later(poll, jitter(Number(r.body.poll_after_seconds) || 2));
      } else if (st === 410 && code === "room_closed") {
        recovered();
        closed(r.body.message);
      } else if (st === 410) {
        recovered();
        ended(code, r.body.message);
      } else if (st === 401 && !rejoined) {
        rejoined = true;  // a ticket this room no longer accepts: take a new place, once
        forget();
        join();
      } else if (st === 409 && code === "room_closed") {
        closed(r.body.message);
      } else if (st === 404) {
        problem("There is no waiting room here. Check the address.");
      } else if (transient(st)) {
        backoff(poll, r.res);
      } else {
        problem(r.body.message || "The waiting room could not check your place (" + st + ").");
      }
    }, function () {
      busy = false;
      backoff(poll, null);
    });
  }

  var TITLE = document.title;
  el("rejoin").addEventListener("click", function () {
    forget();
    rejoined = false;
    lastAnnounced = "";
    show("joining");
    join();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && view === "waiting" && failures === 0) {
      poll();
    }
  });
  window.addEventListener("storage", function (e) {
    // another tab took a new place after this one ended: follow it
    if (e.key === KEY && (view === "ended" || view === "problem") && load().ticket) {
      rejoined = false;
      poll();
    }
  });
  window.addEventListener("online", function () { if (failures > 0) { poll(); } });
  poll();
})();
"""

_TEMPLATE = (
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="robots" content="noindex">
<link rel="icon" href="data:,">
<title>Waiting room · """
    + _ROOM
    + """</title>
<style>"""
    + _CSS
    + """</style>
</head>
<body data-room=\""""
    + _ROOM
    + """\" data-state="joining">
<main>
  <p class="eyebrow">Waiting room · <span id="room">"""
    + _ROOM
    + """</span></p>

  <section data-view="joining" aria-labelledby="h-joining">
    <h1 id="h-joining" tabindex="-1">Getting your place in line…</h1>
    <p>This takes a moment. Keep this page open.</p>
  </section>

  <section data-view="waiting" aria-labelledby="h-waiting" hidden>
    <h1 id="h-waiting" tabindex="-1">You're in line</h1>
    <p class="position">
      <span class="position-number" id="position">&ndash;</span>
      <span class="position-label" id="position-label">your place in line</span>
    </p>
    <div class="bar" id="progress" role="progressbar" aria-label="Progress through the line"
      aria-valuemin="0" aria-valuemax="100" aria-valuenow="0">
      <div class="bar-fill" id="progress-fill"></div>
    </div>
    <p class="bar-caption" id="progress-caption"></p>
    <h2 class="visually-hidden">Details</h2>
    <dl class="facts">
      <div><dt>People ahead of you</dt><dd id="ahead">&ndash;</dd></div>
      <div><dt>Estimated wait</dt><dd id="eta">&ndash;</dd></div>
    </dl>
    <p>Keep this page open: you will be taken in automatically when it's your turn.
      Reloading or opening it in another tab keeps your place.</p>
  </section>

  <section data-view="admitted" aria-labelledby="h-admitted" hidden>
    <h1 id="h-admitted" tabindex="-1" class="ok">You're in</h1>
    <p id="admitted-text">You have been admitted.</p>
    <p>Your admission is valid until <time id="expires"></time>.</p>
    <p><a class="button" id="go" href="#" hidden>Continue</a></p>
  </section>

  <section data-view="ended" aria-labelledby="h-ended" hidden>
    <h1 id="h-ended" tabindex="-1">Your place has ended</h1>
    <p id="ended-text"></p>
    <p class="meta" id="ended-detail"></p>
    <p><button type="button" id="rejoin">Join again</button></p>
  </section>

  <section data-view="closed" aria-labelledby="h-closed" hidden>
    <h1 id="h-closed" tabindex="-1">This room is closed</h1>
    <p>It is not taking new people right now. Please check back later.</p>
    <p class="meta" id="closed-detail"></p>
  </section>

  <section data-view="problem" aria-labelledby="h-problem" hidden>
    <h1 id="h-problem" tabindex="-1">Something went wrong</h1>
    <p id="problem-text"></p>
    <p><a class="button" href="">Try again</a></p>
  </section>

  <p class="note" id="note" role="status"></p>
  <p class="visually-hidden" id="status" aria-live="polite" aria-atomic="true"></p>
  <p class="meta" id="updated-line"><span class="live-dot" aria-hidden="true"></span>Last updated
    <time id="updated">&ndash;</time></p>
  <noscript><p>This page needs JavaScript to keep your place in line and let you in.</p></noscript>
</main>
<script>"""
    + _JS
    + """</script>
</body>
</html>
"""
)


def render_waiting_page(room: str) -> str:
    """The page for `room`; everything it needs comes from the API's own routes.

    A pure function of `room`: it appears only HTML-escaped (text and a quoted attribute the
    script reads), never inside the script, so no name can break out of its context.
    """
    return _TEMPLATE.replace(_ROOM, html.escape(room, quote=True))


def waiting_page_response(room: str, if_none_match: str | None) -> Response:
    """The waiting page of a room the caller has checked exists."""
    return HTMLResponse(render_waiting_page(room), headers={"Cache-Control": "no-cache"})

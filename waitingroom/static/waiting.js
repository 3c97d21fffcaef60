// The waiting page's script: joins the room, then works out the visitor's place itself from its
// ticket and the room's two public documents (the state, and the ticket's settled slot), which
// the edge answers from its cache; the API is asked only to check a ticket read back from
// storage, and for the pickup when the line reaches the visitor (CLIENTS.md). Every URL it calls
// is relative to the page's own path, so the page works behind any prefix (an API Gateway stage,
// a CDN path). The decisions live in waiting-logic.mjs; the words in static/locales (through
// waiting-i18n.mjs: every text is English here and translated by `t`).
import { pickLanguage, plain, textKey, translator } from "./waiting-i18n.mjs";
import {
  POW_CODES, backoffSeconds, clock, clockSkew, delayMs, firstLookSeconds, jitter, newKey,
  newStart, newerState, nextLookSeconds, placeBody, placeOf, pollSeconds, readTicket,
  recentSlot, retryAfterSeconds, returnTarget, safeUrl, shownPlace, solve, steadyEstimate,
  ticketStore, transient, usableStorage, waitingTexts,
} from "./waiting-logic.mjs";

const QUEUE = document.getElementById("queue");
const ROOM = QUEUE.getAttribute("data-room") || "";
const BASE = location.pathname.replace(/\/+$/, "");
const REDIRECT_KEY = "waitingroom:redirected:" + ROOM;
const LANGUAGE_KEY = "waitingroom:language";
const REQUEST_TIMEOUT_MS = 10000;
const ANNOUNCE_EVERY_MS = 15000;
// the page the origin guard sent the visitor here from (checked by returnTarget on arrival)
const RETURN_TO = new URLSearchParams(location.search).get("return_to");
const DEFAULT_TITLE = QUEUE.getAttribute("data-default-title") === "1";
let TITLE = document.title;
let t = plain;  // the page's words in the visitor's language (English until its file is read)
let redraw = null;  // shows the waiting view again in a newly chosen language
let roomStatus = "open";  // from the newest state document: paused and closed are said plainly

const place = ticketStore(ROOM, function () { return window.localStorage; });
const load = place.load;
const save = place.save;
const forget = place.forget;

let timer = null;
let busy = false;
let failures = 0;
let rejoined = false;
let verified = null;  // the ticket the API has accepted during this page's life (join or status)
let slotDoc = null;  // the ticket's settled slot document, once read: it never changes
let closedAsked = false;
let view = "joining";
let lastAnnounced = "";
let lastAnnouncedAt = 0;

function el(id) { return document.getElementById(id); }

// -- rendering ----------------------------------------------------------------------------------
function show(name) {
  view = name;
  document.body.setAttribute("data-state", name);
  const views = document.querySelectorAll("[data-view]");
  let shown = null;
  for (let i = 0; i < views.length; i++) {
    const on = views[i].getAttribute("data-view") === name;
    views[i].hidden = !on;
    if (on) { shown = views[i]; }
  }
  return shown;
}
function focusHeading(section) {
  const h = section && section.querySelector("h1");
  if (h) { h.focus(); }
}
function setText(id, text) {
  const node = el(id);
  if (node && node.textContent !== text) { node.textContent = text; }
}
function announce(text, force) {
  const now = Date.now();
  if (text === lastAnnounced) { return; }
  if (!force && now - lastAnnouncedAt < ANNOUNCE_EVERY_MS) { return; }
  lastAnnounced = text;
  lastAnnouncedAt = now;
  setText("status", text);
}
function note(text) { setText("note", text); }
function touched() {
  const now = new Date();
  const t = el("updated");
  t.setAttribute("datetime", now.toISOString());
  t.textContent = clock(now);
}

function renderWaiting(answer) {
  redraw = function () { renderWaiting(answer); };
  const rec = load();
  const body = steadyEstimate(answer, rec.est && rec.est.ticket === rec.ticket ? rec.est : null);
  const at = shownPlace(body);
  if (!at.exact) {
    rec.est = { ticket: rec.ticket, pos: at.pos, eta: body.eta_seconds };
    save(rec);
  }
  const start = newStart(rec, at.pos, at.exact);
  if (start) {
    rec.first = start.first;
    rec.first_exact = start.first_exact;
    save(rec);
  }
  const texts = waitingTexts(body, rec.first, t);
  const paused = roomStatus === "paused";
  if (paused) { texts.eta = t("when the room resumes"); }
  const exact = texts.exact;
  const section = show("waiting");
  section.setAttribute("data-exact", exact ? "true" : "false");
  const posNode = el("position");
  posNode.setAttribute("data-position", String(texts.pos));
  posNode.setAttribute("data-exact", exact ? "true" : "false");
  setText("position", texts.position);
  setText("position-label", texts.label);
  setText("ahead", texts.ahead);
  setText("eta", texts.eta);
  const bar = el("progress");
  bar.setAttribute("aria-valuenow", String(texts.pct));
  bar.setAttribute("aria-valuetext", texts.valuetext);
  el("progress-fill").style.width = texts.pct + "%";
  setText("progress-caption", texts.caption);
  section.setAttribute("data-room-status", body.opens_at ? "scheduled" : roomStatus);
  setText("room-state", stateLine(body, texts, paused));
  document.title = texts.titlePrefix + TITLE;
  announce(texts.summary, lastAnnounced === "" || texts.pos <= 1);
  touched();
}

// What the room is doing, in a sentence, when the visitor should know it.
function stateLine(body, texts, paused) {
  if (paused) { return t("The room is paused: nobody is being let in for now. Your place is kept."); }
  if (body.opens_at) {
    const time = new Date(Number(body.opens_at) * 1000).toLocaleTimeString(t.lang);
    return t("The room opens at {time}. Everyone who joins before then is put in a random order at opening, so there is no need to hurry.", { time: time });
  }
  if (texts.pos === 1 && texts.exact) { return t("You are next!"); }
  return "";
}

function arrive(body) {
  const url = returnTarget(RETURN_TO, safeUrl(body.origin_url, location.href), body.return_origins);
  const expires = new Date(Number(body.expires_at) * 1000);
  const until = el("expires");
  until.setAttribute("datetime", isNaN(expires.getTime()) ? "" : expires.toISOString());
  until.textContent = isNaN(expires.getTime()) ? t("for a while") : clock(expires);
  const go = el("go");
  let recent = false;
  const s = usableStorage(function () { return window.sessionStorage; }, REDIRECT_KEY);
  try {
    const last = s ? Number(s.getItem(REDIRECT_KEY) || 0) : 0;
    recent = Date.now() - last < 15000;  // sent back here at once: do not loop, offer a link
    if (s && url && !recent) { s.setItem(REDIRECT_KEY, String(Date.now())); }
  } catch (e) { recent = false; }
  if (url) { go.href = url; go.hidden = false; } else { go.hidden = true; }
  const section = show("admitted");
  document.title = t("You're in \u00b7 {title}", { title: TITLE });
  announce(url && !recent ? t("You're in. Taking you there now.") : t("You're in."), true);
  touched();
  if (url && !recent) {
    setText("admitted-text", t("Taking you there now\u2026"));
    location.replace(url);
  } else {
    setText("admitted-text",
      url ? t("Continue when you are ready.") : t("You have been admitted."));
    focusHeading(section);
  }
}

function ended(code, message) {
  stop();
  const section = show("ended");
  setText(
    "ended-text",
    code === "completed"
      ? t("Your visit is complete. Thanks for waiting!")
      : t("Your place has expired: your turn came and went, or your session has ended.")
  );
  setText("ended-detail", message || "");
  document.title = t("Place ended \u00b7 {title}", { title: TITLE });
  announce(t("Your place has ended. You can join the line again."), true);
  focusHeading(section);
}

function closed(message) {
  stop();
  const section = show("closed");
  setText("closed-detail", message || "");
  document.title = t("Closed \u00b7 {title}", { title: TITLE });
  announce(t("This room is closed."), true);
  focusHeading(section);
}

function problem(message) {
  stop();
  const section = show("problem");
  setText("problem-text", message || t("Something went wrong."));
  announce(t("Something went wrong: {message}", { message: message || "" }), true);
  focusHeading(section);
}

// -- network ------------------------------------------------------------------------------------
function stop() { if (timer !== null) { clearTimeout(timer); timer = null; } }
function later(fn, seconds) {
  stop();
  timer = setTimeout(function () { timer = null; fn(); }, delayMs(seconds));
}
function backoff(fn, res) {
  failures += 1;
  const retryAfter = retryAfterSeconds(res ? res.headers.get("Retry-After") : null);
  note(t("Reconnecting\u2026 your place in line is kept."));
  document.body.setAttribute("data-connection", "reconnecting");
  later(fn, backoffSeconds(failures, retryAfter));
}
function recovered() {
  failures = 0;
  note("");
  document.body.setAttribute("data-connection", "ok");
}
// The API's answers are the visitor's own (no-store, with its cookies); the public documents
// are everybody's: sent without credentials and cached as their headers say.
function request(path, options, shared) {
  const ctrl = typeof AbortController === "function" ? new AbortController() : null;
  const t = ctrl ? setTimeout(function () { ctrl.abort(); }, REQUEST_TIMEOUT_MS) : null;
  if (shared) {
    options.credentials = "omit";
  } else {
    options.cache = "no-store";
    options.credentials = "same-origin";
  }
  if (ctrl) { options.signal = ctrl.signal; }
  return fetch(BASE + path, options).then(function (res) {
    return res.text().then(function (text) {
      if (t) { clearTimeout(t); }
      let body = null;
      try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
      return { res: res, body: body || {} };
    });
  }, function (err) { if (t) { clearTimeout(t); } throw err; });
}

// The solved challenge is kept for retries of the same join (the server answers with the same
// ticket).
let pow = null;
let powTries = 0;
function proveThenJoin() {
  if (!(window.crypto && crypto.subtle && window.TextEncoder)) {
    problem(t("This waiting room needs a secure (https) connection to let this browser in."));
    return;
  }
  busy = true;
  request("/challenge", { method: "GET", headers: { "Accept": "application/json" } })
    .then(function (r) {
      if (r.res.status !== 200) {
        busy = false;
        if (transient(r.res.status)) { backoff(join, r.res); } else {
          problem(r.body.message ||
            t("The waiting room could not start ({status}).", { status: r.res.status }));
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
  const rec = load();
  if (rec.ticket) { look(); return; }  // another tab joined meanwhile
  if (!rec.idem) {
    rec.idem = newKey(function (bytes) { return window.crypto.getRandomValues(bytes); });
    save(rec);
  }
  if (busy) { return; }
  busy = true;
  if (view === "joining" || view === "ended") { show("joining"); }
  const headers = { "Accept": "application/json", "Idempotency-Key": rec.idem };
  if (pow) {
    headers["X-Challenge"] = pow.challenge;
    headers["X-Challenge-Solution"] = pow.solution;
  }
  request("/join", {
    method: "POST",
    headers: headers
  }).then(function (r) {
    busy = false;
    const st = r.res.status;
    if ((st === 400 || st === 401) && POW_CODES.indexOf(r.body.error) >= 0 && powTries < 3) {
      powTries++;
      pow = null;
      proveThenJoin();
    } else if (st === 200 || st === 201) {
      pow = null;
      powTries = 0;
      recovered();
      const now = load();
      if (now.idem !== rec.idem && now.ticket) { look(); return; }
      now.idem = rec.idem;
      now.ticket = r.body.ticket;
      now.number = r.body.number;
      now.joined_at = Date.now();
      now.u = Math.random();  // this visitor's own moment in a pre-queue's opening spread
      // the browser's clock against the server's, from the join time the ticket carries
      now.skew = clockSkew(Date.now() / 1000, readTicket(now.ticket));
      delete now.first;
      delete now.first_exact;
      delete now.slot_doc;
      delete now.est;
      save(now);
      verified = now.ticket;  // just given by the API: trusted
      // an idle room lets the visitor straight in: no queue page, on to the origin
      if (r.body.state === "admitted") { stop(); arrive(r.body); return; }
      slotDoc = null;
      closedAsked = false;
      renderWaiting(r.body);
      const serverNow = Date.now() / 1000 - now.skew;
      later(look, firstLookSeconds(r.body, readTicket(now.ticket), now.u, serverNow));
    } else if (st === 409 && r.body.error === "room_closed") {
      closed(r.body.message);
    } else if (st === 503 && r.body.error === "room_full") {
      problem(r.body.message);  // a full room that keeps no line: try again later
      later(join, retryAfterSeconds(r.res.headers.get("Retry-After")) || 10);
    } else if (st === 404) {
      problem(t("There is no waiting room here. Check the address."));
    } else if (transient(st)) {
      backoff(join, r.res);
    } else {
      problem(r.body.message ||
        t("The waiting room refused to add you ({status}).", { status: st }));
    }
  }, function () {
    busy = false;
    backoff(join, null);
  });
}

// Asks the API where the ticket stands: once for a ticket read back from storage (a forged or
// altered one gets a 401 and never a position), and for the pickup when the line has reached it
// or the room has closed.
function status() {
  const rec = load();
  if (!rec.ticket) { join(); return; }
  if (busy) { return; }
  busy = true;
  const asked = rec.ticket;
  // the state version the page has seen: the answer is never from an older one, so the place
  // shown never goes back up
  request("/status" + (rec.v ? "?v=" + rec.v : ""), {
    method: "GET",
    headers: { "Accept": "application/json", "Authorization": "Bearer " + asked }
  }).then(function (r) {
    busy = false;
    const st = r.res.status;
    const code = r.body.error;
    if (st === 200 && r.body.state === "admitted") {
      recovered();
      stop();
      arrive(r.body);
    } else if (st === 200) {
      recovered();
      verified = asked;
      const kept = load();
      if (Number(r.body.state_version) > (Number(kept.v) || 0)) {
        kept.v = Number(r.body.state_version);
        save(kept);
      }
      // still waiting (a container that has not seen the room close yet): ask again at the
      // next look that finds the room closed
      closedAsked = false;
      renderWaiting(r.body);
      later(look, pollSeconds(r.body));
    } else if (st === 410 && code === "room_closed") {
      recovered();
      closed(r.body.message);
    } else if (st === 410) {
      recovered();
      ended(code, r.body.message);
    } else if (st === 401 && !rejoined) {
      // a ticket this room does not accept (altered, forged, or signed with a retired secret):
      // say so and take a new place, once
      rejoined = true;
      note(t("Your saved place could not be confirmed: taking a new place in line."));
      show("joining");
      forget();
      join();
    } else if (st === 409 && code === "room_closed") {
      closed(r.body.message);
    } else if (st === 404) {
      problem(t("There is no waiting room here. Check the address."));
    } else if (st === 401) {
      problem(r.body.message || t("The waiting room did not accept your place."));
    } else if (transient(st)) {
      backoff(status, r.res);
    } else {
      problem(r.body.message ||
        t("The waiting room could not check your place ({status}).", { status: st }));
    }
  }, function () {
    busy = false;
    backoff(status, null);
  });
}

function fetchJson(path) {
  return request(path, { method: "GET", headers: { "Accept": "application/json" } }, true);
}

// The ticket's settled slot document: from memory, storage, or the edge (once; a 404 means not
// settled yet). Resolves to the document or null; rejects on a network error.
function settledSlot(t, rec) {
  if (slotDoc && slotDoc.slot === t.slot) { return Promise.resolve(slotDoc); }
  if (rec.slot_doc && rec.slot_doc.slot === t.slot && Array.isArray(rec.slot_doc.counts)) {
    slotDoc = rec.slot_doc;
    return Promise.resolve(slotDoc);
  }
  return fetchJson("/slots/" + t.slot).then(function (r) {
    if (r.res.status !== 200 || Number(r.body.slot) !== t.slot || !Array.isArray(r.body.counts)) {
      return null;
    }
    slotDoc = r.body;
    const kept = load();
    if (kept.ticket === rec.ticket) {
      kept.slot_doc = r.body;
      save(kept);
    }
    return slotDoc;
  });
}

// One look: the room's state (from the edge), the slot once, then the place computed here.
function look() {
  const rec = load();
  if (!rec.ticket) { join(); return; }
  if (rec.ticket !== verified) { status(); return; }  // read back from storage: check it first
  const t = readTicket(rec.ticket, ROOM);
  if (!t) { status(); return; }  // a form this page cannot read: the API places it
  if (busy) { return; }
  busy = true;
  fetchJson("/state").then(function (r) {
    const st = r.res.status;
    if (st !== 200 || typeof r.body.version !== "number") {
      busy = false;
      if (st === 404) { problem(t("There is no waiting room here. Check the address.")); return; }
      backoff(look, r.res);
      return;
    }
    const kept = load();
    if (kept.ticket !== rec.ticket) { busy = false; look(); return; }
    const state = newerState(kept.state, r.body);
    const seen = Number(kept.v) || 0;
    if (state.version < seen) {
      // an older copy than the place already shown came from: keep showing it, look again soon
      busy = false;
      recovered();
      later(look, jitter(1 + Math.random() * 2));
      return;
    }
    kept.state = state;
    kept.v = state.version;
    roomStatus = typeof state.status === "string" ? state.status : "open";
    if (typeof kept.u !== "number") { kept.u = Math.random(); }
    save(kept);
    // its counts in the state, or its slot's document (once); a pre-queue slot too, before the
    // draw: the opening then costs one look (the state)
    const recent = recentSlot(state, t);
    if (recent && !(slotDoc && slotDoc.slot === t.slot)) {
      slotDoc = recent;  // kept like the slot's document: it says the same, and never changes
      kept.slot_doc = recent;
      save(kept);
    }
    const settled = t.slot <= Number(state.settled_through) && !recent;
    return (settled ? settledSlot(t, kept) : Promise.resolve(null)).then(function (doc) {
      // the ETA less the state's age, by the browser's clock read as the server's
      return placeOf(t, state, doc, Date.now() / 1000 - (Number(kept.skew) || 0));
    }).then(function (place) {
      busy = false;
      recovered();
      if (place.kind === "turn") {
        status();  // the pickup: the API admits and hands over the token
      } else if (place.kind === "closed" && !closedAsked) {
        closedAsked = true;
        status();  // the API's 410 says when nobody more will be let in
      } else {
        if (place.kind !== "closed") { renderWaiting(placeBody(place)); }
        const serverNow = Date.now() / 1000 - (Number(kept.skew) || 0);
        later(look, jitter(nextLookSeconds(place, state, kept.u, serverNow, t)));
      }
    });
  }).then(null, function () {
    busy = false;
    backoff(look, null);
  });
}

el("rejoin").addEventListener("click", function () {
  forget();
  rejoined = false;
  lastAnnounced = "";
  show("joining");
  join();
});
document.addEventListener("visibilitychange", function () {
  if (document.visibilityState === "visible" && view === "waiting" && failures === 0) {
    look();
  }
});
window.addEventListener("storage", function (e) {
  // another tab took a new place after this one ended: follow it
  if (e.key === place.key && (view === "ended" || view === "problem") && load().ticket) {
    rejoined = false;
    look();
  }
});
window.addEventListener("online", function () { if (failures > 0) { look(); } });

// -- language -----------------------------------------------------------------------------------
// The page is the same for every language (the edge keeps one copy): the browser picks the
// words, from the visitor's choice on the page or its own languages (navigator.languages, the
// source of its Accept-Language).
function locales() {
  try { return JSON.parse(QUEUE.getAttribute("data-locales") || "{}"); } catch (e) { return {}; }
}
function chosenLanguage(code) {
  const s = usableStorage(function () { return window.localStorage; }, LANGUAGE_KEY);
  try {
    if (s && code) { s.setItem(LANGUAGE_KEY, code); }
    return s ? s.getItem(LANGUAGE_KEY) : null;
  } catch (e) { return null; }
}
function translatePage() {
  const nodes = document.querySelectorAll("[data-i18n]");
  for (let i = 0; i < nodes.length; i++) {
    const key = nodes[i].getAttribute("data-i18n") || textKey(nodes[i].textContent);
    nodes[i].setAttribute("data-i18n", key);
    setTextOf(nodes[i], t(key));
  }
  const labelled = document.querySelectorAll("[data-i18n-label]");
  for (let i = 0; i < labelled.length; i++) {
    const key = labelled[i].getAttribute("data-i18n-label") ||
      labelled[i].getAttribute("aria-label") || "";
    labelled[i].setAttribute("data-i18n-label", key);
    labelled[i].setAttribute("aria-label", t(key));
  }
  if (DEFAULT_TITLE) {
    const before = TITLE;
    TITLE = t("Waiting room \u00b7 {room}", { room: ROOM });
    document.title = document.title.replace(before, TITLE);
    const named = document.querySelectorAll("[data-room-title]");
    for (let i = 0; i < named.length; i++) { setTextOf(named[i], TITLE); }
  }
}
function setTextOf(node, text) { if (node.textContent !== text) { node.textContent = text; } }
function speak(code) {
  const files = locales();
  const lang = pickLanguage(code, navigator.languages || [navigator.language], Object.keys(files));
  const buttons = document.querySelectorAll("[data-language]");
  for (let i = 0; i < buttons.length; i++) {
    const on = buttons[i].getAttribute("data-language") === lang;
    buttons[i].setAttribute("aria-pressed", on ? "true" : "false");
  }
  if (!files[lang]) { return Promise.resolve(); }
  // English is the page's own language: its words are already here, no request needed
  const words = lang === "en" ? Promise.resolve({ strings: {} })
    : fetch(files[lang], { credentials: "omit" }).then(function (res) {
      return res.ok ? res.json() : null;
    });
  return words.then(function (locale) {
    if (!locale) { return; }
    t = translator(locale.strings, lang);
    document.documentElement.setAttribute("lang", lang);
    translatePage();
    document.body.setAttribute("data-language", lang);
    if (redraw && view === "waiting") { redraw(); }
  }, function () { /* the English already on the page stays */ });
}
const switches = document.querySelectorAll("[data-language]");
for (let i = 0; i < switches.length; i++) {
  switches[i].addEventListener("click", function (e) {
    speak(chosenLanguage(e.currentTarget.getAttribute("data-language")));
  });
}
speak(chosenLanguage(null));
look();

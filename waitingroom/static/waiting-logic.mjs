// The waiting page's decisions, free of the DOM and of the network: what to say about a place
// in line, how long to wait before the next request, and how the visitor's place is stored.
// Imported by the page (waiting.js) and by node's test runner (tests/js/).

export const MAX_BACKOFF = 30;
export const DEFAULT_POLL_SECONDS = 2;
export const MIN_DELAY_SECONDS = 0.25;

// -- time and words ---------------------------------------------------------------------------
function pad(n) { return (n < 10 ? "0" : "") + n; }

/** HH:MM:SS in the visitor's own time zone. */
export function clock(d) {
  return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
}

function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

function span(minutes) {
  if (minutes >= 90) { return plural(Math.round(minutes / 60), "hour", "hours"); }
  return plural(minutes, "minute", "minutes");
}

/** The estimated wait in words: a single figure for an exact place, a range for an estimate. */
export function etaText(eta, exact) {
  if (eta === null || eta === undefined) { return "not known yet"; }
  if (eta <= 0) { return "any moment now"; }
  if (exact) {
    if (eta < 60) { return "less than a minute"; }
    return "about " + span(Math.round(eta / 60));
  }
  const low = Math.floor((eta * 0.7) / 60);
  const high = Math.max(1, Math.ceil((eta * 1.5) / 60));
  if (high <= 1) { return "about a minute or less"; }
  if (low < 1) { return "up to " + span(high); }
  if (high >= 90) {
    const lh = Math.max(1, Math.round(low / 60));
    const hh = Math.max(lh + 1, Math.round(high / 60));
    return "about " + lh + "\u2013" + hh + " hours";
  }
  return "about " + low + "\u2013" + high + " minutes";
}

// -- the place in line ------------------------------------------------------------------------
/** The place a status (or join) answer gives: a whole number >= 0, and whether it is exact. */
export function placeOf(body) {
  return {
    pos: Math.max(0, Math.floor(Number(body.position) || 0)),
    exact: body.position_is_exact !== false,
  };
}

/**
 * The place the progress bar measures from, when it must change: `{first, first_exact}`, or
 * null to keep the stored one. The bar measures from the first exact place (an early estimate
 * may be off either way); a later exact place further back starts it again.
 */
export function newStart(rec, pos, exact) {
  let reset = exact ? !rec.first_exact || pos > rec.first : !rec.first_exact;
  if (typeof rec.first !== "number") { reset = true; }
  if (reset && (rec.first !== pos || rec.first_exact !== exact)) {
    return { first: pos, first_exact: exact };
  }
  return null;
}

/** How far along the line, in whole percent (0..100), from place `first` to place `pos`. */
export function progress(first, pos) {
  const pct = first > 0 ? Math.round((100 * (first - pos)) / first) : 100;
  return Math.max(0, Math.min(100, pct));
}

/** Every text the waiting view shows for a place, measured from place `first`. */
export function waitingTexts(body, first) {
  const { pos, exact } = placeOf(body);
  const out = { pos, exact };
  if (pos === 0) {
    out.position = "0";
    out.label = "It's your turn \u2014 letting you in\u2026";
    out.ahead = "nobody";
    out.eta = "any moment now";
  } else {
    out.position = (exact ? "" : "~") + pos;
    out.label = exact ? "your place in line" : "your place in line (estimate)";
    const ahead = pos - 1;
    out.ahead = ahead === 0
      ? (exact ? "nobody \u2014 you're next" : "probably nobody")
      : (exact ? "" : "about ") + ahead;
    out.eta = etaText(body.eta_seconds, exact);
  }
  if (body.opens_at) {
    // a scheduled room: everyone who joins before opening is drawn into a random order
    const opens = new Date(Number(body.opens_at) * 1000);
    out.label = "people in the pre-queue so far";
    out.ahead = "drawn at random when the room opens";
    out.eta = "opens at " + opens.toLocaleTimeString();
  }
  out.pct = progress(first, pos);
  out.valuetext = out.pct + "% of the way: from place " + first + " to place " + pos;
  out.caption = out.pct + "% of the way from where you started (place " + first + ")";
  out.titlePrefix = pos > 0 ? "(" + (exact ? "" : "~") + pos + ") " : "";
  out.summary = pos === 0
    ? "It's your turn. Letting you in."
    : "You are " + (exact ? "" : "about ") + "number " + pos + " in line. Estimated wait: " +
      etaText(body.eta_seconds, exact) + ".";
  return out;
}

// -- when to ask again ------------------------------------------------------------------------
/** `seconds` spread by +-20 % so that a crowd does not poll in step; `random` in [0, 1). */
export function jitter(seconds, random = Math.random) {
  return seconds * (0.8 + random() * 0.4);
}

/** A Retry-After header (seconds or an HTTP date) as seconds from `now` (ms); 0 if absent. */
export function retryAfterSeconds(header, now = Date.now()) {
  if (!header) { return 0; }
  const n = Number(header);
  if (!isNaN(n)) { return Math.max(0, n); }
  const at = Date.parse(header);
  return isNaN(at) ? 0 : Math.max(0, (at - now) / 1000);
}

/** The wait after the `failures`-th failure in a row: doubling from 1 s up to MAX_BACKOFF,
 * jittered, and never shorter than the server's Retry-After. */
export function backoffSeconds(failures, retryAfter = 0, random = Math.random) {
  const wait = Math.min(MAX_BACKOFF, Math.pow(2, failures - 1));
  return Math.max(jitter(wait, random), retryAfter);
}

/** The wait before the next poll, as the server asked (2 s when it did not say), jittered. */
export function pollSeconds(body, random = Math.random) {
  return jitter(Number(body.poll_after_seconds) || DEFAULT_POLL_SECONDS, random);
}

/** A timer delay in ms: never under a quarter of a second. */
export function delayMs(seconds) {
  return Math.max(MIN_DELAY_SECONDS, seconds) * 1000;
}

/** An answer worth retrying later (the place is kept) rather than a final one. */
export function transient(status) {
  return status >= 500 || status === 429 || status === 408;
}

/** The origin URL to send the visitor to, resolved against `base`: http(s) only, else null. */
export function safeUrl(raw, base) {
  if (!raw) { return null; }
  try {
    const u = new URL(String(raw), base);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch (e) { return null; }
}

// -- the stored place -------------------------------------------------------------------------
/** The Storage `get()` returns if it can be read (it throws when blocked), else null. */
export function usableStorage(get, key) {
  try { const s = get(); s.getItem(key); return s; } catch (e) { return null; }
}

/**
 * The visitor's place for `room` (`waitingroom:ticket:{room}`: ticket, Idempotency-Key, first
 * place seen, state version) in the Storage `get()` returns, or in memory while storage is
 * blocked or full, so a reload or a second tab polls with the same ticket.
 */
export function ticketStore(room, get) {
  const key = "waitingroom:ticket:" + room;
  const memory = {};
  function load() {
    let raw = null;
    const s = usableStorage(get, key);
    try { raw = s ? s.getItem(key) : memory[key]; } catch (e) { raw = memory[key]; }
    if (!raw) { return {}; }
    try {
      const rec = JSON.parse(raw);
      return rec && typeof rec === "object" ? rec : {};
    } catch (e) { return {}; }
  }
  function save(rec) {
    const raw = JSON.stringify(rec);
    memory[key] = raw;
    const s = usableStorage(get, key);
    try { if (s) { s.setItem(key, raw); } } catch (e) { /* full or blocked: memory only */ }
  }
  function forget() {
    delete memory[key];
    const s = usableStorage(get, key);
    try { if (s) { s.removeItem(key); } } catch (e) { /* nothing stored */ }
  }
  return { key, load, save, forget };
}

/** A fresh Idempotency-Key for a join: "wr-" and 32 hex digits. */
export function newKey(getRandomValues) {
  const bytes = new Uint8Array(16);
  getRandomValues(bytes);
  let out = "";
  for (let i = 0; i < bytes.length; i++) { out += (bytes[i] + 256).toString(16).slice(1); }
  return "wr-" + out;
}

// -- proof of work ----------------------------------------------------------------------------
// A room may ask for a proof of work before it hands out a place: find a counter such that
// sha256(challenge + ":" + counter) starts with the asked number of zero bits.
export const POW_CODES = [
  "challenge_required", "challenge_expired", "bad_challenge", "wrong_solution",
];

/** The number of leading zero bits of a digest. */
export function zeroBits(buffer) {
  const bytes = new Uint8Array(buffer);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0) { n += 8; continue; }
    let b = bytes[i];
    while ((b & 0x80) === 0) { n++; b = b << 1; }
    break;
  }
  return n;
}

/** The first counter that solves `challenge` at `bits`, as a string. */
export function solve(challenge, bits) {
  const encoder = new TextEncoder();
  let counter = 0;
  return new Promise(function (resolve, reject) {
    function slice() {  // hash for ~50 ms, then yield to the event loop (the page stays live)
      const until = Date.now() + 50;
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

// The waiting page's decisions, free of the DOM and of the network: where the visitor stands,
// computed from the ticket and the room's public documents (CLIENTS.md), what to say about it,
// how long to wait before the next request, and how the visitor's place is stored. Imported by
// the page (waiting.js) and by node's test runner (tests/js/). Texts take the page's translating
// function `t` (waiting-i18n.mjs); without it they are English.
import { plain } from "./waiting-i18n.mjs";

export const MAX_BACKOFF = 30;
export const DEFAULT_POLL_SECONDS = 2;
export const MIN_DELAY_SECONDS = 0.25;

// -- time and words ---------------------------------------------------------------------------
function pad(n) { return (n < 10 ? "0" : "") + n; }

/** HH:MM:SS in the visitor's own time zone. */
export function clock(d) {
  return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
}

function plural(n, one, many, t) { return t(n === 1 ? one : many, { n: n }); }

function span(minutes, t) {
  if (minutes >= 90) { return plural(Math.round(minutes / 60), "{n} hour", "{n} hours", t); }
  return plural(minutes, "{n} minute", "{n} minutes", t);
}

/** The estimated wait in words: a single figure for an exact place, a range for an estimate. */
export function etaText(eta, exact, t = plain) {
  if (eta === null || eta === undefined) { return t("not known yet"); }
  if (eta <= 0) { return t("any moment now"); }
  if (exact) {
    if (eta < 60) { return t("less than a minute"); }
    return t("about {span}", { span: span(Math.round(eta / 60), t) });
  }
  const low = Math.floor((eta * 0.7) / 60);
  const high = Math.max(1, Math.ceil((eta * 1.5) / 60));
  if (high <= 1) { return t("about a minute or less"); }
  if (low < 1) { return t("up to {span}", { span: span(high, t) }); }
  if (high >= 90) {
    const lh = Math.max(1, Math.round(low / 60));
    const hh = Math.max(lh + 1, Math.round(high / 60));
    return t("about {low}\u2013{high} hours", { low: lh, high: hh });
  }
  return t("about {low}\u2013{high} minutes", { low: low, high: high });
}

// -- the place in line ------------------------------------------------------------------------
/** The place an answer shows (join, status, or a computed place rendered the same way): a whole
 * number >= 0, and whether it is exact. */
export function shownPlace(body) {
  return {
    pos: Math.max(0, Math.floor(Number(body.position) || 0)),
    exact: body.position_is_exact !== false,
  };
}

/**
 * An estimated place never goes back up before it turns exact: the join's answer may know a
 * burst better than the documents the page estimates from (its server gave those numbers), so
 * a later estimate from the documents is shown no higher than the last estimate shown
 * (`last`: `{pos, eta}` of this ticket's, or nothing). An exact place is shown as it is.
 */
export function steadyEstimate(body, last) {
  if (body.position_is_exact !== false || !last || !Number.isFinite(last.pos)) { return body; }
  const pos = Number(body.position);
  if (!Number.isFinite(pos) || pos <= last.pos) { return body; }
  const eta = body.eta_seconds;
  return {
    ...body,
    position: last.pos,
    eta_seconds: Number.isFinite(eta) && Number.isFinite(last.eta) ? Math.min(eta, last.eta) : eta,
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
export function waitingTexts(body, first, t = plain) {
  const { pos, exact } = shownPlace(body);
  const out = { pos, exact };
  if (pos === 0) {
    out.position = "0";
    out.label = t("It's your turn \u2014 letting you in\u2026");
    out.ahead = t("nobody");
    out.eta = t("any moment now");
  } else {
    out.position = (exact ? "" : "~") + pos;
    out.label = exact ? t("your place in line") : t("your place in line (estimate)");
    const ahead = pos - 1;
    out.ahead = ahead === 0
      ? (exact ? t("nobody \u2014 you're next") : t("probably nobody"))
      : (exact ? String(ahead) : t("about {n}", { n: ahead }));
    out.eta = etaText(body.eta_seconds, exact, t);
  }
  if (body.opens_at) {
    // a scheduled room: everyone who joins before opening is drawn into a random order
    const opens = new Date(Number(body.opens_at) * 1000);
    out.label = t("people in the pre-queue so far");
    out.ahead = t("drawn at random when the room opens");
    out.eta = t("opens at {time}", { time: opens.toLocaleTimeString(t.lang) });
  }
  out.pct = progress(first, pos);
  out.valuetext = t("{pct}% of the way: from place {first} to place {pos}",
    { pct: out.pct, first: first, pos: pos });
  out.caption = t("{pct}% of the way from where you started (place {first})",
    { pct: out.pct, first: first });
  out.titlePrefix = pos > 0 ? "(" + (exact ? "" : "~") + pos + ") " : "";
  const said = { pos: pos, eta: etaText(body.eta_seconds, exact, t) };
  out.summary = pos === 0
    ? t("It's your turn. Letting you in.")
    : exact ? t("You are number {pos} in line. Estimated wait: {eta}.", said)
      : t("You are about number {pos} in line. Estimated wait: {eta}.", said);
  return out;
}

// -- the place from the ticket and the public documents (CLIENTS.md §1-4) ---------------------
const ROOM_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const DIGITS = /^(0|[1-9][0-9]{0,15})$/;
const B64URL = /^[A-Za-z0-9_-]+$/;
const MAX_TICKET_LENGTH = 512;

function decodeBase64Url(text) {
  if (!B64URL.test(text) || text.length % 4 === 1) { return null; }
  const std = text.replace(/-/g, "+").replace(/_/g, "/");
  try { return atob(std + "===".slice(0, (4 - (std.length % 4)) % 4)); } catch (e) { return null; }
}

/**
 * What a ticket says about its place, `{room, slot, shard, k, joinedMs}`, or null when it is not
 * a ticket of `room` in the form join issues. Only the server can check the signature: a ticket
 * read back from storage is checked with /status before anything is computed from it.
 */
export function readTicket(text, room) {
  if (typeof text !== "string" || text.length > MAX_TICKET_LENGTH) { return null; }
  const parts = text.split(".");
  if (parts.length !== 2 || !decodeBase64Url(parts[1])) { return null; }
  const payload = decodeBase64Url(parts[0]);
  if (payload === null) { return null; }
  const fields = payload.split(":");
  if (fields.length !== 5 || !ROOM_ID.test(fields[0])) { return null; }
  if (room !== undefined && fields[0] !== room) { return null; }
  const nums = fields.slice(1);
  if (!nums.every(function (f) { return DIGITS.test(f); })) { return null; }
  const [slot, shard, k, joinedMs] = nums.map(Number);
  if (k < 1 || !nums.map(Number).every(Number.isSafeInteger)) { return null; }
  return { room: fields[0], slot, shard, k, joinedMs };
}

/** Tickets of the same slot ahead of (k, shard), from the slot's final counter values. */
export function rankInSlot(counts, k, shard) {
  let before = 0;
  let same = 0;
  for (let s = 0; s < counts.length; s++) {
    before += Math.min(counts[s], k - 1);
    if (s < shard && counts[s] >= k) { same += 1; }
  }
  return before + same;
}

function bitLength(n) { return n <= 0 ? 0 : Math.floor(Math.log2(n)) + 1; }

const FEISTEL_ROUNDS = 6;
const hmacKeys = new Map();

function hmacKey(seed, subtle) {
  let key = hmacKeys.get(seed);
  if (!key || key.subtle !== subtle) {
    key = {
      subtle,
      promise: subtle.importKey(
        "raw", new TextEncoder().encode(seed), { name: "HMAC", hash: "SHA-256" }, false,
        ["sign"]
      ),
    };
    hmacKeys.set(seed, key);
  }
  return key.promise;
}

async function roundValue(key, subtle, rnd, value, bits) {
  const mac = await subtle.sign("HMAC", key, new TextEncoder().encode(rnd + ":" + value));
  // the first 8 bytes, big endian, masked to `bits` (<= 26) bits: only the low 32 bits matter
  const low = new DataView(mac).getUint32(4);
  return bits >= 32 ? low : low & ((1 << bits) - 1);
}

async function feistel(x, half, key, subtle) {
  const size = Math.pow(2, half);
  let left = Math.floor(x / size);
  let right = x % size;
  for (let r = 0; r < FEISTEL_ROUNDS; r++) {
    const next = left ^ (await roundValue(key, subtle, r, right, half));
    left = right;
    right = next >>> 0;
  }
  return left * size + right;
}

/**
 * The drawn place of pre-queue index `index` among `size` with the room's published seed: the
 * same keyed permutation as `waitingroom.domain.draw_place` (a 6-round Feistel network over
 * 2h bits with HMAC-SHA256 rounds, cycle-walked into [0, size)).
 */
export async function drawPlace(index, size, seed, subtle = globalThis.crypto.subtle) {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 &&
    index < size)) {
    throw new RangeError("index out of range");
  }
  const half = Math.max(1, Math.floor((bitLength(size - 1) + 1) / 2));
  if (half > 26) { throw new RangeError("pre-queue too large"); }
  const key = await hmacKey(seed, subtle);
  let x = await feistel(index, half, key, subtle);
  while (x >= size) { x = await feistel(x, half, key, subtle); }
  return x;
}

// A state older than this is taken as this old (a clock far off the server's is at most this
// far wrong); `waitingroom.forecast.MAX_STATE_AGE_SECONDS`.
export const MAX_STATE_AGE_SECONDS = 10;

/** Seconds after the state until `position` is admitted by the drainer's forecast (`forecast`:
 * [seconds, admissions by then] pairs, linear between them from (0, 0); past the last, `rate`),
 * or null (`waitingroom.forecast.eta_from_forecast`). */
function forecastSeconds(position, forecast, rate) {
  let t0 = 0;
  let n0 = 0;
  for (const [t, n] of forecast) {
    if (n >= position) { return t0 + (position - n0) * (t - t0) / (n - n0); }
    t0 = Number(t);
    n0 = Number(n);
  }
  if (!(rate > 0)) { return null; }
  return t0 + (position - n0) / rate;
}

/** Seconds until admission, or null: from the drainer's forecast (made `age` seconds ago) when
 * the state carries one, else at the observed rate (or the expected one before any). */
export function etaSeconds(position, admitRate, fallbackRate, forecast = [], age = 0) {
  const rate = admitRate > 0 ? admitRate : fallbackRate;
  if (Array.isArray(forecast) && forecast.length > 0) {
    if (position <= 0) { return 0; }
    const ahead = forecastSeconds(position, forecast, rate);
    if (ahead === null) { return null; }
    const old = Math.min(Math.max(0, age), MAX_STATE_AGE_SECONDS);
    return Math.max(1, Math.ceil(ahead - old));
  }
  if (!(rate > 0)) { return null; }
  return Math.ceil(position / rate);
}

function num(v, fallback = 0) {
  const n = Number(v);
  return v === null || v === undefined || v === "" || isNaN(n) ? fallback : n;
}

/** The state's forecast of admissions as [seconds, admissions] pairs ([] when it has none). */
function forecastOf(state) {
  const raw = Array.isArray(state.admit_forecast) ? state.admit_forecast : [];
  return raw.filter((p) => Array.isArray(p) && p.length === 2).map(([t, n]) => [num(t), num(n)]);
}

/** How many wait in line, from a state document. */
function waitingOf(state) {
  return state.waiting !== undefined && state.waiting !== null
    ? num(state.waiting)
    : num(state.settled_total) - num(state.consumed);
}

function inPrequeue(t, state) {
  return state.opens_slot !== null && state.opens_slot !== undefined &&
    t.slot < num(state.opens_slot);
}

/** Joins of a whole slot from its count at `countedAt` (as _partial_slot in domain.py). */
function partialSlot(count, slot, slotSeconds, countedAt, rate) {
  const done = (countedAt - slot * slotSeconds) / slotSeconds;
  if (done >= 1) { return count; }
  if (done >= 0.25) { return count / done; }
  return Math.max(count, rate);
}

/** Past this many joins per shard per slot every shard's counter is about the same. */
const DENSE_PER_SHARD = 30;

/** Tickets of its own slot expected ahead of (k, shard), as domain.ahead_in_slot. */
export function aheadInSlot(k, shard, shards, perShard) {
  const before = Math.min(shard, shards - 1);
  let below = 0;
  let atLevel = 0;
  if (perShard >= DENSE_PER_SHARD) {
    below = Math.min(k - 1, perShard);
    atLevel = k <= perShard ? 1 : 0;
  } else {
    let pmf = Math.exp(-perShard);
    let tail = 1;
    for (let j = 1; j <= Math.min(k, 100); j++) {
      tail = Math.max(0, tail - pmf);  // P(c >= j)
      pmf = pmf * perShard / j;
      if (j < k) { below += tail; }
    }
    atLevel = k <= 100 ? tail : 0;
  }
  return (k - 1) + (shards - 1) * below + Math.floor(before * atLevel);
}

/**
 * The estimated place before the ticket's slot has settled (CLIENTS.md §3), as
 * waitingroom.domain.estimated_position: everyone waiting in settled slots, the joins counted
 * in every shard of the slots between (or past those the recent join rate), then the ticket's
 * place in its own slot at that rate.
 */
export function estimatedPosition(t, state) {
  const settledThrough = num(state.settled_through, -1);
  const unsettled = Array.isArray(state.unsettled_counts) ? state.unsettled_counts.map(Number) : [];
  const countedAt = num(state.updated_at);
  const slotSeconds = num(state.slot_seconds, 1) || 1;
  const s = Math.max(1, num(state.shards, 1));
  let rate = num(state.join_rate_per_slot);
  let ahead = waitingOf(state);
  const own = t.slot - settledThrough - 1;  // slots between the settled ones and the ticket's
  const counted = Math.min(Math.max(0, own), unsettled.length);
  for (let i = 0; i < counted; i++) {
    rate = partialSlot(unsettled[i], settledThrough + 1 + i, slotSeconds, countedAt, rate);
    ahead += rate;  // the latest count is the rate from here on
  }
  if (own >= 0 && own < unsettled.length) {
    rate = partialSlot(unsettled[own], t.slot, slotSeconds, countedAt, rate);
  }
  if (rate <= 0 && t.k > 1 && t.joinedMs !== undefined && t.joinedMs !== null) {
    const into = (num(t.joinedMs) / 1000 - t.slot * slotSeconds) / slotSeconds;
    rate = (t.k - 1) * s / Math.max(into, 0.5);
  }
  ahead += Math.max(0, own - counted) * rate;
  ahead += aheadInSlot(t.k, t.shard, s, rate / s);
  return Math.floor(ahead) + 1;
}

/** Whether the slot document `doc` is the ticket's own and holds it. */
export function slotHolds(doc, t) {
  return !!doc && typeof doc === "object" && Number(doc.slot) === t.slot &&
    Array.isArray(doc.counts) && t.shard < doc.counts.length && t.k <= Number(doc.counts[t.shard]);
}

/** The counts of the ticket's slot when the state carries them (its newest settled slots), in
 * the slot document's form; null otherwise (then the slot document gives them). */
export function recentSlot(state, t) {
  const recent = Array.isArray(state.recent_slots) ? state.recent_slots : [];
  const found = recent.find(function (r) { return !!r && Number(r.slot) === t.slot; });
  return found && Array.isArray(found.counts) ? found : null;
}

/**
 * Where the ticket `t` stands given the newest state document and its slot document (null while
 * it is not known: not fetched yet, or a 404; the state's recent slots stand in for it). `now`
 * is in seconds. Returns
 * `{kind, position, exact, eta, rank, opensAt}`, kind being one of:
 * - "prequeue": before the draw, `position` people in the pre-queue so far;
 * - "estimate": the slot has not settled yet;
 * - "waiting": an exact place;
 * - "turn": the drainer has reached the ticket: pick up the admission with /status;
 * - "closed": the room is closed and it is not the ticket's turn: /status says if it is over.
 */
export async function placeOf(t, state, slotDoc, now = Date.now() / 1000, subtle = undefined) {
  const consumed = num(state.consumed);
  const fallback = num(state.expected_rate);
  const admitRate = num(state.admit_rate);
  const closed = state.status === "closed";
  // nobody is let in while the room is paused: no ETA (as the server's answers say)
  const forecast = forecastOf(state);
  const age = now - num(state.updated_at);
  const eta = (position) => state.status === "paused" ? null
    : etaSeconds(position, admitRate, fallback, forecast, age);
  const prequeue = inPrequeue(t, state);
  const out = { kind: "estimate", position: 0, exact: false, eta: null, rank: null, opensAt: null };
  if (prequeue && !state.draw_seed) {
    if (closed) { return { ...out, kind: "closed" }; }
    const inLine = Math.max(1, num(state.settled_total));
    const untilOpen = Math.max(0, num(state.opens_at) - now);
    const eta = Math.ceil(untilOpen) + (fallback > 0 ? Math.ceil(inLine / 2 / fallback) : 0);
    return { ...out, kind: "prequeue", position: inLine, eta, opensAt: num(state.opens_at) };
  }
  let rank = null;
  if (!slotHolds(slotDoc, t)) { slotDoc = recentSlot(state, t); }
  if (t.slot <= num(state.settled_through, -1) && slotHolds(slotDoc, t)) {
    rank = num(slotDoc.tickets_before) + rankInSlot(slotDoc.counts.map(Number), t.k, t.shard);
    if (num(slotDoc.draw_size) > 0) {
      try {
        rank = await drawnRank(rank, slotDoc, subtle);
      } catch (e) {
        rank = null;  // not a place of this window's draw: estimate until a good document
      }
    }
    if (prequeue && rank !== null) {
      try {
        rank = await drawPlace(rank, num(state.prequeue_size), String(state.draw_seed), subtle);
      } catch (e) {
        rank = null;  // not a place of this draw: wait for a newer state
      }
    }
  }
  if (rank === null) {
    if (closed) { return { ...out, kind: "closed" }; }
    const position = estimatedPosition(t, state);
    return { ...out, position, eta: eta(position) };
  }
  if (rank < consumed) {
    return { ...out, kind: "turn", position: 0, exact: true, eta: 0, rank };
  }
  if (closed) { return { ...out, kind: "closed", rank }; }
  const position = rank - consumed + 1;
  return {
    ...out, kind: "waiting", position, exact: true, rank, eta: eta(position),
  };
}

/** A computed place as the answer the views render (the shape of a join or status answer). */
export function placeBody(place) {
  return {
    position: place.position,
    position_is_exact: place.exact,
    eta_seconds: place.eta,
    opens_at: place.kind === "prequeue" ? place.opensAt : null,
  };
}

/** The state document to go on with: the one with the highest version (a copy cached elsewhere
 * may be older, and a place must never go back up). */
export function newerState(kept, fresh) {
  const ok = function (s) { return !!s && typeof s === "object" && Number.isFinite(s.version); };
  if (!ok(fresh)) { return ok(kept) ? kept : null; }
  if (!ok(kept)) { return fresh; }
  return fresh.version >= kept.version ? fresh : kept;
}

// -- when to look again (CLIENTS.md §4; `waitingroom.domain` is the reference) ------------------
export const MIN_POLL_SECONDS = 2;
export const MAX_POLL_SECONDS = 60;
export const UNKNOWN_ETA_POLL_SECONDS = 20;
const PREQUEUE_PER_SECOND = 50000;
const MIN_SPREAD_SECONDS = 2;
const MAX_SPREAD_SECONDS = 60;
const PREQUEUE_MIN_POLL_SECONDS = 30;
const SETTLE_DELAY_SECONDS = 1;

/** Seconds until a visitor with a known place looks again: a third of its wait, 2 s at least,
 * at most a third of the pickup window (and 60 s). */
export function pollAfterSeconds(position, eta, pickupSeconds = 120) {
  if (position <= 0) { return 1; }
  const cap = Math.max(MIN_POLL_SECONDS, Math.min(MAX_POLL_SECONDS, Math.floor(pickupSeconds / 3)));
  if (eta === null || eta === undefined) { return Math.min(UNKNOWN_ETA_POLL_SECONDS, cap); }
  return Math.max(MIN_POLL_SECONDS, Math.min(cap, Math.floor(eta / 3)));
}

// within a third of the pickup window: whoever the first batch admits looks before its place
// is reclaimed
function openingSpreadSeconds(prequeueSize, pickupSeconds = 120) {
  const spread = Math.min(MAX_SPREAD_SECONDS, prequeueSize / PREQUEUE_PER_SECOND, pickupSeconds / 3);
  return Math.max(MIN_SPREAD_SECONDS, spread);
}

/** Seconds until a pre-queue visitor looks again before the draw is public; `u` in [0, 1) is
 * the visitor's own, fixed once: where in the opening's spread its first look falls. */
export function prequeuePollSeconds(untilOpen, prequeueSize, slotSeconds, u, pickupSeconds = 120) {
  const spread = openingSpreadSeconds(prequeueSize, pickupSeconds);
  if (untilOpen <= 0) { return MIN_POLL_SECONDS + u * spread; }
  const firstAfter = untilOpen + slotSeconds + SETTLE_DELAY_SECONDS + 2 + u * spread;
  const before = Math.max(PREQUEUE_MIN_POLL_SECONDS, Math.min(MAX_POLL_SECONDS, untilOpen / 2));
  // a look that would fall after the opening anyway waits for the visitor's own moment in it
  return before >= untilOpen ? firstAfter : before;
}

// an estimate looks again just after its slot settles (its own moment in a short spread), then
// every second for a few seconds (`waitingroom.domain.settle_look_seconds`)
const SETTLE_LOOK_SECONDS = 0.3;
const SETTLE_SPREAD_SECONDS = 0.7;
const SETTLED_RELOOK_SECONDS = 1;
const SETTLE_RELOOK_WINDOW_SECONDS = 5;
const ESTIMATE_MAX_LOOK_SECONDS = 5;
const LOOK_TOLERANCE_SECONDS = 0.05;  // a look this close to its moment is that look

/** Seconds until a visitor with an estimate (ticket of `slot`, joined at `joinedAt` seconds by
 * the server's clock, `sinceJoin` seconds ago) looks again; null when its slot should have
 * settled long ago (then the usual pace). */
export function settleLookSeconds(slot, slotSeconds, joinedAt, sinceJoin, u) {
  const settles = (slot + 1) * slotSeconds + SETTLE_DELAY_SECONDS + SETTLE_LOOK_SECONDS;
  const first = settles - joinedAt + u * SETTLE_SPREAD_SECONDS;
  if (sinceJoin < first - LOOK_TOLERANCE_SECONDS) {
    return Math.min(ESTIMATE_MAX_LOOK_SECONDS, first - sinceJoin);
  }
  if (sinceJoin < settles - joinedAt + SETTLE_RELOOK_WINDOW_SECONDS) { return SETTLED_RELOOK_SECONDS; }
  return null;
}

/** Seconds until the next look at the state for `place` (before the +-20 % jitter); with the
 * visitor's `ticket`, an estimate looks just after its slot settles. */
export function nextLookSeconds(place, state, u, now = Date.now() / 1000, ticket = null) {
  const pickup = num(state.pickup_seconds, 120);
  switch (place.kind) {
    case "turn":
      return 1;
    case "prequeue":
      // (the state's prequeue_size is only set by the draw: until then the pre-queue is the
      // settled part of the line, as the server counts it)
      return prequeuePollSeconds(
        num(state.opens_at) - now,
        Math.max(num(state.prequeue_size), num(state.settled_total)),
        num(state.slot_seconds, 1),
        u,
        pickup
      );
    case "estimate": {  // exact just after the slot has settled
      const settle = ticket === null ? null : settleLookSeconds(
        ticket.slot, num(state.slot_seconds, 1), ticket.joinedMs / 1000, now - ticket.joinedMs / 1000, u
      );
      return settle !== null ? settle
        : Math.max(1, Math.min(pollAfterSeconds(place.position, place.eta, pickup), 3));
    }
    case "closed":
      return UNKNOWN_ETA_POLL_SECONDS;
    default:
      return pollAfterSeconds(place.position, place.eta, pickup);
  }
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

// A join answered within this long (by the browser's clock against the ticket's server time)
// means the two clocks agree well enough to time looks by the ticket (as client.py does).
const PLAUSIBLE_ANSWER_SECONDS = 5;

/** Seconds to take off the browser's clock to read it as the server's, from the join answered
 * at `answeredAt` (seconds) for `ticket`: 0 when the clocks agree, else how far off it is (then
 * the looks are timed from when the answer came). */
export function clockSkew(answeredAt, ticket) {
  if (!ticket) { return 0; }
  const off = answeredAt - ticket.joinedMs / 1000;
  return off >= 0 && off <= PLAUSIBLE_ANSWER_SECONDS ? 0 : off;
}

/** The first look after a join: an estimate looks just after its slot settles, at the
 * visitor's own moment `u` (from the slot length the join states); anything else as the
 * server asked, jittered. */
export function firstLookSeconds(body, ticket, u, now = Date.now() / 1000, random = Math.random) {
  const slotSeconds = Number(body.slot_seconds);
  if (ticket && !body.position_is_exact && body.opens_at == null && slotSeconds > 0) {
    const joinedAt = ticket.joinedMs / 1000;
    const look = settleLookSeconds(ticket.slot, slotSeconds, joinedAt, now - joinedAt, u);
    if (look !== null) { return look; }
  }
  return pollSeconds(body, random);
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

// -- back to the page the visitor asked for ---------------------------------------------------
export const MAX_RETURN_TO = 2048;

/**
 * Where an admitted visitor goes: the page they asked for (`returnTo`, which the origin guard
 * put in the waiting page's address) when it is on the room's origin (`originUrl`) or one of
 * its `allowedOrigins`, else `originUrl` itself. A path ("/shop?id=7") is taken on the origin;
 * another host, another scheme (javascript:, data:), "//host", backslashes, control characters,
 * credentials, or more than MAX_RETURN_TO characters are ignored: no open redirect.
 */
export function returnTarget(returnTo, originUrl, allowedOrigins) {
  const home = safeUrl(originUrl, undefined);
  if (!home || typeof returnTo !== "string" || !returnTo) { return home; }
  if (returnTo.length > MAX_RETURN_TO || /[\\\u0000-\u001f\u007f]/.test(returnTo)) { return home; }
  const isPath = returnTo.charAt(0) === "/" && returnTo.charAt(1) !== "/";
  if (!isPath && !/^https?:\/\/[^/]/i.test(returnTo)) { return home; }
  let u;
  try { u = new URL(returnTo, home); } catch (e) { return home; }
  const origins = [new URL(home).origin].concat((allowedOrigins || []).map(function (o) {
    try { return new URL(String(o)).origin; } catch (e) { return null; }
  }));
  const ok = (u.protocol === "https:" || u.protocol === "http:") && !u.username && !u.password &&
    origins.indexOf(u.origin) >= 0;
  return ok ? u.href : home;
}

/**
 * A random room's drawn place: the slot's draw window holds places
 * [draw_start, draw_start + draw_size), drawn into an order by draw_seed (CLIENTS.md §3).
 */
export async function drawnRank(rank, slotDoc, subtle = undefined) {
  const start = num(slotDoc.draw_start);
  const drawn = await drawPlace(rank - start, num(slotDoc.draw_size), String(slotDoc.draw_seed), subtle);
  return start + drawn;
}

// The waiting page's own decisions (waitingroom/static/waiting-logic.mjs), run by node's test
// runner: `node --test tests/js/` (`make jstest`).
import assert from "node:assert/strict";
import { createHash, webcrypto } from "node:crypto";
import { describe, it } from "node:test";

import {
  MAX_BACKOFF, backoffSeconds, clock, delayMs, etaText, jitter, newKey, newStart, pollSeconds,
  progress, retryAfterSeconds, safeUrl, shownPlace, solve, steadyEstimate, ticketStore, transient,
  waitingTexts, zeroBits,
} from "../../waitingroom/static/waiting-logic.mjs";

// the browser's `crypto` is global from node 19 on; Debian's node 18 needs it set
globalThis.crypto ??= webcrypto;

const MIDDLE = () => 0.5; // jitter factor exactly 1

class MemoryStorage {
  constructor() { this.items = new Map(); }
  getItem(key) { return this.items.has(key) ? this.items.get(key) : null; }
  setItem(key, value) { this.items.set(key, String(value)); }
  removeItem(key) { this.items.delete(key); }
}

describe("etaText", () => {
  it("says when nothing is known or the wait is over", () => {
    assert.equal(etaText(null, true), "not known yet");
    assert.equal(etaText(undefined, false), "not known yet");
    assert.equal(etaText(0, true), "any moment now");
    assert.equal(etaText(-5, false), "any moment now");
  });

  it("gives one figure for an exact place", () => {
    assert.equal(etaText(59, true), "less than a minute");
    assert.equal(etaText(60, true), "about 1 minute");
    assert.equal(etaText(150, true), "about 3 minutes");
    assert.equal(etaText(89 * 60, true), "about 89 minutes");
    assert.equal(etaText(2 * 3600, true), "about 2 hours");
  });

  it("gives a range for an estimated place (70% to 150% of the estimate)", () => {
    assert.equal(etaText(30, false), "about a minute or less");
    assert.equal(etaText(60, false), "up to 2 minutes");
    assert.equal(etaText(600, false), "about 7\u201315 minutes");
    assert.equal(etaText(3 * 3600, false), "about 2\u20135 hours");
  });
});

describe("shownPlace", () => {
  it("reads a whole, non-negative place", () => {
    assert.deepEqual(shownPlace({ position: 4 }), { pos: 4, exact: true });
    assert.deepEqual(shownPlace({ position: "3.7" }), { pos: 3, exact: true });
    assert.deepEqual(shownPlace({ position: -2 }), { pos: 0, exact: true });
    assert.deepEqual(shownPlace({}), { pos: 0, exact: true });
  });

  it("is exact unless the server says it is not", () => {
    assert.equal(shownPlace({ position: 9, position_is_exact: false }).exact, false);
    assert.equal(shownPlace({ position: 9, position_is_exact: true }).exact, true);
  });
});

describe("newStart: where the progress bar measures from", () => {
  it("starts at the first place seen", () => {
    assert.deepEqual(newStart({}, 7, true), { first: 7, first_exact: true });
    assert.deepEqual(newStart({}, 7, false), { first: 7, first_exact: false });
  });

  it("keeps an exact start while the place falls", () => {
    assert.equal(newStart({ first: 7, first_exact: true }, 3, true), null);
    assert.equal(newStart({ first: 7, first_exact: true }, 7, true), null);
  });

  it("starts again from an exact place further back", () => {
    assert.deepEqual(newStart({ first: 7, first_exact: true }, 9, true), {
      first: 9, first_exact: true,
    });
  });

  it("replaces an estimated start with the first exact place, either way", () => {
    const estimated = { first: 40, first_exact: false };
    assert.deepEqual(newStart(estimated, 12, true), { first: 12, first_exact: true });
    assert.deepEqual(newStart(estimated, 55, true), { first: 55, first_exact: true });
  });

  it("never lets an estimate move an exact start", () => {
    assert.equal(newStart({ first: 7, first_exact: true }, 30, false), null);
  });

  it("follows estimates until a place is exact", () => {
    assert.deepEqual(newStart({ first: 40, first_exact: false }, 35, false), {
      first: 35, first_exact: false,
    });
    assert.equal(newStart({ first: 35, first_exact: false }, 35, false), null);
  });
});

describe("progress", () => {
  it("is the share of the line behind the visitor since the start", () => {
    assert.equal(progress(10, 5), 50);
    assert.equal(progress(3, 2), 33);
    assert.equal(progress(3, 3), 0);
  });

  it("stays within 0..100", () => {
    assert.equal(progress(3, 5), 0);
    assert.equal(progress(0, 0), 100);
    assert.equal(progress(4, 0), 100);
  });
});

describe("waitingTexts", () => {
  it("shows an exact place", () => {
    const t = waitingTexts({ position: 3, eta_seconds: 150 }, 4);
    assert.equal(t.position, "3");
    assert.equal(t.label, "your place in line");
    assert.equal(t.ahead, "2");
    assert.equal(t.eta, "about 3 minutes");
    assert.equal(t.pct, 25);
    assert.equal(t.valuetext, "25% of the way: from place 4 to place 3");
    assert.equal(t.caption, "25% of the way from where you started (place 4)");
    assert.equal(t.titlePrefix, "(3) ");
    assert.equal(t.summary, "You are number 3 in line. Estimated wait: about 3 minutes.");
  });

  it("marks an estimated place as one", () => {
    const t = waitingTexts({ position: 3, position_is_exact: false, eta_seconds: 600 }, 3);
    assert.equal(t.position, "~3");
    assert.equal(t.label, "your place in line (estimate)");
    assert.equal(t.ahead, "about 2");
    assert.equal(t.titlePrefix, "(~3) ");
    assert.match(t.summary, /^You are about number 3 in line\./);
  });

  it("says who is next", () => {
    assert.equal(waitingTexts({ position: 1 }, 1).ahead, "nobody \u2014 you're next");
    assert.equal(waitingTexts({ position: 1, position_is_exact: false }, 1).ahead,
      "probably nobody");
  });

  it("says when it is the visitor's turn", () => {
    const t = waitingTexts({ position: 0, eta_seconds: 30 }, 5);
    assert.equal(t.position, "0");
    assert.equal(t.label, "It's your turn \u2014 letting you in\u2026");
    assert.equal(t.ahead, "nobody");
    assert.equal(t.eta, "any moment now");
    assert.equal(t.pct, 100);
    assert.equal(t.titlePrefix, "");
    assert.equal(t.summary, "It's your turn. Letting you in.");
  });

  it("describes a scheduled room's pre-queue", () => {
    const t = waitingTexts({ position: 12, opens_at: 1_900_000_000 }, 12);
    assert.equal(t.label, "people in the pre-queue so far");
    assert.equal(t.ahead, "drawn at random when the room opens");
    assert.equal(t.eta, "opens at " + new Date(1_900_000_000_000).toLocaleTimeString());
  });
});

describe("when to ask again", () => {
  it("doubles the back-off from 1 s up to the cap", () => {
    const waits = [1, 2, 3, 4, 5, 6, 7, 12].map((n) => backoffSeconds(n, 0, MIDDLE));
    assert.deepEqual(waits, [1, 2, 4, 8, 16, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]);
    assert.equal(MAX_BACKOFF, 30);
  });

  it("never retries before the server's Retry-After", () => {
    assert.equal(backoffSeconds(1, 45, MIDDLE), 45);
    assert.equal(backoffSeconds(6, 5, MIDDLE), 30);
  });

  it("spreads every wait by +-20%", () => {
    assert.equal(jitter(10, () => 0), 8);
    assert.ok(Math.abs(jitter(10, () => 0.999999) - 12) < 1e-4);
    assert.equal(backoffSeconds(3, 0, () => 0), 3.2);
    assert.equal(pollSeconds({ poll_after_seconds: 5 }, () => 0), 4);
  });

  it("polls as often as the server asks, every 2 s if it does not say", () => {
    assert.equal(pollSeconds({ poll_after_seconds: 5 }, MIDDLE), 5);
    assert.equal(pollSeconds({}, MIDDLE), 2);
    assert.equal(pollSeconds({ poll_after_seconds: "soon" }, MIDDLE), 2);
    assert.equal(pollSeconds({ poll_after_seconds: 0 }, MIDDLE), 2);
  });

  it("reads Retry-After as seconds or as a date", () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    assert.equal(retryAfterSeconds("7", now), 7);
    assert.equal(retryAfterSeconds("-3", now), 0);
    assert.equal(retryAfterSeconds("Tue, 01 Jan 2030 00:00:12 GMT", now), 12);
    assert.equal(retryAfterSeconds("Mon, 31 Dec 2029 23:59:00 GMT", now), 0);
    assert.equal(retryAfterSeconds("whenever", now), 0);
    assert.equal(retryAfterSeconds(null, now), 0);
  });

  it("never sets a timer under a quarter of a second", () => {
    assert.equal(delayMs(0), 250);
    assert.equal(delayMs(-4), 250);
    assert.equal(delayMs(3), 3000);
  });

  it("retries server errors, throttling and timeouts, and nothing else", () => {
    for (const status of [408, 429, 500, 502, 503, 504]) { assert.ok(transient(status), status); }
    for (const status of [200, 400, 401, 403, 404, 409, 410]) {
      assert.ok(!transient(status), status);
    }
  });
});

describe("safeUrl", () => {
  const base = "https://wait.example/prod/rooms/demo";

  it("follows http(s) only", () => {
    assert.equal(safeUrl("https://shop.example/", base), "https://shop.example/");
    assert.equal(safeUrl("http://shop.example/a", base), "http://shop.example/a");
    assert.equal(safeUrl("javascript:alert(1)", base), null);
    assert.equal(safeUrl("data:text/html,hi", base), null);
    assert.equal(safeUrl("", base), null);
    assert.equal(safeUrl(undefined, base), null);
  });

  it("resolves a relative URL against the page", () => {
    assert.equal(safeUrl("/shop", base), "https://wait.example/shop");
  });
});

describe("ticketStore", () => {
  it("keeps the place under waitingroom:ticket:{room}", () => {
    const storage = new MemoryStorage();
    const place = ticketStore("demo", () => storage);
    assert.equal(place.key, "waitingroom:ticket:demo");
    assert.deepEqual(place.load(), {});
    place.save({ ticket: "t1", idem: "wr-1", first: 4, first_exact: true });
    assert.deepEqual(JSON.parse(storage.getItem("waitingroom:ticket:demo")), {
      ticket: "t1", idem: "wr-1", first: 4, first_exact: true,
    });
    assert.deepEqual(place.load(), { ticket: "t1", idem: "wr-1", first: 4, first_exact: true });
  });

  it("shares the place with a reload or another tab, one room at a time", () => {
    const storage = new MemoryStorage();
    ticketStore("demo", () => storage).save({ ticket: "t1" });
    assert.equal(ticketStore("demo", () => storage).load().ticket, "t1");
    assert.deepEqual(ticketStore("other", () => storage).load(), {});
  });

  it("forgets the place", () => {
    const storage = new MemoryStorage();
    const place = ticketStore("demo", () => storage);
    place.save({ ticket: "t1" });
    place.forget();
    assert.deepEqual(place.load(), {});
    assert.equal(storage.getItem("waitingroom:ticket:demo"), null);
  });

  it("reads anything but a stored object as no place", () => {
    const storage = new MemoryStorage();
    const place = ticketStore("demo", () => storage);
    for (const raw of ["{not json", "null", "5", '"text"']) {
      storage.setItem(place.key, raw);
      assert.deepEqual(place.load(), {}, raw);
    }
  });

  it("keeps the place in memory when storage is blocked", () => {
    const place = ticketStore("demo", () => { throw new Error("SecurityError"); });
    place.save({ ticket: "t1" });
    assert.equal(place.load().ticket, "t1");
    place.forget();
    assert.deepEqual(place.load(), {});
  });

  it("keeps the place in memory when reading storage fails", () => {
    const broken = { getItem() { throw new Error("denied"); }, setItem() {}, removeItem() {} };
    const place = ticketStore("demo", () => broken);
    place.save({ ticket: "t1" });
    assert.equal(place.load().ticket, "t1");
  });
});

describe("newKey", () => {
  it("is wr- and 32 hex digits from the random bytes", () => {
    const key = newKey((bytes) => { bytes.forEach((_, i) => { bytes[i] = i * 17; }); });
    assert.equal(key, "wr-00112233445566778899aabbccddeeff");
  });

  it("differs from call to call with real randomness", () => {
    const random = (bytes) => crypto.getRandomValues(bytes);
    const a = newKey(random);
    assert.match(a, /^wr-[0-9a-f]{32}$/);
    assert.notEqual(a, newKey(random));
  });
});

describe("clock", () => {
  it("is HH:MM:SS with leading zeros", () => {
    assert.equal(clock(new Date(2030, 0, 1, 7, 5, 9)), "07:05:09");
    assert.equal(clock(new Date(2030, 0, 1, 23, 59, 30)), "23:59:30");
  });
});

describe("proof of work", () => {
  it("counts leading zero bits", () => {
    assert.equal(zeroBits(new Uint8Array([0x80, 0]).buffer), 0);
    assert.equal(zeroBits(new Uint8Array([0x01, 0xff]).buffer), 7);
    assert.equal(zeroBits(new Uint8Array([0, 0x40]).buffer), 9);
    assert.equal(zeroBits(new Uint8Array([0, 0, 0x0f]).buffer), 20);
  });

  it("finds the first counter whose hash starts with enough zero bits", async () => {
    const bits = (text) => zeroBits(createHash("sha256").update(text).digest());
    const solution = await solve("ab:cd", 8);
    assert.ok(bits("ab:cd:" + solution) >= 8);
    for (let counter = 0; counter < Number(solution); counter++) {
      assert.ok(bits("ab:cd:" + counter) < 8, counter);
    }
  });
});

describe("steadyEstimate", () => {
  const est = (position, eta) => ({ position, position_is_exact: false, eta_seconds: eta });
  it("never shows an estimate further back than the last estimate shown", () => {
    // the join said 196 (its server gave the burst's numbers); the documents say 258
    assert.deepEqual(steadyEstimate(est(258, 90), { pos: 196, eta: 70 }), est(196, 70));
    assert.deepEqual(steadyEstimate(est(150, 60), { pos: 196, eta: 70 }), est(150, 60));
  });
  it("shows an exact place as it is, and anything when nothing was shown", () => {
    const exact = { position: 260, position_is_exact: true, eta_seconds: 95 };
    assert.deepEqual(steadyEstimate(exact, { pos: 196, eta: 70 }), exact);
    assert.deepEqual(steadyEstimate(est(258, 90), null), est(258, 90));
  });
});

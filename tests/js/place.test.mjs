// Where a visitor stands, computed by the page from its ticket and the room's public documents
// (CLIENTS.md §3-4), and when it looks again. Run with `node --test tests/js/`.
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { describe, it } from "node:test";

import {
  clockSkew, firstLookSeconds, nextLookSeconds, newerState, placeBody, placeOf, readTicket,
  recentSlot, waitingTexts,
} from "../../waitingroom/static/waiting-logic.mjs";

globalThis.crypto ??= webcrypto;

const b64 = (text) => Buffer.from(text).toString("base64url");
const MAC = b64("a".repeat(32));
const ticketOf = (payload, mac = MAC) => b64(payload) + "." + mac;

const SLOT = 1_764_505_230;
const STATE = {
  room: "demo", version: 1822, status: "open", slot_seconds: 1, settled_through: SLOT + 4,
  settled_total: 5920, consumed: 5001, waiting: 919, join_rate_per_slot: 12.5, admit_rate: 2,
  expected_rate: 5, pickup_seconds: 120, opens_at: null, opens_slot: null, prequeue_size: 0,
  draw_seed: "", closed_slot: null, updated_at: SLOT + 7,
};
const DOC = { room: "demo", slot: SLOT, counts: [3, 2, 4], tickets_before: 5000, total: 9 };
// (k 2, shard 1): 3 tickets at k 1, then (2, 0) ahead of it: rank 5004
const T = { room: "demo", slot: SLOT, shard: 1, k: 2, joinedMs: 0 };

describe("readTicket", () => {
  it("reads room, slot, shard, k and the join time", () => {
    const text = ticketOf(`demo:${SLOT}:7:42:1764505230123`);
    assert.deepEqual(readTicket(text, "demo"), {
      room: "demo", slot: SLOT, shard: 7, k: 42, joinedMs: 1764505230123,
    });
    assert.equal(readTicket(text).room, "demo");
  });

  it("refuses a ticket of another room", () => {
    assert.equal(readTicket(ticketOf(`other:${SLOT}:7:42:1`), "demo"), null);
  });

  it("refuses anything not in the form join issues", () => {
    const bad = [
      undefined, null, 42, "", "not-a-ticket", ticketOf(`demo:${SLOT}:7:42:1`) + ".x",
      b64(`demo:${SLOT}:7:42:1`), b64(`demo:${SLOT}:7:42:1`) + ".",
      ticketOf(`demo:${SLOT}:7:42`), ticketOf(`demo:${SLOT}:7:42:1:9`),
      ticketOf(`demo:${SLOT}:-7:42:1`), ticketOf(`demo:${SLOT}:7:0:1`),
      ticketOf(`demo:${SLOT}:7:4.2:1`), ticketOf(`demo:${SLOT}:7:0x2a:1`),
      ticketOf(`demo:${SLOT}:7: 42:1`), ticketOf(`demo:${SLOT}:07:42:1`),
      ticketOf(`Demo:${SLOT}:7:42:1`), ticketOf(`:${SLOT}:7:42:1`),
      ticketOf(`demo:99999999999999999:7:42:1`),
      "ZGVtbzox+jc6NDI6MQ." + MAC, "%%%." + MAC, ticketOf(`demo:${SLOT}:7:42:1`, "a/b"),
      ticketOf(`demo:${SLOT}:7:42:1`) + "a".repeat(600),
    ];
    for (const text of bad) { assert.equal(readTicket(text, "demo"), null, String(text)); }
  });
});

describe("placeOf", () => {
  it("is an exact place once the ticket's slot has settled", async () => {
    const p = await placeOf(T, STATE, DOC);
    assert.deepEqual(p, {
      kind: "waiting", position: 4, exact: true, eta: 2, rank: 5004, opensAt: null,
    });
    const body = placeBody(p);
    assert.equal(waitingTexts(body, 4).position, "4");
    assert.equal(waitingTexts(body, 4).ahead, "3");
  });

  it("uses the expected rate until somebody is admitted, and no ETA without either", async () => {
    assert.equal((await placeOf(T, { ...STATE, admit_rate: 0 }, DOC)).eta, 1);
    assert.equal((await placeOf(T, { ...STATE, admit_rate: 0, expected_rate: 0 }, DOC)).eta, null);
  });

  it("is the visitor's turn once the line has passed its rank", async () => {
    for (const consumed of [5005, 9000]) {
      const p = await placeOf(T, { ...STATE, consumed }, DOC);
      assert.equal(p.kind, "turn");
      assert.equal(p.position, 0);
    }
    assert.equal((await placeOf(T, { ...STATE, consumed: 5004 }, DOC)).position, 1);
  });

  it("estimates, and says so, until the slot settles and its document is read", async () => {
    const unsettled = { ...STATE, settled_through: SLOT - 3 };
    const p = await placeOf(T, unsettled, DOC);
    // 919 waiting + 2 unsettled slots of 12.5 joins + k
    assert.deepEqual(p, {
      kind: "estimate", position: 919 + 25 + 2, exact: false, eta: 473, rank: null, opensAt: null,
    });
    assert.equal(waitingTexts(placeBody(p), 946).position, "~946");
    assert.equal((await placeOf(T, STATE, null)).position, 919 + 2);
    assert.equal((await placeOf(T, STATE, null)).kind, "estimate");
  });

  it("gives no wait while the room is paused, estimated or exact", async () => {
    const paused = { ...STATE, status: "paused" };
    assert.equal((await placeOf(T, paused, DOC)).eta, null);
    assert.equal((await placeOf(T, { ...paused, settled_through: SLOT - 3 }, DOC)).eta, null);
    assert.equal((await placeOf(T, paused, DOC)).position, (await placeOf(T, STATE, DOC)).position);
  });

  it("never takes a place from a document that is not the ticket's slot or lacks it", async () => {
    const others = [
      { ...DOC, slot: SLOT + 1 }, { ...DOC, counts: [3, 1, 4] }, { ...DOC, counts: [3] },
    ];
    for (const doc of others) {
      assert.equal((await placeOf(T, STATE, doc)).kind, "estimate", JSON.stringify(doc));
    }
  });

  it("shows the pre-queue and its opening before the draw", async () => {
    const opens = SLOT + 100;
    const pre = {
      ...STATE, status: "scheduled", opens_at: opens, opens_slot: opens, settled_total: 40,
    };
    const p = await placeOf(T, pre, DOC, opens - 60);
    assert.equal(p.kind, "prequeue");
    assert.equal(p.position, 40);
    assert.equal(p.opensAt, opens);
    const texts = waitingTexts(placeBody(p), 40);
    assert.equal(texts.label, "people in the pre-queue so far");
    assert.match(texts.eta, /^opens at /);
    assert.equal((await placeOf(T, { ...pre, settled_total: 0 }, null, opens - 60)).position, 1);
  });

  it("takes a pre-queue place from the published draw", async () => {
    // pre-queue index 5 of 1000 is place 144 with seed "abc" (waitingroom.domain.draw_place)
    const t = { room: "demo", slot: SLOT, shard: 0, k: 1, joinedMs: 0 };
    const doc = { room: "demo", slot: SLOT, counts: [1], tickets_before: 5, total: 1 };
    const drawn = {
      ...STATE, opens_at: SLOT + 10, opens_slot: SLOT + 10, prequeue_size: 1000,
      draw_seed: "abc", consumed: 100,
    };
    const p = await placeOf(t, drawn, doc);
    assert.equal(p.kind, "waiting");
    assert.equal(p.rank, 144);
    assert.equal(p.position, 45);
    assert.equal((await placeOf(t, { ...drawn, consumed: 145 }, doc)).kind, "turn");
  });

  it("asks the server once the room is closed, unless it is the visitor's turn", async () => {
    const closed = { ...STATE, status: "closed" };
    assert.equal((await placeOf(T, closed, DOC)).kind, "closed");
    assert.equal((await placeOf(T, closed, null)).kind, "closed");
    assert.equal((await placeOf(T, { ...closed, consumed: 6000 }, DOC)).kind, "turn");
  });
});

describe("newerState", () => {
  const v = (version) => ({ ...STATE, version });

  it("keeps the highest version: a place never goes back up", () => {
    assert.equal(newerState(v(5), v(4)).version, 5);
    assert.equal(newerState(v(5), v(6)).version, 6);
    assert.equal(newerState(null, v(1)).version, 1);
    assert.equal(newerState(undefined, v(1)).version, 1);
  });

  it("ignores anything that is not a state", () => {
    assert.equal(newerState(v(5), {}).version, 5);
    assert.equal(newerState(v(5), null).version, 5);
    assert.equal(newerState({ version: "x" }, null), null);
  });
});

describe("nextLookSeconds", () => {
  it("looks again about 20 times over a 10-minute wait", () => {
    for (const pickup of [120, 300]) {
      const rate = 5;
      let t = 0;
      let looks = 0;
      for (;;) {
        const position = Math.ceil(3000 - t * rate);
        if (position <= 0) { break; }
        const place = { kind: "waiting", position, eta: Math.ceil(position / rate) };
        t += nextLookSeconds(place, { ...STATE, pickup_seconds: pickup });
        looks++;
      }
      assert.ok(looks >= 15 && looks <= 25, `${looks} looks with pickup ${pickup}`);
    }
  });

  it("never waits longer than a third of the pickup window, nor under 2 s with a place", () => {
    const far = { kind: "waiting", position: 100_000, eta: 100_000 };
    assert.equal(nextLookSeconds(far, { ...STATE, pickup_seconds: 30 }), 10);
    assert.equal(nextLookSeconds(far, { ...STATE, pickup_seconds: 900 }), 60);
    assert.equal(nextLookSeconds({ kind: "waiting", position: 1, eta: 1 }, STATE), 2);
    assert.equal(nextLookSeconds({ kind: "waiting", position: 9, eta: null }, STATE), 20);
  });

  it("looks again within 1-3 s for an estimate, and after 1 s at the visitor's turn", () => {
    for (const eta of [null, 1, 30, 3000]) {
      const s = nextLookSeconds({ kind: "estimate", position: 10, eta }, STATE);
      assert.ok(s >= 1 && s <= 3, `${s} for eta ${eta}`);
    }
    assert.equal(nextLookSeconds({ kind: "turn", position: 0, eta: 0 }, STATE), 1);
  });

  it("spreads the pre-queue's first looks after the opening over the spread window", () => {
    const opens = 10_000;
    // a million in the pre-queue: a 20 s spread, from when the draw is public (slot 1 s +
    // settle 1 s + tick 2 s after the opening)
    const pre = {
      ...STATE, status: "scheduled", opens_at: opens, opens_slot: opens, settled_total: 1_000_000,
    };
    const visitors = 1000;
    const perSecond = new Map();  // every look from the opening on, by second
    let looksBefore = 0;
    for (let i = 0; i < visitors; i++) {
      const u = ((i * 7919) % visitors) / visitors;
      let now = opens - 600 + i * 0.2917;  // joined 5 to 10 minutes before the opening
      for (;;) {
        now += nextLookSeconds({ kind: "prequeue" }, pre, u, now);
        if (now < opens) { looksBefore++; continue; }
        const second = Math.floor(now - opens);
        perSecond.set(second, (perSecond.get(second) || 0) + 1);
        if (now >= opens + 4) { break; }  // this look sees the draw
      }
      assert.ok(now < opens + 4 + 20 + 2, `sees the draw at +${now - opens} s`);
    }
    for (let second = 4; second < 24; second++) {
      const n = perSecond.get(second) || 0;
      assert.ok(n >= visitors / 20 / 2 && n <= (visitors / 20) * 1.5, `${n} looks at +${second} s`);
    }
    assert.ok(Math.max(...perSecond.values()) <= (visitors / 20) * 1.5);
    assert.ok(looksBefore / visitors <= 16, "before the opening: a look every 30-60 s");
    // opened, the seed still not public: again within the spread
    const late = nextLookSeconds({ kind: "prequeue" }, pre, 0.5, opens + 8);
    assert.equal(late, 2 + 0.5 * 20);
  });
});

describe("the first look after a join", () => {
  const ticket = { room: "demo", slot: SLOT, shard: 0, k: 3, joinedMs: (SLOT + 0.4) * 1000 };
  const estimate = { position: 120, position_is_exact: false, eta_seconds: 30,
    poll_after_seconds: 2, opens_at: null, slot_seconds: 1 };

  it("comes just after the slot settles, whenever the answer arrived", () => {
    // slot ends at SLOT + 1, settles a second later; u = 0 looks first in the spread
    const prompt = firstLookSeconds(estimate, ticket, 0, SLOT + 0.5, () => 0.5);
    const slow = firstLookSeconds(estimate, ticket, 0, SLOT + 1.5, () => 0.5);
    assert.ok(Math.abs(SLOT + 0.5 + prompt - (SLOT + 2.3)) < 1e-6, String(prompt));
    assert.ok(Math.abs(SLOT + 1.5 + slow - (SLOT + 2.3)) < 1e-6, String(slow));  // a second less
  });

  it("is spread over the visitor's own moment", () => {
    const early = firstLookSeconds(estimate, ticket, 0, SLOT + 0.5);
    const late = firstLookSeconds(estimate, ticket, 0.99, SLOT + 0.5);
    assert.ok(late - early > 0.6, `${early} ${late}`);
  });

  it("is as the server asked for an exact place, a pre-queue or an old answer", () => {
    const half = () => 0.5;  // no jitter
    assert.equal(firstLookSeconds({ ...estimate, position_is_exact: true }, ticket, 0, SLOT, half), 2);
    assert.equal(firstLookSeconds({ ...estimate, opens_at: SLOT + 60 }, ticket, 0, SLOT, half), 2);
    const noSlot = { ...estimate };
    delete noSlot.slot_seconds;
    assert.equal(firstLookSeconds(noSlot, ticket, 0, SLOT, half), 2);
  });
});

describe("a slot's counts in the state", () => {
  const recent = { slot: SLOT, counts: [3, 2, 4], tickets_before: 5000 };

  it("give the exact place without the slot document", async () => {
    const withCounts = { ...STATE, recent_slots: [{ slot: SLOT - 1, counts: [1], tickets_before: 4990 }, recent] };
    assert.deepEqual(recentSlot(withCounts, T), recent);
    assert.deepEqual(await placeOf(T, withCounts, null), await placeOf(T, STATE, DOC));
    assert.equal((await placeOf(T, withCounts, null)).exact, true);
  });

  it("are not there for other slots: an estimate until the document comes", async () => {
    const other = { ...STATE, recent_slots: [{ ...recent, slot: SLOT + 1 }] };
    assert.equal(recentSlot(other, T), null);
    assert.equal((await placeOf(T, other, null)).exact, false);
    assert.equal(recentSlot({ ...STATE, recent_slots: "nonsense" }, T), null);
  });
});

describe("the browser's clock against the server's", () => {
  const ticket = { room: "demo", slot: SLOT, shard: 0, k: 3, joinedMs: (SLOT + 0.4) * 1000 };

  it("is taken as the server's when the join answered within a few seconds by it", () => {
    assert.equal(clockSkew(SLOT + 0.5, ticket), 0);
    assert.equal(clockSkew(SLOT + 3.4, ticket), 0);  // a slow answer in a burst
  });

  it("is corrected by how far off it is otherwise, so looks are timed from the answer", () => {
    assert.ok(Math.abs(clockSkew(SLOT - 3599.6, ticket) + 3600) < 1e-6);  // an hour behind
    assert.ok(Math.abs(clockSkew(SLOT + 60.4, ticket) - 60) < 1e-6);  // a minute ahead
    const estimate = { position: 120, position_is_exact: false, poll_after_seconds: 2,
      opens_at: null, slot_seconds: 1 };
    const behind = SLOT - 3599.6;
    const look = firstLookSeconds(estimate, ticket, 0, behind - clockSkew(behind, ticket));
    assert.ok(Math.abs(look - 1.9) < 1e-6, String(look));  // as if it had just joined
  });
});

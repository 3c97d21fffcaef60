// The page computes a place exactly as the server does: every case in place-vectors.json was
// computed by the Python reference (tests/unit/test_place_vectors.py, which keeps the file in
// step with waitingroom.domain). Run with `node --test tests/js/`.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { webcrypto } from "node:crypto";
import { describe, it } from "node:test";

import {
  aheadInSlot, drawPlace, etaSeconds, nextLookSeconds, placeOf, pollAfterSeconds, prequeuePollSeconds,
  rankInSlot, readTicket, settleLookSeconds,
} from "../../waitingroom/static/waiting-logic.mjs";

globalThis.crypto ??= webcrypto;

const V = JSON.parse(readFileSync(new URL("./place-vectors.json", import.meta.url), "utf8"));

function close(actual, expected, what) {
  assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} != ${expected}`);
}

describe("the page agrees with the Python reference", () => {
  it("reads every field of a ticket the server signed", () => {
    assert.ok(V.tickets.length > 0);
    for (const c of V.tickets) {
      assert.deepEqual(readTicket(c.ticket, c.room), {
        room: c.room, slot: c.slot, shard: c.shard, k: c.k, joinedMs: c.joined_ms,
      }, c.ticket);
    }
  });

  it("ranks a ticket within its slot", () => {
    let n = 0;
    for (const shape of V.rank_in_slot) {
      for (const [k, shard, rank] of shape.cases) {
        assert.equal(rankInSlot(shape.counts, k, shard), rank, JSON.stringify([k, shard]));
        n++;
      }
    }
    assert.ok(n > 100);
  });

  it("draws the same pre-queue place, for every size and seed", async () => {
    const sizes = new Set(V.draw_place.map((c) => c.size));
    for (const size of [1, 2, 3, 1000, 1_000_003]) { assert.ok(sizes.has(size), size); }
    for (const c of V.draw_place) {
      assert.equal(await drawPlace(c.index, c.size, c.seed), c.place, JSON.stringify(c));
    }
  });

  it("estimates the wait", () => {
    for (const c of V.eta_seconds) {
      assert.equal(etaSeconds(c.position, c.admit_rate, c.fallback_rate), c.eta, JSON.stringify(c));
    }
  });

  it("turns the drainer's forecast into the same wait", () => {
    assert.ok(V.forecast_eta_seconds.length > 100);
    for (const c of V.forecast_eta_seconds) {
      const got = etaSeconds(c.position, c.admit_rate, c.fallback_rate, c.forecast, c.age);
      assert.equal(got, c.eta, JSON.stringify(c));
    }
  });

  it("waits as long between looks at a known place", () => {
    for (const c of V.poll_after_seconds) {
      assert.equal(pollAfterSeconds(c.position, c.eta, c.pickup_seconds), c.seconds,
        JSON.stringify(c));
    }
  });

  it("waits as long between looks in the pre-queue", () => {
    for (const c of V.prequeue_poll_seconds) {
      close(prequeuePollSeconds(c.until_open, c.prequeue_size, c.slot_seconds, c.u, c.pickup_seconds), c.seconds,
        JSON.stringify(c));
    }
  });

  it("looks again just after the slot settles, as the server says", () => {
    for (const c of V.settle_look_seconds) {
      const got = settleLookSeconds(c.slot, c.slot_seconds, c.joined_at, c.since_join, c.u);
      if (c.seconds === null) {
        assert.equal(got, null, JSON.stringify(c));
      } else {
        close(got, c.seconds, JSON.stringify(c));
      }
    }
  });

  it("counts the tickets ahead in an unsettled slot as the server does", () => {
    for (const c of V.ahead_in_slot) {
      close(aheadInSlot(c.k, c.shard, c.shards, c.per_shard), c.ahead, JSON.stringify(c));
    }
  });

  it("estimates a place before its slot settles as the server does", async () => {
    for (const c of V.estimate) {
      const place = await placeOf(c.ticket, c.state, null, c.now);
      assert.equal(place.kind, "estimate");
      assert.equal(place.exact, false);
      assert.equal(place.position, c.position, JSON.stringify(c));
      assert.equal(place.eta, c.eta, JSON.stringify(c));
      // the API's answer is the visitor's own look, in the middle of its spread, to a second
      const look = nextLookSeconds(place, c.state, 0.5, c.now, c.ticket);
      assert.equal(Math.max(1, Math.round(look)), c.poll_after_seconds, JSON.stringify(c));
    }
  });
});

describe("the page agrees with the Python client in a random room's draw windows", () => {
  it("computes the drawn place of every ticket of a window", async () => {
    assert.ok(V.drawn_windows.length > 20);
    for (const c of V.drawn_windows) {
      const place = await placeOf(c.ticket, c.state, c.slot);
      assert.equal(place.kind, c.kind, JSON.stringify(c));
      assert.equal(place.position, c.position, JSON.stringify(c));
    }
  });
});

"""The waiting page computes a visitor's place in JavaScript (waitingroom/static/waiting-logic.mjs)
the way the server does in Python. Cases computed here by the Python reference are committed as
tests/js/place-vectors.json, which node's tests check the JavaScript against; this test fails
when the file no longer matches the Python, so it cannot go stale.

Regenerate the file after a deliberate change: `.venv/bin/python -m tests.unit.test_place_vectors`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from waitingroom import client
from waitingroom.domain import (
    PublicState,
    RoomConfig,
    SettledSlot,
    ahead_in_slot,
    draw_place,
    draw_windows,
    eta_seconds,
    poll_after_seconds,
    prequeue_poll_seconds,
    rank_in_slot,
    settle_look_seconds,
)
from waitingroom.service.context import Context
from waitingroom.service.poll import Polls
from waitingroom.tokens import Ticket, sign_ticket

VECTORS = Path(__file__).resolve().parents[1] / "js" / "place-vectors.json"
REGENERATE = "regenerate it with `.venv/bin/python -m tests.unit.test_place_vectors`"


def _tickets(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for room in ("demo", "a", "sale-2030", "r" * 63):
        for _ in range(3):
            t = Ticket(
                room,
                rng.randrange(1_700_000_000, 1_900_000_000),
                rng.randrange(256),
                rng.randrange(1, 1 << 20),
                rng.randrange(1_700_000_000_000, 1_900_000_000_000),
            )
            text = sign_ticket(b"vector-secret", t)
            out.append(
                {
                    "ticket": text,
                    "room": t.room,
                    "slot": t.slot,
                    "shard": t.shard,
                    "k": t.k,
                    "joined_ms": t.joined_ms,
                }
            )
    return out


def _ranks(rng: random.Random) -> list[dict[str, Any]]:
    """Per slot shape: its counts and [k, shard, rank] for a few tickets of every shard."""
    shapes = [[0], [1], [3, 0, 2], [5, 5, 5, 5], [0, 0, 7, 1, 0, 3]]
    shapes += [[rng.randrange(0, 40) for _ in range(rng.choice((8, 32, 256)))] for _ in range(4)]
    out = []
    for counts in shapes:
        cases = [
            [k, shard, rank_in_slot(counts, k, shard)]
            for shard, c in enumerate(counts)
            for k in sorted({1, c, max(1, c // 2)})
            if 1 <= k <= c
        ]
        out.append({"counts": counts, "cases": cases})
    return out


def _draws(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for size in (1, 2, 3, 4, 5, 17, 1000, 65_537, 1_000_003):
        for seed in ("s", "9f86d081884c7d659a2feaa0c55ad015", "seed:with:colons"):
            indexes = {0, size - 1, size // 2} | {rng.randrange(size) for _ in range(3)}
            for index in sorted(indexes):
                out.append(
                    {
                        "index": index,
                        "size": size,
                        "seed": seed,
                        "place": draw_place(index, size, seed),
                    }
                )
    return out


def _polls() -> list[dict[str, Any]]:
    out = []
    for pickup in (5, 30, 120, 300, 900):
        for position in (0, 1, 7, 500):
            for eta in (None, 0, 1, 5, 6, 7, 59, 100, 179, 181, 600, 100_000):
                out.append(
                    {
                        "position": position,
                        "eta": eta,
                        "pickup_seconds": pickup,
                        "seconds": poll_after_seconds(position, eta, pickup),
                    }
                )
    return out


def _prequeue_polls() -> list[dict[str, Any]]:
    out = []
    for until_open in (-30.0, 0.0, 0.5, 10.0, 29.5, 61.0, 119.9, 600.0, 86_400.0):
        for size in (0, 1, 150_000, 1_000_000, 50_000_000):
            for slot_seconds in (1, 5):
                for u in (0.0, 0.25, 0.999):
                    for pickup in (15, 120):
                        seconds = prequeue_poll_seconds(until_open, size, slot_seconds, u, pickup)
                        out.append(
                            {
                                "until_open": until_open,
                                "prequeue_size": size,
                                "slot_seconds": slot_seconds,
                                "u": u,
                                "pickup_seconds": pickup,
                                "seconds": seconds,
                            }
                        )
    return out


def _settle_looks() -> list[dict[str, Any]]:
    out = []
    for slot_seconds, slot in ((1, 1_764_505_234), (5, 352_901_046), (60, 29_408_420)):
        for into in (0.0, 0.4, 0.999):
            joined_at = (slot + into) * slot_seconds
            for since_join in (0.1, 1.5, 3.0, 4.2, 7.0, 30.0, 120.0):
                for u in (0.0, 0.5, 0.999):
                    seconds = settle_look_seconds(slot, slot_seconds, joined_at, since_join, u)
                    out.append(
                        {
                            "slot": slot,
                            "slot_seconds": slot_seconds,
                            "joined_at": joined_at,
                            "since_join": since_join,
                            "u": u,
                            "seconds": seconds,
                        }
                    )
    return out


def _etas() -> list[dict[str, Any]]:
    out = []
    for position in (0, 1, 2, 99, 100, 12_345):
        for admit_rate in (0.0, 0.3, 1.0, 4.2, 100.0):
            for fallback in (0.0, 0.5, 5.0):
                out.append(
                    {
                        "position": position,
                        "admit_rate": admit_rate,
                        "fallback_rate": fallback,
                        "eta": eta_seconds(position, admit_rate, fallback),
                    }
                )
    return out


# forecasts as a drainer publishes them: a room that has just filled (nothing frees for a
# while), a steady one, one with a rate cap, and a short one
FORECASTS = (
    ((1.0, 0), (2.0, 0), (5.0, 0), (6.0, 38), (7.0, 140), (10.0, 150), (15.0, 290), (60.0, 1200)),
    ((1.0, 21), (2.0, 43), (3.0, 64), (8.0, 171), (30.0, 642), (60.0, 1285)),
    ((1.0, 0), (4.0, 2), (30.0, 15), (60.0, 30)),
    ((1.0, 7),),
)


def _forecast_etas() -> list[dict[str, Any]]:
    out = []
    for forecast in FORECASTS:
        for position in (0, 1, 2, 37, 38, 39, 100, 150, 151, 1199, 1200, 1201, 100_000):
            for admit_rate, age in ((0.0, 0.0), (21.4, 0.0), (21.4, 1.7), (2.5, -3.0), (0.5, 60.0)):
                for fallback in (0.0, 5.0):
                    eta = eta_seconds(position, admit_rate, fallback, forecast, age)
                    out.append(
                        {
                            "position": position,
                            "admit_rate": admit_rate,
                            "fallback_rate": fallback,
                            "forecast": [list(p) for p in forecast],
                            "age": age,
                            "eta": eta,
                        }
                    )
    return out


def _ahead_in_slot() -> list[dict[str, Any]]:
    out = []
    for per_shard in (0.0, 0.3, 1.5, 3.75, 12.5, 29.9, 30.0, 500.0):
        for k in (1, 2, 3, 7, 40, 99, 100, 101, 150, 600):
            for shards, shard in ((1, 0), (8, 5), (32, 31), (32, 0)):
                ahead = ahead_in_slot(k, shard, shards, per_shard)
                out.append(
                    {
                        "k": k,
                        "shard": shard,
                        "shards": shards,
                        "per_shard": per_shard,
                        "ahead": ahead,
                    }
                )
    return out


def _estimates(rng: random.Random) -> list[dict[str, Any]]:
    """The server's own estimate (Polls.estimate) and the state document fields it reads."""
    # estimate reads only the config, state, ticket and clock
    out = []
    for _ in range(40):
        cfg = RoomConfig(
            "demo",
            max_active=rng.choice((1, 50, 1000)),
            max_admits_per_minute=rng.choice((0, 30, 600)),
            session_seconds=rng.choice((60, 900)),
            pickup_seconds=rng.choice((30, 120)),
            shards=rng.choice((1, 8, 32)),
            slot_seconds=rng.choice((1, 2)),
        )
        settled_through = rng.randrange(1_800_000_000, 1_800_000_100)
        counted = [rng.randrange(0, 900) for _ in range(rng.randrange(0, 5))]
        consumed = rng.randrange(0, 5000)
        st = PublicState(
            version=rng.randrange(1, 10_000),
            settled_through=settled_through,
            settled_total=consumed + rng.randrange(0, 5000),
            consumed=consumed,
            admit_rate=rng.choice((0.0, 0.5, 4.2, 37.0)),
            join_rate_per_slot=rng.choice((0.0, 0.4, 12.5, 333.3)),
            unsettled_counts=tuple(counted),
            updated_at=(settled_through + len(counted)) * cfg.slot_seconds - rng.random(),
            admit_forecast=rng.choice(((), *FORECASTS)),
        )
        k = rng.choice((1, 1, 2, rng.randrange(1, 300)))
        slot = settled_through + rng.randrange(-2, 6)
        joined_ms = int((slot + rng.random()) * cfg.slot_seconds * 1000)
        t = Ticket("demo", slot, rng.randrange(32), k, joined_ms)
        now = joined_ms / 1000 + rng.choice((0.05, 0.3, 2.0, rng.uniform(0, 12)))
        w = Polls(cast(Context, SimpleNamespace(clock=lambda now=now: now))).estimate(cfg, st, t)
        out.append(
            {
                "ticket": {"slot": t.slot, "shard": t.shard, "k": t.k, "joinedMs": joined_ms},
                "state": {
                    "version": st.version,
                    "status": "open",
                    "settled_through": st.settled_through,
                    "settled_total": st.settled_total,
                    "consumed": st.consumed,
                    "waiting": st.waiting_settled,
                    "join_rate_per_slot": st.join_rate_per_slot,
                    "admit_rate": st.admit_rate,
                    "expected_rate": cfg.fallback_rate(),
                    "pickup_seconds": cfg.pickup_seconds,
                    "opens_slot": None,
                    "draw_seed": "",
                    "shards": cfg.shards,
                    "slot_seconds": cfg.slot_seconds,
                    "unsettled_counts": list(st.unsettled_counts),
                    "updated_at": st.updated_at,
                    "admit_forecast": [list(p) for p in st.admit_forecast],
                },
                "position": w.position,
                "eta": w.eta_seconds,
                "poll_after_seconds": w.poll_after_seconds,
                "now": now,
            }
        )
    return out


def _drawn_windows(rng: random.Random) -> list[dict[str, Any]]:
    """A random room's settled slots with their draw window, and the places the Python client
    computes for tickets in them (the page must compute the same)."""
    out = []
    for _ in range(6):
        shards = rng.choice((1, 4, 32))
        counts = [[rng.randrange(0, 6) for _ in range(shards)] for _ in range(rng.randrange(1, 4))]
        counts = [c for c in counts if sum(c)] or [[1] + [0] * (shards - 1)]
        before = rng.randrange(0, 500)
        slots: list[SettledSlot] = []
        total = before
        for i, c in enumerate(counts):
            slots.append(SettledSlot(1_800_000_000 + i, tuple(c), total))
            total += sum(c)
        consumed = before + rng.randrange(0, total - before)
        state = client.read_state(_state_doc(slots[-1].slot, total, consumed))
        for ss in draw_windows(slots, 600, f"vector-{rng.random()}"):
            for shard, n in enumerate(ss.counts):
                for k in range(1, n + 1):
                    t = client.Ticket("", "demo", ss.slot, shard, k, 0)
                    p = client.place(t, state, ss)
                    out.append(
                        {
                            "ticket": {"slot": ss.slot, "shard": shard, "k": k, "joinedMs": 0},
                            "state": _state_doc(slots[-1].slot, total, consumed),
                            "slot": _slot_doc(ss),
                            "kind": p.kind,
                            "position": p.position,
                        }
                    )
    return out


def _state_doc(settled_through: int, total: int, consumed: int) -> dict[str, Any]:
    return {
        "room": "demo",
        "version": 1,
        "status": "open",
        "slot_seconds": 1,
        "settled_through": settled_through,
        "settled_total": total,
        "consumed": consumed,
        "waiting": total - consumed,
        "join_rate_per_slot": 0.0,
        "admit_rate": 2.0,
        "expected_rate": 2.0,
        "pickup_seconds": 120,
        "opens_at": None,
        "opens_slot": None,
        "prequeue_size": 0,
        "draw_seed": "",
        "closed_slot": None,
        "updated_at": 0.0,
        "shards": 32,
        "unsettled_counts": [],
    }


def _slot_doc(ss: SettledSlot) -> dict[str, Any]:
    return {
        "room": "demo",
        "slot": ss.slot,
        "counts": list(ss.counts),
        "tickets_before": ss.cum_before,
        "total": ss.total,
        "draw_start": ss.draw_start,
        "draw_size": ss.draw_size,
        "draw_seed": ss.draw_seed,
    }


def vectors() -> dict[str, Any]:
    rng = random.Random(20300101)
    return {
        "about": "Computed by tests/unit/test_place_vectors.py from waitingroom.domain; "
        + REGENERATE,
        "tickets": _tickets(rng),
        "rank_in_slot": _ranks(rng),
        "draw_place": _draws(rng),
        "poll_after_seconds": _polls(),
        "prequeue_poll_seconds": _prequeue_polls(),
        "settle_look_seconds": _settle_looks(),
        "eta_seconds": _etas(),
        "forecast_eta_seconds": _forecast_etas(),
        "estimate": _estimates(rng),
        "ahead_in_slot": _ahead_in_slot(),
        "drawn_windows": _drawn_windows(rng),
    }


def render() -> str:
    """Compact JSON, one case a line (the file stays small and its diffs readable)."""
    text = json.dumps(vectors(), sort_keys=True, separators=(",", ":"))
    return text.replace("},{", "},\n{") + "\n"


def test_the_committed_vectors_are_what_the_python_reference_computes() -> None:
    assert VECTORS.is_file(), f"{VECTORS} is missing: {REGENERATE}"
    assert json.loads(VECTORS.read_text()) == json.loads(render()), (
        f"{VECTORS.name} no longer matches waitingroom.domain: {REGENERATE}, and check that "
        "the waiting page (node --test tests/js/) still agrees"
    )


def test_the_drawn_window_vectors_hold_turns_and_places() -> None:
    kinds = {case["kind"] for case in vectors()["drawn_windows"]}
    assert {"turn", "waiting"} <= kinds


def test_the_vectors_cover_every_draw_size_the_page_must_handle() -> None:
    sizes = {case["size"] for case in vectors()["draw_place"]}
    assert {1, 2, 3, 1000, 1_000_003} <= sizes


if __name__ == "__main__":
    VECTORS.write_text(render())

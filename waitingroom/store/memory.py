"""An in-memory twin of the DynamoDB store, for fast unit tests.

Same interface, same conditions: conditional puts, version-conditioned commits, leases and
expiry checked against the injected clock, counters, the ticket transitions with their ledger.
Items are not deleted when they expire (neither does DynamoDB promise to, for up to ~48 h):
every condition and read that looks at an expiry does so itself, as the DynamoDB store does.
One lock makes each call atomic, as each DynamoDB request or transaction is.
tests/unit/test_store_contract.py runs the same scenarios against both, so they cannot drift.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from waitingroom.domain import (
    Batch,
    DrainerState,
    LedgerCounts,
    PublicState,
    RoomConfig,
    SettledSlot,
)
from waitingroom.store.interface import (
    KEEP_SECONDS,
    REVOKED_BUCKET_SECONDS,
    SEALED_POOL,
    AdmittedTicket,
    Conflict,
)


@dataclass
class _Items:
    """Every item, by kind; keys are the parts of the DynamoDB key that vary."""

    configs: dict[str, RoomConfig] = field(default_factory=dict)
    registry: set[str] = field(default_factory=set)
    audit: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # room, sk
    nudges: dict[str, float] = field(default_factory=dict)
    counters: dict[tuple[str, int, int], int] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    clients: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    slots: dict[str, dict[int, SettledSlot]] = field(default_factory=dict)
    public: dict[str, PublicState] = field(default_factory=dict)
    drainer: dict[str, DrainerState] = field(default_factory=dict)
    leases: dict[str, tuple[str, float]] = field(default_factory=dict)
    tickets: dict[tuple[str, int, int, int], AdmittedTicket] = field(default_factory=dict)
    ledger: dict[tuple[str, int, int], dict[str, int]] = field(default_factory=dict)
    unheld: dict[str, set[tuple[int, int, int]]] = field(default_factory=dict)
    jwks: str | None = None
    revoked: dict[str, dict[int, set[str]]] = field(default_factory=dict)
    free_places: dict[str, int] = field(default_factory=dict)  # places given as numbers


class MemoryStore:
    """Implements `WaitingRoomStore` in memory. Thread-safe (one lock)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._items = _Items()

    def ping(self) -> None:
        return None

    # -- rooms ----------------------------------------------------------------------------

    def put_room_config(self, cfg: RoomConfig, expected_version: int | None) -> RoomConfig:
        new = replace(cfg, version=cfg.version + 1 if expected_version is not None else 1)
        with self._lock:
            current = self._items.configs.get(cfg.room)
            if expected_version is None and current is not None:
                raise Conflict("put_item")
            if expected_version is not None and (
                current is None or current.version != expected_version
            ):
                raise Conflict("put_item")
            self._items.configs[cfg.room] = new
            self._items.registry.add(cfg.room)
        return new

    def get_room_config(self, room: str, consistent: bool = False) -> RoomConfig | None:
        with self._lock:
            return self._items.configs.get(room)

    def list_rooms(self) -> list[str]:
        with self._lock:
            return sorted(self._items.registry)

    def append_audit(self, room: str, actor: str, action: str, details: dict[str, Any]) -> None:
        now = self.clock()
        entry = {
            "at": repr(now),
            "actor": actor,
            "action": action,
            "details": json.dumps(details, sort_keys=True, default=str),
        }
        with self._lock:
            trail = self._items.audit.setdefault(room, {})
            trail[f"{now:017.6f}#{uuid.uuid4().hex[:8]}"] = entry

    def list_audit(self, room: str, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            trail = self._items.audit.get(room, {})
            newest = [trail[sk] for sk in sorted(trail, reverse=True)[:limit]]
        return [
            {
                "at": float(e["at"]),
                "actor": e["actor"],
                "action": e["action"],
                "details": json.loads(e["details"]),
            }
            for e in newest
        ]

    def put_nudge(self, room: str) -> None:
        now = self.clock()
        with self._lock:
            self._items.nudges[room] = now

    def get_nudges(self) -> dict[str, float]:
        with self._lock:
            return dict(self._items.nudges)

    # -- queue ----------------------------------------------------------------------------

    def bump_counter(self, room: str, slot: int, shard: int, slot_seconds: int) -> int:
        with self._lock:
            n = self._items.counters.get((room, slot, shard), 0) + 1
            self._items.counters[(room, slot, shard)] = n
            return n

    def claim_pool(self, room: str, seq: int, size: int) -> int | None:
        with self._lock:
            key = (room, -seq, 0)
            n = self._items.counters.get(key, 0)
            if n >= size:
                return None
            self._items.counters[key] = n + 1
            return n + 1

    def seal_pool(self, room: str, seq: int) -> int:
        with self._lock:
            key = (room, -seq, 0)
            n = self._items.counters.get(key, 0) + SEALED_POOL
            self._items.counters[key] = n
            return n % SEALED_POOL

    def claim_free_place(self, room: str, limit: int) -> bool:
        with self._lock:
            given = self._items.free_places.get(room, 0)
            if given >= limit:
                return False
            self._items.free_places[room] = given + 1
            return True

    def free_places_given(self, room: str) -> int:
        with self._lock:
            return self._items.free_places.get(room, 0)

    def add_free_places_given(self, room: str, n: int) -> None:
        with self._lock:
            self._items.free_places[room] = self._items.free_places.get(room, 0) + n

    def read_counters(
        self, room: str, slots: Sequence[int], shards: int
    ) -> dict[int, tuple[int, ...]]:
        with self._lock:
            c = self._items.counters
            return {sl: tuple(c.get((room, sl, s), 0) for s in range(shards)) for sl in slots}

    def put_unheld(self, room: str, slot: int, shard: int, k: int, reason: str) -> None:
        with self._lock:
            self._items.unheld.setdefault(room, set()).add((slot, shard, k))

    def unheld_numbers(self, room: str, first: int, last: int) -> set[tuple[int, int, int]]:
        with self._lock:
            return {n for n in self._items.unheld.get(room, set()) if first <= n[0] <= last}

    def count_unheld(self, room: str) -> int:
        with self._lock:
            return len(self._items.unheld.get(room, set()))

    def get_idempotent(self, room: str, key: str) -> str | None:
        now = self.clock()
        with self._lock:
            found = self._items.idempotency.get((room, key))
        if found is None or found[1] < now:
            return None
        return found[0]

    def put_idempotent(self, room: str, key: str, ticket: str, keep_seconds: int) -> str:
        now = int(self.clock())
        with self._lock:
            found = self._items.idempotency.get((room, key))
            if found is None or found[1] < now:
                self._items.idempotency[(room, key)] = (ticket, now + keep_seconds)
                return ticket
        return self.get_idempotent(room, key) or ticket

    def count_client_join(
        self, room: str, client_hash: str, *, now: float, max_total: int, max_per_minute: int
    ) -> str | None:
        minute = int(now // 60)
        cur = f"m{minute}"
        with self._lock:
            item = self._items.clients.setdefault((room, client_hash), {})
            if max_total > 0 and item.get("t", 0) >= max_total:
                return "total"
            if max_per_minute > 0 and item.get(cur, 0) >= max_per_minute:
                return "per_minute"
            item["t"] = item.get("t", 0) + 1
            item[cur] = item.get(cur, 0) + 1
            item.setdefault("expires_at", int(now) + KEEP_SECONDS)
            item.pop(f"m{minute - 1}", None)
            item.pop(f"m{minute - 2}", None)
        return None

    # -- settled slots --------------------------------------------------------------------

    def put_settled_slots(self, room: str, slots: Sequence[SettledSlot], keep_until: int) -> None:
        with self._lock:
            stored = self._items.slots.setdefault(room, {})
            for s in slots:
                stored[s.slot] = s

    def get_settled_slot(self, room: str, slot: int) -> SettledSlot | None:
        with self._lock:
            return self._items.slots.get(room, {}).get(slot)

    def settled_slots_from(self, room: str, first: int, last: int) -> Iterable[SettledSlot]:
        with self._lock:
            stored = self._items.slots.get(room, {})
            found = [stored[s] for s in sorted(stored) if first <= s <= last]
        return iter(found)

    # -- room state -----------------------------------------------------------------------

    def get_public_state(self, room: str, consistent: bool = False) -> PublicState | None:
        with self._lock:
            return self._items.public.get(room)

    def get_drainer_state(self, room: str) -> DrainerState | None:
        with self._lock:
            return self._items.drainer.get(room)

    def commit_state(
        self, room: str, public: PublicState, drainer: DrainerState, expected_version: int
    ) -> None:
        with self._lock:
            for held in (self._items.public.get(room), self._items.drainer.get(room)):
                exists = held is not None
                if (expected_version == 0 and exists) or (
                    expected_version != 0 and (held is None or held.version != expected_version)
                ):
                    raise Conflict("transaction")
            self._items.public[room] = replace(public, version=expected_version + 1)
            self._items.drainer[room] = replace(drainer, version=expected_version + 1)

    def acquire_lease(self, room: str, owner: str, seconds: float) -> bool:
        now = self.clock()
        with self._lock:
            held = self._items.leases.get(room)
            if held is not None and not (held[1] < now or held[0] == owner):
                return False
            self._items.leases[room] = (owner, now + seconds)
            return True

    def lease_expiry(self, room: str) -> float | None:
        with self._lock:
            held = self._items.leases.get(room)
        return held[1] if held is not None else None

    def release_lease(self, room: str, owner: str) -> None:
        with self._lock:
            held = self._items.leases.get(room)
            if held is not None and held[0] == owner:
                del self._items.leases[room]

    # -- tickets --------------------------------------------------------------------------

    def put_admitted(self, room: str, tickets: Sequence[AdmittedTicket]) -> int:
        new = 0
        with self._lock:
            for t in tickets:
                key = (room, t.slot, t.shard, t.k)
                if key not in self._items.tickets:
                    self._items.tickets[key] = replace(t, state="admitted")
                    new += 1
        return new

    def get_ticket(
        self, room: str, slot: int, shard: int, k: int, consistent: bool = True
    ) -> AdmittedTicket | None:
        with self._lock:
            return self._items.tickets.get((room, slot, shard, k))

    def _transition(
        self, room: str, t: AdmittedTicket, ledger_shard: int, to_state: str, now: float
    ) -> None:
        from_state = "admitted" if to_state == "picked" else "picked"
        with self._lock:
            key = (room, t.slot, t.shard, t.k)
            held = self._items.tickets.get(key)
            if held is None or held.state != from_state:
                raise Conflict("transaction")
            deadline = held.pickup_deadline if to_state == "picked" else held.expires_at
            if not deadline > now:
                raise Conflict("transaction")
            self._items.tickets[key] = replace(held, state=to_state)
            counts = self._items.ledger.setdefault((room, t.seq, ledger_shard), {})
            counts[to_state] = counts.get(to_state, 0) + 1

    def pick_up(self, room: str, t: AdmittedTicket, ledger_shard: int, now: float) -> None:
        self._transition(room, t, ledger_shard, "picked", now)

    def complete(self, room: str, t: AdmittedTicket, ledger_shard: int, now: float) -> None:
        self._transition(room, t, ledger_shard, "completed", now)

    def read_ledger(self, room: str, batches: Sequence[Batch]) -> dict[int, LedgerCounts]:
        out: dict[int, LedgerCounts] = {}
        with self._lock:
            for b in batches:
                shards = [
                    self._items.ledger.get((room, b.seq, n), {}) for n in range(b.ledger_shards)
                ]
                unheld = sum(c.get("unheld", 0) for c in shards)
                out[b.seq] = LedgerCounts(
                    sum(c.get("picked", 0) for c in shards) + unheld,
                    sum(c.get("completed", 0) for c in shards) + unheld,
                )
        return out

    def release_unheld(self, room: str, batch: Batch, n: int) -> None:
        with self._lock:
            self._items.ledger.setdefault((room, batch.seq, 0), {})["unheld"] = n

    # -- keys -----------------------------------------------------------------------------

    def put_jwks(self, jwks: dict[str, Any]) -> None:
        text = json.dumps(jwks, sort_keys=True)
        with self._lock:
            self._items.jwks = text

    def get_jwks(self) -> dict[str, Any] | None:
        with self._lock:
            text = self._items.jwks
        if text is None:
            return None
        jwks: dict[str, Any] = json.loads(text)
        return jwks

    def add_revoked(self, room: str, jti: str, exp: float) -> None:
        bucket = int(exp // REVOKED_BUCKET_SECONDS)
        with self._lock:
            self._items.revoked.setdefault(room, {}).setdefault(bucket, set()).add(jti)

    def list_revoked(self, room: str, now: float) -> list[str]:
        first = int(now // REVOKED_BUCKET_SECONDS) - 1
        with self._lock:
            buckets = self._items.revoked.get(room, {})
            return sorted({j for b, jtis in buckets.items() if b >= first for j in jtis})

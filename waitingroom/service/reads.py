"""Cached reads: what a poll needs without a DynamoDB read in the common case.

The room's config (≤ `config_ttl` old), its public state (≤ `state_ttl`), settled slots
(immutable once settled: kept until evicted), the JWKS and the revocation list. One instance per
container, owned by the service; nothing here is module-level.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from cachetools import LRUCache, TTLCache

from waitingroom.domain import (
    JOIN_OVERDUE_LIMIT_SECONDS,
    JOIN_OVERDUE_POLL_SECONDS,
    STATE_HOLD_OVERDUE_SECONDS,
    STATE_OVERDUE_LIMIT_SECONDS,
    STATE_OVERDUE_POLL_SECONDS,
    PublicState,
    RoomConfig,
    SettledSlot,
    publish_due,
    state_good_until,
)
from waitingroom.errors import InvalidRequest, UnknownRoom
from waitingroom.store import StoreUnavailable, WaitingRoomStore
from waitingroom.tokens import valid_room_id

T = TypeVar("T")
JWKS_SECONDS = 300.0
JWKS_REFETCH_SECONDS = 30.0
REVOKED_SECONDS = 2.0
STATE_ROOMS = 1024  # rooms whose state a container keeps (the least recently read go first)
SEEN_SLOTS = 8  # slots back whose numbers given by this container's joins are kept


class Cached(Generic[T]):
    """A cachetools cache behind a lock, filled by the caller's fetch on a miss."""

    def __init__(self, cache: TTLCache[str, T] | LRUCache[str, T]) -> None:
        self._cache = cache
        self._lock = threading.Lock()

    @classmethod
    def ttl(cls, seconds: float, clock: Callable[[], float], size: int = 1024) -> Cached[T]:
        return cls(TTLCache(maxsize=size, ttl=seconds, timer=clock))

    def get(self, key: str, fetch: Callable[[], T]) -> T:
        with self._lock:
            try:
                return self._cache[key]
            except KeyError:
                pass
        value = fetch()  # outside the lock: a slow read never blocks other keys
        with self._lock:
            self._cache[key] = value
        return value

    def forget(self, key: str) -> None:
        with self._lock:
            self._cache.pop(key, None)


def check_room_id(room: str) -> None:
    if not valid_room_id(room):
        raise InvalidRequest(
            "room ids are 1-63 lowercase letters, digits and dashes", code="invalid_room"
        )


class RoomReads:
    def __init__(
        self,
        store: WaitingRoomStore,
        clock: Callable[[], float],
        *,
        state_ttl: float = 1.0,
        config_ttl: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.clock = clock
        self.sleep = sleep
        self._configs: Cached[RoomConfig | None] = Cached.ttl(config_ttl, clock)
        self._state_ttl = state_ttl
        # room -> (its state, read at): one copy for every caller, each judging its age
        self._states: LRUCache[str, tuple[PublicState, float]] = LRUCache(maxsize=STATE_ROOMS)
        self._states_lock = threading.RLock()  # _publish_due reads what it saw, under it or not
        self._refreshing: set[str] = set()  # rooms whose state a thread is reading now
        self._holding: set[str] = set()  # rooms whose state a request waits on for the edge
        # room -> slot -> shard -> the highest k this container's joins were given
        # room -> slot -> shard -> (the highest k this container's joins were given, how many)
        self._seen: LRUCache[str, dict[int, dict[int, tuple[int, int]]]] = LRUCache(
            maxsize=STATE_ROOMS
        )
        self._slots: Cached[SettledSlot | None] = Cached(LRUCache(maxsize=20_000))
        self._jwks: Cached[dict[str, Any]] = Cached.ttl(JWKS_SECONDS, clock, size=1)
        self._jwks_refetched_at = 0.0
        self._revoked: Cached[list[str]] = Cached.ttl(REVOKED_SECONDS, clock, size=256)

    def saw_number(self, room: str, slot: int, shard: int, k: int) -> None:
        """A join of this container was given number `k` in `shard` of `slot`: that shard's
        counter was at least `k` then (whoever else's joins bumped it)."""
        with self._states_lock:
            slots = self._seen.get(room)
            if slots is None:
                slots = self._seen[room] = {}
            counts = slots.setdefault(slot, {})
            highest, given = counts.get(shard, (0, 0))
            counts[shard] = (max(k, highest), given + 1)
            for old in [sl for sl in slots if sl < slot - SEEN_SLOTS]:
                del slots[old]

    def seen_counts(self, room: str, first: int, last: int) -> tuple[list[int], list[bool]]:
        """Per slot from `first` to `last`, the joins this container knows each slot had (the
        highest k it was given in each shard, summed: a floor under the slot's count), and
        whether it gave every one of those numbers itself (then it is the count so far: no
        other container's join went in between)."""
        with self._states_lock:
            slots = self._seen.get(room) or {}
            floors, whole = [], []
            for sl in range(first, last + 1):
                counts = slots.get(sl, {}).values()
                floors.append(sum(h for h, _ in counts))
                whole.append(bool(counts) and all(h == given for h, given in counts))
            return floors, whole

    def config(self, room: str) -> RoomConfig:
        """The room's config; InvalidRequest for a malformed id, UnknownRoom for none."""
        check_room_id(room)
        cfg = self._configs.get(room, lambda: self.store.get_room_config(room))
        if cfg is None:
            raise UnknownRoom(room)
        return cfg

    def forget_config(self, room: str) -> None:
        self._configs.forget(room)

    def state(
        self, cfg: RoomConfig, min_version: int = 0, *, for_edge: bool = False
    ) -> PublicState:
        """The room's public state, as cached: at most `state_ttl` old, and read again just
        after the drainer should have published a settle (its tick may have admitted a crowd);
        `for_edge`, also every 0.1 s while that settle is overdue (`domain.state_good_until`):
        what the edge keeps for everybody. Joins and polls read an overdue settle once more
        (`JOIN_OVERDUE_*`): a container reads the one state item at most twice a second
        however many containers there are."""
        now = self.clock()
        with self._states_lock:
            st, fetched_at = self._states.get(cfg.room, (None, 0.0))
            if st is not None and st.version >= min_version:
                due = self._publish_due(cfg, st)
                overdue = (
                    (STATE_OVERDUE_POLL_SECONDS, STATE_OVERDUE_LIMIT_SECONDS)
                    if for_edge
                    else (JOIN_OVERDUE_POLL_SECONDS, JOIN_OVERDUE_LIMIT_SECONDS)
                )
                good_until = state_good_until(fetched_at, self._state_ttl, due, *overdue)
                if now < good_until or cfg.room in self._refreshing:
                    # good, or expired while another thread of this container is reading it
                    # again: one read at a time, not one per request in flight
                    return st
            self._refreshing.add(cfg.room)
        try:
            # expired, or the client has seen a newer state from another container: read it
            # again, so a position it was shown never goes back up
            st = self.store.get_public_state(cfg.room) or PublicState(
                settled_through=cfg.epoch_slot - 1
            )
        except StoreUnavailable:
            # the store refused the read (throttled, or down): the copy held answers for
            # another short while, if the client has seen nothing newer, rather than a 503
            with self._states_lock:
                held, _ = self._states.get(cfg.room, (None, 0.0))
                if held is None or held.version < min_version:
                    raise
                self._states[cfg.room] = (held, now)  # as if just read: no read per request
            return held
        finally:
            with self._states_lock:
                self._refreshing.discard(cfg.room)
        with self._states_lock:
            held, _ = self._states.get(cfg.room, (None, 0.0))
            if held is None or held.version <= st.version:  # a slower, older read loses
                self._states[cfg.room] = (st, now)
        return st

    def _publish_due(self, cfg: RoomConfig, st: PublicState) -> float | None:
        if cfg.queueing == "random":  # a random room settles whole draw windows at its ticks
            return None
        return publish_due(
            st.settled_through,
            st.unsettled_counts,
            st.updated_at,
            cfg.slot_seconds,
            st.join_rate_per_slot,
            self._oldest_seen_after(cfg.room, st.settled_through),
        )

    def _oldest_seen_after(self, room: str, slot: int) -> int | None:
        """The oldest slot after `slot` this container gave a number in (see `saw_number`)."""
        with self._states_lock:
            return min((sl for sl in self._seen.get(room) or {} if sl > slot), default=None)

    def state_for_cache(self, cfg: RoomConfig, hold: float) -> PublicState:
        """The state for a shared cache that will answer everybody from it for its life: when
        the drainer should publish a settle within `hold` seconds, wait for that publish (at
        most `STATE_HOLD_OVERDUE_SECONDS` past its due moment) rather than hand out a copy that
        goes stale at once. One such wait per room at a time: any other request answers at
        once with the copy there is."""
        st = self.state(cfg, for_edge=True)
        due = self._publish_due(cfg, st)
        if due is None or due - self.clock() > hold:
            return st
        with self._states_lock:
            if cfg.room in self._holding:
                return st
            self._holding.add(cfg.room)
        try:
            return self._wait_for_publish(cfg, st, due, hold)
        finally:
            with self._states_lock:
                self._holding.discard(cfg.room)

    def _wait_for_publish(
        self, cfg: RoomConfig, st: PublicState, due: float, hold: float
    ) -> PublicState:
        deadline = due + STATE_HOLD_OVERDUE_SECONDS
        looks = math.ceil((hold + STATE_HOLD_OVERDUE_SECONDS) / STATE_OVERDUE_POLL_SECONDS) + 1
        while looks > 0 and (now := self.clock()) < deadline:
            looks -= 1
            self.sleep(max(STATE_OVERDUE_POLL_SECONDS, min(due - now, hold)))
            fresh = self.state(cfg, for_edge=True)
            if fresh.settled_through != st.settled_through:
                return fresh
            st = fresh
        return st

    def settled_slot(
        self, room: str, slot: int, remember_absence: bool = False
    ) -> SettledSlot | None:
        """A settled slot (kept: it never changes); None for none, forgotten at once unless
        the caller knows the absence is final (the slot settled empty long ago)."""
        key = f"{room}#{slot}"
        found = self._slots.get(key, lambda: self.store.get_settled_slot(room, slot))
        if found is None and not remember_absence:
            self._slots.forget(key)
        return found

    def jwks(self, refetch: bool = False) -> dict[str, Any]:
        """The public keys the drainer published; `refetch` re-reads them (at most every 30 s),
        for a token signed with a key this container has not seen yet."""
        now = self.clock()
        if refetch and now - self._jwks_refetched_at > JWKS_REFETCH_SECONDS:
            self._jwks_refetched_at = now
            self._jwks.forget("jwks")
        jwks = self._jwks.get("jwks", lambda: self.store.get_jwks() or {"keys": []})
        if not jwks["keys"]:
            self._jwks.forget("jwks")
        return jwks

    def revoked(self, room: str) -> list[str]:
        """The room's revoked, unexpired jti's."""
        return self._revoked.get(room, lambda: self.store.list_revoked(room, self.clock()))

    def forget_revoked(self, room: str) -> None:
        self._revoked.forget(room)

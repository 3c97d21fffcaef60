"""Cached reads: what a poll needs without a DynamoDB read in the common case.

The room's config (≤ `config_ttl` old), its public state (≤ `state_ttl`), settled slots
(immutable once settled: kept until evicted), the JWKS and the revocation list. One instance per
container, owned by the service; nothing here is module-level.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from cachetools import LRUCache, TTLCache

from waitingroom.domain import PublicState, RoomConfig, SettledSlot
from waitingroom.errors import InvalidRequest, UnknownRoom
from waitingroom.store import WaitingRoomStore
from waitingroom.tokens import valid_room_id

T = TypeVar("T")
JWKS_SECONDS = 300.0
JWKS_REFETCH_SECONDS = 30.0
REVOKED_SECONDS = 2.0


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
    ) -> None:
        self.store = store
        self.clock = clock
        self._configs: Cached[RoomConfig | None] = Cached.ttl(config_ttl, clock)
        self._states: Cached[PublicState] = Cached.ttl(state_ttl, clock)
        self._slots: Cached[SettledSlot | None] = Cached(LRUCache(maxsize=20_000))
        self._jwks: Cached[dict[str, Any]] = Cached.ttl(JWKS_SECONDS, clock, size=1)
        self._jwks_refetched_at = 0.0
        self._revoked: Cached[list[str]] = Cached.ttl(REVOKED_SECONDS, clock, size=256)

    def config(self, room: str) -> RoomConfig:
        """The room's config; InvalidRequest for a malformed id, UnknownRoom for none."""
        check_room_id(room)
        cfg = self._configs.get(room, lambda: self.store.get_room_config(room))
        if cfg is None:
            raise UnknownRoom(room)
        return cfg

    def forget_config(self, room: str) -> None:
        self._configs.forget(room)

    def state(self, cfg: RoomConfig, min_version: int = 0) -> PublicState:
        def fetch() -> PublicState:
            return self.store.get_public_state(cfg.room) or PublicState(
                settled_through=cfg.epoch_slot - 1
            )

        st = self._states.get(cfg.room, fetch)
        if st.version < min_version:
            # the client has seen a newer state from another container: read it again once,
            # so a position it was shown never goes back up
            self._states.forget(cfg.room)
            st = self._states.get(cfg.room, fetch)
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

"""What the use cases need from storage, one small protocol per kind of item.

A function that takes a `SlotStore` can only touch settled slots; the service and the drainer
take the whole `WaitingRoomStore`. `Store` (DynamoDB) and `MemoryStore` (unit tests) implement
every protocol, with the same conditions: a lost condition raises Conflict, an outage
StoreUnavailable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from waitingroom.domain import (
    Batch,
    DrainerState,
    LedgerCounts,
    PublicState,
    RoomConfig,
    SettledSlot,
)

KEEP_SECONDS = 7 * 24 * 3600  # queue data outlives any realistic wait
# added to a pool's claim counter when it is sealed: above any size, so no claim succeeds, and
# the claims taken before stay readable as n % SEALED_POOL (sealing twice answers the same)
SEALED_POOL = 1 << 30
AUDIT_KEEP_SECONDS = 400 * 24 * 3600
REVOKED_BUCKET_SECONDS = 60
# an admitted ticket's item (and its ledger) is kept this long past the token's exp
TICKET_KEEP_SECONDS = 86_400


class StoreUnavailable(Exception):
    """The store cannot be reached or is throttling: retry after a few seconds.

    `ambiguous` is True when a write failed in a way that does not say whether it happened (a
    timeout after the request was sent, a 500): it may still land, so it is never retried."""

    def __init__(self, what: str, *, ambiguous: bool = False) -> None:
        super().__init__(what)
        self.ambiguous = ambiguous


class Conflict(Exception):
    """A conditional write lost: somebody else changed the item first. `item` is the item as
    it was (plain values), when the write asked for it (ReturnValuesOnConditionCheckFailure)."""

    def __init__(self, what: str, item: dict[str, Any] | None = None) -> None:
        super().__init__(what)
        self.item = item


@dataclass(frozen=True, slots=True)
class AdmittedTicket:
    """The item the drainer writes when it admits a ticket (the token rides inside)."""

    slot: int
    shard: int
    k: int
    state: str  # admitted -> picked -> completed
    token: str
    seq: int
    ledger_shards: int
    admitted_at: float
    pickup_deadline: float
    expires_at: float


class RoomStore(Protocol):
    """Room config and the registry of rooms; the operators' audit trail and drain requests."""

    def put_room_config(self, cfg: RoomConfig, expected_version: int | None) -> RoomConfig: ...
    def get_room_config(self, room: str, consistent: bool = False) -> RoomConfig | None: ...
    def list_rooms(self) -> list[str]: ...
    def append_audit(self, room: str, actor: str, action: str, details: dict[str, Any]) -> None: ...
    def list_audit(self, room: str, limit: int = 50) -> list[dict[str, Any]]: ...
    def put_nudge(self, room: str) -> None: ...
    def get_nudges(self) -> dict[str, float]: ...


class QueueStore(Protocol):
    """Joining: the (slot, shard) counters, idempotency records, per-client join counts, and
    the claim counter of an idle room's pool of tokens minted ahead."""

    def bump_counter(self, room: str, slot: int, shard: int, slot_seconds: int) -> int: ...
    def claim_pool(self, room: str, seq: int, size: int) -> int | None: ...
    def seal_pool(self, room: str, seq: int) -> int: ...
    def claim_free_place(self, room: str, limit: int) -> bool: ...
    def free_places_given(self, room: str) -> int: ...
    def add_free_places_given(self, room: str, n: int) -> None: ...
    def read_counters(
        self, room: str, slots: Sequence[int], shards: int
    ) -> dict[int, tuple[int, ...]]: ...
    def get_idempotent(self, room: str, key: str) -> str | None: ...
    def put_idempotent(self, room: str, key: str, ticket: str, keep_seconds: int) -> str: ...
    def count_client_join(
        self, room: str, client_hash: str, *, now: float, max_total: int, max_per_minute: int
    ) -> str | None: ...
    def put_unheld(self, room: str, slot: int, shard: int, k: int, reason: str) -> None: ...
    def unheld_numbers(self, room: str, first: int, last: int) -> set[tuple[int, int, int]]: ...
    def count_unheld(self, room: str) -> int: ...


class SlotStore(Protocol):
    """Settled slots: immutable once written."""

    def put_settled_slots(
        self, room: str, slots: Sequence[SettledSlot], keep_until: int
    ) -> None: ...
    def get_settled_slot(self, room: str, slot: int) -> SettledSlot | None: ...
    def settled_slots_from(self, room: str, first: int, last: int) -> Iterable[SettledSlot]: ...


class RoomStateStore(Protocol):
    """The public and the drainer's state of a room (committed together), and the lease."""

    def get_public_state(self, room: str, consistent: bool = False) -> PublicState | None: ...
    def get_drainer_state(self, room: str) -> DrainerState | None: ...
    def commit_state(
        self, room: str, public: PublicState, drainer: DrainerState, expected_version: int
    ) -> None: ...
    def acquire_lease(self, room: str, owner: str, seconds: float) -> bool: ...
    def release_lease(self, room: str, owner: str) -> None: ...
    def lease_expiry(self, room: str) -> float | None: ...


class TicketStore(Protocol):
    """Admitted tickets, their pickup and completion, counted in the batches' ledgers."""

    def put_admitted(self, room: str, tickets: Sequence[AdmittedTicket]) -> int: ...
    def get_ticket(
        self, room: str, slot: int, shard: int, k: int, consistent: bool = True
    ) -> AdmittedTicket | None: ...
    def pick_up(self, room: str, t: AdmittedTicket, ledger_shard: int, now: float) -> None: ...
    def complete(self, room: str, t: AdmittedTicket, ledger_shard: int, now: float) -> None: ...
    def read_ledger(self, room: str, batches: Sequence[Batch]) -> dict[int, LedgerCounts]: ...
    def release_unheld(self, room: str, batch: Batch, n: int) -> None: ...


class KeyStore(Protocol):
    """The public signing keys (JWKS) and the list of tokens revoked before their exp."""

    def put_jwks(self, jwks: dict[str, Any]) -> None: ...
    def get_jwks(self) -> dict[str, Any] | None: ...
    def add_revoked(self, room: str, jti: str, exp: float) -> None: ...
    def list_revoked(self, room: str, now: float) -> list[str]: ...


class WaitingRoomStore(
    RoomStore, QueueStore, SlotStore, RoomStateStore, TicketStore, KeyStore, Protocol
):
    """Every kind of item: what the service and the drainer are given."""

    def ping(self) -> None: ...

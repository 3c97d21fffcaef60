"""Storage behind small protocols, one per kind of item (`interface`); the DynamoDB adapter
(`dynamodb.Store`) and its in-memory twin for unit tests (`memory.MemoryStore`)."""

from __future__ import annotations

from waitingroom.store.dynamodb import (
    RetryPolicy,
    Store,
    counter_pk,
    decode_drainer_state,
    encode_drainer_state,
    ledger_pk,
    make_client,
    room_pk,
    ticket_sk,
)
from waitingroom.store.interface import (
    AUDIT_KEEP_SECONDS,
    KEEP_SECONDS,
    REVOKED_BUCKET_SECONDS,
    SEALED_POOL,
    AdmittedTicket,
    Conflict,
    KeyStore,
    QueueStore,
    RoomStateStore,
    RoomStore,
    SlotStore,
    StoreUnavailable,
    TicketStore,
    WaitingRoomStore,
)

__all__ = [
    "AUDIT_KEEP_SECONDS",
    "KEEP_SECONDS",
    "REVOKED_BUCKET_SECONDS",
    "SEALED_POOL",
    "AdmittedTicket",
    "Conflict",
    "KeyStore",
    "QueueStore",
    "RetryPolicy",
    "RoomStateStore",
    "RoomStore",
    "SlotStore",
    "Store",
    "StoreUnavailable",
    "TicketStore",
    "WaitingRoomStore",
    "counter_pk",
    "decode_drainer_state",
    "encode_drainer_state",
    "ledger_pk",
    "make_client",
    "room_pk",
    "ticket_sk",
]

"""The DynamoDB adapter: every key, condition and transaction of the data model lives here.

Keys (one table, pk/sk, TTL attribute `expires_at`; reads check `expires_at` themselves because
TTL deletes late):
  ROOMS                     / ROOM#{id}      registry the drainer lists
  ROOM#{id}                 / CONFIG         operator settings
  ROOM#{id}                 / STATE          public state, cached by API containers (small)
  ROOM#{id}                 / DRAINER        the drainer's own state (cursor, live batches)
  ROOM#{id}                 / LEASE          one drainer per room
  NUDGES                    / ALL            "drain now" requests from operators, per room
  ROOM#{id}#Q#{slot}#{s}    / COUNTER        tickets issued in (slot, shard)
  ROOM#{id}#Q#{slot}#{s}    / T#{k:09d}      an admitted ticket (written at admission, not join)
  ROOM#{id}#Q#-{seq}#0      / COUNTER, T#{k}  an idle room's pool seq: claims, entries minted ahead
  ROOM#{id}#Q#FREE          / COUNTER        places a reject room gave as numbers, ever
  ROOM#{id}#SLOTS           / S#{slot:012d}  a settled slot: final counters, tickets before it
  ROOM#{id}#LEDGER#{seq}#{n}/ LEDGER         pickups and completions of batch seq, shard n
  ROOM#{id}#IDEM#{key}      / IDEM           join idempotency record
  ROOM#{id}#AUDIT           / {time}#{id}    who changed what, when (operators)
  ROOM#{id}#CLIENT#{hash}   / CLIENT         joins of one client (hashed key, never the IP)
  ROOM#{id}#UNHELD          / U#{slot}#{s}#{k}  a number taken by a join that got no ticket
  ROOM#{id}#REVOKED         / E#{minute}     jti's completed early, bucketed by their exp
  KEYS                      / JWKS           public signing keys, published by the drainer

One module per kind of item (rooms, queue, slots, state, tickets, keys), each a mixin over
`DynamoTable` (the client, marshalling, error mapping); `Store` is all of them. Storage code raises
StoreUnavailable or Conflict, never an HTTP error.
"""

from __future__ import annotations

from waitingroom.store.dynamodb.keys import DynamoKeys
from waitingroom.store.dynamodb.queue import DynamoQueue
from waitingroom.store.dynamodb.rooms import DynamoRooms
from waitingroom.store.dynamodb.slots import DynamoSlots
from waitingroom.store.dynamodb.state import (
    DynamoRoomState,
    decode_drainer_state,
    encode_drainer_state,
)
from waitingroom.store.dynamodb.table import (
    DynamoTable,
    RetryPolicy,
    counter_pk,
    ledger_pk,
    make_client,
    room_pk,
    ticket_sk,
)
from waitingroom.store.dynamodb.tickets import DynamoTickets


class Store(DynamoRooms, DynamoQueue, DynamoSlots, DynamoRoomState, DynamoTickets, DynamoKeys):
    """All DynamoDB access. `client` is injected (a boto3 DynamoDB client)."""


__all__ = [
    "DynamoTable",
    "RetryPolicy",
    "Store",
    "counter_pk",
    "decode_drainer_state",
    "encode_drainer_state",
    "ledger_pk",
    "make_client",
    "room_pk",
    "ticket_sk",
]

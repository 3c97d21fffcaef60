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
  ROOM#{id}#SLOTS           / S#{slot:012d}  a settled slot: final counters, tickets before it
  ROOM#{id}#LEDGER#{seq}#{n}/ LEDGER         pickups and completions of batch seq, shard n
  ROOM#{id}#IDEM#{key}      / IDEM           join idempotency record
  ROOM#{id}#AUDIT           / {time}#{id}    who changed what, when (operators)
  ROOM#{id}#CLIENT#{hash}   / CLIENT         joins of one client (hashed key, never the IP)
  ROOM#{id}#REVOKED         / E#{minute}     jti's completed early, bucketed by their exp
  KEYS                      / JWKS           public signing keys, published by the drainer

Storage code raises StoreUnavailable or Conflict, never an HTTP error.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from waitingroom.domain import (
    Batch,
    DrainerState,
    LedgerCounts,
    Pending,
    PublicState,
    RateWindow,
    RoomConfig,
    SettledSlot,
)
from waitingroom.settings import StoreSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
else:
    DynamoDBClient = Any

Item = dict[str, Any]

# Errors that mean "try again later": the caller answers 503 with Retry-After.
_TRANSIENT_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "ResourceNotFoundException",
}
KEEP_SECONDS = 7 * 24 * 3600  # queue data outlives any realistic wait
AUDIT_KEEP_SECONDS = 400 * 24 * 3600
REVOKED_BUCKET_SECONDS = 60


class StoreUnavailable(Exception):
    """The store cannot be reached or is throttling: retry after a few seconds."""


class Conflict(Exception):
    """A conditional write lost: somebody else changed the item first. `item` is the item as
    it was, when the write asked for it (ReturnValuesOnConditionCheckFailure)."""

    def __init__(self, what: str, item: Item | None = None) -> None:
        super().__init__(what)
        self.item = item


def make_client(settings: StoreSettings) -> DynamoDBClient:
    """A DynamoDB client with short timeouts, so an outage becomes a quick 503, not a hang."""
    config = Config(
        connect_timeout=1,
        read_timeout=3,
        # total_max_attempts counts the first try; botocore's `max_attempts` counts only retries
        retries={"mode": "standard", "total_max_attempts": 3},
        max_pool_connections=32,
    )
    client: DynamoDBClient = boto3.client(
        "dynamodb",
        endpoint_url=settings.dynamodb_endpoint,
        region_name=settings.region,
        config=config,
    )
    return client


def _s(v: str) -> dict[str, str]:
    return {"S": v}


def _n(v: float | int) -> dict[str, str]:
    return {"N": repr(v) if isinstance(v, float) else str(v)}


def _key(pk: str, sk: str) -> dict[str, dict[str, str]]:
    return {"pk": _s(pk), "sk": _s(sk)}


def _num(item: Item, name: str, default: float = 0) -> float:
    v = item.get(name)
    return float(v["N"]) if v else default


def _int(item: Item, name: str, default: int = 0) -> int:
    v = item.get(name)
    return int(v["N"]) if v else default


def _str(item: Item, name: str, default: str = "") -> str:
    v = item.get(name)
    return str(v["S"]) if v else default


def room_pk(room: str) -> str:
    return f"ROOM#{room}"


def counter_pk(room: str, slot: int, shard: int) -> str:
    return f"ROOM#{room}#Q#{slot}#{shard}"


def ticket_sk(k: int) -> str:
    return f"T#{k:09d}"


def ledger_pk(room: str, seq: int, shard: int) -> str:
    return f"ROOM#{room}#LEDGER#{seq}#{shard}"


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


def _encode_batch(b: Batch) -> list[Any]:
    return [
        b.seq,
        b.start,
        b.count,
        b.admitted_at,
        b.pickup_deadline,
        b.expires_at,
        b.ledger_shards,
        b.picked,
        b.completed,
        b.final,
    ]


def _decode_batch(v: Sequence[Any]) -> Batch:
    return Batch(
        seq=int(v[0]),
        start=int(v[1]),
        count=int(v[2]),
        admitted_at=float(v[3]),
        pickup_deadline=float(v[4]),
        expires_at=float(v[5]),
        ledger_shards=int(v[6]),
        picked=int(v[7]),
        completed=int(v[8]),
        final=bool(v[9]),
    )


def encode_drainer_state(st: DrainerState) -> str:
    return json.dumps(
        {
            "cursor_slot": st.cursor_slot,
            "cursor_offset": st.cursor_offset,
            "next_seq": st.next_seq,
            "batches": [_encode_batch(b) for b in st.batches],
            "pending": (
                [_encode_batch(st.pending.batch), st.pending.from_slot, st.pending.from_offset]
                if st.pending
                else None
            ),
            "rates": [list(p) for p in st.rates.points],
            "max_shards": st.max_shards,
            "waits": list(st.waits),
        },
        separators=(",", ":"),
    )


def decode_drainer_state(text: str, version: int) -> DrainerState:
    d = json.loads(text)
    return DrainerState(
        version=version,
        cursor_slot=int(d["cursor_slot"]),
        cursor_offset=int(d["cursor_offset"]),
        next_seq=int(d["next_seq"]),
        batches=tuple(_decode_batch(b) for b in d["batches"]),
        pending=(
            Pending(_decode_batch(d["pending"][0]), int(d["pending"][1]), int(d["pending"][2]))
            if d["pending"]
            else None
        ),
        rates=RateWindow(tuple((float(t), int(n)) for t, n in d["rates"])),
        max_shards=int(d["max_shards"]),
        waits=tuple(int(w) for w in d.get("waits", ())),
    )


_PUBLIC_FIELDS = [f for f in PublicState.__dataclass_fields__ if f != "version"]


class Store:
    """All DynamoDB access. `client` is injected (a boto3 DynamoDB client)."""

    def __init__(
        self, client: DynamoDBClient, table: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.table = table
        self.clock = clock

    # -- plumbing -------------------------------------------------------------------------

    def _call(self, op: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, op)(TableName=self.table, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise Conflict(op, cast("Item | None", exc.response.get("Item"))) from exc
            if code in _TRANSIENT_CODES:
                raise StoreUnavailable(f"{op}: {code}") from exc
            raise
        except BotoCoreError as exc:  # connection refused, timeouts, ...
            raise StoreUnavailable(f"{op}: {type(exc).__name__}") from exc

    def _transact(self, items: list[dict[str, Any]]) -> None:
        for it in items:
            for body in it.values():
                body["TableName"] = self.table
        try:
            self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "TransactionCanceledException":
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in reasons:
                    raise Conflict("transaction") from exc
                raise StoreUnavailable(f"transaction cancelled: {reasons}") from exc
            if code in _TRANSIENT_CODES or code == "TransactionInProgressException":
                raise StoreUnavailable(f"transaction: {code}") from exc
            raise
        except BotoCoreError as exc:
            raise StoreUnavailable(f"transaction: {type(exc).__name__}") from exc

    def _batch(self, op: str, request: dict[str, Any], leftover: str) -> list[Item]:
        """One BatchGetItem/BatchWriteItem, retrying what DynamoDB left unprocessed with
        backoff; returns the items read (none for writes)."""
        out: list[Item] = []
        pending = request
        for attempt in range(8):
            try:
                resp = getattr(self.client, op)(RequestItems=pending)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                raise StoreUnavailable(f"{op}: {code}") from exc
            except BotoCoreError as exc:
                raise StoreUnavailable(f"{op}: {type(exc).__name__}") from exc
            out.extend(resp.get("Responses", {}).get(self.table, []))
            pending = dict(resp.get(leftover) or {})
            if not pending:
                return out
            time.sleep(min(1.0, 0.05 * 2**attempt))
        raise StoreUnavailable(f"{op}: requests left unprocessed")

    def _batch_get(self, keys: list[dict[str, Any]], consistent: bool) -> list[Item]:
        out: list[Item] = []
        for i in range(0, len(keys), 100):
            request = {self.table: {"Keys": keys[i : i + 100], "ConsistentRead": consistent}}
            out.extend(self._batch("batch_get_item", request, "UnprocessedKeys"))
        return out

    def ping(self) -> None:
        self._call("describe_table")

    # -- rooms ----------------------------------------------------------------------------

    def put_room_config(self, cfg: RoomConfig, expected_version: int | None) -> RoomConfig:
        """Create (expected_version None) or update a room; versions guard lost updates."""
        new = replace(cfg, version=cfg.version + 1 if expected_version is not None else 1)
        item: Item = {
            **_key(room_pk(cfg.room), "CONFIG"),
            "max_active": _n(new.max_active),
            "max_admits_per_minute": _n(new.max_admits_per_minute),
            "session_seconds": _n(new.session_seconds),
            "pickup_seconds": _n(new.pickup_seconds),
            "shards": _n(new.shards),
            "slot_seconds": _n(new.slot_seconds),
            "status": _s(new.status),
            "origin_url": _s(new.origin_url),
            "epoch_slot": _n(new.epoch_slot),
            "version": _n(new.version),
            "max_tickets_per_client": _n(new.max_tickets_per_client),
            "max_joins_per_minute_per_client": _n(new.max_joins_per_minute_per_client),
            "challenge_bits": _n(new.challenge_bits),
            "bind_tokens": {"BOOL": new.bind_tokens},
        }
        if new.opens_at is not None:
            item["opens_at"] = _n(new.opens_at)
        if expected_version is None:
            cond: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            cond = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": _n(expected_version)},
            }
        self._call("put_item", Item=item, **cond)
        self._call("put_item", Item={**_key("ROOMS", room_pk(cfg.room)), "room": _s(cfg.room)})
        return new

    def get_room_config(self, room: str, consistent: bool = False) -> RoomConfig | None:
        it = self._call("get_item", Key=_key(room_pk(room), "CONFIG"), ConsistentRead=consistent)
        item = it.get("Item")
        if not item:
            return None
        return RoomConfig(
            room=room,
            max_active=_int(item, "max_active"),
            max_admits_per_minute=_int(item, "max_admits_per_minute"),
            session_seconds=_int(item, "session_seconds"),
            pickup_seconds=_int(item, "pickup_seconds"),
            shards=_int(item, "shards"),
            slot_seconds=_int(item, "slot_seconds", 1),
            status=_str(item, "status", "open"),  # type: ignore[arg-type]
            opens_at=_num(item, "opens_at") if "opens_at" in item else None,
            origin_url=_str(item, "origin_url"),
            epoch_slot=_int(item, "epoch_slot"),
            version=_int(item, "version"),
            max_tickets_per_client=_int(item, "max_tickets_per_client"),
            max_joins_per_minute_per_client=_int(item, "max_joins_per_minute_per_client"),
            challenge_bits=_int(item, "challenge_bits"),
            bind_tokens=bool(item.get("bind_tokens", {}).get("BOOL", False)),
        )

    def list_rooms(self) -> list[str]:
        rooms: list[str] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": _s("ROOMS")},
        }
        while True:
            resp = self._call("query", **kwargs)
            rooms += [_str(i, "room") for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return rooms
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    # -- joining --------------------------------------------------------------------------

    def bump_counter(self, room: str, slot: int, shard: int, slot_seconds: int) -> int:
        """Take the next k in (slot, shard): one write, never a hot key (rate / S per key)."""
        resp = self._call(
            "update_item",
            Key=_key(counter_pk(room, slot, shard), "COUNTER"),
            UpdateExpression="ADD n :one SET expires_at = if_not_exists(expires_at, :ttl)",
            ExpressionAttributeValues={
                ":one": _n(1),
                ":ttl": _n(slot * slot_seconds + KEEP_SECONDS),
            },
            ReturnValues="UPDATED_NEW",
        )
        return int(resp["Attributes"]["n"]["N"])

    def get_idempotent(self, room: str, key: str) -> str | None:
        resp = self._call(
            "get_item", Key=_key(f"ROOM#{room}#IDEM#{key}", "IDEM"), ConsistentRead=True
        )
        item = resp.get("Item")
        if not item or _num(item, "expires_at") < self.clock():
            return None
        return _str(item, "ticket")

    def put_idempotent(self, room: str, key: str, ticket: str, keep_seconds: int) -> str:
        """Record the ticket for this key; when a concurrent retry won, return its ticket."""
        try:
            self._call(
                "put_item",
                Item={
                    **_key(f"ROOM#{room}#IDEM#{key}", "IDEM"),
                    "ticket": _s(ticket),
                    "expires_at": _n(int(self.clock()) + keep_seconds),
                },
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": _n(int(self.clock()))},
            )
            return ticket
        except Conflict:
            existing = self.get_idempotent(room, key)
            return existing or ticket

    def count_client_join(
        self,
        room: str,
        client_hash: str,
        *,
        now: float,
        max_total: int,
        max_per_minute: int,
    ) -> str | None:
        """Count one join of a client, only while it is under its limits (0: no limit): one
        conditional UpdateItem on the client's item, so the limits hold across every container.
        Returns None when counted, else the limit it hit: "total" or "per_minute"."""
        minute = int(now // 60)
        conditions = []
        values: dict[str, Any] = {
            ":one": _n(1),
            ":ttl": _n(int(now) + KEEP_SECONDS),
        }
        if max_total > 0:
            conditions.append("(attribute_not_exists(t) OR t < :maxt)")
            values[":maxt"] = _n(max_total)
        if max_per_minute > 0:
            conditions.append("(attribute_not_exists(#cur) OR #cur < :maxm)")
            values[":maxm"] = _n(max_per_minute)
        cond: dict[str, Any] = {}
        if conditions:
            cond = {
                "ConditionExpression": " AND ".join(conditions),
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        try:
            self._call(
                "update_item",
                Key=_key(f"ROOM#{room}#CLIENT#{client_hash}", "CLIENT"),
                # one counter per minute, named by the minute; the two before it are dropped
                UpdateExpression="ADD t :one, #cur :one "
                "SET expires_at = if_not_exists(expires_at, :ttl) REMOVE #p1, #p2",
                ExpressionAttributeNames={
                    "#cur": f"m{minute}",
                    "#p1": f"m{minute - 1}",
                    "#p2": f"m{minute - 2}",
                },
                ExpressionAttributeValues=values,
                **cond,
            )
        except Conflict as exc:
            old = exc.item or {}
            if max_total > 0 and _int(old, "t") >= max_total:
                return "total"
            return "per_minute"
        return None

    # -- revocation ------------------------------------------------------------------------

    def add_revoked(self, room: str, jti: str, exp: float) -> None:
        """Record a token ended before its exp, in the item of its exp's minute (kept until
        then, so the list only ever holds tokens that would still be valid)."""
        bucket = int(exp // REVOKED_BUCKET_SECONDS)
        self._call(
            "update_item",
            Key=_key(f"ROOM#{room}#REVOKED", f"E#{bucket:012d}"),
            UpdateExpression="ADD jtis :j SET expires_at = :ttl",
            ExpressionAttributeValues={
                ":j": {"SS": [jti]},
                ":ttl": _n((bucket + 1) * REVOKED_BUCKET_SECONDS + 3600),
            },
        )

    def list_revoked(self, room: str, now: float) -> list[str]:
        """The jti's of tokens revoked and not yet expired (a query over a few small items)."""
        first = int(now // REVOKED_BUCKET_SECONDS) - 1  # keep a minute of leeway past exp
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :p AND sk >= :a",
            "ExpressionAttributeValues": {
                ":p": _s(f"ROOM#{room}#REVOKED"),
                ":a": _s(f"E#{first:012d}"),
            },
        }
        out: set[str] = set()
        while True:
            resp = self._call("query", **kwargs)
            for item in resp.get("Items", []):
                out.update(item.get("jtis", {}).get("SS", []))
            if "LastEvaluatedKey" not in resp:
                return sorted(out)
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    # -- settling slots (drainer) ----------------------------------------------------------

    def read_counters(
        self, room: str, slots: Sequence[int], shards: int
    ) -> dict[int, tuple[int, ...]]:
        """Final counter values of closed slots (strongly consistent: no late bump is missed)."""
        keys = [_key(counter_pk(room, sl, s), "COUNTER") for sl in slots for s in range(shards)]
        found: dict[tuple[int, int], int] = {}
        for item in self._batch_get(keys, consistent=True):
            _, sl, s = item["pk"]["S"].rsplit("#", 2)
            found[(int(sl), int(s))] = _int(item, "n")
        return {sl: tuple(found.get((sl, s), 0) for s in range(shards)) for sl in slots}

    def put_settled_slots(self, room: str, slots: Sequence[SettledSlot], keep_until: int) -> None:
        """Write settled slots (idempotent: the same slot always settles to the same values)."""
        reqs = [
            {
                "PutRequest": {
                    "Item": {
                        **_key(f"ROOM#{room}#SLOTS", f"S#{s.slot:012d}"),
                        "counts": _s(",".join(map(str, s.counts))),
                        "cum_before": _n(s.cum_before),
                        "expires_at": _n(keep_until),
                    }
                }
            }
            for s in slots
        ]
        for i in range(0, len(reqs), 25):
            self._batch("batch_write_item", {self.table: reqs[i : i + 25]}, "UnprocessedItems")

    @staticmethod
    def _settled(item: Item) -> SettledSlot:
        counts = tuple(int(c) for c in _str(item, "counts").split(",") if c)
        return SettledSlot(
            slot=int(item["sk"]["S"][2:]), counts=counts, cum_before=_int(item, "cum_before")
        )

    def get_settled_slot(self, room: str, slot: int) -> SettledSlot | None:
        resp = self._call("get_item", Key=_key(f"ROOM#{room}#SLOTS", f"S#{slot:012d}"))
        item = resp.get("Item")
        return self._settled(item) if item else None

    def settled_slots_from(self, room: str, first: int, last: int) -> Iterable[SettledSlot]:
        """Non-empty settled slots in [first, last], in order, lazily paged."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": {
                ":p": _s(f"ROOM#{room}#SLOTS"),
                ":a": _s(f"S#{first:012d}"),
                ":b": _s(f"S#{last:012d}"),
            },
            "ConsistentRead": True,
            "Limit": 50,
        }
        while True:
            resp = self._call("query", **kwargs)
            for item in resp.get("Items", []):
                yield self._settled(item)
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    # -- room state ------------------------------------------------------------------------

    def get_public_state(self, room: str, consistent: bool = False) -> PublicState | None:
        resp = self._call("get_item", Key=_key(room_pk(room), "STATE"), ConsistentRead=consistent)
        item = resp.get("Item")
        if not item:
            return None
        data = json.loads(_str(item, "data"))
        return PublicState(version=_int(item, "version"), **data)

    def get_drainer_state(self, room: str) -> DrainerState | None:
        resp = self._call("get_item", Key=_key(room_pk(room), "DRAINER"), ConsistentRead=True)
        item = resp.get("Item")
        if not item:
            return None
        return decode_drainer_state(_str(item, "data"), _int(item, "version"))

    def commit_state(
        self, room: str, public: PublicState, drainer: DrainerState, expected_version: int
    ) -> None:
        """Write both states at once, only if nobody committed since we read version N."""
        new_version = expected_version + 1
        pub = {k: v for k, v in asdict(public).items() if k in _PUBLIC_FIELDS}
        if expected_version == 0:
            cond: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            cond = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": _n(expected_version)},
            }
        self._transact(
            [
                {
                    "Put": {
                        "Item": {
                            **_key(room_pk(room), "STATE"),
                            "version": _n(new_version),
                            "data": _s(json.dumps(pub, separators=(",", ":"))),
                        },
                        **cond,
                    }
                },
                {
                    "Put": {
                        "Item": {
                            **_key(room_pk(room), "DRAINER"),
                            "version": _n(new_version),
                            "data": _s(encode_drainer_state(drainer)),
                        },
                        **cond,
                    }
                },
            ]
        )

    # -- lease and nudges ------------------------------------------------------------------

    def acquire_lease(self, room: str, owner: str, seconds: float) -> bool:
        now = self.clock()
        try:
            self._call(
                "put_item",
                Item={
                    **_key(room_pk(room), "LEASE"),
                    "owner": _s(owner),
                    "lease_until": _n(now + seconds),
                    "expires_at": _n(int(now + seconds + 3600)),
                },
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now OR #o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":now": _n(now), ":me": _s(owner)},
            )
            return True
        except Conflict:
            return False

    def release_lease(self, room: str, owner: str) -> None:
        with contextlib.suppress(Conflict):
            self._call(
                "delete_item",
                Key=_key(room_pk(room), "LEASE"),
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": _s(owner)},
            )

    def put_nudge(self, room: str) -> None:
        """Ask the drainer to tick `room` now. One item holds every room's latest request, so
        the drainer's twice-a-second look costs one read however many rooms there are."""
        self._call(
            "update_item",
            Key=_key("NUDGES", "ALL"),
            UpdateExpression="SET #r = :now",
            ExpressionAttributeNames={"#r": f"r_{room}"},
            ExpressionAttributeValues={":now": _n(self.clock())},
        )

    def get_nudges(self) -> dict[str, float]:
        """When each room last asked for a tick (rooms that never did are absent)."""
        resp = self._call("get_item", Key=_key("NUDGES", "ALL"), ConsistentRead=True)
        item = resp.get("Item") or {}
        return {k[2:]: float(v["N"]) for k, v in item.items() if k.startswith("r_")}

    # -- tickets ---------------------------------------------------------------------------

    def put_admitted(self, room: str, tickets: Sequence[AdmittedTicket]) -> int:
        """Write admitted tickets; an existing one is left alone (exactly once). Returns how
        many were new."""

        def put(t: AdmittedTicket) -> int:
            try:
                self._call(
                    "put_item",
                    Item={
                        **_key(counter_pk(room, t.slot, t.shard), ticket_sk(t.k)),
                        "st": _s("admitted"),
                        "token": _s(t.token),
                        "seq": _n(t.seq),
                        "lshards": _n(t.ledger_shards),
                        "admitted_at": _n(t.admitted_at),
                        "deadline": _n(t.pickup_deadline),
                        "exp": _n(t.expires_at),
                        "expires_at": _n(int(t.expires_at) + 86_400),
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
                return 1
            except Conflict:
                return 0

        if len(tickets) <= 2:
            return sum(put(t) for t in tickets)
        with ThreadPoolExecutor(max_workers=min(16, len(tickets))) as pool:
            return sum(pool.map(put, tickets))

    def get_ticket(
        self, room: str, slot: int, shard: int, k: int, consistent: bool = True
    ) -> AdmittedTicket | None:
        resp = self._call(
            "get_item",
            Key=_key(counter_pk(room, slot, shard), ticket_sk(k)),
            ConsistentRead=consistent,
        )
        item = resp.get("Item")
        if not item:
            return None
        return AdmittedTicket(
            slot=slot,
            shard=shard,
            k=k,
            state=_str(item, "st"),
            token=_str(item, "token"),
            seq=_int(item, "seq"),
            ledger_shards=_int(item, "lshards", 1),
            admitted_at=_num(item, "admitted_at"),
            pickup_deadline=_num(item, "deadline"),
            expires_at=_num(item, "exp"),
        )

    def _ticket_transition(
        self,
        room: str,
        t: AdmittedTicket,
        ledger_shard: int,
        *,
        from_state: str,
        to_state: str,
        deadline_attr: str,
        counter: str,
        now: float,
    ) -> None:
        self._transact(
            [
                {
                    "Update": {
                        "Key": _key(counter_pk(room, t.slot, t.shard), ticket_sk(t.k)),
                        "UpdateExpression": "SET st = :to, #at = :now",
                        "ConditionExpression": "st = :from AND #dl > :now",
                        "ExpressionAttributeNames": {"#at": f"{to_state}_at", "#dl": deadline_attr},
                        "ExpressionAttributeValues": {
                            ":to": _s(to_state),
                            ":from": _s(from_state),
                            ":now": _n(now),
                        },
                    }
                },
                {
                    "Update": {
                        "Key": _key(ledger_pk(room, t.seq, ledger_shard), "LEDGER"),
                        "UpdateExpression": "ADD #c :one SET expires_at = :ttl",
                        "ExpressionAttributeNames": {"#c": counter},
                        "ExpressionAttributeValues": {
                            ":one": _n(1),
                            ":ttl": _n(int(t.expires_at) + 86_400),
                        },
                    }
                },
            ]
        )

    def pick_up(self, room: str, t: AdmittedTicket, ledger_shard: int, now: float) -> None:
        """admitted -> picked, counted in the batch's ledger; Conflict once the window closed."""
        self._ticket_transition(
            room,
            t,
            ledger_shard,
            from_state="admitted",
            to_state="picked",
            deadline_attr="deadline",
            counter="picked",
            now=now,
        )

    def complete(self, room: str, t: AdmittedTicket, ledger_shard: int, now: float) -> None:
        """picked -> completed, counted in the batch's ledger; Conflict if not picked/expired."""
        self._ticket_transition(
            room,
            t,
            ledger_shard,
            from_state="picked",
            to_state="completed",
            deadline_attr="exp",
            counter="completed",
            now=now,
        )

    def read_ledger(self, room: str, batches: Sequence[Batch]) -> dict[int, LedgerCounts]:
        keys = [
            _key(ledger_pk(room, b.seq, n), "LEDGER")
            for b in batches
            for n in range(b.ledger_shards)
        ]
        totals: dict[int, list[int]] = {b.seq: [0, 0] for b in batches}
        for item in self._batch_get(keys, consistent=True):
            seq = int(item["pk"]["S"].rsplit("#", 2)[1])
            totals[seq][0] += _int(item, "picked")
            totals[seq][1] += _int(item, "completed")
        return {seq: LedgerCounts(p, c) for seq, (p, c) in totals.items()}

    # -- audit trail -----------------------------------------------------------------------

    def append_audit(self, room: str, actor: str, action: str, details: dict[str, Any]) -> None:
        now = self.clock()
        self._call(
            "put_item",
            Item={
                **_key(f"ROOM#{room}#AUDIT", f"{now:017.6f}#{uuid.uuid4().hex[:8]}"),
                "at": _n(now),
                "actor": _s(actor),
                "action": _s(action),
                "details": _s(json.dumps(details, sort_keys=True, default=str)),
                "expires_at": _n(int(now) + AUDIT_KEEP_SECONDS),
            },
        )

    def list_audit(self, room: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest entries first."""
        resp = self._call(
            "query",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": _s(f"ROOM#{room}#AUDIT")},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [
            {
                "at": _num(i, "at"),
                "actor": _str(i, "actor"),
                "action": _str(i, "action"),
                "details": json.loads(_str(i, "details", "{}")),
            }
            for i in resp.get("Items", [])
        ]

    # -- keys ------------------------------------------------------------------------------

    def put_jwks(self, jwks: dict[str, Any]) -> None:
        self._call(
            "put_item", Item={**_key("KEYS", "JWKS"), "jwks": _s(json.dumps(jwks, sort_keys=True))}
        )

    def get_jwks(self) -> dict[str, Any] | None:
        resp = self._call("get_item", Key=_key("KEYS", "JWKS"))
        item = resp.get("Item")
        if not item:
            return None
        jwks: dict[str, Any] = json.loads(_str(item, "jwks"))
        return jwks

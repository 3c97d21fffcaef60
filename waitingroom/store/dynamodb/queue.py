"""Joining: the COUNTER of each (slot, shard), IDEM records, each client's CLIENT item."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from waitingroom.store.dynamodb.table import (
    DynamoTable,
    as_float,
    as_int,
    attrs,
    counter_pk,
    key,
    plain,
)
from waitingroom.store.interface import KEEP_SECONDS, SEALED_POOL, Conflict


def free_places_pk(room: str) -> str:
    """The count of places a room that keeps no line gave as numbers (a visitor-writable
    partition: ROOM#r#Q#...)."""
    return f"ROOM#{room}#Q#FREE"


def _unheld_pk(room: str) -> str:
    return f"ROOM#{room}#UNHELD"


def _unheld_sk(slot: int, shard: int, k: int) -> str:
    return f"U#{slot:012d}#{shard:03d}#{k:09d}"


class DynamoQueue(DynamoTable):
    def bump_counter(self, room: str, slot: int, shard: int, slot_seconds: int) -> int:
        """Take the next k in (slot, shard): one write, never a hot key (rate / S per key)."""
        resp = self._call(
            "update_item",
            Key=key(counter_pk(room, slot, shard), "COUNTER"),
            UpdateExpression="ADD n :one SET expires_at = if_not_exists(expires_at, :ttl)",
            ExpressionAttributeValues=attrs(
                {":one": 1, ":ttl": slot * slot_seconds + KEEP_SECONDS}
            ),
            ReturnValues="UPDATED_NEW",
        )
        return as_int(plain(resp["Attributes"])["n"])

    def claim_pool(self, room: str, seq: int, size: int) -> int | None:
        """Take the next entry of pool `seq` while fewer than `size` are taken: one conditional
        write on the pool's own counter (slot -seq, shard 0), so each entry goes to one join.
        None when the pool is empty."""
        if size <= 0:
            return None
        try:
            resp = self._call(
                "update_item",
                Key=key(counter_pk(room, -seq, 0), "COUNTER"),
                UpdateExpression="ADD n :one SET expires_at = if_not_exists(expires_at, :ttl)",
                ConditionExpression="attribute_not_exists(n) OR n < :size",
                ExpressionAttributeValues=attrs(
                    {":one": 1, ":size": size, ":ttl": int(self.clock()) + KEEP_SECONDS}
                ),
                ReturnValues="UPDATED_NEW",
            )
        except Conflict:
            return None
        return as_int(plain(resp["Attributes"])["n"])

    def seal_pool(self, room: str, seq: int) -> int:
        """Close pool `seq` to further claims; how many entries were claimed before. The seal
        adds SEALED_POOL to the counter rather than overwriting it, so the claims stay readable
        (n % SEALED_POOL) and sealing again, after a tick whose commit was lost, answers the
        same."""
        resp = self._call(
            "update_item",
            Key=key(counter_pk(room, -seq, 0), "COUNTER"),
            UpdateExpression="ADD n :sealed SET expires_at = if_not_exists(expires_at, :ttl)",
            ExpressionAttributeValues=attrs(
                {":sealed": SEALED_POOL, ":ttl": int(self.clock()) + KEEP_SECONDS}
            ),
            ReturnValues="UPDATED_NEW",
        )
        return as_int(plain(resp["Attributes"])["n"]) % SEALED_POOL

    def claim_free_place(self, room: str, limit: int) -> bool:
        """Give one more place as a number while fewer than `limit` were ever given (one
        conditional write on the room's count): however many joins arrive at once, across
        containers and state versions, no more numbers are given than the drainer allowed."""
        if limit <= 0:
            return False
        try:
            self._call(
                "update_item",
                Key=key(free_places_pk(room), "COUNTER"),
                UpdateExpression="ADD n :one",
                ConditionExpression="attribute_not_exists(n) OR n < :limit",
                ExpressionAttributeValues=attrs({":one": 1, ":limit": limit}),
            )
        except Conflict:
            return False
        return True

    def free_places_given(self, room: str) -> int:
        """How many places the room gave as numbers so far (strongly consistent)."""
        item = self._get(free_places_pk(room), "COUNTER", consistent=True)
        return as_int(item.get("n")) if item else 0

    def add_free_places_given(self, room: str, n: int) -> None:
        """The drainer gave `n` places to the pool: a join answering from an older state (whose
        limit still counted them as free) cannot give them as numbers too. A repeated add only
        gives fewer numbers until the next tick, which sets its limit from the count it reads."""
        self._call(
            "update_item",
            Key=key(free_places_pk(room), "COUNTER"),
            UpdateExpression="ADD n :n",
            ExpressionAttributeValues=attrs({":n": n}),
        )

    def read_counters(
        self, room: str, slots: Sequence[int], shards: int
    ) -> dict[int, tuple[int, ...]]:
        """Final counter values of closed slots (strongly consistent: no late bump is missed)."""
        keys = [key(counter_pk(room, sl, s), "COUNTER") for sl in slots for s in range(shards)]
        found: dict[tuple[int, int], int] = {}
        for item in self._batch_get(keys, consistent=True):
            _, sl, s = str(item["pk"]).rsplit("#", 2)
            found[(int(sl), int(s))] = as_int(item.get("n"))
        return {sl: tuple(found.get((sl, s), 0) for s in range(shards)) for sl in slots}

    # -- numbers nobody holds --------------------------------------------------------------

    def put_unheld(self, room: str, slot: int, shard: int, k: int, reason: str) -> None:
        """Record a number whose join got no ticket (it came back too late, or the answer
        failed after it): counted in the stats, and its place freed as soon as it is admitted.
        A plain put of the same item: safe to send twice."""
        item = {
            "pk": _unheld_pk(room),
            "sk": _unheld_sk(slot, shard, k),
            "reason": reason,
            "expires_at": int(self.clock()) + KEEP_SECONDS,
        }
        self._call("put_item", Item=attrs(item))

    def unheld_numbers(self, room: str, first: int, last: int) -> set[tuple[int, int, int]]:
        """(slot, shard, k) of the unheld numbers in slots first..last (usually none)."""
        items = self._query(
            KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
            ExpressionAttributeValues=attrs(
                {":p": _unheld_pk(room), ":a": f"U#{first:012d}#", ":b": f"U#{last:012d}#~"}
            ),
            ConsistentRead=True,
        )
        out = set()
        for item in items:
            _, slot, shard, k = str(item["sk"]).split("#")
            out.add((int(slot), int(shard), int(k)))
        return out

    def count_unheld(self, room: str) -> int:
        """How many numbers of the room were taken by joins that got no ticket."""
        total = 0
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": attrs({":p": _unheld_pk(room)}),
            "Select": "COUNT",
        }
        while True:
            resp = self._call("query", **kwargs)
            total += as_int(resp.get("Count"))
            if "LastEvaluatedKey" not in resp:
                return total
            kwargs = {**kwargs, "ExclusiveStartKey": resp["LastEvaluatedKey"]}

    # -- idempotency -----------------------------------------------------------------------

    def get_idempotent(self, room: str, key: str) -> str | None:
        item = self._get(f"ROOM#{room}#IDEM#{key}", "IDEM", consistent=True)
        if not item or as_float(item.get("expires_at")) < self.clock():
            return None
        return str(item.get("ticket", ""))

    def put_idempotent(self, room: str, key: str, ticket: str, keep_seconds: int) -> str:
        """Record the ticket for this key; when a concurrent retry won, return its ticket."""
        item = {
            "pk": f"ROOM#{room}#IDEM#{key}",
            "sk": "IDEM",
            "ticket": ticket,
            "expires_at": int(self.clock()) + keep_seconds,
        }
        try:
            self._call(
                "put_item",
                Item=attrs(item),
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues=attrs({":now": int(self.clock())}),
            )
            return ticket
        except Conflict:
            existing = self.get_idempotent(room, key)
            return existing or ticket

    # -- per-client limits -----------------------------------------------------------------

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
        values: dict[str, Any] = {":one": 1, ":ttl": int(now) + KEEP_SECONDS}
        if max_total > 0:
            conditions.append("(attribute_not_exists(t) OR t < :maxt)")
            values[":maxt"] = max_total
        if max_per_minute > 0:
            conditions.append("(attribute_not_exists(#cur) OR #cur < :maxm)")
            values[":maxm"] = max_per_minute
        cond: dict[str, Any] = {}
        if conditions:
            cond = {
                "ConditionExpression": " AND ".join(conditions),
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        try:
            self._call(
                "update_item",
                Key=key(f"ROOM#{room}#CLIENT#{client_hash}", "CLIENT"),
                # one counter per minute, named by the minute; the two before it are dropped
                UpdateExpression="ADD t :one, #cur :one "
                "SET expires_at = if_not_exists(expires_at, :ttl) REMOVE #p1, #p2",
                ExpressionAttributeNames={
                    "#cur": f"m{minute}",
                    "#p1": f"m{minute - 1}",
                    "#p2": f"m{minute - 2}",
                },
                ExpressionAttributeValues=attrs(values),
                **cond,
            )
        except Conflict as exc:
            old = exc.item or {}
            if max_total > 0 and as_int(old.get("t")) >= max_total:
                return "total"
            return "per_minute"
        return None

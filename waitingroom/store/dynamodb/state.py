"""Room state: the public STATE and the DRAINER's own state (committed together), the LEASE."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from waitingroom.domain import Batch, DrainerState, Pending, PublicState, RateWindow
from waitingroom.forecast import Curve, Flow, Mean
from waitingroom.store.dynamodb.table import DynamoTable, as_float, as_int, attrs, key, room_pk
from waitingroom.store.interface import Conflict

_PUBLIC_FIELDS = [f for f in PublicState.__dataclass_fields__ if f != "version"]
# The public state's fields that every running version of the code reads from the item's
# `data` (a release that could still serve traffic reads `PublicState(**data)`). Fields added
# since go to the item's `more`, which such a version never reads: during a gradual API deploy,
# or after a rollback, old and new code share the item. Readers ignore keys they do not know.
_DATA_FIELDS = frozenset(
    [
        "settled_through",
        "settled_total",
        "consumed",
        "materialized",
        "active",
        "admit_rate",
        "join_rate_per_slot",
        "admitted_total",
        "completed_total",
        "reclaimed_total",
        "expired_total",
        "last_tick_admitted",
        "closed_slot",
        "wait_p50",
        "wait_p90",
        "prequeue_size",
        "draw_seed",
        "opened_at",
        "updated_at",
        "pool_seq",
        "pool_size",
        "pool_max_active",
        "numbers_until",
        "unsettled_counts",
    ]
)


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
        b.pool,
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
        pool=len(v) > 10 and bool(v[10]),
    )


def _encode_curve(c: Curve) -> list[Any]:
    return [c.base, [[round(t, 3), n, int(f)] for t, n, f in c.points]]


def _decode_curve(v: Sequence[Any]) -> Curve:
    return Curve(int(v[0]), tuple((float(p[0]), int(p[1]), bool(p[2])) for p in v[1]))


def _encode_flow(f: Flow) -> dict[str, Any]:
    return {
        "admitted": _encode_curve(f.admitted),
        "picked": _encode_curve(f.picked),
        "resolved": f.resolved,
        "ended": f.ended,
        "pickup": [f.pickup.value, f.pickup.weight],
        "session": [f.session.value, f.session.weight],
        "pickup_fresh": [f.pickup_fresh.value, f.pickup_fresh.weight],
        "partial": [*f.picking, *f.ending],
        "lined": _encode_curve(f.lined),
        "untimed": [f.untimed_resolved, f.untimed_ended],
        "seeded": f.seeded,
    }


def _decode_flow(d: dict[str, Any] | None) -> Flow:
    if not d:
        return Flow()
    partial = d.get("partial", (0.0, 0, 0.0, 0))
    return Flow(
        admitted=_decode_curve(d["admitted"]),
        picked=_decode_curve(d["picked"]),
        resolved=int(d["resolved"]),
        ended=int(d["ended"]),
        pickup=Mean(float(d["pickup"][0]), float(d["pickup"][1])),
        session=Mean(float(d["session"][0]), float(d["session"][1])),
        pickup_fresh=Mean(*map(float, d.get("pickup_fresh", (0.0, 0.0)))),
        picking=(float(partial[0]), int(partial[1])),
        ending=(float(partial[2]), int(partial[3])),
        lined=_decode_curve(d.get("lined", (0, ()))),
        # a flow written before this field followed every batch from its start
        seeded=bool(d.get("seeded", True)),
        untimed_resolved=int(d.get("untimed", (0, 0))[0]),
        untimed_ended=int(d.get("untimed", (0, 0))[1]),
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
            "pool": [st.pool_seq, st.pool_claimed, st.pool_written],
            "flow": _encode_flow(st.flow),
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
        pool_seq=int(d.get("pool", [0, 0, 0])[0]),
        pool_claimed=int(d.get("pool", [0, 0, 0])[1]),
        pool_written=int(d.get("pool", [0, 0, 0])[2]),
        flow=_decode_flow(d.get("flow")),
    )


class DynamoRoomState(DynamoTable):
    def get_public_state(self, room: str, consistent: bool = False) -> PublicState | None:
        item = self._get(room_pk(room), "STATE", consistent)
        if item is None:
            return None
        data = {**json.loads(item.get("data", "{}")), **json.loads(item.get("more", "{}"))}
        known = {k: v for k, v in data.items() if k in _PUBLIC_FIELDS}
        return PublicState(version=as_int(item.get("version")), **known)

    def get_drainer_state(self, room: str) -> DrainerState | None:
        item = self._get(room_pk(room), "DRAINER", consistent=True)
        if item is None:
            return None
        return decode_drainer_state(item.get("data", ""), as_int(item.get("version")))

    def commit_state(
        self, room: str, public: PublicState, drainer: DrainerState, expected_version: int
    ) -> None:
        """Write both states at once, only if nobody committed since we read version N."""
        new_version = expected_version + 1
        pub = {k: v for k, v in asdict(public).items() if k in _PUBLIC_FIELDS}
        data = {k: v for k, v in pub.items() if k in _DATA_FIELDS}
        more = {k: v for k, v in pub.items() if k not in _DATA_FIELDS}
        if expected_version == 0:
            cond: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            cond = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": attrs({":v": expected_version}),
            }
        state = {
            "pk": room_pk(room),
            "sk": "STATE",
            "version": new_version,
            "data": json.dumps(data, separators=(",", ":")),
            "more": json.dumps(more, separators=(",", ":")),
        }
        own = {
            "pk": room_pk(room),
            "sk": "DRAINER",
            "version": new_version,
            "data": encode_drainer_state(drainer),
        }
        self._transact(
            [{"Put": {"Item": attrs(state), **cond}}, {"Put": {"Item": attrs(own), **cond}}]
        )

    # -- one drainer per room ----------------------------------------------------------------

    def acquire_lease(self, room: str, owner: str, seconds: float) -> bool:
        now = self.clock()
        item = {
            "pk": room_pk(room),
            "sk": "LEASE",
            "owner": owner,
            "lease_until": now + seconds,
            "expires_at": int(now + seconds + 3600),
        }
        try:
            self._call(
                "put_item",
                Item=attrs(item),
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now OR #o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues=attrs({":now": now, ":me": owner}),
            )
            return True
        except Conflict:
            return False

    def lease_expiry(self, room: str) -> float | None:
        """When the room's lease runs out (None: nobody holds it), for a drainer standing by."""
        item = self._get(room_pk(room), "LEASE", consistent=True)
        return as_float(item["lease_until"]) if item else None

    def release_lease(self, room: str, owner: str) -> None:
        with contextlib.suppress(Conflict):
            self._call(
                "delete_item",
                Key=key(room_pk(room), "LEASE"),
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues=attrs({":me": owner}),
            )

"""Settled slots: one immutable item per non-empty slot in the room's SLOTS partition."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from waitingroom.domain import SettledSlot
from waitingroom.store.dynamodb.table import DynamoTable, as_int, attrs


def _slots_pk(room: str) -> str:
    return f"ROOM#{room}#SLOTS"


def _slot_sk(slot: int) -> str:
    return f"S#{slot:012d}"


def _settled(v: dict[str, Any]) -> SettledSlot:
    counts = tuple(int(c) for c in str(v.get("counts", "")).split(",") if c)
    return SettledSlot(
        slot=int(str(v["sk"])[2:]),
        counts=counts,
        cum_before=as_int(v.get("cum_before")),
        draw_start=as_int(v.get("draw_start")),
        draw_size=as_int(v.get("draw_size")),
        draw_seed=str(v.get("draw_seed", "")),
    )


def _draw(s: SettledSlot) -> dict[str, Any]:
    """A random room's draw window, recorded with each of its slots."""
    if not s.draw_size:
        return {}
    return {"draw_start": s.draw_start, "draw_size": s.draw_size, "draw_seed": s.draw_seed}


class DynamoSlots(DynamoTable):
    def put_settled_slots(self, room: str, slots: Sequence[SettledSlot], keep_until: int) -> None:
        """Write settled slots (idempotent: the same slot always settles to the same values)."""
        reqs = [
            {
                "PutRequest": {
                    "Item": attrs(
                        {
                            "pk": _slots_pk(room),
                            "sk": _slot_sk(s.slot),
                            "counts": ",".join(map(str, s.counts)),
                            "cum_before": s.cum_before,
                            "expires_at": keep_until,
                        }
                        | _draw(s)
                    )
                }
            }
            for s in slots
        ]
        for i in range(0, len(reqs), 25):
            self._batch("batch_write_item", {self.table: reqs[i : i + 25]}, "UnprocessedItems")

    def get_settled_slot(self, room: str, slot: int) -> SettledSlot | None:
        item = self._get(_slots_pk(room), _slot_sk(slot))
        return _settled(item) if item else None

    def settled_slots_from(self, room: str, first: int, last: int) -> Iterable[SettledSlot]:
        """Non-empty settled slots in [first, last], in order, lazily paged."""
        items = self._query(
            KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
            ExpressionAttributeValues=attrs(
                {":p": _slots_pk(room), ":a": _slot_sk(first), ":b": _slot_sk(last)}
            ),
            ConsistentRead=True,
            Limit=50,
        )
        return (_settled(item) for item in items)

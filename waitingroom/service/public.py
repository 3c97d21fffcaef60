"""The two public documents a waiting client reads through the edge (CLIENTS.md).

The room's state and its settled slots are the same for every visitor, so the edge may cache
them: the state for about a second, a settled slot for good. Both come from the cached reads,
so even the edge's misses cost no DynamoDB read in the common case; a slot that has not settled
(or lies in the future) is refused from the cached state alone, without a lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

from waitingroom.domain import PublicState, RoomConfig, SettledSlot
from waitingroom.errors import SlotNotFound
from waitingroom.service.context import Context


@dataclass(frozen=True, slots=True)
class RoomDocument:
    """What `GET /rooms/{room}/state` says: enough for a client to place itself."""

    config: RoomConfig
    state: PublicState

    @property
    def expected_rate(self) -> float:
        return self.config.fallback_rate()


# A slot settled this many slots before the newest has been readable everywhere for long: if
# it holds nothing, it never will.
FINAL_AFTER_SLOTS = 10


class PublicDocs:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def state(self, room: str, hold: float = 0.0) -> RoomDocument:
        """`hold`: the caller is a shared cache; wait up to that long for a settle due then."""
        cfg = self.ctx.reads.config(room)
        st = self.ctx.reads.state_for_cache(cfg, hold) if hold else self.ctx.reads.state(cfg)
        return RoomDocument(cfg, st)

    def slot(self, room: str, slot: int) -> SettledSlot:
        """A settled, non-empty slot; SlotNotFound for any other (no read unless settled)."""
        cfg = self.ctx.reads.config(room)
        st = self.ctx.reads.state(cfg)
        if slot < cfg.epoch_slot:
            raise SlotNotFound(f"slot {slot} is before room {room!r} began", code="no_such_slot")
        if slot > st.settled_through:
            raise SlotNotFound(
                f"slot {slot} has not settled yet (settled through {st.settled_through}); "
                "estimate from the room state and ask again in a second",
                code="slot_not_settled",
            )
        final = st.settled_through - slot >= FINAL_AFTER_SLOTS
        found = self.ctx.reads.settled_slot(room, slot, remember_absence=final)
        if found is None:
            raise SlotNotFound(f"slot {slot} holds no tickets", code="slot_empty", final=final)
        return found

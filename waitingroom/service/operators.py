"""What operators do to a room: create and tune it, change its status, read its stats and
audit trail, ask for a drain. Every change is written to the room's audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from waitingroom.domain import PublicState, RoomConfig, eta_seconds, slot_of
from waitingroom.errors import ConfigConflict, InvalidConfig, UnknownRoom
from waitingroom.rooms import ROOM_FIELDS, SLOT_SECONDS, parse_origins
from waitingroom.service.context import Context
from waitingroom.service.reads import check_room_id
from waitingroom.store import Conflict

ACTIONS = {"paused": "pause", "open": "resume", "closed": "close"}
FIXED_AT_CREATION = {f.name: f.changes == "at creation" for f in ROOM_FIELDS}


class Operators:
    def __init__(
        self,
        ctx: Context,
        room_defaults: Mapping[str, Any] | None = None,
        binding_key: bytes | None = None,
    ) -> None:
        self.ctx = ctx
        self.room_defaults = dict(room_defaults or {})  # for fields a new room leaves out
        self.binding_key = binding_key

    def put_room(
        self, room: str, changes: dict[str, Any], actor: str = "system", action: str = "update"
    ) -> tuple[RoomConfig, bool]:
        """Create or update a room; returns (config, created). Same input, same result."""
        check_room_id(room)
        if "return_origins" in changes:
            changes = {**changes, "return_origins": _origins(changes["return_origins"])}
        if changes.get("bind_tokens") and not self.binding_key:
            raise InvalidConfig(
                "bind_tokens needs a binding key shared with the origin guard: set "
                "WAITINGROOM_BINDING_KEY here and GUARD_BINDING_KEY at the origin"
            )
        current = self.ctx.store.get_room_config(room, consistent=True)
        if current is None:
            return self._create(room, changes, actor), True
        return self._update(current, changes, actor, action), False

    def _create(self, room: str, changes: dict[str, Any], actor: str) -> RoomConfig:
        fields = {**self.room_defaults, **changes}
        if fields.get("opens_at") is not None:
            fields.setdefault("status", "scheduled")
        if fields.get("status") == "scheduled" and fields.get("opens_at") is None:
            raise InvalidConfig("a scheduled room needs opens_at")
        if "max_active" not in fields:
            raise InvalidConfig("a new room needs max_active (>= 1)")
        slot_seconds = int(fields.get("slot_seconds", SLOT_SECONDS.default))
        cfg = RoomConfig(room=room, epoch_slot=slot_of(self.ctx.clock(), slot_seconds), **fields)
        created = self.ctx.store.put_room_config(cfg, expected_version=None)
        self.ctx.reads.forget_config(room)
        self.ctx.store.append_audit(room, actor, "create", {"config": fields})
        self.ctx.store.put_nudge(room)  # its first tick at once, not at the next room listing
        return created

    def _update(
        self, current: RoomConfig, changes: dict[str, Any], actor: str, action: str
    ) -> RoomConfig:
        for name, value in changes.items():
            if FIXED_AT_CREATION.get(name) and value != getattr(current, name):
                raise ConfigConflict(f"{name} is fixed when a room is created")
        if changes.get("opens_at", current.opens_at) != current.opens_at:
            self._check_opens_at_may_move(current)
        if changes.get("status") == "scheduled" and current.status != "scheduled":
            raise ConfigConflict("only a new room can be scheduled; pause it instead")
        updated = replace(current, **changes)
        if updated == current:
            return current
        try:
            saved = self.ctx.store.put_room_config(updated, expected_version=current.version)
        except Conflict as exc:
            raise ConfigConflict("the room changed meanwhile; send it again") from exc
        self.ctx.reads.forget_config(current.room)
        diff = {k: [getattr(current, k), v] for k, v in changes.items() if getattr(current, k) != v}
        self.ctx.store.append_audit(current.room, actor, action, {"changes": diff})
        self.ctx.store.put_nudge(current.room)  # reopened, resumed, resized: tick it now
        return saved

    def _check_opens_at_may_move(self, current: RoomConfig) -> None:
        """opens_at may move until the pre-queue has been drawn, and only on a room created
        scheduled (a room that admitted people in join order cannot start a draw)."""
        if current.opens_at is None:
            raise ConfigConflict("opens_at can only be set when a room is created")
        st = self.ctx.store.get_public_state(current.room, consistent=True)
        if st is not None and st.draw_seed:
            raise ConfigConflict("the room has opened and its pre-queue was drawn")

    def set_status(self, room: str, status: str, actor: str) -> RoomConfig:
        self._existing(room)
        cfg, _ = self.put_room(room, {"status": status}, actor=actor, action=ACTIONS[status])
        return cfg

    def audit(self, room: str, limit: int = 50) -> list[dict[str, Any]]:
        self._existing(room, consistent=False)
        return self.ctx.store.list_audit(room, limit)

    def stats(self, room: str) -> dict[str, Any]:
        cfg = self._existing(room)
        st = self.ctx.store.get_public_state(room, consistent=True) or PublicState(
            settled_through=cfg.epoch_slot - 1
        )
        status = cfg.status
        if status == "scheduled" and st.draw_seed:
            status = "open"
        return {
            "room": room,
            "status": status,
            "opens_at": cfg.opens_at,
            "prequeue_size": st.prequeue_size if st.draw_seed else None,
            "draw_seed": st.draw_seed or None,
            "max_active": cfg.max_active,
            "max_admits_per_minute": cfg.max_admits_per_minute,
            "waiting": st.waiting_settled,
            "active": st.active,
            "admitted_total": st.admitted_total,
            "completed_total": st.completed_total,
            "reclaimed_total": st.reclaimed_total,
            "expired_total": st.expired_total,
            "joined_total": st.settled_total,
            "admissions_per_minute": self._admitted_last_minute(room),
            "admitted_last_tick": st.last_tick_admitted,
            "admitting": status in ("open", "scheduled")
            and (cfg.opens_slot is None or bool(st.draw_seed)),
            # a paused or closed room lets nobody in: no emptying time is promised
            "estimated_seconds_to_empty": (
                eta_seconds(st.waiting_settled, st.admit_rate, cfg.fallback_rate())
                if status == "open"
                else None
            ),
            "wait_seconds_p50": st.wait_p50,
            "wait_seconds_p90": st.wait_p90,
            "updated_at": st.updated_at,
            "unheld_numbers": self.ctx.store.count_unheld(room),
        }

    def _admitted_last_minute(self, room: str) -> float:
        """Admissions over the last 60 s, as counted: the public state's observed rate is the
        median pace between admitting ticks, not known until there have been a few."""
        dst = self.ctx.store.get_drainer_state(room)
        return float(dst.rates.admitted_since(self.ctx.clock() - 60)) if dst else 0.0

    def request_drain(self, room: str, actor: str = "system") -> None:
        self._existing(room, consistent=False)
        self.ctx.store.put_nudge(room)
        self.ctx.store.append_audit(room, actor, "drain", {})

    def _existing(self, room: str, consistent: bool = True) -> RoomConfig:
        cfg = self.ctx.store.get_room_config(room, consistent=consistent)
        if cfg is None:
            raise UnknownRoom(room)
        return cfg


def _origins(text: str) -> str:
    try:
        return " ".join(parse_origins(text))
    except ValueError as exc:
        raise InvalidConfig(str(exc)) from None

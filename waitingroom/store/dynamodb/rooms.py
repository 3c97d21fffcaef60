"""Rooms: each room's CONFIG, the ROOMS registry, the AUDIT trail and the NUDGES item."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

from waitingroom.domain import RoomConfig
from waitingroom.rooms import ROOM_FIELDS, RoomField
from waitingroom.store.dynamodb.table import (
    DynamoTable,
    as_float,
    as_int,
    attrs,
    key,
    plain,
    room_pk,
)
from waitingroom.store.interface import AUDIT_KEEP_SECONDS


class DynamoRooms(DynamoTable):
    def put_room_config(self, cfg: RoomConfig, expected_version: int | None) -> RoomConfig:
        """Create (expected_version None) or update a room; versions guard lost updates."""
        new = replace(cfg, version=cfg.version + 1 if expected_version is not None else 1)
        fields: dict[str, Any] = {
            "pk": room_pk(cfg.room),
            "sk": "CONFIG",
            "epoch_slot": new.epoch_slot,
            "version": new.version,
        }
        for f in ROOM_FIELDS:
            value = getattr(new, f.name)
            if value is not None:  # opens_at of a room without a pre-queue
                fields[f.name] = value
        if expected_version is None:
            cond: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            cond = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": attrs({":v": expected_version}),
            }
        self._call("put_item", Item=attrs(fields), **cond)
        registry = {"pk": "ROOMS", "sk": room_pk(cfg.room), "room": cfg.room}
        self._call("put_item", Item=attrs(registry))
        return new

    def get_room_config(self, room: str, consistent: bool = False) -> RoomConfig | None:
        v = self._get(room_pk(room), "CONFIG", consistent)
        if v is None:
            return None
        settings = {f.name: _decoded(f, v.get(f.name)) for f in ROOM_FIELDS}
        return RoomConfig(
            room=room,
            epoch_slot=as_int(v.get("epoch_slot")),
            version=as_int(v.get("version")),
            **settings,
        )

    def list_rooms(self) -> list[str]:
        items = self._query(
            KeyConditionExpression="pk = :p", ExpressionAttributeValues=attrs({":p": "ROOMS"})
        )
        return [str(i.get("room", "")) for i in items]

    # -- audit trail -----------------------------------------------------------------------

    def append_audit(self, room: str, actor: str, action: str, details: dict[str, Any]) -> None:
        now = self.clock()
        item = {
            "pk": f"ROOM#{room}#AUDIT",
            "sk": f"{now:017.6f}#{uuid.uuid4().hex[:8]}",
            "at": now,
            "actor": actor,
            "action": action,
            "details": json.dumps(details, sort_keys=True, default=str),
            "expires_at": int(now) + AUDIT_KEEP_SECONDS,
        }
        self._call("put_item", Item=attrs(item))

    def list_audit(self, room: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest entries first."""
        resp = self._call(
            "query",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues=attrs({":p": f"ROOM#{room}#AUDIT"}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [_audit_entry(plain(i)) for i in resp.get("Items", [])]

    # -- drain requests --------------------------------------------------------------------

    def put_nudge(self, room: str) -> None:
        """Ask the drainer to tick `room` now. One item holds every room's latest request, so
        the drainer's twice-a-second look costs one read however many rooms there are."""
        self._call(
            "update_item",
            Key=key("NUDGES", "ALL"),
            UpdateExpression="SET #r = :now",
            ExpressionAttributeNames={"#r": f"r_{room}"},
            ExpressionAttributeValues=attrs({":now": self.clock()}),
        )

    def get_nudges(self) -> dict[str, float]:
        """When each room last asked for a tick (rooms that never did are absent)."""
        item = self._get("NUDGES", "ALL", consistent=True) or {}
        return {k[2:]: as_float(v) for k, v in item.items() if k.startswith("r_")}


def _audit_entry(v: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": as_float(v.get("at")),
        "actor": v.get("actor", ""),
        "action": v.get("action", ""),
        "details": json.loads(v.get("details", "{}")),
    }


def _decoded(f: RoomField[Any], value: Any) -> Any:
    """A stored room setting as RoomConfig holds it (the spec's default when absent)."""
    if value is None:
        return f.default
    if f.kind == "int":
        return int(value)
    if f.kind == "time":
        return float(value)
    if f.kind == "bool":
        return bool(value)
    return str(value)

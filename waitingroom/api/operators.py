"""Routes for operators (admin key locally, IAM in AWS): rooms, lifecycle, stats, audit, drain."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from waitingroom.api.deps import AdminDep, RoomPath, ServiceDep
from waitingroom.api.errors import RESPONSES
from waitingroom.api.models import (
    AuditEntry,
    AuditOut,
    DrainOut,
    RoomConfigIn,
    RoomOut,
    RoomStatusOut,
    StatsOut,
    room_out,
)

router = APIRouter(tags=["operators"], responses=RESPONSES)


@router.put(
    "/admin/rooms/{room}",
    response_model=RoomOut,
    responses={201: {"model": RoomOut, "description": "Room created"}},
)
def put_room(
    room: RoomPath, body: RoomConfigIn, actor: AdminDep, svc: ServiceDep, response: Response
) -> RoomOut:
    changes = body.model_dump(exclude_none=True)
    if "origin_url" in changes:
        changes["origin_url"] = str(changes["origin_url"])
    if "page_logo_url" in changes:
        changes["page_logo_url"] = str(changes["page_logo_url"])
    if isinstance(changes.get("opens_at"), datetime):
        changes["opens_at"] = changes["opens_at"].timestamp()
    cfg, created = svc.put_room(room, changes, actor=actor)
    response.status_code = 201 if created else 200
    return room_out(cfg)


@router.get("/admin/rooms/{room}/stats", response_model=StatsOut)
def stats(room: RoomPath, _: AdminDep, svc: ServiceDep) -> StatsOut:
    return StatsOut(**svc.stats(room))


@router.get("/admin/rooms/{room}/audit", response_model=AuditOut)
def audit(
    room: RoomPath,
    _: AdminDep,
    svc: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditOut:
    """Who changed what, when (newest first)."""
    return AuditOut(room=room, entries=[AuditEntry(**e) for e in svc.audit(room, limit)])


@router.post("/admin/rooms/{room}/drain", status_code=202, response_model=DrainOut)
def drain(room: RoomPath, actor: AdminDep, svc: ServiceDep) -> DrainOut:
    """Ask the drainer to tick this room now (it does within a second)."""
    svc.request_drain(room, actor)
    return DrainOut(room=room)


def _status_route(status: str) -> Callable[[str, str, ServiceDep], RoomStatusOut]:
    def change(room: RoomPath, actor: AdminDep, svc: ServiceDep) -> RoomStatusOut:
        return RoomStatusOut(room=room, status=svc.set_status(room, status, actor).status)

    return change


for _action, _status in (("pause", "paused"), ("resume", "open"), ("close", "closed")):
    router.add_api_route(
        f"/admin/rooms/{{room}}/{_action}",
        _status_route(_status),
        methods=["POST"],
        response_model=RoomStatusOut,
        name=_action,
        summary=f"{_action.capitalize()} a room",
    )

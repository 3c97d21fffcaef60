"""The public documents: the room's state and its settled slots, cacheable by the edge.

Nothing here depends on who asks (no cookies, no Authorization, no query string), so a shared
cache may answer everybody from one copy: the state for a second (and a little longer while it
revalidates, or while the API is failing), a settled slot for a year. Their 404s are cached for
a second, so a storm of unknown or future slots reaches the API once a second per slot; a slot
that settled empty long ago is a 404 kept for an hour (and remembered by the container).
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from waitingroom.api.deps import RoomPath, ServiceDep, via_function_url
from waitingroom.api.errors import RESPONSES, error_response
from waitingroom.api.models import RecentSlotOut, RoomStateOut, SlotOut
from waitingroom.domain import STATE_HOLD_SECONDS
from waitingroom.errors import SlotNotFound, UnknownRoom

STATE_CACHE = "public, max-age=1, stale-while-revalidate=2, stale-if-error=60"
SLOT_CACHE = "public, max-age=31536000, immutable"
NOT_FOUND_CACHE = "public, max-age=1"
EMPTY_CACHE = "public, max-age=3600"  # a slot that settled empty long ago stays empty
MAX_SLOT = 2**40  # far beyond any slot a clock can reach; larger is a 422

router = APIRouter(tags=["public documents"], responses=RESPONSES)


def _not_found(exc: SlotNotFound | UnknownRoom) -> JSONResponse:
    final = isinstance(exc, SlotNotFound) and exc.final
    cache = EMPTY_CACHE if final else NOT_FOUND_CACHE
    return error_response(404, exc.code, exc.message, {"Cache-Control": cache})


def from_edge(request: Request) -> bool:
    """The request comes from a shared cache: it says so (Via, as CloudFront and the local edge
    do), and in AWS it came through the function URL, which only CloudFront can call. The same
    header sent straight to the HTTP API holds nothing: a held request costs a Lambda
    environment for up to a second, and nobody else may spend those."""
    if not request.headers.get("via"):
        return False
    event = request.scope.get("aws.event")
    return event is None or via_function_url(event)


@router.get("/rooms/{room}/state", response_model=RoomStateOut)
def room_state(room: RoomPath, svc: ServiceDep, request: Request) -> JSONResponse:
    """Where the room's line stands (CLIENTS.md §2): cached by the edge for about a second."""
    # A request from the edge fills its cache for everybody: when a settle is due within half a
    # second it waits for it, so the copy everybody gets for the next second already has it.
    hold = STATE_HOLD_SECONDS if from_edge(request) else 0.0
    try:
        doc = svc.room_document(room, hold)
    except UnknownRoom as exc:
        return _not_found(exc)
    cfg, st = doc.config, doc.state
    out = RoomStateOut(
        room=cfg.room,
        version=st.version,
        status=cfg.status,
        slot_seconds=cfg.slot_seconds,
        settled_through=st.settled_through,
        settled_total=st.settled_total,
        consumed=st.consumed,
        waiting=st.waiting_settled,
        join_rate_per_slot=st.join_rate_per_slot,
        admit_rate=st.admit_rate,
        expected_rate=doc.expected_rate,
        pickup_seconds=cfg.pickup_seconds,
        opens_at=cfg.opens_at,
        opens_slot=cfg.opens_slot,
        prequeue_size=st.prequeue_size,
        draw_seed=st.draw_seed,
        closed_slot=st.closed_slot,
        updated_at=st.updated_at,
        committed_at=st.committed_at or st.updated_at,  # a state an older drainer wrote
        shards=cfg.shards,
        unsettled_counts=list(st.unsettled_counts),
        recent_slots=[
            RecentSlotOut(slot=r.slot, counts=list(r.counts), tickets_before=r.cum_before)
            for r in st.recent_slots
        ],
        admit_forecast=list(st.admit_forecast),
    )
    # nginx counts a cached answer's life in whole seconds of its clock, so max-age=1 keeps the
    # state until the end of the next second (up to two); an nginx edge is told to keep it to
    # the end of this one (it honours and strips X-Accel-Expires; other caches ignore it)
    headers = {"Cache-Control": STATE_CACHE, "X-Accel-Expires": f"@{int(time.time())}"}
    return JSONResponse(out.model_dump(), headers=headers)


@router.get(
    "/rooms/{room}/slots/{slot}",
    response_model=SlotOut,
    responses={404: {"description": "not settled yet, empty, or unknown (cached ≤ 1 s)"}},
)
def settled_slot(
    room: RoomPath, slot: Annotated[int, Path(ge=0, le=MAX_SLOT)], svc: ServiceDep
) -> JSONResponse:
    """A settled slot's final counts (CLIENTS.md §2): immutable, cached by the edge for good."""
    try:
        ss = svc.slot_document(room, slot)
    except (SlotNotFound, UnknownRoom) as exc:
        return _not_found(exc)
    out = SlotOut(
        room=room,
        slot=ss.slot,
        counts=list(ss.counts),
        tickets_before=ss.cum_before,
        total=ss.total,
        draw_start=ss.draw_start,
        draw_size=ss.draw_size,
        draw_seed=ss.draw_seed,
    )
    return JSONResponse(out.model_dump(), headers={"Cache-Control": SLOT_CACHE})

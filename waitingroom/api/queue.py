"""Routes for visitors: the waiting page, join, status (and pickup), challenge, complete."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from waitingroom import page
from waitingroom.api.deps import (
    ROOM_PATTERN,
    RoomPath,
    ServiceDep,
    bearer,
    client_key,
    settings_of,
)
from waitingroom.api.errors import NO_STORE, RESPONSES, RETRY_AFTER_SECONDS, note_unavailable
from waitingroom.api.models import (
    AdmittedOut,
    ChallengeOut,
    JoinIn,
    JoinOut,
    WaitingOut,
    line_message,
)
from waitingroom.errors import InvalidRequest, UnknownRoom
from waitingroom.service import Admitted, Waiting
from waitingroom.store import KEEP_SECONDS, StoreUnavailable
from waitingroom.tokens import BINDING_COOKIE

TICKET_COOKIE = "waitingroom_ticket"
TOKEN_COOKIE = "waitingroom_token"
IDEM_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
router = APIRouter(tags=["queue"], responses=RESPONSES)
# the page's room is checked by the route itself (no 422 JSON for an overlong one: a page)
PageRoomPath = Annotated[
    str,
    Path(
        description="room id: lowercase letters, digits, dashes",
        json_schema_extra={"pattern": ROOM_PATTERN},
    ),
]


def _json(model: BaseModel, status: int = 200) -> JSONResponse:
    # the hot routes answer with a JSONResponse (the model documents it; nothing to
    # re-validate), which saves FastAPI's second pass over the result
    return JSONResponse(model.model_dump(), status, headers=dict(NO_STORE))


def _place(w: Waiting) -> dict[str, Any]:
    """What a join and a waiting poll both say about the place in line."""
    return {
        "position": w.position,
        "eta_seconds": w.eta_seconds,
        "poll_after_seconds": w.poll_after_seconds,
        "position_is_exact": w.exact,
        "opens_at": w.opens_at,
        "line": w.line,
        "you_are_next": w.you_are_next,
        "message": line_message(w.line, w.position, w.exact),
    }


def _cookie(
    response: Response, name: str, value: str, max_age: int, path: str, secure: bool
) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=path, httponly=True, samesite="lax", secure=secure
    )


@router.get(
    "/rooms/{room}",
    responses={
        200: {
            "description": "The waiting page",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        304: {"description": "Not modified (If-None-Match matched the page's ETag)"},
        404: {
            "description": "No such room: a page saying so (for a malformed room id too)",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        503: {
            "description": "The store is not answering: a page that reloads itself",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
    },
)
def waiting_page(room: PageRoomPath, request: Request, svc: ServiceDep) -> Response:
    """The waiting page; for an unknown or malformed room, a 404 page, never the API's JSON:
    only browsers ask for this route (JSON clients use /join, /status, /state), and the edge
    does not forward Accept here, so the answer cannot depend on it."""
    try:
        cfg = svc.config(room)
    except (InvalidRequest, UnknownRoom):
        return page.not_found_page(room)
    except StoreUnavailable as exc:
        note_unavailable(request, exc)
        return page.unavailable_page(RETRY_AFTER_SECONDS)
    return page.waiting_page_response(room, request.headers.get("if-none-match"), cfg)


@router.post("/rooms/{room}/join", status_code=201, response_model=JoinOut)
def join(
    room: RoomPath,
    request: Request,
    svc: ServiceDep,
    body: JoinIn | None = None,
    idempotency_key: Annotated[
        str | None, Header(json_schema_extra={"pattern": IDEM_RE.pattern})
    ] = None,
    x_challenge: Annotated[
        str | None,
        Header(
            description="a challenge from GET /rooms/{room}/challenge (rooms with a proof of work)"
        ),
    ] = None,
    x_challenge_solution: Annotated[
        str | None, Header(description="the counter that solves X-Challenge")
    ] = None,
) -> Response:
    if idempotency_key is not None and not IDEM_RE.match(idempotency_key):
        raise InvalidRequest(
            "Idempotency-Key must be 1-128 letters, digits or . _ : -", code="bad_idempotency_key"
        )
    cfg = svc.config(room)
    settings = settings_of(request)
    client: str | None = None
    cookies: list[tuple[str, str, str]] = []
    if cfg.max_tickets_per_client > 0 or cfg.max_joins_per_minute_per_client > 0:
        client, new_cookie = client_key(request, settings)
        if new_cookie is not None:
            cookies.append((settings.client_cookie, new_cookie, f"/rooms/{room}"))
    joined = svc.join(
        room, idempotency_key, client=client, challenge=x_challenge, solution=x_challenge_solution
    )
    if isinstance(joined.status, Admitted):
        out = _json(_straight_in(joined.ticket, joined.status), 201)
        _token_cookies(out, joined.status, int(svc.clock()), settings.cookie_secure)
    else:
        place = _place(joined.status)
        out = _json(
            JoinOut(
                ticket=joined.ticket,
                number=joined.number,
                slot_seconds=cfg.slot_seconds,
                **place,
            ),
            201,
        )
    for name, value, path in [*cookies, (TICKET_COOKIE, joined.ticket, f"/rooms/{room}")]:
        _cookie(out, name, value, KEEP_SECONDS, path, settings.cookie_secure)
    return out


def _straight_in(ticket: str, a: Admitted) -> JoinOut:
    """A join an idle room let straight in: no place in line, the token at once."""
    return JoinOut(
        ticket=ticket,
        number=0,
        position=0,
        eta_seconds=0,
        poll_after_seconds=0,
        position_is_exact=True,
        line="moving",
        you_are_next=False,
        message=line_message("moving", 0, True),
        state="admitted",
        token=a.token,
        expires_at=a.expires_at,
        origin_url=a.origin_url,
        return_origins=list(a.return_origins),
    )


def _token_cookies(out: Response, a: Admitted, now: int, secure: bool) -> None:
    max_age = max(1, a.expires_at - now)
    _cookie(out, TOKEN_COOKIE, a.token, max_age, "/", secure)
    if a.binding is not None:
        _cookie(out, BINDING_COOKIE, a.binding, max_age, "/", secure)


@router.get("/rooms/{room}/status", response_model=WaitingOut | AdmittedOut)
def status(
    room: RoomPath,
    request: Request,
    svc: ServiceDep,
    authorization: Annotated[str | None, Header()] = None,
    v: Annotated[
        int, Query(ge=0, le=2**53, description="state_version of the previous answer")
    ] = 0,
) -> Response:
    text = bearer(authorization) or request.cookies.get(TICKET_COOKIE)
    result = svc.poll(room, text, min_version=v)
    if isinstance(result, Waiting):
        return _json(
            WaitingOut(**_place(result), waiting=result.waiting, state_version=result.state_version)
        )
    assert isinstance(result, Admitted)
    settings = settings_of(request)
    out = _json(
        AdmittedOut(
            token=result.token,
            expires_at=result.expires_at,
            origin_url=result.origin_url,
            return_origins=list(result.return_origins),
        )
    )
    _token_cookies(out, result, int(svc.clock()), settings.cookie_secure)
    return out


@router.get("/rooms/{room}/challenge", response_model=ChallengeOut)
def challenge(room: RoomPath, svc: ServiceDep, response: Response) -> ChallengeOut:
    """A proof-of-work challenge for joining (rooms with challenge_bits > 0)."""
    ch = svc.challenge(room)
    response.headers.update(NO_STORE)
    return ChallengeOut(
        challenge=svc.sign_challenge(ch), difficulty_bits=ch.bits, expires_at=ch.expires_at
    )


@router.post("/rooms/{room}/complete", status_code=204)
def complete(
    room: RoomPath,
    request: Request,
    svc: ServiceDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """End an admitted session (the origin calls this): its place frees up at the next tick."""
    svc.complete(room, bearer(authorization) or request.cookies.get(TOKEN_COOKIE))
    return Response(status_code=204)

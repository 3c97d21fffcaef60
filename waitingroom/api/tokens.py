"""Routes for origins and their guards: the public signing keys and the revocation list."""

from __future__ import annotations

from fastapi import APIRouter, Response

from waitingroom.api.deps import RoomPath, ServiceDep
from waitingroom.api.errors import RESPONSES
from waitingroom.api.models import JwksOut, RevokedOut
from waitingroom.errors import Unavailable

JWKS_MAX_AGE = 300
REVOKED_MAX_AGE = 5

router = APIRouter(tags=["tokens"], responses=RESPONSES)


@router.get("/.well-known/jwks.json", response_model=JwksOut)
def jwks(svc: ServiceDep, response: Response) -> JwksOut:
    keys = svc.jwks()
    if not keys["keys"]:
        raise Unavailable(
            "no signing keys yet: the drainer publishes them when it first runs",
            code="keys_not_published",
        )
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    return JwksOut(keys=keys["keys"])


@router.get("/rooms/{room}/revoked", response_model=RevokedOut)
def revoked(room: RoomPath, svc: ServiceDep, response: Response) -> RevokedOut:
    """jti's of the room's tokens ended before their exp (origin guards cache this)."""
    jtis = svc.revoked(room)
    response.headers["Cache-Control"] = f"public, max-age={REVOKED_MAX_AGE}"
    return RevokedOut(room=room, revoked=jtis, max_age_seconds=REVOKED_MAX_AGE)

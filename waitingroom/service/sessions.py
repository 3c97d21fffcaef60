"""An admitted session's end: the origin completes it, its place frees up at the next tick,
and (with the revocation list on) its token is listed as revoked for guards that check."""

from __future__ import annotations

import contextlib
from typing import Any

from origin_guard.verify import CallableKeys, TokenRejected, TokenVerifier
from waitingroom.domain import ledger_shard_of
from waitingroom.errors import NotAuthenticated
from waitingroom.service.context import Context
from waitingroom.store import Conflict
from waitingroom.tokens import SUPPORTED_ALGORITHMS


class Sessions:
    def __init__(self, ctx: Context, revocation_list: bool = False) -> None:
        self.ctx = ctx
        self.revocation_list = revocation_list  # complete also lists the token as revoked
        # the drainer's public keys, parsed once per JWKS document the reads cache returns; a
        # token with a kid not in it makes the cache re-read the keys (at most every 30 s)
        self._keys = CallableKeys(ctx.reads.jwks, SUPPORTED_ALGORITHMS)

    def complete(self, room: str, token: str | None) -> None:
        cfg = self.ctx.reads.config(room)
        if not token:
            raise NotAuthenticated(
                "send the admission token as 'Authorization: Bearer <token>'",
                code="missing_token",
            )
        now = self.ctx.clock()
        try:
            claims = self._verify(token, room, now)
        except TokenRejected as exc:
            raise NotAuthenticated(exc.message, code="bad_token") from exc
        try:
            slot, shard, k = (int(x) for x in str(claims["sub"]).split("."))
        except ValueError as exc:
            raise NotAuthenticated("the token's subject is not a ticket", code="bad_token") from exc
        store = self.ctx.store
        item = store.get_ticket(cfg.room, slot, shard, k)
        if item is not None and item.state == "picked":
            self.ctx.metrics.count(room, "completions")
            # a Conflict: completed concurrently or expired meanwhile
            with contextlib.suppress(Conflict):
                shard_n = ledger_shard_of(f"{slot}.{shard}.{k}", item.ledger_shards)
                store.complete(room, item, shard_n, now)
        if self.revocation_list:
            # whatever the ticket's state, the token is now useless to a guard that checks the
            # revocation list (GET /rooms/{room}/revoked); completing again changes nothing
            store.add_revoked(room, str(claims["jti"]), float(claims["exp"]))
            self.ctx.reads.forget_revoked(room)

    def revoked(self, room: str) -> list[str]:
        """The room's revoked, unexpired jti's (cached for 2 s per container)."""
        self.ctx.reads.config(room)
        return self.ctx.reads.revoked(room)

    def _verify(self, token: str, room: str, now: float) -> dict[str, Any]:
        """The origin guard's checks, for this room, at `now`."""
        claims = TokenVerifier(
            audience=room,
            issuer=self.ctx.issuer,
            key_source=self._keys,
            algorithms=SUPPORTED_ALGORITHMS,
            clock=lambda: now,
        ).verify(token)
        return {"sub": claims.ticket, "jti": claims.jti, "exp": claims.expires_at}

"""An admitted session's end: the origin completes it, its place frees up at the next tick,
and (with the revocation list on) its token is listed as revoked for guards that check."""

from __future__ import annotations

import contextlib
from typing import Any

from waitingroom.domain import ledger_shard_of
from waitingroom.errors import NotAuthenticated
from waitingroom.service.context import Context
from waitingroom.store import Conflict
from waitingroom.tokens import BadToken, verify_admission_token


class Sessions:
    def __init__(self, ctx: Context, revocation_list: bool = False) -> None:
        self.ctx = ctx
        self.revocation_list = revocation_list  # complete also lists the token as revoked

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
        except BadToken as exc:
            raise NotAuthenticated(str(exc), code="bad_token") from exc
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
        reads, issuer = self.ctx.reads, self.ctx.issuer
        try:
            return verify_admission_token(
                token, reads.jwks(), issuer=issuer, audience=room, now=now
            )
        except BadToken:
            # a rotated key the cache has not seen yet: refetch once (rate-limited), retry
            return verify_admission_token(
                token, reads.jwks(refetch=True), issuer=issuer, audience=room, now=now
            )

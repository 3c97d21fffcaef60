"""What the API does, without HTTP: join, poll, complete, and the operator actions.

`WaitingRoom` is the one object the HTTP layer holds: it builds the use cases (`join`, `poll`,
`sessions`, `operators`) around one shared context (store, cached reads, ticket secrets, clock,
metrics) and hands each call to the one that owns it. Use cases raise `waitingroom.errors`;
they know nothing of status codes, cookies or where secrets come from.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from waitingroom.domain import PublicState, RoomConfig, SettledSlot
from waitingroom.observability import MetricsBuffer
from waitingroom.service.context import Context
from waitingroom.service.join import Joins
from waitingroom.service.operators import Operators
from waitingroom.service.poll import Polls
from waitingroom.service.public import PublicDocs, RoomDocument
from waitingroom.service.reads import RoomReads
from waitingroom.service.results import Admitted, Joined, Waiting
from waitingroom.service.sessions import Sessions
from waitingroom.store import WaitingRoomStore
from waitingroom.tokens import Challenge

__all__ = ["Admitted", "Joined", "RoomDocument", "Waiting", "WaitingRoom"]


class WaitingRoom:
    """The API's use cases. One per container, built by the composition root."""

    def __init__(
        self,
        store: WaitingRoomStore,
        ticket_secrets: Sequence[bytes],
        *,
        issuer: str,
        state_ttl: float = 1.0,
        config_ttl: float = 2.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        room_defaults: Mapping[str, Any] | None = None,
        metrics: MetricsBuffer | None = None,
        binding_key: bytes | None = None,
        revocation_list: bool = False,
    ) -> None:
        if not ticket_secrets:
            raise ValueError("at least one ticket secret is needed")
        reads = RoomReads(store, clock, state_ttl=state_ttl, config_ttl=config_ttl, sleep=sleep)
        self.ctx = Context(
            store=store,
            reads=reads,
            secrets=list(ticket_secrets),
            issuer=issuer,
            clock=clock,
            rng=rng or random.SystemRandom(),
            metrics=metrics or MetricsBuffer("api", clock=clock),
        )
        self.polls = Polls(self.ctx, binding_key)
        self.joins = Joins(self.ctx, self.polls)
        self.sessions = Sessions(self.ctx, revocation_list)
        self.public = PublicDocs(self.ctx)
        self.operators = Operators(self.ctx, room_defaults, binding_key)

    # -- shared parts ----------------------------------------------------------------------

    @property
    def store(self) -> WaitingRoomStore:
        return self.ctx.store

    @property
    def secrets(self) -> list[bytes]:
        return self.ctx.secrets

    @property
    def clock(self) -> Callable[[], float]:
        return self.ctx.clock

    @property
    def metrics(self) -> MetricsBuffer:
        return self.ctx.metrics

    @property
    def binding_key(self) -> bytes | None:
        return self.polls.binding_key

    @binding_key.setter
    def binding_key(self, key: bytes | None) -> None:
        self.polls.binding_key = self.operators.binding_key = key

    @property
    def revocation_list(self) -> bool:
        return self.sessions.revocation_list

    @revocation_list.setter
    def revocation_list(self, on: bool) -> None:
        self.sessions.revocation_list = on

    # -- cached reads ----------------------------------------------------------------------

    def config(self, room: str) -> RoomConfig:
        return self.ctx.reads.config(room)

    def state(self, cfg: RoomConfig, min_version: int = 0) -> PublicState:
        return self.ctx.reads.state(cfg, min_version)

    def settled_slot(self, room: str, slot: int) -> SettledSlot | None:
        return self.ctx.reads.settled_slot(room, slot)

    def jwks(self, refetch: bool = False) -> dict[str, Any]:
        return self.ctx.reads.jwks(refetch)

    # -- the public documents (cached by the edge) -------------------------------------------

    def room_document(self, room: str, hold: float = 0.0) -> RoomDocument:
        return self.public.state(room, hold)

    def slot_document(self, room: str, slot: int) -> SettledSlot:
        return self.public.slot(room, slot)

    # -- visitors --------------------------------------------------------------------------

    def join(
        self,
        room: str,
        idempotency_key: str | None,
        *,
        client: str | None = None,
        challenge: str | None = None,
        solution: str | None = None,
    ) -> Joined:
        return self.joins.join(
            room, idempotency_key, client=client, challenge=challenge, solution=solution
        )

    def challenge(self, room: str) -> Challenge:
        return self.joins.challenge(room)

    def sign_challenge(self, challenge: Challenge) -> str:
        return self.joins.sign_challenge(challenge)

    def poll(self, room: str, text: str | None, min_version: int = 0) -> Waiting | Admitted:
        return self.polls.poll(room, text, min_version)

    def complete(self, room: str, token: str | None) -> None:
        self.sessions.complete(room, token)

    def revoked(self, room: str) -> list[str]:
        return self.sessions.revoked(room)

    # -- operators -------------------------------------------------------------------------

    def put_room(
        self, room: str, changes: dict[str, Any], actor: str = "system", action: str = "update"
    ) -> tuple[RoomConfig, bool]:
        return self.operators.put_room(room, changes, actor, action)

    def set_status(self, room: str, status: str, actor: str) -> RoomConfig:
        return self.operators.set_status(room, status, actor)

    def audit(self, room: str, limit: int = 50) -> list[dict[str, Any]]:
        return self.operators.audit(room, limit)

    def stats(self, room: str) -> dict[str, Any]:
        return self.operators.stats(room)

    def request_drain(self, room: str, actor: str = "system") -> None:
        self.operators.request_drain(room, actor)

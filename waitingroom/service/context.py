"""What every use case shares: the store, the cached reads, the ticket secrets, time, metrics."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from waitingroom.observability import MetricsBuffer
from waitingroom.service.reads import RoomReads
from waitingroom.store import WaitingRoomStore


@dataclass(frozen=True, slots=True)
class Context:
    store: WaitingRoomStore
    reads: RoomReads
    secrets: list[bytes]  # ticket HMAC secrets: the first signs, all verify
    issuer: str
    clock: Callable[[], float]
    rng: random.Random
    metrics: MetricsBuffer

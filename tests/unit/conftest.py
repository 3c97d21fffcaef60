"""Unit-test fixtures: the service and the drainer over the in-memory store, on a fake clock.

The service is built here and only here, so a change to its constructor is a one-line fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import TICKET_SECRET, FakeClock
from waitingroom.drainer import Drainer
from waitingroom.service import WaitingRoom
from waitingroom.store.memory import MemoryStore
from waitingroom.tokens import KeySet

if TYPE_CHECKING:
    pass


@pytest.fixture
def memory_store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def memory_service(memory_store: MemoryStore, clock: FakeClock) -> WaitingRoom:
    return WaitingRoom(memory_store, [TICKET_SECRET], issuer="waitingroom", clock=clock)


@pytest.fixture
def memory_drainer(memory_store: MemoryStore, clock: FakeClock, keyset: KeySet) -> Drainer:
    return Drainer(memory_store, lambda: keyset, issuer="waitingroom", owner="a", clock=clock)

"""One drainer per room, and quick recovery: a drainer standing by takes a room over as soon as
the dead holder's lease runs out, a run that ends hands its rooms over at once, and finishing a
batch a dead drainer had committed is logged."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from tests.conftest import FakeClock
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.service import WaitingRoom
from waitingroom.store import AdmittedTicket
from waitingroom.store.memory import MemoryStore
from waitingroom.tokens import KeySet

LEASE = 30.0


class Killed(BaseException):
    """The process dies here (nothing in the drainer catches it)."""


class Watched(MemoryStore):
    """Records every lease attempt; can kill the drainer between commit and ticket writes."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.attempts: list[tuple[str, float, bool]] = []
        self.kill_in_put_admitted = False

    def acquire_lease(self, room: str, owner: str, seconds: float) -> bool:
        got = super().acquire_lease(room, owner, seconds)
        self.attempts.append((owner, self.clock(), got))
        return got

    def put_admitted(self, room: str, tickets: Sequence[AdmittedTicket]) -> int:
        if self.kill_in_put_admitted:
            self.kill_in_put_admitted = False
            raise Killed
        return super().put_admitted(room, tickets)


@pytest.fixture
def watched(clock: FakeClock) -> Watched:
    return Watched(clock)


def drainer(store: MemoryStore, owner: str, clock: FakeClock, keyset: KeySet) -> Drainer:
    return Drainer(
        store, lambda: keyset, issuer="waitingroom", owner=owner, lease_seconds=LEASE, clock=clock
    )


def joined_room(store: MemoryStore, clock: FakeClock, n: int) -> None:
    service = WaitingRoom(store, [b"x" * 32], issuer="waitingroom", clock=clock)
    service.put_room("demo", {"max_active": 100, "pickup_seconds": 600})
    for _ in range(n):
        service.join("demo", None)
    clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)


def test_a_drainer_standing_by_takes_over_as_the_dead_holders_lease_runs_out(
    watched: Watched, clock: FakeClock, keyset: KeySet, caplog: pytest.LogCaptureFixture
) -> None:
    joined_room(watched, clock, 10)
    watched.kill_in_put_admitted = True
    with pytest.raises(Killed):
        drainer(watched, "dead", clock, keyset).tick_room("demo")
    died_at = clock()
    state = watched.get_public_state("demo")
    assert state is not None and state.consumed == 10 and state.materialized == 0

    standby = drainer(watched, "standby", clock, keyset)
    with caplog.at_level(logging.INFO, logger="waitingroom.drainer"):
        standby.run(seconds=45, tick_seconds=5, sleep=clock.advance)

    tries = [(at - died_at, got) for owner, at, got in watched.attempts if owner == "standby"]
    took_over = next(at for at, got in tries if got)
    assert LEASE <= took_over <= LEASE + 0.8  # at the lease's end, not a tick (5 s) later
    assert sum(1 for _, got in tries if not got) <= 2  # and did not knock every tick meanwhile
    state = watched.get_public_state("demo")
    assert state is not None and state.materialized == 10
    finished = [r for r in caplog.records if "interrupted tick" in r.getMessage()]
    assert len(finished) == 1
    assert finished[0].__dict__["tickets"] == 10


def test_a_run_that_ends_hands_its_rooms_over_at_once(
    watched: Watched, clock: FakeClock, keyset: KeySet
) -> None:
    joined_room(watched, clock, 3)
    first = drainer(watched, "first", clock, keyset)
    first.run(seconds=10, tick_seconds=5, sleep=clock.advance)
    # the next scheduled run (another container, another owner) ticks the room straight away
    assert drainer(watched, "next", clock, keyset).tick_room("demo").ran

"""Numbers nobody holds: a join whose counter bump may have landed without a ticket is counted,
never retried; a number the API knows it gave nobody is recorded, counted in the stats, and its
place freed at the drainer's next tick instead of after pickup_seconds."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from tests.conftest import TICKET_SECRET, FakeClock
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.observability import MetricsBuffer
from waitingroom.service import WaitingRoom
from waitingroom.store import StoreUnavailable
from waitingroom.store.memory import MemoryStore
from waitingroom.tokens import KeySet, parse_ticket


class Counted:
    """A metrics sink that adds up every count it is given."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def __call__(
        self, service: str, room: str, counts: Mapping[str, float], gauges: Mapping[str, float]
    ) -> None:
        for name, n in counts.items():
            self.totals[name] = self.totals.get(name, 0) + n


class FlakyBumps(MemoryStore):
    """Counter bumps that time out after landing, or come back late, a given number of times."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.clock_ = clock
        self.unsure = 0
        self.late = 0
        self.bumps = 0

    def bump_counter(self, room: str, slot: int, shard: int, slot_seconds: int) -> int:
        self.bumps += 1
        k = super().bump_counter(room, slot, shard, slot_seconds)
        if self.unsure:
            self.unsure -= 1
            raise StoreUnavailable("update_item: ReadTimeoutError", ambiguous=True)
        if self.late:
            self.late -= 1
            self.clock_.advance(2.5)  # answered after its slot closed (and half the delay)
        return k


@pytest.fixture
def flaky(clock: FakeClock) -> FlakyBumps:
    return FlakyBumps(clock)


@pytest.fixture
def counted() -> Counted:
    return Counted()


@pytest.fixture
def service(flaky: FlakyBumps, clock: FakeClock, counted: Counted) -> WaitingRoom:
    metrics = MetricsBuffer("api", counted, flush_seconds=0, clock=clock)
    room = WaitingRoom(flaky, [TICKET_SECRET], issuer="waitingroom", clock=clock, metrics=metrics)
    room.put_room("demo", {"max_active": 2, "shards": 1, "pickup_seconds": 600})
    return room


def test_a_bump_that_may_have_landed_is_one_503_one_count_and_never_sent_again(
    service: WaitingRoom, flaky: FlakyBumps, counted: Counted
) -> None:
    flaky.unsure = 1
    with pytest.raises(StoreUnavailable):
        service.join("demo", None)
    assert flaky.bumps == 1
    assert counted.totals.get("joins_unsure") == 1
    assert flaky.count_unheld("demo") == 0  # its number is unknown: nothing to record


def test_a_late_number_is_recorded_counted_and_its_place_freed_at_the_next_tick(
    service: WaitingRoom, flaky: FlakyBumps, counted: Counted, clock: FakeClock, keyset: KeySet
) -> None:
    flaky.late = 1
    a = service.join("demo", None)  # its first number came back late: it holds the second
    assert flaky.bumps == 2 and counted.totals.get("numbers_unheld") == 1
    assert parse_ticket([TICKET_SECRET], a.ticket).k == 1
    b = service.join("demo", None)
    assert flaky.count_unheld("demo") == 1
    assert service.stats("demo")["unheld_numbers"] == 1

    clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)
    drainer = Drainer(flaky, lambda: keyset, issuer="waitingroom", owner="d", clock=clock)
    first = drainer.tick_room("demo")
    assert first.admitted == 2  # the unheld number and a: max_active is 2
    second = drainer.tick_room("demo")
    # the unheld number's place is free already (not after pickup_seconds): b goes in
    assert (second.admitted, second.active) == (1, 2)
    t = parse_ticket([TICKET_SECRET], b.ticket)
    assert flaky.get_ticket("demo", t.slot, t.shard, t.k) is not None

"""The drainer's loop: it keeps its pace, ticks nudged rooms at once, and backs off in outages."""

from __future__ import annotations

from typing import Any

from waitingroom.drainer import Drainer, TickReport
from waitingroom.store import StoreUnavailable
from waitingroom.tokens import KeySet


class FlakyStore:
    """Fails `fail_times` list_rooms calls, then lists one room."""

    def __init__(self, fail_times: int) -> None:
        self.fail_times = fail_times
        self.nudge_at = 0.0

    def list_rooms(self) -> list[str]:
        if self.fail_times:
            self.fail_times -= 1
            raise StoreUnavailable("connection refused")
        return ["demo"]

    def get_nudges(self) -> dict[str, float]:
        return {"demo": self.nudge_at} if self.nudge_at else {}

    def release_lease(self, room: str, owner: str) -> None:
        return None  # a run hands its rooms over when it ends


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def make(store: Any, clock: Clock) -> tuple[Drainer, list[str]]:
    ticked: list[str] = []
    d = Drainer(store, lambda: KeySet.generate("k"), issuer="w", clock=clock)

    def tick(room: str) -> TickReport:
        ticked.append(room)
        return TickReport(room, True)

    d.tick_room = tick  # type: ignore[method-assign]
    return d, ticked


def test_a_store_outage_backs_off_exponentially_then_resumes() -> None:
    clock = Clock()
    store = FlakyStore(fail_times=4)
    d, ticked = make(store, clock)
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        clock.sleep(s)

    d.run(seconds=30, tick_seconds=5, sleep=sleep)
    assert sleeps[:4] == [1.0, 2.0, 4.0, 8.0]
    assert ticked  # it ticked once the store came back
    # after recovery it keeps its pace: one tick per 5 s, not one per loop
    assert len(ticked) == 3  # t = 15, 20, 25 (+0.5 s loop)


def test_a_nudge_ticks_at_once() -> None:
    clock = Clock()
    store = FlakyStore(fail_times=0)
    d, ticked = make(store, clock)
    store.nudge_at = 1000.2  # an operator asked just after the first tick
    d.run(seconds=2, tick_seconds=60, sleep=clock.sleep)
    assert len(ticked) == 2  # the scheduled first tick, then the nudged one


def test_one_rooms_failure_does_not_stop_the_loop() -> None:
    clock = Clock()
    d = Drainer(FlakyStore(0), lambda: KeySet.generate("k"), issuer="w", clock=clock)  # type: ignore[arg-type]
    calls = []

    def boom(room: str) -> TickReport:
        calls.append(room)
        raise ValueError("a bug in one room")

    d.tick_room = boom  # type: ignore[method-assign]
    assert d.run(seconds=11, tick_seconds=5, sleep=clock.sleep) == 3
    assert len(calls) == 3


def test_an_idle_deployment_stops_at_once_and_dormant_rooms_are_seldom_looked_at() -> None:
    from waitingroom.drainer import DORMANT

    clock = Clock()
    d, ticked = make(FlakyStore(fail_times=0), clock)

    def dormant(room: str) -> TickReport:
        ticked.append(room)
        return TickReport(room, False, DORMANT)

    d.tick_room = dormant  # type: ignore[method-assign]
    assert d.run(seconds=55, tick_seconds=5, sleep=clock.sleep, stop_when_idle=True) == 1
    assert clock.now == 1000.0  # returned without sleeping: one short invocation
    ticked.clear()
    d.run(seconds=130, tick_seconds=5, sleep=clock.sleep)  # the local loop keeps running
    assert len(ticked) == 3  # at 0, 60 and 120 s, not every 5 s


class GrowingStore:
    """Lists `rooms`; an operator creates a room (and nudges it) while the loop runs."""

    def __init__(self) -> None:
        self.rooms = ["old"]
        self.nudges: dict[str, float] = {}

    def list_rooms(self) -> list[str]:
        return list(self.rooms)

    def get_nudges(self) -> dict[str, float]:
        return dict(self.nudges)

    def release_lease(self, room: str, owner: str) -> None:
        return None  # a run hands its rooms over when it ends


def test_a_room_created_while_the_loop_runs_gets_its_first_tick_at_once() -> None:
    clock = Clock()
    store = GrowingStore()
    d, ticked = make(store, clock)
    created_at: list[float] = []

    def sleep(s: float) -> None:
        clock.sleep(s)
        if clock.now >= 1002.0 and not created_at:  # long before the next room listing
            store.rooms.append("new")
            store.nudges["new"] = clock.now
            created_at.append(clock.now)

    first_tick: list[float] = []

    def tick(room: str) -> TickReport:
        if room == "new" and not first_tick:
            first_tick.append(clock.now)
        ticked.append(room)
        return TickReport(room, True)

    d.tick_room = tick  # type: ignore[method-assign]
    d.run(seconds=5, tick_seconds=60, sleep=sleep)
    assert first_tick and first_tick[0] - created_at[0] <= 0.5  # the very next loop


def test_a_room_with_joins_is_ticked_as_soon_as_their_slot_can_settle() -> None:
    """With 5 s ticks, a slot somebody joined is settled (their places made exact) within a
    hair of its settle moment, not up to a tick later; a moment already past is not chased."""
    clock = Clock()
    store = FlakyStore(fail_times=0)
    d = Drainer(store, lambda: KeySet.generate("k"), issuer="w", clock=clock)  # type: ignore[arg-type]
    ticked: list[float] = []
    settles = iter([clock.now + 1.3, clock.now - 1.0, None])

    def tick(room: str) -> TickReport:
        ticked.append(clock.now)
        return TickReport(room, True, settle_at=next(settles, None))

    d.tick_room = tick  # type: ignore[method-assign]
    d.run(seconds=9, tick_seconds=5, sleep=clock.sleep)
    assert ticked[0] == 1000.0
    assert 1001.3 <= ticked[1] <= 1001.4  # its slot's settle moment, not the 5 s tick
    assert ticked[2] >= ticked[1] + 5  # a moment already past: back to the tick period
    assert len(ticked) == 3


class TwoRooms(FlakyStore):
    def list_rooms(self) -> list[str]:
        return ["a-quiet", "b-busy"]


def test_a_room_whose_slot_can_settle_is_ticked_before_the_others() -> None:
    """Both rooms are due at once (b's slot settles just as a's regular tick comes round): b
    goes first, its visitors waiting on the settle, while a's slow tick takes its time."""
    clock = Clock()
    d = Drainer(TwoRooms(0), lambda: KeySet.generate("k"), issuer="w", clock=clock)  # type: ignore[arg-type]
    ticked: list[tuple[str, float]] = []

    def tick(room: str) -> TickReport:
        ticked.append((room, clock.now))
        settles = clock.now + 1.0 if room == "b-busy" and len(ticked) <= 2 else None
        if len(ticked) > 2:
            clock.now += 0.3  # busy ticks
        return TickReport(room, True, settle_at=settles)

    d.tick_room = tick  # type: ignore[method-assign]
    d.run(seconds=1.5, tick_seconds=1, sleep=clock.sleep)
    assert [room for room, _ in ticked] == ["a-quiet", "b-busy", "b-busy", "a-quiet"]
    assert ticked[2][1] <= 1001.1  # b at its settle moment, not after a's tick

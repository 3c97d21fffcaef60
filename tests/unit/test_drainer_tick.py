"""The drainer's tick over the in-memory store and a fake clock: reads, plan, writes."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from tests.conftest import TICKET_SECRET, FakeClock
from waitingroom.domain import (
    PICKUP_GRACE_SECONDS,
    SETTLE_DELAY_SECONDS,
    DrainerState,
    PublicState,
)
from waitingroom.drainer import Drainer
from waitingroom.service import Admitted, Joined, WaitingRoom
from waitingroom.store import Conflict
from waitingroom.store.memory import MemoryStore
from waitingroom.tokens import KeySet, parse_ticket


def settle(clock: FakeClock) -> None:
    clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)


def admitted(store: MemoryStore, tickets: Sequence[Joined]) -> list[Joined]:
    """The tickets whose admission has been written (without picking any up)."""
    out = []
    for j in tickets:
        t = parse_ticket([TICKET_SECRET], j.ticket)
        if store.get_ticket("demo", t.slot, t.shard, t.k) is not None:
            out.append(j)
    return out


def test_the_smallest_numbers_are_admitted_up_to_max_active(
    memory_service: WaitingRoom,
    memory_drainer: Drainer,
    memory_store: MemoryStore,
    clock: FakeClock,
) -> None:
    memory_service.put_room("demo", {"max_active": 50, "shards": 8})
    tickets = []
    for i in range(500):
        tickets.append(memory_service.join("demo", None))
        if i % 100 == 99:
            clock.advance(0.5)  # joins spread over a few slots
    settle(clock)
    report = memory_drainer.tick_room("demo")
    assert (report.admitted, report.active, report.waiting) == (50, 50, 450)
    first = sorted(tickets, key=lambda j: j.number)[:50]
    assert {j.number for j in admitted(memory_store, tickets)} == {j.number for j in first}
    assert memory_drainer.tick_room("demo").admitted == 0  # full


def test_completions_free_places_for_the_next_tick(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 10})
    tickets = [memory_service.join("demo", None) for _ in range(30)]
    settle(clock)
    memory_drainer.tick_room("demo")
    clock.advance(1.1)  # past the service's state cache
    statuses = [memory_service.poll("demo", j.ticket) for j in tickets]
    tokens = [s.token for s in statuses if isinstance(s, Admitted)]
    assert len(tokens) == 10
    for token in tokens[:4]:
        memory_service.complete("demo", token)
    report = memory_drainer.tick_room("demo")
    assert (report.completed, report.admitted, report.active) == (4, 4, 10)


def test_no_shows_are_reclaimed_after_pickup_seconds(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 5, "pickup_seconds": 20})
    for _ in range(12):
        memory_service.join("demo", None)
    settle(clock)
    assert memory_drainer.tick_room("demo").admitted == 5
    clock.advance(20 + PICKUP_GRACE_SECONDS - 1)
    assert memory_drainer.tick_room("demo").reclaimed == 0  # still within the window
    clock.advance(1.01)
    report = memory_drainer.tick_room("demo")
    assert (report.reclaimed, report.admitted, report.waiting) == (5, 5, 2)


def test_two_drainers_never_admit_twice(
    memory_service: WaitingRoom,
    memory_store: MemoryStore,
    clock: FakeClock,
    keyset: KeySet,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memory_service.put_room("demo", {"max_active": 10})
    tickets = [memory_service.join("demo", None) for _ in range(40)]
    settle(clock)
    a = Drainer(memory_store, lambda: keyset, issuer="waitingroom", owner="a", clock=clock)
    b = Drainer(memory_store, lambda: keyset, issuer="waitingroom", owner="b", clock=clock)
    commit = memory_store.commit_state

    def b_commits_first(*args: Any, **kwargs: Any) -> None:
        # a's lease runs out while it plans; b takes the room over and ticks meanwhile
        monkeypatch.setattr(memory_store, "commit_state", commit)
        clock.advance(31)
        assert b.tick_room("demo").admitted == 10
        commit(*args, **kwargs)

    monkeypatch.setattr(memory_store, "commit_state", b_commits_first)
    assert a.tick_room("demo").reason == "lost a state race"
    state = memory_store.get_public_state("demo")
    assert state is not None and (state.consumed, state.active) == (10, 10)
    assert len(admitted(memory_store, tickets)) == 10


def test_drainers_ticking_at_once_admit_each_ticket_once(
    memory_service: WaitingRoom, memory_store: MemoryStore, clock: FakeClock, keyset: KeySet
) -> None:
    memory_service.put_room("demo", {"max_active": 40})
    tickets = [memory_service.join("demo", None) for _ in range(60)]
    settle(clock)
    drainers = [
        Drainer(memory_store, lambda: keyset, issuer="waitingroom", owner=f"d{i}", clock=clock)
        for i in range(4)
    ]
    reports = []

    def run(d: Drainer) -> None:
        for _ in range(3):
            reports.append(d.tick_room("demo"))

    threads = [threading.Thread(target=run, args=(d,)) for d in drainers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.admitted for r in reports) == 40
    assert len(admitted(memory_store, tickets)) == 40


def test_an_interrupted_batch_is_finished_by_the_next_tick(
    memory_store: MemoryStore,
    memory_service: WaitingRoom,
    clock: FakeClock,
    keyset: KeySet,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memory_service.put_room("demo", {"max_active": 10})
    tickets = [memory_service.join("demo", None) for _ in range(30)]
    settle(clock)

    def die(*_: object) -> int:
        raise RuntimeError("killed mid-tick")

    crashing = Drainer(memory_store, lambda: keyset, issuer="waitingroom", owner="a", clock=clock)
    with monkeypatch.context() as m:
        m.setattr(memory_store, "put_admitted", die)
        with pytest.raises(RuntimeError):
            crashing.tick_room("demo")
    state = memory_store.get_public_state("demo")
    assert state is not None and (state.consumed, state.materialized) == (10, 0)
    assert admitted(memory_store, tickets) == []  # committed, not yet written
    clock.advance(31)  # the dead drainer's lease runs out
    nxt = Drainer(memory_store, lambda: keyset, issuer="waitingroom", owner="b", clock=clock)
    assert nxt.tick_room("demo").admitted == 0  # it finishes the batch before admitting more
    assert len(admitted(memory_store, tickets)) == 10
    done = memory_store.get_public_state("demo")
    assert done is not None and done.materialized == 10
    drainer_state = memory_store.get_drainer_state("demo")
    assert drainer_state is not None and drainer_state.pending is None


def test_a_stale_commit_is_refused(memory_store: MemoryStore) -> None:
    memory_store.commit_state("demo", PublicState(), DrainerState(), expected_version=0)
    with pytest.raises(Conflict):
        memory_store.commit_state("demo", PublicState(), DrainerState(), expected_version=0)


def test_the_state_says_when_its_admissions_were_committed(
    memory_service: WaitingRoom,
    memory_drainer: Drainer,
    memory_store: MemoryStore,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A busy tick commits a while after it began: its admissions happened at the commit (what
    a load test's clock of admissions goes by), not at the tick's start; writing the tickets
    afterwards keeps that moment."""
    memory_service.put_room("demo", {"max_active": 5, "shards": 4})
    for _ in range(8):
        memory_service.join("demo", None)
    settle(clock)
    read_counters = memory_store.read_counters

    def slow_read(*args: Any, **kwargs: Any) -> Any:
        clock.advance(0.4)
        return read_counters(*args, **kwargs)

    monkeypatch.setattr(memory_store, "read_counters", slow_read)
    began = clock()
    assert memory_drainer.tick_room("demo").admitted == 5
    st = memory_store.get_public_state("demo")
    assert st is not None and st.consumed == 5 and st.materialized == 5
    assert st.updated_at == pytest.approx(began)
    assert st.committed_at >= began + 0.4


def test_the_drainer_publishes_what_it_learns_as_a_forecast_of_admissions(
    memory_service: WaitingRoom,
    memory_drainer: Drainer,
    memory_store: MemoryStore,
    clock: FakeClock,
) -> None:
    """Sessions seen to last about 3 s from pickup: a waiting visitor's ETA comes from them,
    not from the configured 900 s session (nor max_active / session_seconds)."""
    memory_service.put_room("demo", {"max_active": 10, "session_seconds": 900})
    tickets = [memory_service.join("demo", None) for _ in range(70)]
    settle(clock)
    memory_drainer.tick_room("demo")
    fresh = memory_store.get_public_state("demo")
    assert fresh is not None and fresh.admit_forecast
    # nothing learned: sessions may run 900 s, and the forecast reaches past them
    assert max(n for t, n in fresh.admit_forecast if t < 900) <= 10
    assert fresh.admit_forecast[-1][0] >= 900
    line = list(tickets)
    for _ in range(3):  # each round: picked up a second after admission, ended 3 s later
        clock.advance(1.1)  # past the service's cached state
        statuses = {j.ticket: memory_service.poll("demo", j.ticket) for j in line}
        tokens = [s.token for s in statuses.values() if isinstance(s, Admitted)]
        line = [j for j in line if not isinstance(statuses[j.ticket], Admitted)]
        memory_drainer.tick_room("demo")
        clock.advance(3.0)
        for token in tokens:
            memory_service.complete("demo", token)
        memory_drainer.tick_room("demo")
    dst = memory_store.get_drainer_state("demo")
    assert dst is not None
    assert dst.flow.session.value == pytest.approx(3.0, abs=0.1)
    assert dst.flow.pickup.value == pytest.approx(1.0, abs=0.1)
    pub = memory_store.get_public_state("demo")
    assert pub is not None and pub.admit_rate == pytest.approx(10 / 4, rel=0.05)
    clock.advance(1.1)  # past the service's cached state
    waiting = [memory_service.poll("demo", j.ticket) for j in line]
    by_position = {w.position: w for w in waiting if not isinstance(w, Admitted)}
    # 10 places every ~4 s: the 10 first in line in about 4 s, the 10 after them 4 s later
    assert 1 <= (by_position[1].eta_seconds or 0) <= 4
    assert 5 <= (by_position[10 + 1].eta_seconds or 0) <= 8

    memory_service.set_status("demo", "paused", "operator")
    memory_drainer.tick_room("demo")
    paused = memory_store.get_public_state("demo")
    assert paused is not None and paused.admit_forecast == ()
    clock.advance(1.1)
    last = max(by_position)  # the last in line: nobody was let in since, nobody will be now
    paused_wait = memory_service.poll("demo", line[waiting.index(by_position[last])].ticket)
    assert not isinstance(paused_wait, Admitted) and paused_wait.eta_seconds is None

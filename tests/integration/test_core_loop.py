"""The core loop on DynamoDB Local: join → wait → tick → admitted → complete, as users see it."""

from __future__ import annotations

import random
import threading

import pytest

from origin_guard.verify import TokenVerifier
from tests.conftest import TICKET_SECRET, DrainerFactory, FakeClock
from waitingroom.api.errors import status_of
from waitingroom.domain import PICKUP_GRACE_SECONDS, SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.errors import WaitingRoomError
from waitingroom.service import Admitted, Joined, Waiting, WaitingRoom
from waitingroom.store import Store
from waitingroom.tokens import KeySet, parse_ticket

pytestmark = pytest.mark.integration


def settle(clock: FakeClock) -> None:
    """Let the current join slot close and settle."""
    clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)


def fresh(service: WaitingRoom, clock: FakeClock) -> None:
    """Move past the API's state cache so polls see the drainer's last tick."""
    clock.advance(1.01)


def poll_all(service: WaitingRoom, tickets: list[Joined]) -> list[Waiting | Admitted]:
    return [service.poll("demo", t.ticket) for t in tickets]


def test_500_joins_50_admitted_in_queue_order_and_exact_positions_for_the_rest(
    service: WaitingRoom, drainer: Drainer, clock: FakeClock, keyset: KeySet
) -> None:
    service.put_room("demo", {"max_active": 50})
    tickets: list[Joined] = []
    for i in range(500):
        tickets.append(service.join("demo", None))
        if i % 150 == 149:
            clock.advance(0.5)  # the burst spans several slots
    assert len({t.number for t in tickets}) == 500
    settle(clock)
    report = drainer.tick_room("demo")
    assert report.admitted == 50
    fresh(service, clock)

    results = poll_all(service, tickets)
    by_number = sorted(zip((t.number for t in tickets), results, strict=True))
    admitted = [r for _, r in by_number if isinstance(r, Admitted)]
    assert len(admitted) == 50
    assert all(isinstance(r, Admitted) for _, r in by_number[:50])  # the 50 smallest numbers
    waiting = [r for _, r in by_number[50:]]
    assert all(isinstance(r, Waiting) and r.exact for r in waiting)
    assert [r.position for r in waiting if isinstance(r, Waiting)] == list(range(1, 451))

    # the tokens are real: the drainer's key, this room, this ticket
    first = next(t for t in tickets if isinstance(service.poll("demo", t.ticket), Admitted))
    got = service.poll("demo", first.ticket)
    assert isinstance(got, Admitted)
    claims = TokenVerifier(audience="demo", jwks=keyset.jwks(), clock=clock).verify(got.token)
    assert claims.ticket == parse_ticket([TICKET_SECRET], first.ticket).ticket_id


def test_positions_never_go_up_while_waiting(
    service: WaitingRoom, drainer: Drainer, clock: FakeClock
) -> None:
    service.put_room("demo", {"max_active": 5, "session_seconds": 30, "pickup_seconds": 10})
    tickets = [service.join("demo", None) for _ in range(60)]
    settle(clock)
    last = {t.ticket: 10**9 for t in tickets}
    for _ in range(20):
        drainer.tick_room("demo")
        fresh(service, clock)
        for t in tickets:
            try:
                r = service.poll("demo", t.ticket)
            except WaitingRoomError as exc:
                assert status_of(exc) == 410  # reclaimed no-shows are told so
                last[t.ticket] = 0
                continue
            if isinstance(r, Waiting) and r.exact:
                assert r.position <= last[t.ticket]
                last[t.ticket] = r.position
            elif isinstance(r, Admitted):
                last[t.ticket] = 0
        clock.advance(5)


def admitted_tickets(service: WaitingRoom, tickets: list[Joined]) -> list[tuple[Joined, Admitted]]:
    out = []
    for t in tickets:
        try:
            r = service.poll("demo", t.ticket)
        except WaitingRoomError:
            continue
        if isinstance(r, Admitted):
            out.append((t, r))
    return out


def test_completing_ten_sessions_lets_exactly_ten_more_in(
    service: WaitingRoom, drainer: Drainer, clock: FakeClock
) -> None:
    service.put_room("demo", {"max_active": 50})
    tickets = [service.join("demo", None) for _ in range(100)]
    settle(clock)
    drainer.tick_room("demo")
    fresh(service, clock)
    first = admitted_tickets(service, tickets)  # picks every token up
    assert len(first) == 50
    for _, adm in first[:10]:
        service.complete("demo", adm.token)
    report = drainer.tick_room("demo")
    assert report.completed == 10
    assert report.admitted == 10
    fresh(service, clock)
    before = {t.ticket for t, _ in first}
    now_in = {t.ticket for t, _ in admitted_tickets(service, tickets)}
    assert len(now_in - before) == 10  # ten who were waiting
    assert len(before - now_in) == 10  # the completed ones are told their session ended
    # completing twice changes nothing
    for _, adm in first[:10]:
        service.complete("demo", adm.token)
    assert drainer.tick_room("demo").admitted == 0


def test_a_no_show_is_reclaimed_and_its_ticket_gets_410(
    service: WaitingRoom, drainer: Drainer, clock: FakeClock
) -> None:
    service.put_room("demo", {"max_active": 1, "pickup_seconds": 30})
    no_show, patient = service.join("demo", None), service.join("demo", None)
    settle(clock)
    drainer.tick_room("demo")
    fresh(service, clock)
    first = min((no_show, patient), key=lambda t: t.number)
    second = patient if first is no_show else no_show
    # the first in line never comes back; the second waits at position 1
    assert isinstance(service.poll("demo", second.ticket), Waiting)
    clock.advance(30 + PICKUP_GRACE_SECONDS)
    report = drainer.tick_room("demo")
    assert report.reclaimed == 1
    assert report.admitted == 1
    fresh(service, clock)
    with pytest.raises(WaitingRoomError) as err:
        service.poll("demo", first.ticket)
    assert status_of(err.value) == 410
    assert isinstance(service.poll("demo", second.ticket), Admitted)


def test_a_retried_join_with_the_same_idempotency_key_returns_the_same_ticket(
    service: WaitingRoom,
) -> None:
    service.put_room("demo", {"max_active": 5})
    a = service.join("demo", "order-123")
    b = service.join("demo", "order-123")
    c = service.join("demo", "order-456")
    assert a.ticket == b.ticket and a.number == b.number
    assert c.number != a.number


def test_two_drainers_at_once_never_admit_a_ticket_twice(
    service: WaitingRoom,
    make_drainer: DrainerFactory,
    store: Store,
    clock: FakeClock,
) -> None:
    """Same owner id, so both pass the lease: only the state version can keep them apart."""
    service.put_room("demo", {"max_active": 40})
    tickets = [service.join("demo", None) for _ in range(120)]
    settle(clock)
    drainers = [make_drainer("same-owner"), make_drainer("same-owner")]
    barrier = threading.Barrier(2)

    def run(d: Drainer) -> None:
        barrier.wait()
        for _ in range(3):
            d.tick_room("demo")

    threads = [threading.Thread(target=run, args=(d,)) for d in drainers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fresh(service, clock)
    state = store.get_public_state("demo", consistent=True)
    assert state is not None
    assert state.consumed == 40
    assert len(admitted_tickets(service, tickets)) == 40


def test_a_drainer_that_dies_after_committing_is_finished_by_the_next(
    service: WaitingRoom, make_drainer: DrainerFactory, store: Store, clock: FakeClock
) -> None:
    service.put_room("demo", {"max_active": 10})
    tickets = [service.join("demo", None) for _ in range(30)]
    settle(clock)
    crashing = make_drainer("a")

    def die(*_: object, **__: object) -> int:
        raise RuntimeError("killed mid-tick")

    crashing.store = Store(store.client, store.table, clock=store.clock)
    crashing.store.put_admitted = die  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        crashing.tick_room("demo")
    fresh(service, clock)
    # committed but not written: those polls are told to come back in a second, not lost
    statuses = poll_all(service, tickets)
    assert sum(isinstance(s, Waiting) and s.position == 0 for s in statuses) == 10
    clock.advance(31)  # the dead drainer's lease runs out
    make_drainer("b").tick_room("demo")
    fresh(service, clock)
    assert len(admitted_tickets(service, tickets)) == 10


def test_active_never_exceeds_max_active_over_many_ticks(
    service: WaitingRoom, drainer: Drainer, store: Store, clock: FakeClock
) -> None:
    rnd = random.Random(3)
    service.put_room(
        "demo", {"max_active": 8, "session_seconds": 40, "pickup_seconds": 10, "shards": 4}
    )
    tickets = [service.join("demo", None) for _ in range(80)]
    settle(clock)
    holding: dict[str, int] = {}  # token -> exp: sessions people hold at the origin
    for _ in range(30):
        drainer.tick_room("demo")
        fresh(service, clock)
        state = store.get_public_state("demo", consistent=True)
        assert state is not None and state.active <= 8
        for _, adm in admitted_tickets(service, [t for t in tickets if rnd.random() < 0.5]):
            holding[adm.token] = adm.expires_at
        live = [tok for tok, exp in holding.items() if exp > clock()]
        assert len(live) <= 8
        for tok in live:
            if rnd.random() < 0.3:
                service.complete("demo", tok)
                del holding[tok]
        clock.advance(4)
    final = store.get_public_state("demo", consistent=True)
    assert final is not None and final.admitted_total > 8  # places were reused


def test_a_ticket_signed_with_another_secret_is_refused(
    service: WaitingRoom, store: Store, clock: FakeClock
) -> None:
    service.put_room("demo", {"max_active": 5})
    other = WaitingRoom(store, [b"not-the-servers-secret-at-all!!!"], issuer="w", clock=clock)
    forged = other.join("demo", None)
    with pytest.raises(WaitingRoomError) as err:
        service.poll("demo", forged.ticket)
    assert status_of(err.value) == 401 and err.value.code == "bad_ticket"


def test_paused_rooms_admit_nobody_and_closed_rooms_refuse_joins(
    service: WaitingRoom, drainer: Drainer, clock: FakeClock
) -> None:
    service.put_room("demo", {"max_active": 1, "status": "paused"})
    first, second = service.join("demo", None), service.join("demo", None)
    settle(clock)
    assert drainer.tick_room("demo").admitted == 0
    service.put_room("demo", {"status": "open"})
    assert drainer.tick_room("demo").admitted == 1
    fresh(service, clock)
    admitted, waiting = sorted((first, second), key=lambda t: t.number)
    service.put_room("demo", {"status": "closed"})
    clock.advance(3)  # past the config cache
    with pytest.raises(WaitingRoomError) as err:
        service.join("demo", None)
    assert status_of(err.value) == 409
    # the admitted session runs on; whoever still waits is told the room has closed
    session = service.poll("demo", admitted.ticket)
    assert isinstance(session, Admitted)
    with pytest.raises(WaitingRoomError) as err:
        service.poll("demo", waiting.ticket)
    assert (status_of(err.value), err.value.code) == (410, "room_closed")
    service.complete("demo", session.token)  # a place frees up, yet nobody more comes in
    report = drainer.tick_room("demo")
    assert (report.completed, report.admitted) == (1, 0)


def test_a_position_never_goes_back_up_across_containers(
    service: WaitingRoom, drainer: Drainer, store: Store, clock: FakeClock
) -> None:
    """Two API containers with state caches of different ages: the client's state_version keeps
    the older one from answering with a larger position."""
    other = WaitingRoom(store, [TICKET_SECRET], issuer="waitingroom", clock=clock)
    service.put_room("demo", {"max_active": 5})
    tickets = [service.join("demo", None) for _ in range(20)]
    settle(clock)
    drainer.tick_room("demo")
    fresh(service, clock)
    last = max(tickets, key=lambda t: t.number)
    before = other.poll("demo", last.ticket)  # container B caches this state
    assert isinstance(before, Waiting) and before.position == 15
    service.put_room("demo", {"max_active": 10})
    drainer.tick_room("demo")
    clock.advance(0.5)  # B's cache is still fresh; A has none yet
    newer = service.poll("demo", last.ticket)
    assert isinstance(newer, Waiting) and newer.position == 10
    stale = other.poll("demo", last.ticket)
    assert isinstance(stale, Waiting) and stale.position == 15  # what B alone would say
    again = other.poll("demo", last.ticket, min_version=newer.state_version)
    assert isinstance(again, Waiting) and again.position == 10


def test_a_closed_room_goes_dormant_once_settled_and_wakes_when_reopened(
    service: WaitingRoom, drainer: Drainer, clock: FakeClock
) -> None:
    from waitingroom.drainer import DORMANT
    from waitingroom.planning import CLOSE_MARGIN_SECONDS

    service.put_room("demo", {"max_active": 2, "session_seconds": 30, "pickup_seconds": 10})
    for _ in range(3):
        service.join("demo", None)
    settle(clock)
    assert drainer.tick_room("demo").admitted == 2
    service.put_room("demo", {"status": "closed"})
    assert drainer.tick_room("demo").ran  # still settling joins that may be in flight
    clock.advance(CLOSE_MARGIN_SECONDS + 45)  # past the margin, and every session ran out
    assert drainer.tick_room("demo").ran
    report = drainer.tick_room("demo")
    assert (report.ran, report.reason) == (False, DORMANT)
    service.put_room("demo", {"status": "open"})
    report = drainer.tick_room("demo")
    assert report.ran and report.admitted == 1  # the one who waited is let in after reopening

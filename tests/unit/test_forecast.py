"""The admission forecast: what the drainer learns of a room's visitors and the waits it gives."""

from __future__ import annotations

import pytest

from waitingroom.domain import DrainerState, RoomConfig, eta_seconds
from waitingroom.forecast import (
    CURVE_POINTS,
    HORIZONS,
    MAX_STATE_AGE_SECONDS,
    PICKUP_PRIOR_SECONDS,
    WAITED_SECONDS,
    Curve,
    Flow,
    Mean,
    eta_from_forecast,
    forecast,
    steady_rate,
)
from waitingroom.store import decode_drainer_state, encode_drainer_state

KEEP = 60.0


def at(points: tuple[tuple[float, int], ...], seconds: float) -> int:
    return dict(points)[seconds]


def steady_room(
    seconds: int, *, per_tick: int, pickup: int, session: int, flow: Flow | None = None
) -> Flow:
    """A full room ticking every second: `per_tick` admitted each tick, each picking up
    `pickup` ticks later and ending `session` ticks after that."""
    flow = flow or Flow()
    for t in range(seconds):
        picked = per_tick if t >= pickup else 0
        ended = per_tick if t >= pickup + session else 0
        flow = flow.observe(
            float(t),
            admitted=per_tick,
            line_picked=picked,
            pool_picked=0,
            reclaimed=0,
            ended=ended,
            keep_seconds=KEEP,
        )
    return flow


def test_a_steady_room_learns_its_pickup_and_session_times() -> None:
    flow = steady_room(60, per_tick=25, pickup=2, session=4)
    assert flow.pickup.value == pytest.approx(2.0)
    assert flow.session.value == pytest.approx(4.0)
    assert flow.hold_seconds(session_prior=900) == pytest.approx(6.0)


def test_a_steady_room_forecasts_its_own_pace() -> None:
    flow = steady_room(60, per_tick=25, pickup=2, session=4)
    hold = flow.hold_seconds(900)
    points = forecast(flow.frees(59.0, 900), now=59.0, free_now=0, hold=hold)
    # 150 places each coming free every 6 s: 25 a second
    for h in (6.0, 12.0, 30.0, 60.0):
        assert at(points, h) == pytest.approx(25 * h, abs=25)
    assert steady_rate(150, hold) == pytest.approx(25.0)
    assert eta_from_forecast(100, points, steady_rate(150, hold)) in (4, 5)


def test_a_room_that_has_just_filled_frees_nothing_for_about_one_session() -> None:
    """150 admitted at once into a room whose visitors pick up after 2 s and stay 4 s (learned
    from an earlier event): nothing comes free for 6 s, then the 150 places, then again."""
    learned = Flow(pickup=Mean(2.0, 300), session=Mean(4.0, 300))
    flow = learned.observe(
        0.0, admitted=150, line_picked=0, pool_picked=0, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    points = forecast(flow.frees(1.0, 900), now=1.0, free_now=0, hold=6.0)
    assert at(points, 4.0) == 0
    assert at(points, 5.0) == 150  # at 6 s from the fill
    assert at(points, 10.0) == 150
    assert at(points, 12.0) == 300
    # the first in line waits about 5 s, not 150 / (150 / 6 s) = 6 s, nor a session's 900 s
    rate = steady_rate(150, 6.0)
    assert eta_from_forecast(1, points, rate) == 5
    assert eta_from_forecast(151, points, rate) == 11
    # the rate a full room keeps would tell the 151st 7 s: it is not the first fill's pace
    assert eta_seconds(151, rate, 0.0) == 7


def test_pickups_seen_move_the_forecast_on() -> None:
    """Half of the fill picked up at 1 s: their sessions end 4 s later; the rest are still
    expected at the mean learned before. A fill teaches only once all of it has picked up (its
    first are its quickest: a mean of those alone would be too short)."""
    learned = Flow(pickup=Mean(2.0, 300), session=Mean(4.0, 300))
    flow = learned.observe(
        0.0, admitted=100, line_picked=0, pool_picked=0, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    flow = flow.observe(
        1.0, admitted=0, line_picked=50, pool_picked=0, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    assert sorted(flow.frees(1.0, 900)) == [(5.0, 50), (6.0, 50)]
    assert flow.pickup.value == 2.0 and flow.picking == (50.0, 50)
    flow = flow.observe(
        5.0, admitted=0, line_picked=50, pool_picked=0, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    assert flow.pickup.value == pytest.approx((2.0 * 300 + 1.0 * 50 + 5.0 * 50) / 400)
    assert flow.picking == (0.0, 0)


def test_with_no_history_the_session_length_is_the_fallback() -> None:
    flow = Flow().observe(
        0.0, admitted=10, line_picked=0, pool_picked=0, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    hold = flow.hold_seconds(session_prior=20)
    assert hold == PICKUP_PRIOR_SECONDS + 20
    assert flow.frees(0.0, 20) == [(hold, 10)]
    cfg = RoomConfig("demo", max_active=10, session_seconds=20)
    # the same pace as the configured rate (max_active / session_seconds), a pickup later
    assert steady_rate(10, hold) == pytest.approx(cfg.fallback_rate() * 20 / hold)


def test_what_is_learned_outlives_the_event_and_the_state_store() -> None:
    flow = steady_room(40, per_tick=5, pickup=3, session=10)
    back = decode_drainer_state(encode_drainer_state(DrainerState(flow=flow)), 1).flow
    assert back.pickup.value == pytest.approx(3.0)
    assert back.session.value == pytest.approx(10.0)
    assert (back.resolved, back.ended) == (flow.resolved, flow.ended)
    assert back.picked.total == flow.picked.total
    # a quiet hour later (curves long pruned) the means are still there for the next burst
    later = back.observe(
        3600.0, admitted=0, line_picked=0, pool_picked=0, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    assert later.admitted.points == () and later.hold_seconds(900) == pytest.approx(13.0)


def test_old_drainer_states_decode_with_nothing_learned() -> None:
    text = encode_drainer_state(DrainerState()).replace(',"flow":', ',"unused":')
    assert decode_drainer_state(text, 3).flow == Flow()


def test_no_shows_reclaimed_teach_nothing_about_pickups() -> None:
    flow = Flow().observe(
        0.0, admitted=10, line_picked=0, pool_picked=0, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    flow = flow.observe(
        17.0, admitted=0, line_picked=0, pool_picked=0, reclaimed=4, ended=0, keep_seconds=KEEP
    )
    flow = flow.observe(
        18.0, admitted=0, line_picked=6, pool_picked=0, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    assert flow.resolved == 10 and flow.pickup.value == pytest.approx(18.0)
    assert flow.pickup.weight == 6


def test_a_pool_claim_is_a_pickup_at_once() -> None:
    flow = Flow().observe(
        0.0, admitted=0, line_picked=0, pool_picked=3, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    flow = flow.observe(
        4.0, admitted=0, line_picked=0, pool_picked=0, reclaimed=0, ended=3, keep_seconds=KEEP
    )
    assert flow.session.value == pytest.approx(4.0) and flow.pickup.weight == 0


def test_a_rate_cap_counts_the_admissions_of_the_last_minute() -> None:
    """600 a minute, 600 admitted just now: nobody more until they leave the window."""
    recent = [(-1.0, 600)]
    points = forecast([(1.0, 100)], now=0.0, free_now=50, hold=5.0, per_minute=600, recent=recent)
    assert at(points, 1.0) == 0 and at(points, 50.0) == 0
    assert at(points, 60.0) == 600  # a minute's worth once those 600 have left the window
    assert steady_rate(1000, 5.0, rate_cap=2.0) == 2.0
    fresh = forecast([(1.0, 100)], now=0.0, free_now=50, hold=5.0, per_minute=600)
    assert at(fresh, 1.0) == 150  # nothing admitted lately: the cap does not bite yet


def test_places_held_past_a_lowered_max_active_admit_nobody_when_they_come_free() -> None:
    """max_active lowered from 150 to 100: the first 50 places to come free are not given."""
    points = forecast([(2.0, 150)], now=0.0, free_now=0, hold=10.0, excess=50)
    assert at(points, 2.0) == 100
    assert at(points, 12.0) == 200  # the 100 come free again a hold later


def test_a_room_of_long_sessions_is_forecast_past_them() -> None:
    """Ten-minute sessions in a room that has just filled: nothing frees for ten minutes, and
    the front of the line is told so (not a minute and a bit)."""
    points = forecast([(600.0, 100)], now=0.0, free_now=0, hold=602.0)
    assert points[-1][0] >= 3 * 602
    assert at(points, 450.0) == 0 and at(points, 600.0) == 100
    eta = eta_from_forecast(1, points, steady_rate(100, 602.0))
    assert eta is not None and 450 < eta <= 600


def test_the_forecast_looks_a_minute_ahead_at_most() -> None:
    points = forecast([(0.5, 10)], now=0.0, free_now=0, hold=0.5)
    assert [h for h, _ in points] == [float(h) for h in HORIZONS]
    assert at(points, 60.0) == 10 * 120  # each place again every half second


def test_the_eta_is_read_between_the_forecasts_points() -> None:
    points = ((1.0, 0), (2.0, 40), (10.0, 120))
    assert eta_from_forecast(0, points, 10.0) == 0
    assert eta_from_forecast(20, points, 10.0) == 2  # 1.5 s
    assert eta_from_forecast(40, points, 10.0) == 2
    assert eta_from_forecast(80, points, 10.0) == 6
    assert eta_from_forecast(220, points, 10.0) == 20  # past the last point at the rate
    assert eta_from_forecast(220, points, 0.0) is None


def test_the_eta_counts_from_when_the_state_was_made() -> None:
    points = ((20.0, 100),)
    assert eta_from_forecast(100, points, 1.0, age=3.0) == 17
    assert eta_from_forecast(100, points, 1.0, age=-5.0) == 20  # a clock behind: no credit
    assert eta_from_forecast(100, points, 1.0, age=1e9) == 20 - MAX_STATE_AGE_SECONDS
    assert eta_from_forecast(1, points, 1.0, age=19.99) == 1  # never "now" while not admitted


def test_a_curve_keeps_a_bounded_history() -> None:
    c = Curve()
    for t in range(10_000):
        c = c.add(t / 10, 1, keep_seconds=600.0)
    assert c.total == 10_000
    assert len(c.points) <= CURVE_POINTS + 1
    assert c.points[0][0] >= 999.9 - 600.0 and c.base > 0  # older ones: counted, not timed
    assert c.spans(0, 5) == [(None, 5, False)]  # counted before the points kept: time unknown


def test_tickets_admitted_as_they_settle_are_learned_apart() -> None:
    """A first fill (admitted the tick their slot settled) finds out on the settle-look
    schedule, later than a visitor waiting at the front: its slow pickups do not slow the
    forecast of the admissions after it."""
    flow = Flow(session=Mean(3.0, 300)).observe(
        0.0,
        admitted=100,
        fresh=100,
        line_picked=0,
        pool_picked=0,
        reclaimed=0,
        ended=0,
        keep_seconds=KEEP,
    )
    flow = flow.observe(
        6.0, admitted=0, line_picked=100, pool_picked=0, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    assert flow.pickup_fresh.value == pytest.approx(6.0)
    assert flow.pickup.weight == 0  # nothing learned of those who waited
    assert flow.hold_seconds(900) == PICKUP_PRIOR_SECONDS + 3.0
    flow = flow.observe(
        9.0, admitted=100, line_picked=0, pool_picked=0, reclaimed=0, ended=100, keep_seconds=KEEP
    )
    flow = flow.observe(
        11.0, admitted=0, line_picked=100, pool_picked=0, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    assert flow.pickup.value == pytest.approx(2.0) and flow.pickup_fresh.value == 6.0
    assert flow.hold_seconds(900) == pytest.approx(5.0)
    assert flow.frees(11.0, 900) == [(14.0, 100)]


def test_a_fill_later_than_usual_is_expected_as_late_again() -> None:
    """Pickups usually 2 s after admission, sessions 4 s. Nobody of a fill admitted at 0 has
    picked up by 5 s: the whole fill is late (the pages are slow to notice), so it is expected
    as late again (at 10 s), not all at the next tick. Once some are back, the rest are
    expected a mean later."""
    learned = Flow(pickup=Mean(2.0, 300), session=Mean(4.0, 300))
    flow = learned.observe(
        0.0, admitted=100, line_picked=0, pool_picked=0, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    assert flow.frees(1.0, 900) == [(6.0, 100)]
    assert flow.frees(5.0, 900) == [(5.0 + 5.0 + 4.0, 100)]
    flow = flow.observe(
        5.0, admitted=0, line_picked=40, pool_picked=0, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    assert sorted(flow.frees(5.0, 900)) == [(9.0, 40), (5.0 + 2.0 + 4.0, 60)]


def test_a_ticket_admitted_soon_after_it_settled_counts_as_a_first_fill() -> None:
    """Places known for WAITED_SECONDS before admission are the line's; the others (their
    visitors have barely seen their place) are a first fill, learned apart."""
    flow = Flow().observe(
        0.0,
        admitted=0,
        line_picked=0,
        pool_picked=0,
        reclaimed=0,
        ended=0,
        keep_seconds=KEEP,
        settled_total=100,
    )
    flow = flow.observe(
        3.0,
        admitted=0,
        line_picked=0,
        pool_picked=0,
        reclaimed=0,
        ended=0,
        keep_seconds=KEEP,
        settled_total=300,
    )
    assert flow.waited(4.0, consumed=0) == 0
    assert flow.waited(WAITED_SECONDS, consumed=0) == 100
    assert flow.waited(WAITED_SECONDS + 3.0, consumed=50) == 250
    assert flow.waited(WAITED_SECONDS + 3.0, consumed=400) == 0


def test_a_quiet_rooms_few_admitted_at_once_teach_nothing_of_a_first_fill() -> None:
    flow = Flow().observe(
        0.0,
        admitted=3,
        fresh=3,
        line_picked=0,
        pool_picked=0,
        reclaimed=0,
        ended=0,
        keep_seconds=KEEP,
    )
    flow = flow.observe(
        1.0, admitted=0, line_picked=3, pool_picked=0, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    assert flow.pickup_fresh.weight == 0 and flow.pickup.weight == 0


def test_sessions_under_way_before_the_drainer_followed_the_room_teach_nothing() -> None:
    """A room live when this release arrives: 100 sessions under way, 20 admissions not picked
    up yet. Their ends and pickups, matched against the new admissions, would read as ~0 s."""
    flow = Flow().seed(unresolved=20, in_session=100)
    flow = flow.observe(
        0.0, admitted=30, line_picked=0, pool_picked=0, reclaimed=0, ended=30, keep_seconds=KEEP
    )
    flow = flow.observe(
        1.0, admitted=0, line_picked=20, pool_picked=0, reclaimed=0, ended=70, keep_seconds=KEEP
    )
    assert flow.session.weight == 0 and flow.pickup.weight == 0  # all of it was from before
    flow = flow.observe(
        2.0, admitted=0, line_picked=30, pool_picked=0, reclaimed=0, ended=0, keep_seconds=KEEP
    )
    flow = flow.observe(
        7.0, admitted=0, line_picked=0, pool_picked=0, reclaimed=0, ended=50, keep_seconds=KEEP
    )
    assert flow.pickup.value == pytest.approx(2.0)  # the new 30: admitted at 0, picked at 2
    assert flow.session.weight > 0 and flow.session.value >= 4.0  # not ~0 s

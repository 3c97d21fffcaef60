"""When places come free: what the drainer learns about a room's visitors, and its forecast.

Pure: no I/O, no clock. A line's wait is set by when the sessions under way end, not by how
many were admitted lately: a room that has just filled frees nothing for about one session,
then about `max_active` per session length. The drainer knows when it admitted each visitor,
sees (tick by tick) when they pick their token up and when their sessions end, and matches
those counts first in, first out: the mean of the matched delays is the mean time from
admission to pickup and from pickup to the end (whatever the order visitors really left in,
the sum of the delays is the area between the two curves). Those means outlive an event (a
room left on all the time has seen visitors before the launch); from them and the ages of the
sessions under way it forecasts the admissions of the next minute, which every client turns
into the same ETA (`eta_from_forecast`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

# Points kept per curve: past this, a curve merges its two closest points (at their mean time),
# so the drainer's state stays small whatever the session length.
CURVE_POINTS = 120
# The means follow about this many visitors: enough to smooth one tick's batch, few enough to
# follow a room whose visitors change.
MEAN_VISITORS = 300.0
# Admission to pickup (as the drainer's ticks see it) before any pickup was seen: a visitor at
# the front looks about every MIN_POLL_SECONDS (2 s: 1 s on average before it looks), at a
# state the edge holds at most about a second, and the tick after its pickup sees it.
PICKUP_PRIOR_SECONDS = 2.0
# The same for a first fill (tickets admitted soon after their slot settled): its visitors look
# just after the settling tick (`domain.settle_look_seconds`), then every second, while the
# burst keeps the site busy.
FRESH_PICKUP_PRIOR_SECONDS = 2.5
# A cohort of fewer first-fill tickets is a quiet room letting in its next few at once, which
# says little of how a burst's first fill (whose pages are as busy as the site) learns of it.
FIRST_FILL_MIN = 20
# Seconds ahead at which the forecast gives the admissions expected (denser where waits are
# short, where a second matters); past the last, the steady rate. The forecast reaches at least
# HOLDS_AHEAD holds (admission to a place coming free) ahead, up to the longest horizon: a room
# of 10-minute sessions that has just filled frees nothing for ten minutes.
HORIZONS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60)
LONG_HORIZONS = (90, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200)
HOLDS_AHEAD = 3
# Times of frees are kept to this step: a forecast's work stays bounded however short the holds.
STEP_SECONDS = 0.1


def horizons(hold: float) -> tuple[int, ...]:
    """The forecast's horizons for places held `hold` seconds from admission to coming free:
    HORIZONS, then longer ones until HOLDS_AHEAD holds are covered."""
    reach = HOLDS_AHEAD * hold
    longer: list[int] = []
    for h in LONG_HORIZONS:
        if reach <= (longer[-1] if longer else HORIZONS[-1]):
            break
        longer.append(h)
    return HORIZONS + tuple(longer)


MIN_HOLD_SECONDS = 0.5
# A session past its mean is expected to end this long after the tick (not at it: that tick
# saw nothing of it).
OVERDUE_SECONDS = 0.5
# A ticket whose exact place was known this long before its admission is admitted "from the
# line": its visitor was looking at the pace of the front (a settled state takes a few seconds
# to reach everybody through the edge); the others are a first fill.
WAITED_SECONDS = 5.0

Forecast = tuple[tuple[float, int], ...]  # (seconds ahead, admissions expected by then)


Point = tuple[float, int, bool]  # (time, total so far, counted "fresh")
Partial = tuple[float, int]  # a point part-way gone on: its units' summed times, how many


@dataclass(frozen=True, slots=True)
class Curve:
    """A count over time: `points` (time, total so far, fresh); `base` is the total before
    them. A fresh point counts a first fill's admissions (tickets whose exact place was barely
    known: see `Flow.waited`): they find out later than those who waited at the front."""

    base: int = 0
    points: tuple[Point, ...] = ()

    @property
    def total(self) -> int:
        return self.points[-1][1] if self.points else self.base

    def add(self, t: float, n: int, keep_seconds: float, fresh: bool = False) -> Curve:
        """`n` more at `t`. Points older than `keep_seconds` are dropped (into `base`); past
        CURVE_POINTS points, the two closest in time are merged (at their mean time, so the
        sum of the delays measured from them stays the same)."""
        pts = list(self.points)
        base = self.base
        while pts and pts[0][0] < t - keep_seconds:
            base = pts.pop(0)[1]
        if n > 0:
            pts.append((t, (pts[-1][1] if pts else base) + n, fresh))
        if len(pts) > CURVE_POINTS:
            i = min(range(1, len(pts)), key=lambda k: pts[k][0] - pts[k - 1][0])
            (t0, n0, f0), (t1, n1, f1) = pts[i - 1], pts[i]
            before = pts[i - 2][1] if i >= 2 else base
            at = (t0 * (n0 - before) + t1 * (n1 - n0)) / (n1 - before)
            pts[i - 1 : i + 1] = [(at, n1, f0 if n0 - before >= n1 - n0 else f1)]
        return Curve(base, tuple(pts))

    def mark(self, t: float, total: int, keep_seconds: float) -> Curve:
        """The total is `total` at `t` (a count kept elsewhere, followed here over time)."""
        grown = total - self.total
        if not self.points and not self.base:
            return Curve(0, ((t, total, False),))
        return self.add(t, grown, keep_seconds)  # (a count that did not grow adds no point)

    def total_at(self, t: float) -> int:
        """The total at time `t` (as far as the points kept tell)."""
        total = self.base
        for at, n, _ in self.points:
            if at > t:
                break
            total = n
        return total

    def past(self, count: int) -> Curve:
        """Without the points whose units are all past (`count` of them went on already)."""
        pts = self.points
        base = self.base
        while pts and pts[0][1] <= count:
            base, pts = pts[0][1], pts[1:]
        return Curve(base, pts)

    def spans(self, first: int, last: int) -> list[tuple[float | None, int, bool]]:
        """Units first+1 .. last grouped by when they were counted (None: before the points
        kept), in order, and whether they were fresh."""
        out: list[tuple[float | None, int, bool]] = []
        if first < min(last, self.base):
            out.append((None, min(last, self.base) - first, False))
        prev = self.base
        for t, total, fresh in self.points:
            n = min(total, last) - max(prev, first)
            if n > 0:
                out.append((t, n, fresh))
            prev = total
            if prev >= last:
                break
        return out

    def went_on(
        self, first: int, n: int, at: float, partial: Partial, timed: bool = True
    ) -> tuple[list[tuple[float, int, bool]], Partial]:
        """Units first+1 .. first+n went on at `at`, first in, first out: for each point they
        complete, the sum of its units' times since it was counted, how many, and whether it
        was fresh (with what its units that went on earlier had added: `partial`); and what
        the point they leave part-way has so far. Whole points only: a point's first units to
        go on are its quickest, and a mean of those alone would be too short. `timed` False:
        they count for completing their points but teach no time (no-shows reclaimed)."""
        done: list[tuple[float, int, bool]] = []
        last = first + n
        prev = self.base
        for t, total, fresh in self.points:
            k = min(total, last) - max(prev, first)
            if k > 0:
                carried = partial if prev < first else (0.0, 0)
                seconds = carried[0] + (k * max(0.0, at - t) if timed else 0.0)
                count = carried[1] + (k if timed else 0)
                if total <= last:
                    done.append((seconds, count, fresh))
                    partial = (0.0, 0)
                else:
                    partial = (seconds, count)
            prev = total
            if prev >= last:
                break
        return done, partial


@dataclass(frozen=True, slots=True)
class Mean:
    """A mean over about the last MEAN_VISITORS visitors (`weight`: how many it holds)."""

    value: float = 0.0
    weight: float = 0.0

    def add(self, total: float, n: int) -> Mean:
        if n <= 0:
            return self
        weight = self.weight + n
        return Mean((self.value * self.weight + total) / weight, min(weight, MEAN_VISITORS))

    def or_else(self, prior: float) -> float:
        return self.value if self.weight > 0 else prior


@dataclass(frozen=True, slots=True)
class Flow:
    """What the drainer follows of a room's visitors: its admissions from the line and all
    pickups over time (a pool's claims are pickups at once), how many line admissions were
    resolved (picked up or reclaimed) and how many sessions ended, and the learned means."""

    admitted: Curve = Curve()
    picked: Curve = Curve()
    resolved: int = 0
    ended: int = 0
    pickup: Mean = Mean()  # admission -> pickup seen by a tick, after waiting with a place
    session: Mean = Mean()  # pickup seen -> end seen
    pickup_fresh: Mean = Mean()  # admission -> pickup, for a ticket admitted soon after settling
    # the first admitted (picked) point part-way picked up (ended): what its units taught so far
    picking: Partial = (0.0, 0)
    ending: Partial = (0.0, 0)
    # tickets settled (in line with an exact place) over the last few seconds
    lined: Curve = Curve()
    # False until the drainer first follows the room with this (a room live before: `seed`);
    # then the pickups and ends of what was admitted before to let go by untimed
    seeded: bool = False
    untimed_resolved: int = 0
    untimed_ended: int = 0

    def seed(self, unresolved: int, in_session: int) -> Flow:
        """Start following a room with `unresolved` line admissions not picked up yet and
        `in_session` sessions under way, admitted before: their pickups and ends are none of
        the curves' (matched against them they would teach times of about 0 s)."""
        return replace(self, seeded=True, untimed_resolved=unresolved, untimed_ended=in_session)

    def waited(self, now: float, consumed: int) -> int:
        """How many of the next tickets to admit (from rank `consumed`) have had an exact place
        for WAITED_SECONDS at least: their visitors look at the pace of the line's front."""
        return max(0, self.lined.total_at(now - WAITED_SECONDS) - consumed)

    def observe(
        self,
        now: float,
        *,
        admitted: int,
        line_picked: int,
        pool_picked: int,
        reclaimed: int,
        ended: int,
        keep_seconds: float,
        fresh: int = 0,
        settled_total: int | None = None,
    ) -> Flow:
        """One tick's counts: pickups, no-shows reclaimed and sessions ended since the last
        tick (all seen `now`), then the admissions it made (the last `fresh` of them had no
        exact place for long: see `waited`), and the tickets settled so far."""
        skip = min(self.untimed_resolved, reclaimed + line_picked)  # admitted before: untimed
        old_reclaimed = min(skip, reclaimed)
        skip_ended = min(self.untimed_ended, ended)
        flow = replace(
            self,
            untimed_resolved=self.untimed_resolved - skip,
            untimed_ended=self.untimed_ended - skip_ended,
        )
        flow = flow._picked_up(now, reclaimed - old_reclaimed, line_picked - (skip - old_reclaimed))
        flow = flow._ended(now, line_picked + pool_picked, ended - skip_ended, keep_seconds)
        admissions = flow.admitted.add(now, admitted - fresh, keep_seconds)
        admissions = admissions.add(now, fresh, keep_seconds, fresh=True)
        lined = self.lined
        if settled_total is not None:
            lined = lined.mark(now, settled_total, 2 * WAITED_SECONDS)
        return replace(flow, admitted=admissions.past(flow.resolved), lined=lined)

    def _picked_up(self, now: float, reclaimed: int, picked: int) -> Flow:
        """Line admissions resolved: the oldest not picked up are the ones reclaimed (their
        deadline came first), then the pickups; whole cohorts teach their pickup time."""
        curve = self.admitted
        reclaimed = min(reclaimed, curve.total - self.resolved)
        gone, picking = curve.went_on(self.resolved, reclaimed, now, self.picking, timed=False)
        resolved = self.resolved + reclaimed
        picked = min(picked, curve.total - resolved)
        more, picking = curve.went_on(resolved, picked, now, picking)
        pickup, fresh = self.pickup, self.pickup_fresh
        for seconds, n, first_fill in gone + more:
            if not first_fill:
                pickup = pickup.add(seconds, n)
            elif n >= FIRST_FILL_MIN:  # a burst's first fill, not a quiet room's next few
                fresh = fresh.add(seconds, n)
        return replace(
            self, resolved=resolved + picked, picking=picking, pickup=pickup, pickup_fresh=fresh
        )

    def _ended(self, now: float, picked: int, ended: int, keep_seconds: float) -> Flow:
        """Pickups (line and pool) counted, then the sessions ended; whole cohorts of pickups
        teach the session time."""
        curve = self.picked.add(now, picked, keep_seconds)
        ended = min(ended, curve.total - self.ended)
        sessions, ending = curve.went_on(self.ended, ended, now, self.ending)
        session = self.session
        for seconds, n, _ in sessions:
            session = session.add(seconds, n)
        total = self.ended + ended
        return replace(self, picked=curve.past(total), ended=total, session=session, ending=ending)

    def hold_seconds(self, session_prior: float) -> float:
        """Admission from the line to the place coming free: the learned means, or before any
        session was seen to end, the configured session length (the longest one can hold)."""
        pickup = self.pickup.or_else(PICKUP_PRIOR_SECONDS)
        return max(MIN_HOLD_SECONDS, pickup + self.session.or_else(session_prior))

    def frees(self, now: float, session_prior: float) -> list[tuple[float, int]]:
        """When the places held now are expected to come free. A visitor who has not picked
        up by the mean time is expected as late again (a mean at most OVERDUE_RESIDUAL of it
        later: the later a first fill is, the later it still is); a session past its mean, just
        after the tick."""
        pickup = self.pickup.or_else(PICKUP_PRIOR_SECONDS)
        fresh = self.pickup_fresh.or_else(max(pickup, FRESH_PICKUP_PRIOR_SECONDS))
        session = self.session.or_else(session_prior)
        soon = now + OVERDUE_SECONDS
        out = []
        head = self.picking[1] > 0  # the first cohort has begun to pick up
        for t, n, f in self.admitted.spans(self.resolved, self.admitted.total):
            mean = fresh if f else pickup
            if t is None:
                picks = now + mean
            elif now - t <= mean:
                picks = t + mean
            else:  # a cohort none of whom is back yet is late as a whole: as late again
                picks = now + (mean if head else max(mean, now - t))
            out.append((max(soon, picks + session), n))
            head = False
        for t, n, _ in self.picked.spans(self.ended, self.picked.total):
            out.append((soon if t is None else max(soon, t + session), n))
        return out


def forecast(
    frees: Sequence[tuple[float, int]],
    *,
    now: float,
    free_now: int,
    hold: float,
    excess: int = 0,
    per_minute: int = 0,
    recent: Sequence[tuple[float, int]] = (),
) -> Forecast:
    """Admissions expected by each horizon (`horizons(hold)`) from `now`, when the line is
    long: the places free now at once, each place as it comes free (`frees`), and each place
    admitted again `hold` seconds after its admission. The first `excess` places to come free
    admit nobody (max_active was lowered below the places held). A room with a rate cap
    (`per_minute` > 0) admits at most that many in any 60 s, counting its `recent` admissions
    (time, how many)."""
    marks = horizons(hold)
    end = now + marks[-1]
    queue = [(_step(t), n) for t, n in frees if n > 0 and t <= end]
    if free_now > 0:
        queue.append((_step(now), free_now))
    heapq.heapify(queue)
    events: list[tuple[float, int]] = []
    while queue:
        t, n = heapq.heappop(queue)
        while queue and queue[0][0] == t:
            n += heapq.heappop(queue)[1]
        spent = min(n, excess)  # places not given again
        excess, n = excess - spent, n - spent
        if n <= 0:
            continue
        events.append((t - now, n))
        if t + hold <= end:
            heapq.heappush(queue, (_step(t + hold), n))
    out = []
    total, i = 0, 0
    for h in marks:
        while i < len(events) and events[i][0] <= h:
            total += events[i][1]
            i += 1
        out.append((float(h), _capped(total, h, now, per_minute, recent)))
    return tuple(out)


def _step(t: float) -> float:
    """`t` up to the next STEP_SECONDS (a time already on one stays)."""
    return math.ceil(round(t / STEP_SECONDS, 6)) * STEP_SECONDS


def _capped(
    total: int, h: float, now: float, per_minute: int, recent: Sequence[tuple[float, int]]
) -> int:
    """At most what a cap of `per_minute` in any 60 s allows by `now + h`, after the `recent`
    admissions: within the next minute, the cap less those still in the window then; past it,
    a minute's worth more every minute."""
    if per_minute <= 0:
        return total
    within = min(h, 60.0)
    allowed = per_minute - sum(n for t, n in recent if t > now + within - 60)
    allowed += math.floor(per_minute * max(0.0, h - 60) / 60)
    return min(total, max(0, allowed))


def steady_rate(max_active: int, hold: float, rate_cap: float = 0.0) -> float:
    """Admissions per second once the room has been full a while."""
    rate = max_active / max(MIN_HOLD_SECONDS, hold)
    return min(rate, rate_cap) if rate_cap > 0 else rate


# A state older than this is taken as this old: a client whose clock is far off the server's
# is at most this far wrong.
MAX_STATE_AGE_SECONDS = 10.0


def eta_from_forecast(
    position: int, points: Sequence[Sequence[float]], rate: float, age: float = 0.0
) -> int | None:
    """Seconds until `position` is admitted: where the forecast's admissions reach it (linear
    between its points, from (0, 0)), past its last point at `rate` (None when that is 0);
    less the `age` of the state that carried the forecast (at least a second)."""
    if position <= 0:
        return 0
    ahead = _forecast_seconds(position, points, rate)
    if ahead is None:
        return None
    age = min(max(0.0, age), MAX_STATE_AGE_SECONDS)
    return max(1, math.ceil(ahead - age))


def _forecast_seconds(
    position: int, points: Sequence[Sequence[float]], rate: float
) -> float | None:
    t0, n0 = 0.0, 0.0
    for t, n in points:
        if n >= position:
            return t0 + (position - n0) * (t - t0) / (n - n0)
        t0, n0 = float(t), float(n)
    if rate <= 0:
        return None
    return t0 + (position - n0) / rate

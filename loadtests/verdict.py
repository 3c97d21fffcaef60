"""The verdict of a load-test run: did the waiting room keep its promises?

Input is the JSON-lines record the Locust visitors and the operator write (see locustfile.py):

  {"e": "run",    "t", "room", "host"}                        once, at the start
  {"e": "join",   "v", "t0", "t", "number", "ticket", "plan"} a 201 from join
  {"e": "admit",  "v", "t", "exp", "seq"}                     admitted (seq: the tick, its iat)
  {"e": "end",    "v", "t", "outcome"}                        the visitor's journey is over
  {"e": "error",  "t", "name", "status", "kind"}              a failed request
  {"e": "exact",  "v", "t", "position", "eta", "rank",         the first exact place seen (and
   "consumed", "at"}                                          the state's, as in a look)
  {"e": "look",   "v", "t", "consumed", "at"}                 a visitor's first room state (at:
                                                              its updated_at, the tick's time)
  {"e": "tick",   "t", "at", "committed", "consumed"}         a new room state (at: its tick's
                                                              start; committed: when it wrote it)
  {"e": "config", "t", "max_active"}                          max_active in effect from t
  {"e": "operator", "t", "problem"}                           the operator could not work
  {"e": "stats",  "t", "waiting", "active", "admitted_total", "max_active"}  operator samples
  {"e": "audit",  "v", "result"}                              after a drained run: reclaimed,
                                                              admitted or waiting

Outcomes of `end`: completed, left_waiting (abandoned before pickup), left_active (picked up,
never completed), gone (410 while polling), stopped (the run ended first), join_failed, error.

A promise the records hold no data for (max_active never known, the room's stats never read,
a max_active change asked for but never made) makes the verdict INCONCLUSIVE, which exits
non-zero like a FAIL: a run that could not check a promise never passes.

Promises checked (any broken one makes the verdict fail):
  * over-admission: at every admission a visitor saw, the sessions open at the origin (from the
    visitors' own records: admitted-at ... completed, or the token's exp) never exceed the
    max_active in effect (any value set within `lag` seconds before, since a change reaches the
    drainer at its next tick and a visitor sees its admission at its next poll);
  * lost tickets: in a drained run, every 201 from join ends admitted or reclaimed;
  * server errors: no 5xx at all.

Pure functions: no I/O except `load_records` and `write_report`.
"""

from __future__ import annotations

import argparse
import bisect
import html
import itertools
import json
import math
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

Record = Mapping[str, Any]

DEFAULT_LAG_SECONDS = 20.0


# -- statistics -----------------------------------------------------------------------------


def _count_inversions(values: list[Any]) -> int:
    """Pairs i < j with values[i] > values[j] (bottom-up merge sort, O(n log n))."""
    n = len(values)
    buf = list(values)
    tmp = [None] * n
    inversions = 0
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if buf[j] < buf[i]:
                    tmp[k] = buf[j]
                    inversions += mid - i
                    j += 1
                else:
                    tmp[k] = buf[i]
                    i += 1
                k += 1
            while i < mid:
                tmp[k] = buf[i]
                i += 1
                k += 1
            while j < hi:
                tmp[k] = buf[j]
                j += 1
                k += 1
        buf, tmp = tmp, buf
        width *= 2
    return inversions


def _tied_pairs(values: Iterable[Any]) -> int:
    return sum(c * (c - 1) // 2 for c in Counter(values).values())


def _kendall_counts(x: Sequence[Any], y: Sequence[Any]) -> tuple[int, int, int, int, int]:
    """(pairs, tied in x, tied in y, tied in both, discordant) in O(n log n) (Knight)."""
    if len(x) != len(y):
        raise ValueError("x and y must have the same length")
    n = len(x)
    pairs = sorted(zip(x, y, strict=True))
    n0 = n * (n - 1) // 2
    n1 = _tied_pairs(p[0] for p in pairs)
    n2 = _tied_pairs(p[1] for p in pairs)
    n3 = _tied_pairs(pairs)
    return n0, n1, n2, n3, _count_inversions([p[1] for p in pairs])


def kendall_tau_b(x: Sequence[Any], y: Sequence[Any]) -> float:
    """Kendall's tau-b (ties allowed in both). 1.0 when n < 2 or either side is all ties.

    With admissions in batches (ties in y) a perfectly fair run scores below 1: tau-b counts the
    pairs admitted together as neither concordant nor discordant but keeps them in the norm."""
    n0, n1, n2, n3, swaps = _kendall_counts(x, y)
    denom = math.sqrt((n0 - n1) * (n0 - n2))
    if denom == 0:
        return 1.0
    return (n0 - n1 - n2 + n3 - 2 * swaps) / denom


def kendall_tau_untied(x: Sequence[Any], y: Sequence[Any]) -> float:
    """Kendall's tau over the pairs tied on neither side, (C - D) / (C + D) (Goodman and
    Kruskal's gamma): 1.0 exactly when nobody was admitted in a later tick than someone who
    joined after them."""
    n0, n1, n2, n3, swaps = _kendall_counts(x, y)
    untied = n0 - n1 - n2 + n3
    if untied == 0:
        return 1.0
    return (untied - 2 * swaps) / untied


def largest_displacement(order: Sequence[tuple[Any, Any]]) -> int:
    """(join key, admission key) per admitted visitor -> the largest distance between a
    visitor's rank in join order and the ranks its admission batch occupies.

    Visitors admitted together (same admission key) share a range of ranks; a visitor whose join
    rank falls inside its batch's range is displaced by 0."""
    if not order:
        return 0
    by_join = sorted(range(len(order)), key=lambda i: order[i][0])
    join_rank = {i: r for r, i in enumerate(by_join)}
    batch_size = Counter(a for _, a in order)
    start: dict[Any, int] = {}
    acc = 0
    for a in sorted(batch_size):
        start[a] = acc
        acc += batch_size[a]
    worst = 0
    for i, (_, a) in enumerate(order):
        lo, hi = start[a], start[a] + batch_size[a] - 1
        r = join_rank[i]
        worst = max(worst, lo - r, r - hi)
    return worst


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(s)))
    return s[min(rank, len(s)) - 1]


def max_overlap(intervals: Iterable[tuple[float, float]]) -> tuple[int, float]:
    """The most intervals [start, end) open at once, and when."""
    events: list[tuple[float, int]] = []
    for a, b in intervals:
        if b > a:
            events += [(a, 1), (b, -1)]
    events.sort()  # at equal times an end (-1) sorts before a start (+1)
    best, when, cur = 0, 0.0, 0
    for t, d in events:
        cur += d
        if cur > best:
            best, when = cur, t
    return best, when


class Limits:
    """max_active over time, from `config` records: the value set last at or before t."""

    def __init__(self, changes: Iterable[tuple[float, int]]) -> None:
        pts = sorted(changes)
        self.times = [t for t, _ in pts]
        self.values = [v for _, v in pts]

    def at(self, t: float) -> int | None:
        if not self.values:
            return None
        i = bisect.bisect_right(self.times, t) - 1
        return self.values[max(i, 0)]

    def allowed(self, t: float, lag: float) -> int | None:
        """The largest max_active in effect at any time in [t - lag, t]."""
        if not self.values:
            return None
        lo = bisect.bisect_right(self.times, t - lag)
        hi = bisect.bisect_right(self.times, t)
        candidates = [self.at(t - lag), *self.values[lo:hi]]
        return max(v for v in candidates if v is not None)


@dataclass(frozen=True)
class OverAdmission:
    t: float
    open_sessions: int
    allowed: int


def over_admissions(
    intervals: Sequence[tuple[float, float]], limits: Limits, lag: float
) -> list[OverAdmission]:
    """At each interval's start (an admission), compare the open sessions with the limit."""
    starts = sorted(a for a, b in intervals if b > a)
    ends = sorted(b for a, b in intervals if b > a)
    out: list[OverAdmission] = []
    for t in starts:
        opened = bisect.bisect_right(starts, t)
        closed = bisect.bisect_right(ends, t)
        open_now = opened - closed
        allowed = limits.allowed(t, lag)
        if allowed is not None and open_now > allowed:
            out.append(OverAdmission(t, open_now, allowed))
    return out


# -- the numbers shown to visitors ----------------------------------------------------------

# What the numbers looked like before the estimate used every shard and the ETA the observed
# admission rate (a burst of 600 joins): printed beside this run's figures.
BASELINE_ESTIMATE = "9 in 10 off by 99 % (1 -> 52, 3 -> 191, 4 -> 374)"
BASELINE_TO_EXACT = "p50 8.6 s, p90 11.3 s"
BASELINE_ETA = "0.3 % within +-25 % (ETA / real wait p50 4.4x, p10 4.0x, p90 4.5x)"
ESTIMATE_TARGET = 0.90  # share of first positions within +-25 % of the exact one
ETA_TARGET = 0.70  # share of ETAs at the first exact position within +-25 % of the real wait
TOLERANCE = 0.25


@dataclass
class Accuracy:
    """How right the numbers shown to visitors were.

    estimate: the position the join gave against the exact position at that moment (the
    ticket's rank minus the queue's admissions by then, from the room states seen);
    to_exact: seconds from join to the first exact position; eta: the ETA shown with the first
    exact position against the wait that followed it (to the tick that admitted the visitor)."""

    estimate_checked: int = 0
    estimate_within: float | None = None
    estimate_error_p50: float | None = None
    estimate_error_p90: float | None = None
    to_exact_p50: float | None = None
    to_exact_p90: float | None = None
    eta_checked: int = 0
    eta_within: float | None = None
    eta_ratio_p10: float | None = None
    eta_ratio_p50: float | None = None
    eta_ratio_p90: float | None = None
    # the same among the waits no operator change of max_active fell in (which no ETA foresees)
    eta_steady_checked: int = 0
    eta_steady_within: float | None = None


def _consumed_at(totals: Sequence[tuple[float, int]], t: float) -> int | None:
    """Admissions by time t (the last stats sample at or before it)."""
    i = bisect.bisect_right([s for s, _ in totals], t) - 1
    return totals[i][1] if i >= 0 else None


def admitted_by(*samples: Iterable[tuple[float, int]]) -> list[tuple[float, int]]:
    """(time, admissions so far) from samples of the room state, merged and never going
    down."""
    out: list[tuple[float, int]] = []
    for t, n in sorted(itertools.chain(*samples)):
        out.append((t, max(n, out[-1][1]) if out else n))
    return out


def admissions_clock(
    states: Sequence[tuple[float, int]],
    committed: Mapping[float, float],
    stats: Sequence[tuple[float, int]] = (),
) -> list[tuple[float, int]]:
    """When the queue's admissions happened: each state seen (its updated_at, its consumed) as
    of the commit that wrote it when the watcher saw it (a busy tick commits a while after it
    began), else as of its tick. Only without any state seen, the operator's stats: their
    admitted_total also counts the joins let straight in, which hold no place in the line."""
    if not states:
        return admitted_by(stats)
    return admitted_by([(committed.get(at, at), n) for at, n in states])


def accuracy(
    joins: Mapping[str, Record],
    exacts: Mapping[str, Record],
    admits: Mapping[str, Record],
    totals: Sequence[tuple[float, int]],
    changes: Sequence[float] = (),
) -> Accuracy:
    """`changes`: when the operator changed max_active (a wait spanning one is also counted
    apart)."""
    acc = Accuracy()
    errors: list[float] = []
    to_exact: list[float] = []
    ratios: list[float] = []
    steady: list[float] = []
    for v, x in exacts.items():
        j = joins.get(v)
        if j is None:
            continue
        to_exact.append(float(x["t"]) - float(j["t"]))
        consumed = _consumed_at(totals, float(j["t"]))
        rank = x.get("rank")
        if rank is None and x.get("position") and (at_x := _consumed_at(totals, float(x["t"]))):
            rank = int(x["position"]) + at_x - 1
        if rank is not None and consumed is not None and j.get("position"):
            exact = int(rank) - consumed + 1
            if exact > 0:
                errors.append(abs(int(j["position"]) - exact) / exact)
        a = admits.get(v)
        if a is not None and x.get("eta") is not None and int(x.get("position") or 0) > 0:
            # until the tick that admitted it (its token's iat), not until the visitor's next
            # look happened to notice
            admitted = float(a.get("seq") or a["t"])
            real = admitted - float(x["t"])
            if real > 0:
                ratios.append(float(x["eta"]) / real)
                if not any(float(x["t"]) < c <= admitted + 1 for c in changes):
                    steady.append(ratios[-1])
    acc.to_exact_p50, acc.to_exact_p90 = percentile(to_exact, 50), percentile(to_exact, 90)
    if errors:
        acc.estimate_checked = len(errors)
        acc.estimate_within = sum(e <= TOLERANCE for e in errors) / len(errors)
        acc.estimate_error_p50 = percentile(errors, 50)
        acc.estimate_error_p90 = percentile(errors, 90)
    if ratios:
        acc.eta_checked = len(ratios)
        acc.eta_within = sum(abs(r - 1) <= TOLERANCE for r in ratios) / len(ratios)
        acc.eta_ratio_p10, acc.eta_ratio_p50, acc.eta_ratio_p90 = (
            percentile(ratios, q) for q in (10, 50, 90)
        )
    if steady:
        acc.eta_steady_checked = len(steady)
        acc.eta_steady_within = sum(abs(r - 1) <= TOLERANCE for r in steady) / len(steady)
    return acc


def max_active_changes(configs: Sequence[tuple[float, int]]) -> list[float]:
    """When max_active changed (its first known value is no change)."""
    ordered = sorted(configs)
    return [t for (t, m), (_, before) in zip(ordered[1:], ordered, strict=False) if m != before]


# -- the verdict ----------------------------------------------------------------------------


@dataclass
class Verdict:
    room: str = ""
    host: str = ""
    visitors_joined: int = 0
    join_failures: int = 0
    admitted: int = 0
    completed: int = 0
    left_waiting: int = 0
    left_active: int = 0
    gone_410: int = 0
    reclaimed_by_audit: int = 0
    unresolved: int = 0
    lost_tickets: int = 0
    drained: bool = False
    max_active_configured: list[tuple[float, int]] = field(default_factory=list)
    max_concurrent_at_origin: int = 0
    max_concurrent_at: float = 0.0
    over_admissions: int = 0
    worst_over_admission: OverAdmission | None = None
    batches: int = 0
    largest_batch: int = 0
    largest_batch_limit: int | None = None
    mean_batch: float = 0.0
    admissions_per_tick_max: int = 0
    admissions_per_second: float = 0.0
    kendall_tau_number: float = 1.0
    kendall_tau_b_number: float = 1.0
    kendall_tau_join_time: float = 1.0
    largest_displacement: int = 0
    queue_p50: float | None = None
    queue_p90: float | None = None
    queue_max: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0
    transport_errors: int = 0
    accuracy: Accuracy | None = None
    first_t: float = 0.0
    last_t: float = 0.0
    failures: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures and not self.unchecked

    @property
    def outcome(self) -> str:
        return "FAIL" if self.failures else "INCONCLUSIVE" if self.unchecked else "PASS"


def _intervals(
    joins: Mapping[str, Record], admits: Mapping[str, Record], ends: Mapping[str, Record]
) -> list[tuple[float, float]]:
    """(admitted-at, session end) per visitor who got a token: end is the completion time when
    they completed, the token's exp otherwise (an abandoned session holds its place till then)."""
    out = []
    for v, a in admits.items():
        end = ends.get(v)
        if end is not None and end.get("outcome") == "completed":
            out.append((float(a["t"]), float(end["t"])))
        else:
            out.append((float(a["t"]), float(a.get("exp") or a["t"])))
    return out


def analyse(
    records: Iterable[Record], *, drained: bool = False, lag: float = DEFAULT_LAG_SECONDS
) -> Verdict:
    """Fold a run's records into a verdict. `drained`: the run ended with the room empty (every
    joined ticket admitted or reclaimed by then), so an unresolved ticket counts as lost."""
    joins: dict[str, Record] = {}
    admits: dict[str, Record] = {}
    exacts: dict[str, Record] = {}
    looks: list[tuple[float, int]] = []  # (the state's updated_at, its consumed)
    committed: dict[float, float] = {}  # a state's updated_at -> when its tick committed it
    problems: list[str] = []
    requested = ""
    ends: dict[str, Record] = {}
    audits: dict[str, str] = {}
    errors: Counter[str] = Counter()
    configs: list[tuple[float, int]] = []
    stats: list[Record] = []
    v = Verdict(drained=drained)
    times: list[float] = []
    for r in records:
        kind = r.get("e")
        if "t" in r and r.get("source") != "store":  # the load's span, not the watcher's
            times.append(float(r["t"]))
        if kind == "run":
            v.room, v.host = str(r.get("room", "")), str(r.get("host", ""))
            requested = str(r.get("max_active_changes") or "")
        elif kind == "operator":
            problems.append(str(r.get("problem", "")))
        elif kind == "join":
            joins[str(r["v"])] = r
        elif kind == "admit":
            admits.setdefault(str(r["v"]), r)
        elif kind == "end":
            ends[str(r["v"])] = r
        elif kind == "exact":
            exacts.setdefault(str(r["v"]), r)
            if r.get("at") and r.get("consumed") is not None:
                # the admissions as of the tick that wrote the state it read (see `look`)
                looks.append((float(r["at"]), int(r["consumed"])))
        elif kind == "tick":  # a room state as a watcher read it (in the store, at the API)
            looks.append((float(r["at"]), int(r["consumed"])))
            # the store's record of a state beats an API copy's without `committed`
            when = float(r.get("committed") or r["at"])
            committed[float(r["at"])] = max(when, committed.get(float(r["at"]), when))
        elif kind == "look":
            # the admissions as of the drainer's tick that wrote that state (`at`), not as of
            # the look: a copy the edge kept a second says what was true a second before
            looks.append((float(r.get("at") or r["t"]), int(r["consumed"])))
        elif kind == "audit":
            audits[str(r["v"])] = str(r["result"])
        elif kind == "config":
            configs.append((float(r["t"]), int(r["max_active"])))
        elif kind == "stats":
            stats.append(r)
        elif kind == "error":
            status = r.get("status") or 0
            label = " ".join(str(x) for x in (r.get("name", "?"), status, r.get("kind")) if x)
            errors[label] += 1
            if int(status) >= 500:
                v.server_errors += 1
            elif not status:
                v.transport_errors += 1
    if times:
        v.first_t, v.last_t = min(times), max(times)
    v.errors = dict(errors.most_common())
    v.visitors_joined = len(joins)
    outcomes = Counter(str(e.get("outcome")) for e in ends.values())
    v.join_failures = outcomes["join_failed"]
    v.admitted = len(admits)
    v.completed = outcomes["completed"]
    v.left_waiting = outcomes["left_waiting"]
    v.left_active = outcomes["left_active"]
    v.gone_410 = sum(
        1 for k in joins if k not in admits and ends.get(k, {}).get("outcome") == "gone"
    )

    # lost tickets: joined, never seen admitted, not told 410, not reclaimed by the audit
    for k in joins:
        if k in admits or ends.get(k, {}).get("outcome") == "gone":
            continue
        result = audits.get(k)
        if result == "reclaimed":
            v.reclaimed_by_audit += 1
        elif result == "admitted":
            v.admitted += 1  # admitted after the visitor left (seen by the audit only)
        elif drained:
            v.lost_tickets += 1
        else:
            v.unresolved += 1

    # concurrency at the origin vs max_active
    stat_limits = [(float(s["t"]), int(s["max_active"])) for s in stats if "max_active" in s]
    limits = Limits(configs or stat_limits)
    v.max_active_configured = sorted(configs or stat_limits)
    intervals = _intervals(joins, admits, ends)
    v.max_concurrent_at_origin, v.max_concurrent_at = max_overlap(intervals)
    bad = over_admissions(intervals, limits, lag)
    v.over_admissions = len(bad)
    if bad:
        v.worst_over_admission = max(bad, key=lambda o: o.open_sessions - o.allowed)

    # admissions per tick: the visitors' tokens carry their tick (iat)
    batch_sizes = Counter(int(a["seq"]) for a in admits.values() if a.get("seq") is not None)
    batch_time = {int(a["seq"]): float(a["t"]) for a in admits.values() if a.get("seq")}
    v.batches = len(batch_sizes)
    if batch_sizes:
        seq, v.largest_batch = max(batch_sizes.items(), key=lambda kv: kv[1])
        v.largest_batch_limit = limits.allowed(batch_time[seq], lag)
        v.mean_batch = sum(batch_sizes.values()) / len(batch_sizes)
        if v.largest_batch_limit is not None and v.largest_batch > v.largest_batch_limit:
            v.failures.append(
                f"over-admission: one tick admitted {v.largest_batch} > max_active "
                f"{v.largest_batch_limit}"
            )
    totals = sorted((float(s["t"]), int(s["admitted_total"])) for s in stats)
    if len(totals) >= 2:
        v.admissions_per_tick_max = max(b[1] - a[1] for a, b in itertools.pairwise(totals))
        span = totals[-1][0] - totals[0][0]
        v.admissions_per_second = (totals[-1][1] - totals[0][1]) / span if span > 0 else 0.0
    elif admits:
        ts = sorted(float(a["t"]) for a in admits.values())
        span = ts[-1] - ts[0]
        v.admissions_per_second = len(ts) / span if span > 0 else 0.0

    # fairness: join order (number, and join time) vs admission order (the token's batch)
    ordered = [(joins[k], a) for k, a in admits.items() if k in joins and a.get("seq") is not None]
    if ordered:
        seqs = [int(a["seq"]) for _, a in ordered]
        numbers = [int(j["number"]) for j, _ in ordered]
        v.kendall_tau_number = kendall_tau_untied(numbers, seqs)
        v.kendall_tau_b_number = kendall_tau_b(numbers, seqs)
        v.kendall_tau_join_time = kendall_tau_untied(
            [float(j.get("t0", j["t"])) for j, _ in ordered], seqs
        )
        v.largest_displacement = largest_displacement(
            [(int(j["number"]), int(a["seq"])) for j, a in ordered]
        )

    changes = max_active_changes(configs)
    v.accuracy = accuracy(
        joins, exacts, admits, admissions_clock(looks, committed, totals), changes
    )
    waits = [float(a["t"]) - float(joins[k]["t"]) for k, a in admits.items() if k in joins]
    v.queue_p50, v.queue_p90 = percentile(waits, 50), percentile(waits, 90)
    v.queue_max = max(waits) if waits else None

    if v.over_admissions:
        w = v.worst_over_admission
        assert w is not None
        v.failures.append(
            f"over-admission: {v.over_admissions} admissions saw more open sessions than "
            f"max_active (worst {w.open_sessions} > {w.allowed})"
        )
    if v.lost_tickets:
        v.failures.append(f"lost tickets: {v.lost_tickets} joined but never admitted or reclaimed")
    if v.server_errors:
        v.failures.append(f"server errors: {v.server_errors} responses were 5xx")
    if not joins:
        v.failures.append("no visitor joined: nothing was tested")
    v.unchecked = unchecked(configs, stats, requested, problems)
    return v


def unchecked(
    configs: Sequence[tuple[float, int]],
    stats: Sequence[Record],
    requested: str,
    problems: list[str],
) -> list[str]:
    """The promises these records cannot show kept, and why."""
    why = f" ({'; '.join(problems)})" if problems else ""
    out = []
    if not configs and not any("max_active" in s for s in stats):
        out.append(f"max_active never known: over-admission not checked{why}")
    if not stats and not configs:  # the operator's first config record is a stats read
        out.append(f"the room's stats never read: admissions not cross-checked{why}")
    made = {m for _, m in configs}
    for change in (c for c in requested.split(",") if c.strip()):
        value = change.partition(":")[2]
        if not value.strip().isdigit() or int(value) not in made:
            out.append(f"max_active change {change.strip()} asked for but never made{why}")
    return out


# -- time series and the chart --------------------------------------------------------------

Series = list[tuple[float, float]]


def timeline(records: Iterable[Record], step: float = 1.0) -> dict[str, Series]:
    """Waiting / active / admitted over time, from the visitors' records (and the operator's
    stats samples when present), relative to the first record."""
    recs = list(records)
    joins = {str(r["v"]): float(r["t"]) for r in recs if r.get("e") == "join"}
    admits = {str(r["v"]): r for r in recs if r.get("e") == "admit"}
    ends = {str(r["v"]): r for r in recs if r.get("e") == "end"}
    times = [float(r["t"]) for r in recs if "t" in r]
    if not times:
        return {}
    t0, t1 = min(times), max(times)
    left = {
        k: float(e["t"]) for k, e in ends.items() if k not in admits and k in joins
    }  # stopped waiting without a token
    intervals = _intervals({}, admits, ends)
    admit_times = sorted(float(a["t"]) for a in admits.values())
    join_times = sorted(joins.values())
    left_times = sorted(left.values())
    starts = sorted(a for a, _ in intervals)
    stops = sorted(b for _, b in intervals)
    out: dict[str, Series] = {
        "waiting (visitors)": [],
        "admitted (visitors)": [],
        "active at origin (visitors)": [],
    }
    n = int((t1 - t0) / step) + 1
    for i in range(n + 1):
        t = t0 + i * step
        joined = bisect.bisect_right(join_times, t)
        admitted = bisect.bisect_right(admit_times, t)
        gone = bisect.bisect_right(left_times, t)
        active = bisect.bisect_right(starts, t) - bisect.bisect_right(stops, t)
        x = t - t0
        out["waiting (visitors)"].append((x, joined - admitted - gone))
        out["admitted (visitors)"].append((x, admitted))
        out["active at origin (visitors)"].append((x, active))
    stats = sorted((r for r in recs if r.get("e") == "stats"), key=lambda r: float(r["t"]))
    if stats:
        out["waiting (server)"] = [(float(s["t"]) - t0, float(s["waiting"])) for s in stats]
        out["active (server)"] = [(float(s["t"]) - t0, float(s["active"])) for s in stats]
    configs = sorted((float(r["t"]), int(r["max_active"])) for r in recs if r.get("e") == "config")
    if configs:
        steps: Series = []
        for i, (t, m) in enumerate(configs):
            if i:
                steps.append((max(0.0, t - t0), float(configs[i - 1][1])))
            steps.append((max(0.0, t - t0), float(m)))
        steps.append((t1 - t0, float(configs[-1][1])))
        out["max_active"] = steps
    return out


_COLOURS = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#7f7f7f"]


def svg_chart(title: str, series: Mapping[str, Series], width: int = 900, height: int = 280) -> str:
    """A line chart as inline SVG (no scripts, no external assets)."""
    pad_l, pad_r, pad_t, pad_b = 60, 10, 30, 40
    pts = [p for s in series.values() for p in s]
    x_max = max((p[0] for p in pts), default=1.0) or 1.0
    y_max = max((p[1] for p in pts), default=1.0) or 1.0
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def sx(x: float) -> float:
        return pad_l + w * x / x_max

    def sy(y: float) -> float:
        return pad_t + h - h * y / y_max

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<text x="{pad_l}" y="18" font-size="13" font-weight="bold">{html.escape(title)}</text>',
        f'<rect x="{pad_l}" y="{pad_t}" width="{w}" height="{h}" fill="none" stroke="#ccc"/>',
    ]
    for i in range(5):
        y = y_max * i / 4
        parts.append(
            f'<text x="{pad_l - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.0f}</text>'
            f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" '
            'stroke="#eee"/>'
        )
        x = x_max * i / 4
        parts.append(
            f'<text x="{sx(x):.1f}" y="{pad_t + h + 14}" text-anchor="middle">{x:.0f} s</text>'
        )
    for i, (name, s) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        if s:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
            dash = ' stroke-dasharray="5,3"' if name == "max_active" else ""
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dash} '
                f'points="{path}"/>'
            )
        lx = pad_l + 10 + i * 165
        parts.append(
            f'<rect x="{lx}" y="{height - 14}" width="10" height="3" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="{height - 10}">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


# -- reports --------------------------------------------------------------------------------


def _fmt(x: float | None, unit: str = " s") -> str:
    return "n/a" if x is None else f"{x:.1f}{unit}"


def render_text(v: Verdict) -> str:
    limits = ", ".join(f"{m}" for _, m in v.max_active_configured) or "unknown"
    peak_limit = max((m for _, m in v.max_active_configured), default=None)
    lines = [
        f"VERDICT: {v.outcome}  (room {v.room or '?'} at {v.host or '?'}, "
        f"{v.last_t - v.first_t:.0f} s)",
        f"  visitors joined (201)          {v.visitors_joined}  (join failures {v.join_failures})",
        f"  admitted                       {v.admitted}  (completed {v.completed}, "
        f"left with the token {v.left_active})",
        f"  left before pickup             {v.left_waiting}  (reclaimed per audit "
        f"{v.reclaimed_by_audit}, told 410 {v.gone_410})",
        f"  lost tickets                   {v.lost_tickets}"
        + (f"  (unresolved, run not drained: {v.unresolved})" if v.unresolved else ""),
        f"  max concurrent at origin       {v.max_concurrent_at_origin} vs max_active "
        f"{peak_limit} (settings over the run: {limits}); over-admissions {v.over_admissions}",
        f"  admissions per tick            largest {v.largest_batch} (limit then "
        f"{v.largest_batch_limit}), mean {v.mean_batch:.1f} over {v.batches} ticks; "
        f"{v.admissions_per_second:.1f}/s overall",
        f"  fairness (Kendall tau)         join number vs admission tick {v.kendall_tau_number:.4f}"
        f" (tau-b {v.kendall_tau_b_number:.4f}, lowered by same-tick ties); "
        f"join time vs admission tick {v.kendall_tau_join_time:.4f}; "
        f"largest displacement {v.largest_displacement} places",
        f"  time in queue                  p50 {_fmt(v.queue_p50)}, p90 {_fmt(v.queue_p90)}, "
        f"max {_fmt(v.queue_max)}",
        f"  errors                         5xx {v.server_errors}, transport "
        f"{v.transport_errors}, all {sum(v.errors.values())}",
    ]
    if v.accuracy is not None:
        lines += _accuracy_lines(v.accuracy)
    for name, n in list(v.errors.items())[:10]:
        lines.append(f"      {n:>6}  {name}")
    for f in v.failures:
        lines.append(f"  BROKEN PROMISE: {f}")
    for u in v.unchecked:
        lines.append(f"  NOT CHECKED: {u}")
    return "\n".join(lines)


def _share(x: float | None, target: float | None = None) -> str:
    if x is None:
        return "not measured"
    shown = f"{x:.0%}"
    if target is not None:
        shown += f" (target >= {target:.0%}: {'met' if x >= target else 'missed'})"
    return shown


def _accuracy_lines(a: Accuracy) -> list[str]:
    ratio = (
        "n/a"
        if a.eta_ratio_p50 is None
        else f"ETA / real wait p50 {a.eta_ratio_p50:.2f}x, p10 {a.eta_ratio_p10:.2f}x, "
        f"p90 {a.eta_ratio_p90:.2f}x"
    )
    err = (
        ""
        if a.estimate_error_p50 is None
        else (f"; error p50 {a.estimate_error_p50:.0%}, p90 {a.estimate_error_p90:.0%}")
    )
    return [
        f"  position at join within +-25 % {_share(a.estimate_within, ESTIMATE_TARGET)} of "
        f"{a.estimate_checked}{err}",
        f"      baseline                   {BASELINE_ESTIMATE}",
        f"  join to exact position         p50 {_fmt(a.to_exact_p50)}, p90 {_fmt(a.to_exact_p90)}",
        f"      baseline                   {BASELINE_TO_EXACT}",
        f"  ETA at first exact, +-25 %     {_share(a.eta_within, ETA_TARGET)} of "
        f"{a.eta_checked}; {ratio}",
        f"      baseline                   {BASELINE_ETA}",
        f"      without a max_active change {_share(a.eta_steady_within)} of "
        f"{a.eta_steady_checked}",
    ]


def render_html(v: Verdict, series: Mapping[str, Series]) -> str:
    queue = {k: s for k, s in series.items() if k.startswith(("waiting", "admitted"))}
    active = {k: s for k, s in series.items() if k.startswith(("active", "max_active"))}
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>waitingroom load test: {v.outcome}</title></head>"
        "<body style='font-family:sans-serif'>\n"
        f"<pre>{html.escape(render_text(v))}</pre>\n"
        f"{svg_chart('waiting and admitted', queue)}\n"
        f"{svg_chart('active sessions vs max_active', active)}\n"
        "</body></html>\n"
    )


def load_records(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


def write_report(v: Verdict, records: Sequence[Record], out_dir: Path) -> str:
    """verdict.txt, verdict.json and chart.html under out_dir; returns the text."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = render_text(v)
    (out_dir / "verdict.txt").write_text(text + "\n")
    data = asdict(v)
    data["passed"] = v.passed
    data["outcome"] = v.outcome
    (out_dir / "verdict.json").write_text(json.dumps(data, indent=2) + "\n")
    (out_dir / "chart.html").write_text(render_html(v, timeline(records)))
    return text


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The verdict of a load-test run")
    p.add_argument("records", type=Path, help="the run's records (JSON lines)")
    p.add_argument("--out", type=Path, help="directory for verdict.txt/json and chart.html")
    p.add_argument("--drained", action="store_true", help="the room was empty at the end")
    p.add_argument("--lag", type=float, default=DEFAULT_LAG_SECONDS)
    args = p.parse_args(argv)
    records = load_records(args.records)
    v = analyse(records, drained=args.drained, lag=args.lag)
    text = write_report(v, records, args.out or args.records.parent)
    sys.stdout.write(text + "\n")
    return 0 if v.passed else 1


if __name__ == "__main__":
    sys.exit(main())

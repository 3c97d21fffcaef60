"""The quota model behind `make bench` section g: the target scale against AWS's default quotas.

Pure and deterministic (no network, no clock): the same load is worked out for two designs,
BEFORE (every poll is browser -> API Gateway -> Lambda -> the container's cached state, with the
polling intervals the service used until the edge answered waiting visitors) and AFTER (the edge
answers `/state` and `/slots`, the back end sees the join, the pickup, the complete and the
edge's misses; intervals from `waitingroom.domain`). Request rates come from summing or walking
the poll schedules over the queue, not from typed-in figures; quotas and prices are those of
../shared/FACTS.md.

Three scenarios: a burst (20,000 joins/s until 1,000,000 wait), a steady queue of 1,000,000,
and a scheduled opening with 1,000,000 in the pre-queue (simulated second by second over the
minutes around it, with each visitor's own offset in the opening's spread).
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from waitingroom import page
from waitingroom.domain import (
    COALESCE_SECONDS,
    PREQUEUE_PER_SECOND,
    RECENT_SLOTS,
    SETTLE_DELAY_SECONDS,
    eta_seconds,
    ledger_shards_for,
    poll_after_seconds,
    prequeue_poll_seconds,
)

# -- default quotas, per account and region unless said (../shared/FACTS.md) ---------------------
CLOUDFRONT_RPS = 250_000  # per distribution
API_GATEWAY_RPS = 10_000  # HTTP, REST and WebSocket APIs together
LAMBDA_CONCURRENCY = 1_000
LAMBDA_RPS_PER_ENVIRONMENT = 10  # invocations/s are capped at 10 x concurrency
LAMBDA_SCALE_STEP = 1_000  # execution environments added per 10 s, per function
DDB_KEY_WCU = 1_000  # per partition
DDB_KEY_RCU = 3_000
DDB_NEW_TABLE_WCU = 4_000  # a new on-demand table, instantly
DDB_NEW_TABLE_RCU = 12_000
DDB_TABLE_MAX = 40_000  # per table, read and write units each

# -- list prices, us-east-1 (../shared/FACTS.md; data transfer from the vendors' pages) ------------
CLOUDFRONT_PER_MILLION = 1.00
CLOUDFRONT_PER_GB = 0.085  # first 10 TB/month, North America and Europe (not in FACTS.md)
INTERNET_PER_GB = 0.09  # data out of a region without CloudFront, first 10 TB/month
HTTP_API_PER_MILLION = 1.00
LAMBDA_PER_MILLION = 0.20
LAMBDA_GB_SECOND = 0.0000133334  # arm64
DDB_PER_MILLION_WRU = 0.625
DDB_PER_MILLION_RRU = 0.125

# DynamoDB units per visitor measured by section d (botocore hooks, 1,200 visitors): join 1 WRU;
# admission 1.02 WRU (the ticket put, the tick's state); pickup 1.015 RRU (strongly consistent
# ticket read) + one 2-item transaction (4 WRU); complete 1 RRU + 4 WRU; a waiting poll served
# from the container's caches 0.0012 reads.
JOIN_WRU, ADMIT_WRU, PICKUP_WRU, COMPLETE_WRU = 1.0, 1.02, 4.0, 4.0
PICKUP_RRU, COMPLETE_RRU, CACHED_POLL_RRU = 1.015, 1.0, 0.0012
# a ~600 B item read eventually consistently costs half a unit
SMALL_ITEM_RRU = 0.5
# an API container reads STATE once per max-age, and once more 0.3 s past a settle the drainer is
# late with (domain.JOIN_OVERDUE_*): at worst twice
STATE_READS_AT_WORST = 2.0

# A client's wait is spread by x(0.8 + 0.4 u) (CLIENTS.md §4): its mean look rate is
# E[1 / (0.8 + 0.4 u)] = ln(1.5) / 0.4 times that of the unspread interval.
JITTER_RATE = math.log(1.5) / 0.4
RESPONSE_HEADER_BYTES = 400  # status line and headers of a small JSON answer, approximately
CLOUDFRONT_COMPRESS_BYTES = 1_000  # CloudFront compresses answers from this size (Compress: true)


@dataclass(frozen=True)
class Scale:
    """The target and the assumptions it is judged under; every figure can be changed."""

    join_rate: int = 20_000  # joins/s during the burst
    waiting: int = 1_000_000
    prequeue: int = 1_000_000
    prequeue_fill_seconds: int = 3_600  # the pre-queue filled over an hour: 3,600 slots
    # admissions: a room with max_active 600,000 and 600 s sessions admits ~1,000/s once full
    max_active: int = 600_000
    session_seconds: int = 600
    pickup_seconds: int = 120
    slot_seconds: int = 1
    shards: int = 32
    tick_seconds: float = 5.0
    # CloudFront: 13 regional edge caches between the edge locations and the origin (AWS's
    # "Points of presence" whitepaper); with Origin Shield, one cache in front of the origin
    regional_caches: int = 13
    origin_shield: bool = False
    edge_age_seconds: float = 1.0  # the state's max-age at the edge (and in API containers)
    # warm Lambda durations (ms, billed per 1 ms) from BENCHMARKS.md section a on this VM: a
    # waiting status ~1 ms (the bare hello's 666-906 µs x 1.0-1.27), join 3.5-4.9 ms and an
    # admitted status 3.7 ms with DynamoDB Local; the public documents are served like a
    # waiting status, a complete like a pickup
    poll_ms: float = 1.0
    join_ms: float = 5.0
    pickup_ms: float = 4.0
    memory_gb: float = 0.5
    # the opening's spread: the domain's PREQUEUE_PER_SECOND visitors per second of it, unless
    # set here (to weigh another value without changing the service)
    spread_per_second: int | None = None
    opening_reps: int = 20_000  # visitors simulated at an opening, each standing for many
    seed: int = 1

    @property
    def admit_rate(self) -> float:
        return self.max_active / self.session_seconds

    @property
    def caches(self) -> int:
        """Caches that each fetch a public document from the origin once per max-age."""
        return 1 if self.origin_shield else self.regional_caches

    @property
    def batch(self) -> int:
        """Admissions per tick."""
        return max(1, round(self.admit_rate * self.tick_seconds))

    @property
    def settle_seconds(self) -> float:
        """Mean time from a join until its slot's counts are public: the rest of the slot, the
        settle delay, half a tick, half the state's max-age."""
        return (
            self.slot_seconds / 2
            + SETTLE_DELAY_SECONDS
            + self.tick_seconds / 2
            + self.edge_age_seconds / 2
        )


# -- poll schedules --------------------------------------------------------------------------


def old_poll_seconds(position: int, eta: int | None) -> float:
    """The interval a waiting poll asked for before the edge answered waiting visitors."""
    if position <= 0:
        return 1
    if eta is None:
        return 5
    return max(2, min(15, eta // 10))


def old_prequeue_poll_seconds(until_open: float) -> float:
    """The old pre-queue interval: every 2 s in the last 30 s before opening and after it."""
    until = max(0, math.ceil(until_open))
    return max(2, min(15, until // 10)) if until else 2


Interval = Callable[[int, int], float]  # (position, eta) -> seconds until the next look


def before_interval(scale: Scale) -> Interval:
    return lambda position, eta: old_poll_seconds(position, eta)


def after_interval(scale: Scale) -> Interval:
    return lambda position, eta: poll_after_seconds(position, eta, scale.pickup_seconds)


def unsettled_interval(interval: Interval) -> Interval:
    """Not settled yet: look again within 1-3 s (the estimate's own interval, capped)."""
    return lambda position, eta: max(1, min(interval(position, eta), 3))


def looks_per_second(waiting: int, rate: float, interval: Interval, spread: float = 1.0) -> float:
    """Looks/s of a queue of `waiting` settled visitors at positions 1..waiting, admitted at
    `rate`: each looks every interval(position, eta); summed by eta, which decides the
    interval."""
    total, done, eta = 0.0, 0, 1
    while done < waiting:
        upto = min(waiting, math.floor(eta * rate))
        if upto > done:
            total += (upto - done) / interval(done + 1, eta)
            done = upto
        eta += 1
    return total * spread


def looks_in_wait(wait_seconds: float, rate: float, interval: Interval) -> int:
    """How many times a visitor with `wait_seconds` to go looks at its place, the look that
    finds its turn included (no spread: each look waits exactly what it was told)."""
    t, n = 0.0, 0
    while True:
        n += 1
        position = math.ceil((wait_seconds - t) * rate)
        if position <= 0:
            return n
        t += interval(position, eta_seconds(position, rate, rate) or 1)


def mean_looks(scale: Scale, interval: Interval, points: int = 200) -> float:
    """Settled looks per visitor, averaged over a queue of `scale.waiting` (waits uniform)."""
    span = scale.waiting / scale.admit_rate
    walks = [
        looks_in_wait(span * (i + 0.5) / points, scale.admit_rate, interval) for i in range(points)
    ]
    return sum(walks) / points


def pickups_per_second(batch: int, rate: float, interval: Interval, spread: float) -> float:
    """Peak pickups/s after a tick admits `batch`: each admitted visitor picks its token up at
    its next look, due within the interval its last position asked for."""
    return min(float(batch), looks_per_second(batch, rate, interval, spread))


# -- Lambda and DynamoDB -------------------------------------------------------------------------


def concurrency(calls: dict[str, float], durations_ms: dict[str, float]) -> float:
    """Concurrent executions for `calls` per second: the work in flight, and never less than a
    tenth of the invocation rate (Lambda's 10 requests/s per execution environment)."""
    busy = sum(n * durations_ms[k] / 1000 for k, n in calls.items())
    return max(busy, sum(calls.values()) / LAMBDA_RPS_PER_ENVIRONMENT)


def distinct_readers(readers: float, requests: float) -> float:
    """Expected distinct caches (or containers) among `readers` that `requests` spread
    uniformly reach: each reads a document once."""
    if readers <= 0:
        return 0.0
    return readers * (1 - math.exp(-requests / readers))


def counter_key_peak(scale: Scale, seconds: int = 50) -> int:
    """Peak writes/s on one join counter (room, slot, shard): joins pick a shard at random."""
    rng = random.Random(scale.seed)
    peak = 0
    for _ in range(seconds):
        per = Counter(rng.randrange(scale.shards) for _ in range(scale.join_rate))
        peak = max(peak, max(per.values()))
    return peak


# -- one design in one scenario --------------------------------------------------------------------


@dataclass
class Load:
    """Requests and units per second at a scenario's peak, for one design."""

    edge: float = 0.0  # at CloudFront (0: no CloudFront in front)
    api: float = 0.0  # at API Gateway, or at the Lambda function URL
    calls: dict[str, float] = field(default_factory=dict)  # Lambda invocations/s by kind
    concurrency: float = 0.0
    state_misses: float = 0.0  # /state fetched by the edge from the origin, per second
    slot_misses: float = 0.0
    counter_key_wcu: float = 0.0
    ledger_key_wcu: float = 0.0
    state_key_rcu: float = 0.0  # the room's partition key: its STATE and CONFIG items
    slots_key_rcu: float = 0.0  # the settled slots' shared partition key
    table_wcu: float = 0.0
    table_rcu: float = 0.0

    @property
    def invocations(self) -> float:
        return sum(self.calls.values())


def durations(scale: Scale) -> dict[str, float]:
    return {
        "page": scale.poll_ms,
        "poll": scale.poll_ms,
        "doc": scale.poll_ms,
        "join": scale.join_ms,
        "pickup": scale.pickup_ms,
        "complete": scale.pickup_ms,
    }


def page_files() -> dict[str, bytes]:
    """The waiting page and the files a visitor loads with it, as served (waitingroom.page)."""
    return page.visitor_files()


def finish(load: Load, scale: Scale, *, before: bool, slot_readers: float) -> Load:
    """Lambda concurrency from the calls; DynamoDB from the containers and the calls.

    Each container reads STATE once per max-age (after: once more past a late settle, at
    worst) and CONFIG every 2 s; `slot_readers` containers read a newly settled slot item per
    second (all slots share one partition key)."""
    load.api = load.invocations
    load.concurrency = concurrency(load.calls, durations(scale))
    containers = load.concurrency
    reads = 1.0 if before else STATE_READS_AT_WORST
    config_rcu = containers / 2 * SMALL_ITEM_RRU  # the same partition key as STATE
    load.state_key_rcu = containers * reads / scale.edge_age_seconds * SMALL_ITEM_RRU + config_rcu
    load.slots_key_rcu = slot_readers * SMALL_ITEM_RRU
    calls = load.calls
    polls = calls.get("poll", 0.0) if before else 0.0
    admit = scale.admit_rate
    load.table_wcu = (
        calls.get("join", 0.0) * JOIN_WRU
        + admit * ADMIT_WRU
        + calls.get("pickup", 0.0) * PICKUP_WRU
        + calls.get("complete", 0.0) * COMPLETE_WRU
    )
    load.table_rcu = (
        load.state_key_rcu
        + load.slots_key_rcu
        + calls.get("pickup", 0.0) * PICKUP_RRU
        + calls.get("complete", 0.0) * COMPLETE_RRU
        + polls * CACHED_POLL_RRU
    )
    batch_shards = ledger_shards_for(round(admit * COALESCE_SECONDS))
    # a pickup's transaction writes its batch's ledger shard: 2 units (transactional)
    load.ledger_key_wcu = calls.get("pickup", 0.0) / batch_shards * 2
    return load


def queue_load(scale: Scale, *, before: bool, waiting: int, join_rate: float) -> Load:
    """A queue of `waiting` settled visitors, `join_rate` new ones a second, admissions at the
    room's rate: the burst's last second (join_rate > 0) or a steady queue (join_rate 0)."""
    rate = scale.admit_rate
    interval = before_interval(scale) if before else after_interval(scale)
    spread = 1.0 if before else JITTER_RATE
    eta = eta_seconds(waiting, rate, rate) or 1
    unsettled = join_rate * scale.settle_seconds / unsettled_interval(interval)(waiting, eta)
    settled = looks_per_second(waiting, rate, interval, spread)
    pickups = pickups_per_second(scale.batch, rate, interval, spread)
    assets = len(page_files())  # the page and its assets, loaded once per visitor
    if before:  # every request reaches the API; no CloudFront in front
        calls = {
            "page": join_rate * assets,
            "join": join_rate,
            "poll": unsettled + settled,
            "pickup": pickups,
            "complete": rate,
        }
        # a new slot settles each second of joins: its visitors' first settled polls reach
        # that many distinct containers, each reading the slot item once
        containers = concurrency(calls, durations(scale))
        readers = distinct_readers(containers, join_rate * scale.slot_seconds) if join_rate else 0
        return finish(Load(calls=calls), scale, before=True, slot_readers=readers)
    state_misses = scale.caches / scale.edge_age_seconds
    slot_misses = scale.caches / scale.slot_seconds if join_rate else 0.0
    calls = {
        "join": join_rate,
        "doc": state_misses + slot_misses,
        "pickup": pickups,
        "complete": rate,
    }
    load = Load(calls=calls, state_misses=state_misses, slot_misses=slot_misses)
    # at the edge: page and assets, joins, looks at the state, each joiner's slot once, pickups
    load.edge = join_rate * assets + join_rate + unsettled + settled + join_rate + pickups
    return finish(load, scale, before=False, slot_readers=slot_misses)


# -- the opening ---------------------------------------------------------------------------------


@dataclass
class Opening:
    """A scheduled opening, second by second from `start` (seconds from the opening)."""

    start: int
    looks: list[float]  # requests/s at the first hop (the edge after; the API before)
    slots: list[float]  # slot documents fetched (after)
    pickups: list[float]
    load: Load = field(default_factory=Load)

    def at(self, t: int) -> float:
        return (
            self.looks[t - self.start] + self.slots[t - self.start] + self.pickups[t - self.start]
        )

    def peak(self, lo: int, hi: int) -> float:
        return max(self.at(t) for t in range(lo, hi))

    def mean(self, lo: int, hi: int) -> float:
        return sum(self.at(t) for t in range(lo, hi)) / (hi - lo)


def opening(scale: Scale, *, before: bool, start: int = -300, end: int = 90) -> Opening:
    """Simulate `scale.opening_reps` visitors of the pre-queue, each standing for
    prequeue / reps, from `start` to `end` seconds around the opening.

    The last pre-queue slot closes at the opening and settles SETTLE_DELAY later; the drainer
    draws at its next tick (half a tick later, on average) and starts admitting `batch` a
    tick; clients see each state one max-age later. Before the draw is visible a visitor
    looks per the pre-queue schedule; after it, it looks per its position, picking its token up
    at the first look that finds its turn. After, its slot document was fetched when the slot
    settled, during the pre-queue's fill, so the opening costs it one request a look."""
    rng = random.Random(scale.seed)
    n = scale.opening_reps
    weight = scale.prequeue / n
    draw_at = SETTLE_DELAY_SECONDS + scale.tick_seconds / 2
    visible = draw_at + scale.edge_age_seconds
    rate = scale.admit_rate
    # prequeue_poll_seconds takes the spread from the pre-queue's size alone
    sized = scale.prequeue
    if scale.spread_per_second:
        sized = round(scale.prequeue * PREQUEUE_PER_SECOND / scale.spread_per_second)
    bins = end - start
    looks, slots, pickups = [0.0] * bins, [0.0] * bins, [0.0] * bins

    def consumed(t: float) -> int:
        """Ranks admitted as clients see them at t: a batch per tick from the draw."""
        if t < visible:
            return 0
        return scale.batch * (1 + math.floor((t - visible) / scale.tick_seconds))

    def add(series: list[float], t: float) -> None:
        i = math.floor(t) - start
        if 0 <= i < bins:
            series[i] += weight

    for i in range(n):
        u = (i + 0.5) / n  # the visitor's own offset in the opening's spread
        rank = rng.randrange(scale.prequeue)
        t = start - rng.uniform(0, 60)  # its looks are under way at a random phase
        while t < end:
            if t < visible:
                add(looks, t)
                if before:
                    wait = old_prequeue_poll_seconds(-t)
                else:
                    wait = prequeue_poll_seconds(-t, sized, scale.slot_seconds, u)
            else:
                position = rank - consumed(t) + 1
                if position <= 0:
                    # after, the look that finds the turn, then the pickup; before, the poll
                    # itself carries the token
                    if not before:
                        add(looks, t)
                    add(pickups, t)
                    break
                add(looks, t)
                eta = eta_seconds(position, rate, rate) or 1
                wait = (old_poll_seconds if before else after_interval(scale))(position, eta)
            if not before:
                wait *= 0.8 + 0.4 * rng.random()
            t += wait
    result = Opening(start, looks, slots, pickups)
    # the back end in the busiest second once the draw is visible
    peak_t = max(range(math.ceil(visible), end), key=result.at)
    j = peak_t - start
    slot_count = scale.prequeue_fill_seconds // scale.slot_seconds
    per_slot = scale.prequeue / slot_count
    if before:
        calls = {"poll": looks[j], "pickup": pickups[j], "complete": 0.0}
        containers = concurrency(calls, durations(scale))
        # the old pre-queue polled every 2 s around the opening: the busiest second after the
        # draw is mostly first polls, each container reading the slot of each visitor it
        # serves once
        readers = slot_count * distinct_readers(containers, looks[j] / slot_count)
        result.load = finish(Load(calls=calls), scale, before=True, slot_readers=readers)
        return result
    # after: each cache fetches each slot once, most of them in the spread's first second; the
    # state once per max-age per cache
    share = max(slots) / scale.prequeue
    slot_misses = slot_count * distinct_readers(scale.caches, per_slot * share)
    state_misses = scale.caches / scale.edge_age_seconds
    calls = {"doc": state_misses + slot_misses, "pickup": max(pickups), "complete": 0.0}
    load = Load(calls=calls, state_misses=state_misses, slot_misses=slot_misses)
    load.edge = result.peak(-60, end)
    result.load = finish(load, scale, before=False, slot_readers=slot_misses)
    return result


# -- the whole model ------------------------------------------------------------------------------


@dataclass
class Cost:
    edge_requests: float = 0.0
    edge_bytes: float = 0.0
    api_requests: float = 0.0
    lambda_gb_s: float = 0.0
    wru: float = 0.0
    rru: float = 0.0
    direct_bytes: float = 0.0  # answered from the region without CloudFront

    def dollars(self, *, function_url: bool = False) -> dict[str, float]:
        return {
            "CloudFront requests": self.edge_requests / 1e6 * CLOUDFRONT_PER_MILLION,
            "CloudFront data out": self.edge_bytes / 1e9 * CLOUDFRONT_PER_GB,
            "data out of the region": self.direct_bytes / 1e9 * INTERNET_PER_GB,
            "API Gateway (HTTP API)": 0.0
            if function_url
            else self.api_requests / 1e6 * HTTP_API_PER_MILLION,
            "Lambda requests": self.api_requests / 1e6 * LAMBDA_PER_MILLION,
            "Lambda compute": self.lambda_gb_s * LAMBDA_GB_SECOND,
            "DynamoDB writes": self.wru / 1e6 * DDB_PER_MILLION_WRU,
            "DynamoDB reads": self.rru / 1e6 * DDB_PER_MILLION_RRU,
        }


def state_document_bytes(scale: Scale | None = None) -> int:
    """A room state as CLIENTS.md §2 shows it, with a million-visitor room's numbers; with a
    `scale`, as it is now: the unsettled counts and the newest settled slots' counts too."""
    doc: dict[str, Any] = {
        "room": "launch", "version": 182_245, "status": "open", "slot_seconds": 1,
        "settled_through": 1_764_505_234, "settled_total": 1_000_000, "consumed": 123_456,
        "waiting": 876_544, "join_rate_per_slot": 19_876.5, "admit_rate": 1_000.1,
        "expected_rate": 1_000.0, "pickup_seconds": 120, "opens_at": 1_764_500_000.0,
        "opens_slot": 1_764_500_000, "prequeue_size": 1_000_000,
        "draw_seed": "3f9a0c1e5b7d2f4a6c8e0b1d3f5a7c9e", "closed_slot": None,
        "updated_at": 1_764_505_237.1,
    }  # fmt: skip
    if scale is not None:
        per_slot = round(scale.join_rate * scale.slot_seconds)
        rng = random.Random(1)  # shards' counts differ a little, as Poisson counts do
        mean = per_slot // scale.shards
        doc["shards"] = scale.shards
        doc["unsettled_counts"] = [per_slot] * 3
        doc["recent_slots"] = [
            {
                "slot": 1_764_505_230 + i,
                "counts": [round(rng.gauss(mean, math.sqrt(mean))) for _ in range(scale.shards)],
                "tickets_before": 999_999,
            }
            for i in range(RECENT_SLOTS)
        ]
    raw = json.dumps(doc).encode()
    if len(raw) >= CLOUDFRONT_COMPRESS_BYTES:  # browsers accept gzip; CloudFront compresses
        raw = gzip.compress(raw)
    return len(raw) + RESPONSE_HEADER_BYTES


def slot_document_bytes(scale: Scale, per_slot: int) -> int:
    counts = [per_slot // scale.shards + 1] * scale.shards
    doc = {"room": "launch", "slot": 1_764_505_230, "counts": counts,
           "tickets_before": 999_999, "total": per_slot}  # fmt: skip
    return len(json.dumps(doc)) + RESPONSE_HEADER_BYTES


def cost_per_million(scale: Scale, *, before: bool) -> tuple[Cost, dict[str, float]]:
    """Cost of 1,000,000 visitors who each join, wait their turn in a queue of 1,000,000
    (waits spread evenly over waiting / rate seconds), pick up, and complete; and the
    requests each one makes."""
    visitors = 1_000_000
    rate = scale.admit_rate
    interval = before_interval(scale) if before else after_interval(scale)
    files = page_files()
    page_requests = len(files)
    page_bytes = sum(len(gzip.compress(b)) + RESPONSE_HEADER_BYTES for b in files.values())
    eta = eta_seconds(scale.waiting, rate, rate) or 1
    unsettled = scale.settle_seconds / unsettled_interval(interval)(scale.waiting, eta)
    looks = mean_looks(scale, interval) * (1.0 if before else JITTER_RATE)
    per = {
        "page and assets": float(page_requests),
        "join": 1.0,
        "looks before the slot settles": unsettled,
        "looks at the place": looks,
        "slot document": 0.0 if before else 1.0,
        "pickup": 0.0 if before else 1.0,  # before, the last look carries the token
        "complete": 1.0,
    }
    event_seconds = scale.waiting / scale.join_rate + scale.waiting / rate
    c = Cost()
    c.wru = visitors * (JOIN_WRU + ADMIT_WRU + PICKUP_WRU + COMPLETE_WRU)
    c.rru = visitors * (PICKUP_RRU + COMPLETE_RRU)
    small = state_document_bytes(None if before else scale)
    ms = durations(scale)
    if before:
        polls = per["looks before the slot settles"] + per["looks at the place"]
        c.api_requests = visitors * sum(per.values())
        c.direct_bytes = visitors * (page_bytes + (polls + 2) * small)
        c.lambda_gb_s = (
            visitors
            * (
                (page_requests + polls) * math.ceil(ms["poll"])
                + math.ceil(ms["join"])
                + math.ceil(ms["complete"])
            )
            / 1000
            * scale.memory_gb
        )
        c.rru += visitors * polls * CACHED_POLL_RRU
        steady = queue_load(scale, before=True, waiting=scale.waiting, join_rate=0)
    else:
        edge = sum(v for k, v in per.items() if k != "complete")
        c.edge_requests = visitors * edge
        slot_bytes = slot_document_bytes(scale, round(scale.join_rate * scale.slot_seconds))
        c.edge_bytes = visitors * (
            page_bytes
            + (per["looks before the slot settles"] + per["looks at the place"]) * small
            + slot_bytes
            + 2 * small
        )
        misses = (scale.caches / scale.edge_age_seconds) * event_seconds + scale.caches * (
            scale.waiting / scale.join_rate / scale.slot_seconds
        )
        c.api_requests = visitors * (per["join"] + per["pickup"] + per["complete"]) + misses
        c.lambda_gb_s = (
            (
                visitors
                * (math.ceil(ms["join"]) + math.ceil(ms["pickup"]) + math.ceil(ms["complete"]))
                + misses * math.ceil(ms["doc"])
            )
            / 1000
            * scale.memory_gb
        )
        steady = queue_load(scale, before=False, waiting=scale.waiting, join_rate=0)
    # containers read STATE every max-age and CONFIG every 2 s for the whole event
    c.rru += (
        steady.concurrency * (1 / scale.edge_age_seconds + 0.5) * SMALL_ITEM_RRU * event_seconds
    )
    return c, per


@dataclass
class Model:
    scale: Scale
    burst: tuple[Load, Load]  # (before, after)
    steady: tuple[Load, Load]
    steady_small: tuple[Load, Load]  # a tenth of the queue
    opening: tuple[Opening, Opening]
    counter_key_wcu: int
    looks_10_min: tuple[int, int]
    cost: tuple[tuple[Cost, dict[str, float]], tuple[Cost, dict[str, float]]]


def build(scale: Scale | None = None) -> Model:
    s = scale or Scale()
    counter = counter_key_peak(s)

    def pair(waiting: int, join_rate: int) -> tuple[Load, Load]:
        b, a = (
            queue_load(s, before=x, waiting=waiting, join_rate=join_rate) for x in (True, False)
        )
        if join_rate:
            b.counter_key_wcu = a.counter_key_wcu = counter
        return b, a

    ten_minutes = 600.0
    return Model(
        scale=s,
        burst=pair(s.waiting, s.join_rate),
        steady=pair(s.waiting, 0),
        steady_small=pair(s.waiting // 10, 0),
        opening=(opening(s, before=True), opening(s, before=False)),
        counter_key_wcu=counter,
        looks_10_min=(
            looks_in_wait(ten_minutes, s.admit_rate, before_interval(s)),
            looks_in_wait(ten_minutes, s.admit_rate, after_interval(s)),
        ),
        cost=(cost_per_million(s, before=True), cost_per_million(s, before=False)),
    )


def lambda_ramp_seconds(need: float) -> float:
    """From cold to `need` environments at +1,000 per 10 s (the first 1,000 at once)."""
    return max(0, math.ceil(need / LAMBDA_SCALE_STEP) - 1) * 10.0


def slower(scale: Scale, rate: float) -> Scale:
    """The same room admitting `rate`/s (600 s sessions: max_active = rate x 600)."""
    return replace(scale, max_active=round(rate * scale.session_seconds))


# -- the section's report --------------------------------------------------------------------------


def nice(x: float) -> int:
    """`x` rounded up to two significant digits (a figure to ask a quota for)."""
    if x <= 0:
        return 0
    step = 10 ** max(0, math.floor(math.log10(x)) - 1)
    return int(math.ceil(x / step) * step)


def need(value: float, quota: float, *, headroom: float = 1.25) -> str:
    return "fits" if value <= quota else f"raise to {nice(value * headroom):,}"


def api_need(value: float) -> str:
    """The template routes the API through a Lambda function URL (no request quota of its
    own); an HTTP API in front would need the raise."""
    return "fits" if value <= API_GATEWAY_RPS else f"HTTP API: raise to {nice(value * 1.25):,}"


def table_need(value: float, instant: float) -> str:
    if value <= instant:
        return "fits"
    if value <= DDB_TABLE_MAX:
        return f"warm {math.ceil(value / 1000) * 1000:,}"
    return f"raise to {nice(value * 1.25):,}"


def key_need(value: float, limit: float) -> str:
    return "fits" if value <= limit else "hot key"


@dataclass
class Line:
    name: str
    quota: str
    values: tuple[float | None, float | None, float | None]  # before, after, after + shield
    verdicts: tuple[str, str]  # after, after + shield


def lines(before: Load, after: Load, shielded: Load) -> list[Line]:
    def line(
        label: str,
        quota: str,
        get: Callable[[Load], float],
        judge: Callable[[float], str] | None = None,
        *,
        none_before: bool = False,
    ) -> Line:
        values = (None if none_before else get(before), get(after), get(shielded))
        verdicts = (judge(get(after)), judge(get(shielded))) if judge else ("", "")
        return Line(label, quota, values, verdicts)

    def ramp(x: Load) -> float:
        return lambda_ramp_seconds(x.concurrency)

    def judge_ramp(s: float) -> str:
        return "fits" if s == 0 else f"{s:.0f} s: warm up first"

    def key(limit: int) -> Callable[[float], str]:
        return lambda v: key_need(v, limit)

    def table(new_table: int) -> Callable[[float], str]:
        return lambda v: table_need(v, new_table)

    return [
        line(
            "CloudFront req/s per distribution",
            f"{CLOUDFRONT_RPS:,}",
            lambda x: x.edge,
            lambda v: need(v, CLOUDFRONT_RPS),
            none_before=True,
        ),
        line(
            "API req/s (HTTP API; a function URL has no quota)",
            f"{API_GATEWAY_RPS:,}",
            lambda x: x.api,
            api_need,
        ),
        line(
            "  of which edge misses (/state + /slots)",
            "",
            lambda x: x.state_misses + x.slot_misses,
            none_before=True,
        ),
        line("Lambda invocations/s", "10 x conc.", lambda x: x.invocations),
        line(
            "Lambda concurrent executions",
            f"{LAMBDA_CONCURRENCY:,}",
            lambda x: x.concurrency,
            lambda v: need(v, LAMBDA_CONCURRENCY),
        ),
        line("Lambda scale-up from cold, s (+1,000 per 10 s)", "0", ramp, judge_ramp),
        line(
            "DynamoDB join counter key, writes/s",
            f"{DDB_KEY_WCU:,}",
            lambda x: x.counter_key_wcu,
            key(DDB_KEY_WCU),
        ),
        line(
            "DynamoDB ledger shard key, write units/s",
            f"{DDB_KEY_WCU:,}",
            lambda x: x.ledger_key_wcu,
            key(DDB_KEY_WCU),
        ),
        line(
            "DynamoDB room key (STATE + CONFIG), read units/s",
            f"{DDB_KEY_RCU:,}",
            lambda x: x.state_key_rcu,
            key(DDB_KEY_RCU),
        ),
        line(
            "DynamoDB settled-slots key, read units/s",
            f"{DDB_KEY_RCU:,}",
            lambda x: x.slots_key_rcu,
            key(DDB_KEY_RCU),
        ),
        line(
            "DynamoDB table, write units/s (new: 4,000)",
            f"{DDB_TABLE_MAX:,}",
            lambda x: x.table_wcu,
            table(DDB_NEW_TABLE_WCU),
        ),
        line(
            "DynamoDB table, read units/s (new: 12,000)",
            f"{DDB_TABLE_MAX:,}",
            lambda x: x.table_rcu,
            table(DDB_NEW_TABLE_RCU),
        ),
    ]


def fmt(v: float | None) -> str:
    return "none" if v is None else f"{v:,.0f}"


Say = Callable[[str], None]
Row = Callable[..., None]


def section(say: Say, row: Row, check: Row) -> Model:
    """Print section g and judge its promises; returns the model it printed."""
    s = Scale()
    m = build(s)
    shield = build(replace(s, origin_shield=True))
    say(
        f"\ng. quotas at the target scale (a model): {s.join_rate:,} joins/s, "
        f"{s.waiting:,} waiting, {s.prequeue:,} in a pre-queue; admissions "
        f"{s.admit_rate:,.0f}/s (max_active {s.max_active:,}, {s.session_seconds} s sessions), "
        f"a tick every {s.tick_seconds:.0f} s; {s.regional_caches} regional edge caches, "
        "or one with Origin Shield"
    )
    head = (
        f"  {'':<50} {'quota':>10} {'before':>10} {'after':>10} {'+ shield':>10}"
        "  verdict after / + shield"
    )
    scenarios = [
        (f"burst: {s.join_rate:,} joins/s, the second {s.waiting:,} wait", m.burst, shield.burst),
        (f"steady: {s.waiting:,} waiting, no joins", m.steady, shield.steady),
        (
            f"opening: {s.prequeue:,} in the pre-queue, the busiest second of the minute around it",
            (m.opening[0].load, m.opening[1].load),
            (shield.opening[0].load, shield.opening[1].load),
        ),
    ]
    for title, (b, a), (_, sa) in scenarios:
        say(f"\n  {title}")
        say(head)
        for ln in lines(b, a, sa):
            verdict = " / ".join(ln.verdicts) if any(ln.verdicts) else ""
            say(
                f"  {ln.name:<50} {ln.quota:>10} {fmt(ln.values[0]):>10} {fmt(ln.values[1]):>10} "
                f"{fmt(ln.values[2]):>10}  {verdict}"
            )
    b_open, a_open = m.opening
    say("\n  the opening, requests/s each second (before: at the API; after: at the edge)")
    for name, o in (("before", b_open), ("after", a_open)):
        series = " ".join(f"{o.at(t) / 1000:.0f}k" for t in range(-10, 21))
        say(f"  {name:<7} -10 s .. +20 s: {series}")

    say("\n  promises")
    edge_open = a_open.load.edge
    check(
        "after: edge peak, the minute around the opening",
        f"{edge_open:,.0f}/s",
        edge_open,
        "<",
        CLOUDFRONT_RPS,
    )
    alt = opening(replace(s, spread_per_second=50_000), before=False)
    row("  same, a spread of 50,000 visitors/s (PREQUEUE_PER_SECOND)", f"{alt.load.edge:,.0f}/s")
    before = b_open.mean(-20, 0)
    check(
        "baseline: before, API req/s in the 20 s before the opening (mean)",
        f"{before:,.0f}/s",
        before,
        "<=",
        API_GATEWAY_RPS,
    )
    check(
        "after: edge peak, the burst",
        f"{m.burst[1].edge:,.0f}/s",
        m.burst[1].edge,
        "<",
        CLOUDFRONT_RPS,
    )
    per_min = (m.steady[1].state_misses + m.steady[1].slot_misses) * 60 / s.waiting
    check(
        "after: API requests per waiting visitor per minute", f"{per_min:.4f}", per_min, "<=", 0.01
    )
    before_min = m.steady[0].calls["poll"] * 60 / s.waiting
    check(
        "baseline: the same, before (every poll reaches the API)",
        f"{before_min:.2f}",
        before_min,
        "<=",
        0.01,
    )
    ratio = m.steady[1].api / m.steady_small[1].api
    check(
        f"after: API req/s, {s.waiting:,} / {s.waiting // 10:,} waiting",
        f"{ratio:.2f}x",
        ratio,
        "<=",
        1.01,
        "x",
    )
    before_ratio = m.steady[0].api / m.steady_small[0].api
    check("baseline: the same, before", f"{before_ratio:.2f}x", before_ratio, "<=", 1.01, "x")
    before_looks, after_looks = m.looks_10_min
    check("after: looks at the place in a 10-minute wait", str(after_looks), after_looks, "<=", 25)
    check("baseline: the same, before", str(before_looks), before_looks, "<=", 25)
    check(
        "after + shield: API req/s, steady and opening (function URL)",
        f"{shield.steady[1].api:,.0f} / {shield.opening[1].load.api:,.0f}",
        max(shield.steady[1].api, shield.opening[1].load.api),
        "<=",
        API_GATEWAY_RPS,
    )
    check(
        "baseline: before, API req/s, steady and opening",
        f"{m.steady[0].api:,.0f} / {m.opening[0].load.api:,.0f}",
        max(m.steady[0].api, m.opening[0].load.api),
        "<=",
        API_GATEWAY_RPS,
    )
    wcu_key = m.counter_key_wcu
    check("after: peak writes/s on a join counter key", f"{wcu_key}", wcu_key, "<=", DDB_KEY_WCU)
    rcu_key = m.burst[1].state_key_rcu
    check(
        "after: room key (STATE + CONFIG) read units/s at the burst",
        f"{rcu_key:,.0f}",
        rcu_key,
        "<=",
        DDB_KEY_RCU,
    )
    peak_wcu = max(x.table_wcu for x in (m.burst[1], m.steady[1], a_open.load))
    check(
        "after: table write units/s at the peak", f"{peak_wcu:,.0f}", peak_wcu, "<=", DDB_TABLE_MAX
    )

    say("\n  quota raises for the target (after, with Origin Shield; 25 % headroom)")
    after_loads = [shield.burst[1], shield.steady[1], shield.opening[1].load]
    conc = max(x.concurrency for x in after_loads)
    api = max(x.api for x in after_loads)
    edge = max(x.edge for x in after_loads)
    say(f"  Lambda concurrent executions: {LAMBDA_CONCURRENCY:,} -> {nice(conc * 1.25):,}")
    say(
        f"  API Gateway (only if the API stays behind an HTTP API): {API_GATEWAY_RPS:,} -> "
        f"{nice(api * 1.25):,} req/s; none with the function URL"
    )
    if edge > CLOUDFRONT_RPS:
        say(
            f"  CloudFront requests/s per distribution: {CLOUDFRONT_RPS:,} -> "
            f"{nice(edge * 1.25):,} (the opening's {edge:,.0f}/s), or a spread of 50,000 "
            f"visitors/s at the opening ({alt.load.edge:,.0f}/s: no raise)"
        )
    else:
        say(f"  CloudFront: none ({edge:,.0f} of {CLOUDFRONT_RPS:,} req/s at the peak)")
    wcu = max(x.table_wcu for x in after_loads)
    rcu = max(x.table_rcu for x in after_loads)
    warm_w = max(DDB_NEW_TABLE_WCU, math.ceil(wcu / 1000) * 1000)
    warm_r = max(DDB_NEW_TABLE_RCU, math.ceil(rcu / 1000) * 1000)
    say(
        f"  DynamoDB WarmThroughput: WriteUnitsPerSecond {warm_w:,}, ReadUnitsPerSecond "
        f"{warm_r:,} (peaks {wcu:,.0f} / {rcu:,.0f}; table quota {DDB_TABLE_MAX:,} each)"
    )

    say("\n  cost per 1,000,000 visitors (a queue of 1,000,000, waits spread evenly)")
    (cb, per_b), (ca, per_a) = m.cost
    db, da, du = cb.dollars(), ca.dollars(), ca.dollars(function_url=True)
    say(f"  {'requests per visitor':<40} {'before':>10} {'after':>10}")
    for k in per_b:
        say(f"  {k:<40} {per_b[k]:>10.2f} {per_a[k]:>10.2f}")
    say(f"  {'per 1,000,000 visitors, USD':<40} {'before':>10} {'after':>10} {'after, URL':>10}")
    for k in db:
        say(f"  {k:<40} {db[k]:>10.2f} {da[k]:>10.2f} {du[k]:>10.2f}")
    say(
        f"  {'total':<40} {sum(db.values()):>10.2f} {sum(da.values()):>10.2f} "
        f"{sum(du.values()):>10.2f}"
    )

    slow = build(slower(s, 100))
    say("\n  the same room admitting 100/s (max_active 60,000)")
    say(
        f"  steady API req/s before / after: {slow.steady[0].api:,.0f} / "
        f"{slow.steady[1].api:,.0f}; "
        f"edge at the opening after: {slow.opening[1].load.edge:,.0f}/s; "
        f"looks in a 10-minute wait before / after: {slow.looks_10_min[0]} / {slow.looks_10_min[1]}"
    )
    return m

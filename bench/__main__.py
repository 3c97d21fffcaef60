"""`make bench` (python -m bench): the performance ratios of issue 5, each with its target.

  a. warm Lambda invokes through Mangum vs a bare FastAPI+Mangum hello
  b. cold import times vs bare FastAPI+Mangum+boto3; the authorizer imports no FastAPI
  c. guard verification vs raw jwt.decode; ES256 vs RS256 sign/verify
  d. DynamoDB operations per visitor by phase (botocore hooks, DynamoDB Local, >= 1,000 visitors)
  e. partition load at the target scale (a model replaying the store's key choices)
  f. drainer admissions/s with 10,000 waiting tickets (DynamoDB Local), count exact
  g. quotas at the target scale, before and after the edge answers waiting visitors (a model:
     bench/quota.py), the raises to ask for, WarmThroughput, the cost per 1,000,000 visitors

Figures, not timed tests: they vary with the machine; the ratios are what matter.
`python -m bench a c e` runs only some sections.
"""

from __future__ import annotations

import json
import logging
import math
import operator
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, cast

from bench.opcount import OpCounter, reads, writes
from devtools.events import rest_event

ROWS: list[tuple[str, str, str, bool | None]] = []


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def row(name: str, value: str, target: str = "", ok: bool | None = None) -> None:
    ROWS.append((name, value, target, ok))
    verdict = "" if ok is None else ("PASS" if ok else "FAIL")
    say(f"  {name:<58} {value:>16}  {target:<14} {verdict}")


COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    "=": operator.eq,
}


def number(value: float) -> str:
    """1000 -> "1,000", 1.05 -> "1.05": how a limit reads in a target."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,g}"


def check(name: str, shown: str, value: float, op: str, limit: float, unit: str = "") -> None:
    """A judged row whose printed target is the comparison it makes, so the two cannot differ."""
    row(name, shown, f"{op} {number(limit)}{unit}", COMPARISONS[op](value, limit))


def median_us(fn: Callable[[], Any], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


# -- DynamoDB Local -------------------------------------------------------------------------


class Ddb:
    def __init__(self) -> None:
        from devtools import dynamodb_local

        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        self.port = dynamodb_local.free_port()
        self.proc = dynamodb_local.start(self.port)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.n = 0

    def table(self) -> str:
        from waitingroom.settings import StoreSettings
        from waitingroom.store import make_client
        from waitingroom.table import ensure_table

        self.n += 1
        name = f"bench-{os.getpid()}-{self.n}"
        ensure_table(make_client(StoreSettings(dynamodb_endpoint=self.endpoint)), name)
        return name

    def stop(self) -> None:
        from devtools import dynamodb_local

        dynamodb_local.stop(self.proc)


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, s: float) -> None:
        self.now += s


# -- a. warm invokes ------------------------------------------------------------------------


def bench_warm_invoke(ddb: Ddb) -> None:
    say("\na. warm Lambda invoke through Mangum (REST v1 payloads, median of many)")
    from fastapi import FastAPI
    from mangum import Mangum

    from waitingroom import bootstrap, handler
    from waitingroom.drainer import Drainer
    from waitingroom.tokens import KeySet

    os.environ.update(
        WAITINGROOM_DYNAMODB_ENDPOINT=ddb.endpoint,
        WAITINGROOM_TABLE=ddb.table(),
        WAITINGROOM_TICKET_SECRET="bench-ticket-secret-0123456789",
        WAITINGROOM_ADMIN_KEY="bench-admin",
    )
    bare = FastAPI()

    @bare.get("/hello")
    def hello() -> dict[str, str]:
        return {"message": "hello"}

    bare_handler = Mangum(bare, lifespan="off")
    no_context: Any = None  # the handlers read nothing from the Lambda context
    admin = {"Authorization": "Bearer bench-admin"}

    def call(event: dict[str, Any]) -> dict[str, Any]:
        resp: dict[str, Any] = handler.handler(event, None)
        return resp

    put = rest_event("PUT", "/admin/rooms/bench", {**admin, "Content-Type": "application/json"})
    put["body"] = json.dumps({"max_active": 1})
    assert call(put)["statusCode"] in (200, 201)
    svc = cast(Any, bootstrap.lambda_api().app).state.service
    store_time = [0.0]
    started: list[float] = []

    def before(**_: Any) -> None:
        started.append(time.perf_counter())

    def after(**_: Any) -> None:
        store_time[0] += time.perf_counter() - started.pop()

    svc.store.client.meta.events.register("provide-client-params.dynamodb", before)
    svc.store.client.meta.events.register("after-call.dynamodb", after)

    def joined() -> str:
        body = json.loads(call(rest_event("POST", "/rooms/bench/join"))["body"])
        return str(body["ticket"])

    first, second = joined(), joined()
    drainer = Drainer(svc.store, lambda: KeySet.generate("bench"), issuer="waitingroom")
    admitted_ev = rest_event("GET", "/rooms/bench/status", {"Authorization": f"Bearer {first}"})
    waiting_ev = rest_event("GET", "/rooms/bench/status", {"Authorization": f"Bearer {second}"})
    for _ in range(20):  # until their slot settles; max_active 1 admits one of the two
        time.sleep(1.1)
        drainer.tick_room("bench")
        states = [json.loads(call(ev)["body"])["state"] for ev in (admitted_ev, waiting_ev)]
        if "admitted" in states:  # the poll picked the token up
            if states[1] == "admitted":
                admitted_ev, waiting_ev = waiting_ev, admitted_ev
            break
    else:
        raise RuntimeError("no visitor was admitted")
    assert json.loads(call(waiting_ev)["body"])["state"] == "waiting"
    hello_ev = rest_event("GET", "/hello")
    join_ev = rest_event("POST", "/rooms/bench/join")

    def timed(event: dict[str, Any], n: int) -> tuple[float, float, float]:
        """Interleaved with the bare hello, so machine noise hits both alike: median µs of
        hello, of the call, and of the call minus its DynamoDB client calls."""
        hello_t, total, net = [], [], []
        for _ in range(50):
            handler.handler(event, None)
            bare_handler(hello_ev, no_context)
        for _ in range(n):
            t = time.perf_counter()
            bare_handler(hello_ev, no_context)
            hello_t.append(time.perf_counter() - t)
            store_time[0] = 0.0
            t = time.perf_counter()
            handler.handler(event, None)
            dt = time.perf_counter() - t
            total.append(dt)
            net.append(dt - store_time[0])
        med = statistics.median
        return med(hello_t) * 1e6, med(total) * 1e6, med(net) * 1e6

    for name, ev, n in [
        ("status, waiting (cached state)", waiting_ev, 2000),
        ("status, admitted (reads the ticket)", admitted_ev, 800),
        ("join (one counter bump)", join_ev, 800),
    ]:
        base, total, net = timed(ev, n)
        if "waiting" in name:
            row("bare FastAPI+Mangum hello", f"{base:.0f} µs")
            check(
                f"{name}: {total:.0f} µs / hello",
                f"{total / base:.2f}x",
                total / base,
                "<=",
                1.5,
                "x",
            )
        else:
            row(f"{name} / hello, incl. DynamoDB Local", f"{total / base:.2f}x ({total:.0f} µs)")
            check(
                f"{name} / hello, w/o DynamoDB calls",
                f"{net / base:.2f}x",
                net / base,
                "<=",
                1.5,
                "x",
            )


# -- b. cold imports ------------------------------------------------------------------------


def bench_imports() -> None:
    say("\nb. cold import time (fresh interpreter, median of 7)")
    code = (
        "import sys, time; t = time.perf_counter(); import {mods}; "
        "print(time.perf_counter() - t, int('fastapi' in sys.modules))"
    )

    def measure(mods: str) -> tuple[float, bool]:
        times, fastapi = [], False
        for _ in range(7):
            out = subprocess.run(  # noqa: S603 - fixed argv
                [sys.executable, "-c", code.format(mods=mods)],
                capture_output=True,
                text=True,
                check=True,
                env={"PATH": os.environ.get("PATH", "")},
            ).stdout.split()
            times.append(float(out[0]))
            fastapi = out[1] == "1"
        return statistics.median(times) * 1000, fastapi

    base, _ = measure("fastapi, mangum, boto3")
    row("bare fastapi + mangum + boto3", f"{base:.0f} ms")
    for mod in ("waitingroom.handler", "waitingroom.drainer", "origin_guard.authorizer"):
        ms, fastapi = measure(mod)
        check(f"{mod} / bare", f"{ms / base:.2f}x ({ms:.0f} ms)", ms / base, "<=", 1.3, "x")
        if mod == "origin_guard.authorizer":
            row("origin_guard.authorizer imports fastapi", str(fastapi), "= False", not fastapi)


# -- c. tokens ------------------------------------------------------------------------------


def bench_tokens() -> None:
    say("\nc. admission tokens: guard verification and algorithms (median per operation)")
    import jwt
    from jwt.utils import base64url_decode

    from origin_guard import TokenVerifier
    from waitingroom.tokens import KeySet

    now = int(time.time())
    results: dict[str, tuple[float, float]] = {}
    for alg in ("ES256", "RS256"):
        ks = KeySet.generate(f"k-{alg}", alg)
        signer = ks.signer()

        def mint(signer: Any = signer) -> str:
            token: str = signer.mint(
                issuer="waitingroom",
                room="demo",
                ticket_id="1.2.3",
                issued_at=now,
                expires_at=now + 600,
                jti="demo.1.1.2.3",
            )
            return token

        token = mint()
        verifier = TokenVerifier(audience="demo", issuer="waitingroom", jwks=ks.jwks())
        jwk = jwt.PyJWK.from_dict(ks.jwks()["keys"][0])
        key = jwk.key
        signing_input, _, signature_b64 = token.rpartition(".")
        message, signature = signing_input.encode(), base64url_decode(signature_b64)

        def bare(message: bytes = message, jwk: Any = jwk, signature: bytes = signature) -> Any:
            """The signature check alone, on a token already split: the floor for a verify."""
            return jwk.Algorithm.verify(message, jwk.key, signature)

        def raw(token: str = token, key: Any = key, alg: str = alg) -> Any:
            return jwt.decode(token, key, algorithms=[alg], audience="demo", issuer="waitingroom")

        def guard(verifier: TokenVerifier = verifier, token: str = token) -> Any:
            return verifier.verify(token)

        guard()
        assert bare()
        sign_us = median_us(mint, 2000)
        guard_us = median_us(guard, 5000)
        bare_us = median_us(bare, 5000)
        raw_us = median_us(raw, 3000)
        results[alg] = (sign_us, guard_us)
        row(f"{alg} sign", f"{sign_us:.0f} µs")
        row(f"{alg} verify (guard: every check)", f"{guard_us:.0f} µs")
        row(f"{alg} bare signature check (Algorithm.verify)", f"{bare_us:.0f} µs")
        row(f"{alg} jwt.decode (PyJWT, for comparison)", f"{raw_us:.0f} µs")
        if alg == "ES256":
            ratio = guard_us / bare_us
            check(
                "guard verify / bare signature check (ES256)",
                f"{ratio:.2f}x",
                ratio,
                "<=",
                1.5,
                "x",
            )
        row(f"{alg} token size", f"{len(token)} B")
    es, rs = results["ES256"], results["RS256"]
    row("RS256 sign / ES256 sign (drainer: one per admission)", f"{rs[0] / es[0]:.1f}x")
    row("ES256 verify / RS256 verify (origin: one per request)", f"{es[1] / rs[1]:.1f}x")


# -- d. DynamoDB operations per visitor -----------------------------------------------------


def bench_ops(ddb: Ddb) -> dict[str, float]:
    say("\nd. DynamoDB operations per visitor by phase (botocore hooks, 1,200 visitors)")
    from waitingroom.domain import SETTLE_DELAY_SECONDS
    from waitingroom.drainer import Drainer
    from waitingroom.service import Admitted, Waiting, WaitingRoom
    from waitingroom.settings import StoreSettings
    from waitingroom.store import Store, make_client
    from waitingroom.tokens import KeySet

    clock = Clock()
    client = make_client(StoreSettings(dynamodb_endpoint=ddb.endpoint))
    ops = OpCounter()
    client.meta.events.register("provide-client-params.dynamodb", ops)
    store = Store(client, ddb.table(), clock=clock)
    svc = WaitingRoom(store, [b"bench-ticket-secret-0123456789"], issuer="waitingroom", clock=clock)
    drainer = Drainer(store, lambda: KeySet.generate("k"), issuer="waitingroom", clock=clock)
    users, admit = 1200, 200
    svc.put_room("demo", {"max_active": admit, "shards": 32})
    drainer.refresh_keys()
    ops.take()
    joined = [svc.join("demo", None) for _ in range(users)]
    join_ops = ops.take()
    clock.advance(1 + SETTLE_DELAY_SECONDS)
    drainer.tick_room("demo")
    admit_ops = ops.take()
    clock.advance(1.01)
    first = {t.ticket: svc.poll("demo", t.ticket) for t in joined}
    pickup_ops = ops.take()
    waiting = [t for t in joined if isinstance(first[t.ticket], Waiting)]
    admitted = [t for t in joined if isinstance(first[t.ticket], Admitted)]
    polls = 0
    for _ in range(5):
        for t in waiting:
            svc.poll("demo", t.ticket)
            polls += 1
        clock.advance(1.01)
    poll_ops = ops.take()
    tokens = []
    for t in admitted:
        r = svc.poll("demo", t.ticket)
        assert isinstance(r, Admitted)
        tokens.append(r.token)
    ops.take()
    for token in tokens:
        svc.complete("demo", token)
    complete_ops = ops.take()
    n = len(admitted)
    f = {
        "join writes": writes(join_ops) / users,
        "join reads": reads(join_ops) / users,
        "poll reads": reads(poll_ops) / polls,
        "admission ticket puts": admit_ops["ticket puts"] / n,
        "admission writes": writes(admit_ops) / n,
        "pickup reads": reads(pickup_ops) / n,
        "pickup writes": writes(pickup_ops) / n,
        "complete reads": reads(complete_ops) / n,
        "complete writes": writes(complete_ops) / n,
    }
    check("join: writes per visitor", f"{f['join writes']:.3f}", f["join writes"], "<=", 2)
    row("join: reads per visitor (cached config/state)", f"{f['join reads']:.3f}")
    check(
        f"waiting poll: reads per poll ({polls} polls)",
        f"{f['poll reads']:.4f}",
        f["poll reads"],
        "<=",
        0.01,
    )
    puts = f["admission ticket puts"]
    check("admission: ticket writes per admitted", f"{puts:.3f}", puts, "=", 1)
    row("admission: all writes per admitted (+ tick's state)", f"{f['admission writes']:.3f}")
    # one strongly consistent ticket read each, plus the state refreshes shared between them
    check("pickup: reads per visitor", f"{f['pickup reads']:.3f}", f["pickup reads"], "<=", 1.05)
    check(
        "pickup: writes per visitor (1 transaction)",
        f"{f['pickup writes']:.3f}",
        f["pickup writes"],
        "<=",
        1,
    )
    row(
        "complete: reads / writes per visitor",
        f"{f['complete reads']:.2f} / {f['complete writes']:.2f}",
    )
    return f


# -- e. partition-load model ----------------------------------------------------------------


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names + values (strings UTF-8, numbers ~ digits/2 + 1)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        ((kind, v),) = value.items()
        size += len(str(v).encode()) if kind == "S" else len(str(v)) // 2 + 1
    return size


def rcu(size: int, consistent: bool = False) -> float:
    units = max(1, math.ceil(size / 4096))
    return units if consistent else units / 2


def bench_partitions() -> None:
    say("\ne. partition load at the target scale (model replaying the store's keys)")
    from waitingroom.domain import PublicState, RoomConfig, ledger_shard_of, ledger_shards_for
    from waitingroom.store import counter_pk, ledger_pk, room_pk

    room, shards, rate, waiting, poll_s, containers = "launch", 32, 20_000, 1_000_000, 5, 1000
    burst_s = waiting // rate
    rng = random.Random(1)
    writes: Counter[tuple[str, int]] = Counter()  # (pk, second) -> writes
    for sec in range(burst_s):
        for _ in range(rate):
            writes[(counter_pk(room, sec, rng.randrange(shards)), sec)] += 1
    peak_counter = max(writes.values())
    # admissions at 1,000/s, ticked every 5 s: ticket puts, then pickups and completes, each a
    # write on the ticket's own (slot, shard) partition plus the batch's ledger shard
    admit_rate, tick = 1000, 5
    batch = admit_rate * tick
    lshards = ledger_shards_for(batch)
    adm: Counter[str] = Counter()
    ledger: Counter[str] = Counter()
    order = [(sl, s) for sl in range(2) for s in range(shards)]
    for i in range(batch):
        sl, s = order[i % len(order)]
        adm[counter_pk(room, sl, s)] += 3  # put at admission, pickup, complete
        ledger[ledger_pk(room, 1, ledger_shard_of(f"{sl}.{s}.{i}", lshards))] += 2
    peak_ticket_pk = max(adm.values()) / tick
    peak_ledger = max(ledger.values()) / tick
    # reads: per container, STATE once per state_cache_seconds (1 s), CONFIG every 2 s,
    # each settled slot once (first poll of that slot's visitors after it settled)
    st = PublicState(
        version=123456,
        settled_through=10**10,
        settled_total=waiting,
        consumed=123_456,
        materialized=123_456,
        active=50_000,
        admit_rate=1000.123,
        join_rate_per_slot=19876.54,
        admitted_total=123_456,
        completed_total=100_000,
        reclaimed_total=5_000,
        expired_total=1_000,
        updated_at=time.time(),
    )
    state_item = {
        "pk": {"S": room_pk(room)},
        "sk": {"S": "STATE"},
        "version": {"N": "123456"},
        "data": {"S": json.dumps({k: v for k, v in asdict(st).items() if k != "version"})},
    }
    cfg = RoomConfig(room=room, max_active=50_000, origin_url="https://shop.example.com/")
    config_item = {
        k: {"S" if isinstance(v, str) else "N": str(v)} for k, v in asdict(cfg).items() if v
    }
    slot_counts = ",".join(str(rate // shards + 30) for _ in range(shards))
    slot_item = {
        "pk": {"S": f"ROOM#{room}#SLOTS"},
        "sk": {"S": "S#000000000001"},
        "counts": {"S": slot_counts},
        "cum_before": {"N": "999999"},
        "expires_at": {"N": "1999999999"},
    }
    state_rcu = containers * 1 * rcu(item_size(state_item))
    config_rcu = containers / 2 * rcu(item_size(config_item))
    # a slot's 20,000 visitors poll every 5 s: 4,000 polls in the first second after it settles,
    # spread over 1,000 containers -> distinct containers reading the slot item that second
    first_second = containers * (1 - math.exp(-(rate / poll_s) / containers))
    # all settled slots share one partition key (ROOM#id#SLOTS): while slots settle one per
    # second, the newest is read by ~first_second containers, older ones by stragglers
    slots_rcu = first_second * rcu(item_size(slot_item)) * 1.25
    # pickups read the ticket (strongly consistent) on its (slot, shard) partition
    ticket_rcu = admit_rate / shards * 2 * rcu(700, consistent=True)
    peak_w = max(peak_counter, peak_ticket_pk, peak_ledger)
    peak_r = max(state_rcu, config_rcu, slots_rcu, ticket_rcu)
    row("counter key (room, slot, shard): peak writes/s", f"{peak_counter}")
    row("ticket partition (admit, pickup, complete): writes/s", f"{peak_ticket_pk:.0f}")
    row(f"ledger shard ({lshards} per 5,000 batch): writes/s", f"{peak_ledger:.0f}")
    row(f"STATE item ({item_size(state_item)} B): read units/s", f"{state_rcu:.0f}")
    row(f"CONFIG item ({item_size(config_item)} B): read units/s", f"{config_rcu:.0f}")
    row("settled-slot partition: read units/s", f"{slots_rcu:.0f}")
    row("ticket partition (pickup, complete reads): read units/s", f"{ticket_rcu:.0f}")
    check("peak writes/s on any key", f"{peak_w:.0f}", peak_w, "<=", 1000)
    check("peak read units/s on any key", f"{peak_r:.0f}", peak_r, "<=", 3000)
    # baselines
    check("baseline: one queue counter, writes/s", f"{rate}", rate, "<=", 1000)
    slots_in_state = burst_s * (shards * 6 + 16)
    big_state = rcu(item_size(state_item) + slots_in_state)
    big = containers * big_state
    check(
        f"baseline: one STATE item with all {burst_s} slots' counters, read units/s",
        f"{big:.0f}",
        big,
        "<=",
        3000,
    )
    ten_min = 600 * (shards * 6 + 16)
    built = containers * rcu(item_size(state_item) + ten_min)
    check("  same, a 1M queue built over 10 minutes (600 slots)", f"{built:.0f}", built, "<=", 3000)
    uncached = waiting / poll_s * rcu(item_size(state_item))
    check(
        "baseline: every poll reads STATE (no cache), units/s",
        f"{uncached:.0f}",
        uncached,
        "<=",
        3000,
    )


# -- f. drainer -----------------------------------------------------------------------------


def bench_drainer(ddb: Ddb) -> None:
    say("\nf. drainer: 10,000 waiting tickets on DynamoDB Local")
    from waitingroom.domain import SETTLE_DELAY_SECONDS, slot_of
    from waitingroom.drainer import Drainer
    from waitingroom.service import WaitingRoom
    from waitingroom.settings import StoreSettings
    from waitingroom.store import Store, counter_pk, make_client
    from waitingroom.tokens import KeySet

    clock = Clock()
    client = make_client(StoreSettings(dynamodb_endpoint=ddb.endpoint))
    table = ddb.table()
    store = Store(client, table, clock=clock)
    svc = WaitingRoom(store, [b"bench-ticket-secret-0123456789"], issuer="waitingroom", clock=clock)
    total, shards = 10_000, 32
    svc.put_room("big", {"max_active": total, "shards": shards, "session_seconds": 3600})
    # 10,000 joins over 5 slots, written as their counters' final values (what joins leave)
    first = slot_of(clock(), 1)
    per = [0] * 5 * shards
    for i in range(total):
        per[i % len(per)] += 1
    for i, n in enumerate(per):
        slot, shard = first + i // shards, i % shards
        client.put_item(
            TableName=table,
            Item={
                "pk": {"S": counter_pk("big", slot, shard)},
                "sk": {"S": "COUNTER"},
                "n": {"N": str(n)},
            },
        )
    clock.advance(5 + 1 + SETTLE_DELAY_SECONDS)
    drainer = Drainer(store, lambda: KeySet.generate("k"), issuer="waitingroom", clock=clock)
    drainer.refresh_keys()
    t = time.perf_counter()
    admitted = 0
    while admitted < total:
        rep = drainer.tick_room("big")
        if not rep.ran or rep.admitted == 0:
            break
        admitted += rep.admitted
        clock.advance(1)
    dt = time.perf_counter() - t
    items = 0
    for i in range(5 * shards):
        kw: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :t)",
            "ExpressionAttributeValues": {
                ":p": {"S": counter_pk("big", first + i // shards, i % shards)},
                ":t": {"S": "T#"},
            },
            "Select": "COUNT",
        }
        items += client.query(**kw)["Count"]
    stats = svc.stats("big")
    exact = admitted == items == stats["admitted_total"] == total
    row("admissions/s (settle, mint ES256, write tickets)", f"{admitted / dt:.0f}/s")
    row(
        "admitted: ticks / ticket items / stats / expected",
        f"{admitted}/{items}/{stats['admitted_total']}/{total}",
        "all equal",
        exact,
    )


def main(argv: list[str]) -> int:
    logging.disable(logging.INFO)  # the API logs every request; the figures are what matter
    sections = set(argv) or set("abcdefg")
    say("waitingroom benchmarks (figures vary by machine; targets are ratios and counts)")
    ddb = Ddb() if sections & set("adf") else None
    try:
        if "a" in sections and ddb:
            bench_warm_invoke(ddb)
        if "b" in sections:
            bench_imports()
        if "c" in sections:
            bench_tokens()
        if "d" in sections and ddb:
            bench_ops(ddb)
        if "e" in sections:
            bench_partitions()
        if "f" in sections and ddb:
            bench_drainer(ddb)
        if "g" in sections:
            from bench import quota

            quota.section(say, row, check)
    finally:
        if ddb:
            ddb.stop()
    judged = [r for r in ROWS if r[3] is not None and not r[0].startswith(("baseline", "  same"))]
    failed = [r for r in judged if not r[3]]
    say(
        f"\n{len(judged) - len(failed)}/{len(judged)} targets met"
        + (": missed " + "; ".join(r[0] for r in failed) if failed else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

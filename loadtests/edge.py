"""What the edge saves the API: waiting visitors through the local edge, against the same run
without it. One command:

  make edge-load            # or: .venv/bin/python -m loadtests.edge [--visitors 500,2000]

Starts the local stack once (`devtools.devstack.run`: DynamoDB Local, API, drainer, demo origin
and the caching edge) plus a second nginx in front of the same API that caches nothing (the
baseline: every request reaches the API, logged the same way). For each crowd size it runs
Locust three times, each on a fresh room in which most visitors wait for the whole run:

  edge          visitors read the public documents through the caching edge (CLIENTS.md)
  no edge       the same visitors, every request reaching the API
  status polls  visitors poll /status, as clients did before the public documents

and counts from the proxies' access logs, over a steady window after the burst: the requests
that reached the API about waiting (state, slots, status), per second and per waiting visitor
per minute, and the state document's hit ratio at the edge. Prints a table and writes it to
artifacts/edge/. Only ever targets 127.0.0.1; each run is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devtools import dynamodb_local, edge
from loadtests.rehearsal import (
    _http,
    _wait_for,
    create_room,
    locust_command,
    start_stack,
    stop_stack,
)

ROOT = Path(__file__).resolve().parent.parent
WAITING_URIS = ("/state", "/status")
HIT = {"HIT", "STALE", "UPDATING", "REVALIDATED"}
MODES = ("edge", "no edge", "status polls")


@dataclass(frozen=True)
class Result:
    mode: str
    visitors: int
    waiting: float  # visitors waiting during the window (mean of its two ends)
    window_s: float
    api_waiting_rps: float  # state + slots + status requests that reached the API, per second
    per_visitor_minute: float
    edge_rps: float  # every waiting-related request the proxy answered, per second
    state_requests: int
    state_hit_ratio: float | None
    api_5xx: int


def room_name(visitors: int, mode: str) -> str:
    return f"e{visitors}-{mode.replace(' ', '-')}"


def _is_waiting(uri: str) -> bool:
    return uri.startswith("/rooms/") and (uri.endswith(WAITING_URIS) or "/slots/" in uri)


def _log_lines(path: Path, start: float, end: float, room: str) -> Iterator[dict[str, Any]]:
    prefix = f"/rooms/{room}/"
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if start <= float(entry["msec"]) < end and entry["uri"].startswith(prefix):
                yield entry


def measure(
    log: Path, room: str, start: float, end: float, waiting: float, mode: str, visitors: int
) -> Result:
    """Count what reached the API (a line with an upstream address) in [start, end).

    A background refresh of an expired entry is logged as a line of its own (EXPIRED, with an
    upstream address) beside the visitor's (STALE, answered from the cache): it reached the API
    but is nobody's request."""
    api = answered = state = state_hits = errors = 0
    for e in _log_lines(log, start, end, room):
        if not _is_waiting(e["uri"]):
            continue
        reached = bool(e["upstream_addr"])
        api += reached
        if reached and e["upstream_cache_status"] == "EXPIRED":
            continue  # the background refresh: not a visitor's request
        answered += 1
        if e.get("method") == "GET" and e["uri"].endswith("/state"):
            state += 1
            state_hits += e["upstream_cache_status"] in HIT
        if reached and str(e["upstream_status"]).startswith("5"):
            errors += 1
    seconds = end - start
    rps = api / seconds
    return Result(
        mode=mode,
        visitors=visitors,
        waiting=waiting,
        window_s=round(seconds, 1),
        api_waiting_rps=round(rps, 2),
        per_visitor_minute=round(rps * 60 / waiting, 3) if waiting else 0.0,
        edge_rps=round(answered / seconds, 1),
        state_requests=state,
        state_hit_ratio=round(state_hits / state, 4) if state else None,
        api_5xx=errors,
    )


def _waiting(api: str, key: str, room: str) -> int:
    status, stats = _http("GET", f"{api}/admin/rooms/{room}/stats", key)
    return int(stats["waiting"]) if status == 200 else 0


def run_one(
    args: argparse.Namespace,
    *,
    mode: str,
    visitors: int,
    host: str,
    api: str,
    origin: str,
    key: str,
    log: Path,
    out: Path,
    env: dict[str, str],
) -> Result:
    room = room_name(visitors, mode)
    create_room(api, key, room, args, origin)
    run_seconds = args.burst_seconds + args.settle_seconds + args.seconds + 5
    cmd = locust_command(
        host,
        origin,
        room,
        out / f"records-{room}.jsonl",
        burst_users=visitors,
        burst_seconds=args.burst_seconds,
        tail_users=0,
        max_seconds=run_seconds,
        leave_before_pickup=0,
        origin_calls=2,
        think_seconds=args.think_seconds,
        stop_timeout=3,
        status_only=mode == "status polls",
    )
    started = time.time()
    with (out / f"locust-{room}.log").open("w") as locust_log:
        locust = subprocess.Popen(  # noqa: S603 - fixed argv, loopback host
            cmd, env=env, cwd=ROOT, stdout=locust_log, stderr=subprocess.STDOUT
        )
        try:
            window_start = started + args.burst_seconds + args.settle_seconds
            time.sleep(max(0.0, window_start - time.time()))
            waiting_before = _waiting(api, key, room)
            time.sleep(args.seconds)
            window_end = time.time()
            waiting_after = _waiting(api, key, room)
            locust.wait(timeout=run_seconds + 60)
        finally:
            if locust.poll() is None:
                locust.kill()
    time.sleep(1)  # nginx writes its last lines
    return measure(
        log,
        room,
        window_start,
        window_end,
        (waiting_before + waiting_after) / 2,
        mode,
        visitors,
    )


def table(results: list[Result]) -> str:
    head = (
        f"{'visitors':>8} {'mode':<13} {'waiting':>7} {'edge req/s':>10} "
        f"{'API waiting req/s':>17} {'API req/visitor/min':>19} {'state hit ratio':>15} {'5xx':>4}"
    )
    rows = [head, "-" * len(head)]
    for r in results:
        ratio = "-" if r.state_hit_ratio is None else f"{100 * r.state_hit_ratio:.1f} %"
        rows.append(
            f"{r.visitors:>8} {r.mode:<13} {r.waiting:>7.0f} {r.edge_rps:>10.1f} "
            f"{r.api_waiting_rps:>17.2f} {r.per_visitor_minute:>19.3f} {ratio:>15} {r.api_5xx:>4}"
        )
    return "\n".join(rows)


def verdicts(results: list[Result]) -> list[tuple[str, bool]]:
    """The promises the edge makes, judged on this run: (what, kept)."""
    out: list[tuple[str, bool]] = []
    edge_runs = sorted((r for r in results if r.mode == "edge"), key=lambda r: r.visitors)
    for r in edge_runs:
        ratio = r.state_hit_ratio or 0.0
        out.append(
            (f"{r.visitors} visitors: state hit ratio {100 * ratio:.1f} % >= 95 %", ratio >= 0.95)
        )
        for base in (b for b in results if b.visitors == r.visitors and b.mode != "edge"):
            saved = base.per_visitor_minute / r.per_visitor_minute if r.per_visitor_minute else 0
            out.append(
                (
                    f"{r.visitors} visitors: API requests per waiting visitor per minute "
                    f"{r.per_visitor_minute:.3f} vs {base.per_visitor_minute:.3f} {base.mode} "
                    f"({saved:.0f}x fewer)",
                    r.per_visitor_minute < base.per_visitor_minute,
                )
            )
    if len(edge_runs) >= 2:
        small, large = edge_runs[0], edge_runs[-1]
        growth = large.api_waiting_rps / small.api_waiting_rps if small.api_waiting_rps else 0.0
        crowd = large.visitors / small.visitors
        out.append(
            (
                f"API waiting req/s {small.api_waiting_rps:.2f} at {small.visitors} -> "
                f"{large.api_waiting_rps:.2f} at {large.visitors} visitors: {growth:.2f}x for "
                f"{crowd:.0f}x the crowd (<= 1.5x: does not grow with the crowd)",
                growth <= 1.5,
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--visitors", default="500,2000", help="crowd sizes, comma-separated")
    p.add_argument("--modes", default=",".join(MODES), help=f"some of: {', '.join(MODES)}")
    p.add_argument("--seconds", type=float, default=45, help="the measured window")
    p.add_argument("--burst-seconds", type=float, default=10)
    p.add_argument("--settle-seconds", type=float, default=15, help="from the burst's end")
    p.add_argument("--max-active", type=int, default=10)
    p.add_argument(
        "--think-seconds",
        type=float,
        default=10,
        help="an admitted visitor's pause per origin call",
    )
    p.add_argument("--session-seconds", type=int, default=60)
    p.add_argument("--pickup-seconds", type=int, default=30)
    p.add_argument("--out", type=Path, default=ROOT / "artifacts" / "edge")
    args = p.parse_args(argv)
    sizes = [int(v) for v in args.visitors.split(",") if v]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if bad := [m for m in modes if m not in MODES]:
        p.error(f"unknown mode(s) {bad}; choose from {', '.join(MODES)}")

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    ports = [dynamodb_local.free_port() for _ in range(5)]
    api_port, origin_port, _, edge_port, plain_port = ports
    api, origin = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{origin_port}"
    edge_url, plain_url = f"http://127.0.0.1:{edge_port}", f"http://127.0.0.1:{plain_port}"
    key = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "WAITINGROOM_ADMIN_KEY": key,
        "WAITINGROOM_TICK_SECONDS": "1",
        "WAITINGROOM_LOG_LEVEL": "WARNING",
        "DEMO_ROOMS": ",".join(["demo"] + [room_name(n, m) for n in sizes for m in modes]),
    }
    stack_dir = out / "stack"
    stack_log = (out / "stack.log").open("w")
    stack = start_stack(stack_dir, ports[:4], env, stack_log)
    plain: subprocess.Popen[bytes] | None = None
    results: list[Result] = []
    try:
        _wait_for(f"{edge_url}/health", 120)
        plain = edge.start(plain_port, api, origin, out / "plain", cache=False)
        print(f"stack up: edge {edge_url}, plain proxy {plain_url}, API {api}")  # noqa: T201
        for n in sizes:
            for mode in modes:
                via_edge = mode == "edge"
                print(f"{n} visitors, {mode} ...", flush=True)  # noqa: T201
                result = run_one(
                    args,
                    mode=mode,
                    visitors=n,
                    host=edge_url if via_edge else plain_url,
                    api=api,
                    origin=edge_url if via_edge else origin,
                    key=key,
                    log=(stack_dir / "edge" if via_edge else out / "plain") / edge.ACCESS_LOG,
                    out=out,
                    env=env,
                )
                results.append(result)
                print(table([result]).splitlines()[-1], flush=True)  # noqa: T201
    finally:
        if plain is not None:
            edge.stop(plain)
        stop_stack(stack)
        stack_log.close()
    judged = verdicts(results)
    report = "\n".join(
        [table(results), ""] + [f"{'PASS' if ok else 'FAIL'}  {what}" for what, ok in judged]
    )
    print("\n" + report)  # noqa: T201
    (out / "edge.txt").write_text(report + "\n", encoding="utf-8")
    (out / "edge.json").write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    kept = all(ok for _, ok in judged) and all(r.api_5xx == 0 for r in results)
    return 0 if kept else 1


if __name__ == "__main__":
    sys.exit(main())

"""Time from join to token in an idle room, straight-in on against off, in the same run.

  .venv/bin/python -m bench.straight_in [--visitors 40] [--tick-seconds 2]

Starts the local stack as `make dev` runs it (DynamoDB Local, the API over HTTP, the drainer
ticking every `--tick-seconds`: 2 s, make dev's default), creates two rooms alike but for
`straight_in`, and sends visitors into both at once, one every `--gap` seconds (never more than
a few inside: each completes its session at once, so both rooms stay idle). Each visitor is
`waitingroom.client.wait`, the algorithm every client follows (CLIENTS.md); the time measured is
from the join's request to the token in hand. Prints p50/p90 per room and their ratio.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path

from devtools import dynamodb_local
from loadtests.rehearsal import _http, _wait_for, start_stack, stop_stack
from waitingroom import client, domain

ROOT = Path(__file__).resolve().parent.parent
ROOMS = {"straight-in": True, "baseline": False}  # room -> straight_in
TARGET_P50_SECONDS = 1.0


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def visit(api: str, room: str, times: dict[str, list[float]], lock: threading.Lock) -> None:
    started = time.monotonic()
    outcome = client.wait(api, room, timeout=60)
    took = time.monotonic() - started
    if outcome.kind != "admitted" or not outcome.token:
        say(f"  a visitor of {room} was not admitted: {outcome.kind} {outcome.error or ''}")
        return
    with lock:
        times[room].append(took)
    _http(
        "POST",
        f"{api}/rooms/{room}/complete",
        body=None,
        key=outcome.token,  # sent as 'Authorization: Bearer <token>'
    )


def percentile(values: list[float], q: float) -> float:
    found = domain.percentile(values, q)
    assert found is not None
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--visitors", type=int, default=40, help="visitors per room")
    p.add_argument("--gap", type=float, default=0.7, help="seconds between arrivals")
    p.add_argument("--tick-seconds", type=float, default=2.0)
    p.add_argument("--out", type=Path, default=ROOT / "artifacts" / "straight-in")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    api_port, origin_port, db_port = (dynamodb_local.free_port() for _ in range(3))
    api, origin = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{origin_port}"
    key = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "WAITINGROOM_ADMIN_KEY": key,
        "WAITINGROOM_TICK_SECONDS": str(args.tick_seconds),
        "WAITINGROOM_LOG_LEVEL": "WARNING",
    }
    log = (args.out / "stack.log").open("w")
    stack = start_stack(args.out / "stack", [api_port, origin_port, db_port], env, log)
    times: dict[str, list[float]] = {room: [] for room in ROOMS}
    try:
        _wait_for(f"{origin}/health", 90)
        for room, straight_in in ROOMS.items():
            body = {"max_active": 50, "session_seconds": 60, "straight_in": straight_in}
            status, answer = _http("PUT", f"{api}/admin/rooms/{room}", key, body)
            if status not in (200, 201):
                raise RuntimeError(f"could not create room {room}: {status} {answer}")
        time.sleep(args.tick_seconds + 1)  # the rooms' first ticks
        say(
            f"{args.visitors} visitors per room, one every {args.gap} s, drainer tick "
            f"{args.tick_seconds} s (API {api})"
        )
        lock = threading.Lock()
        threads = []
        for _ in range(args.visitors):
            for room in ROOMS:
                t = threading.Thread(target=visit, args=(api, room, times, lock))
                t.start()
                threads.append(t)
            time.sleep(args.gap)
        for t in threads:
            t.join(timeout=90)
    finally:
        stop_stack(stack)
    return report(times)


def report(times: dict[str, list[float]]) -> int:
    say(f"  {'room':<14} {'visitors':>8} {'p50 s':>7} {'p90 s':>7} {'mean s':>7}")
    for room, values in times.items():
        if not values:
            say(f"  {room:<14} {0:>8}")
            continue
        p50, p90 = percentile(values, 50), percentile(values, 90)
        say(
            f"  {room:<14} {len(values):>8} {p50:>7.2f} {p90:>7.2f} "
            f"{statistics.fmean(values):>7.2f}"
        )
    on, off = times["straight-in"], times["baseline"]
    if not on or not off:
        say("  FAIL: a room admitted nobody")
        return 1
    ratio = percentile(off, 50) / percentile(on, 50)
    ok = percentile(on, 50) <= TARGET_P50_SECONDS
    say(f"  join -> token p50: {ratio:.1f}x faster straight in than the baseline")
    say(f"  straight-in p50 <= {TARGET_P50_SECONDS:.0f} s: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

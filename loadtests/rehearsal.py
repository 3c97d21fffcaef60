"""A local rehearsal: the whole stack on free ports, a burst of visitors, a verdict. One command:

  make rehearsal            # or: .venv/bin/python -m loadtests.rehearsal [--visitors 2000]

Starts `devtools.devstack.run(...)` in a subprocess (DynamoDB Local, API, drainer ticking
every second, guarded demo origin), creates a room sized to drain in a couple of minutes, runs
Locust headless with the burst shape (loadtests/locustfile.py), waits until the room is empty,
asks the API about every ticket whose visitor left without an answer (reclaimed, or lost?), then
writes the verdict under artifacts/rehearsal/ and stops everything (meanwhile the room's state
item is read in the store 20 times a second: when each admission was committed). Exit code 1
when a promise was broken.

Before the burst, `--history` visitors (30 over 15 s by default) go straight in, use the origin
as the burst's visitors do and complete, as on a live site whose room is left on all the time:
the drainer has then seen sessions end, and forecasts the burst's admissions from them (with
`--history 0`, a room created just before the drop, it starts from the configured session
length, the longest a session can hold a place). They are not judged: no records are written
for them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from devtools import dynamodb_local
from loadtests import verdict
from waitingroom import client
from waitingroom.bootstrap import build_store
from waitingroom.settings import StoreSettings
from waitingroom.store import Store, StoreUnavailable

ROOT = Path(__file__).resolve().parent.parent
ROOM = "rehearsal"

_STACK = """
import sys
from pathlib import Path
from devtools import devstack
devstack.DEV_DIR = Path(sys.argv[1])
edge = int(sys.argv[5]) if len(sys.argv) > 5 else None
sys.exit(devstack.run(port=int(sys.argv[2]), origin_port=int(sys.argv[3]),
                      db_port=int(sys.argv[4]), edge_port=edge))
"""


def start_stack(
    stack_dir: Path, ports: list[int], env: dict[str, str], log: Any
) -> subprocess.Popen[bytes]:
    """`devstack.run` in a subprocess: ports are the API's, the origin's, DynamoDB Local's and,
    optionally, the edge's."""
    return subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-c", _STACK, str(stack_dir), *map(str, ports)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop_stack(stack: subprocess.Popen[bytes]) -> None:
    if stack.poll() is None:
        stack.send_signal(signal.SIGTERM)
        try:
            stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stack.kill()


class StateWatcher(threading.Thread):
    """Reads the room's state item in the store twenty times a second (consistent reads), from
    beside the load, and keeps a `tick` record of each new version: when its tick committed it
    and what the queue had admitted then, the verdict's clock of admissions. (Locust's own
    watcher reads the API's copy inside the load's event loop, which a burst starves for
    seconds: it misses states.)"""

    def __init__(self, store: Store, room: str, every: float = 0.05) -> None:
        super().__init__(name="state-watcher", daemon=True)
        self.store, self.room, self.every = store, room, every
        self.records: list[dict[str, Any]] = []
        self.failed = ""  # why it stopped watching before the end, if it did
        self._finished = threading.Event()

    def run(self) -> None:
        version = -1
        while not self._finished.wait(self.every):
            try:
                st = self.store.get_public_state(self.room, consistent=True)
            except StoreUnavailable:
                continue  # the store was busy: the next read tells
            except Exception as exc:
                self.failed = f"{type(exc).__name__}: {exc}"
                return
            if st is not None and st.version > version:
                version = st.version
                self.records.append(
                    {
                        "e": "tick",
                        "t": time.time(),
                        "at": st.updated_at,
                        "committed": st.committed_at or st.updated_at,
                        "consumed": st.consumed,
                        "source": "store",
                    }
                )

    def stop(self) -> list[dict[str, Any]]:
        self._finished.set()
        self.join(timeout=15)  # a store call in flight may take its whole budget
        return list(self.records)


def locust_command(host: str, origin: str, room: str, records: Path, **options: Any) -> list[str]:
    """Locust headless on loadtests/locustfile.py against `host`, writing its records; each
    option becomes `--its-name VALUE` (True: a bare flag; False or None: left out)."""
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "loadtests" / "locustfile.py"),
        "--headless",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--host",
        host,
        "--origin",
        origin,
        "--room",
        room,
        "--records",
        str(records),
        "--verdict-dir",
        "none",
    ]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            cmd.append(flag)
        elif value is not None and value is not False:
            cmd += [flag, str(value)]
    return cmd


def create_room(api: str, key: str, room: str, args: argparse.Namespace, origin: str) -> None:
    """A room sized by the run's --max-active, --session-seconds and --pickup-seconds."""
    status, body = _http(
        "PUT",
        f"{api}/admin/rooms/{room}",
        key,
        {
            "max_active": args.max_active,
            "session_seconds": args.session_seconds,
            "pickup_seconds": args.pickup_seconds,
            "origin_url": f"{origin}/",
        },
    )
    if status not in (200, 201):
        raise RuntimeError(f"could not create room {room}: {status} {body}")


def _http(
    method: str,
    url: str,
    key: str | None = None,
    body: Any = None,
    timeout: float = 10,
    bearer: str | None = None,
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key or bearer:
        headers["Authorization"] = f"Bearer {key or bearer}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback only
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw else None
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def _wait_for(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _http("GET", url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def wait_drained(api: str, key: str, settle_seconds: float, timeout: float) -> bool:
    """True once nobody waits and the pickup window of the last admission has closed."""
    deadline = time.monotonic() + timeout
    last_admitted, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        status, stats = _http("GET", f"{api}/admin/rooms/{ROOM}/stats", key)
        if status == 200:
            if stats["admitted_total"] != last_admitted:
                last_admitted, quiet_since = stats["admitted_total"], time.monotonic()
            if stats["waiting"] == 0 and time.monotonic() - quiet_since >= settle_seconds:
                return True
        time.sleep(1)
    return False


def audit(api: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ask the API once about each ticket whose visitor got neither a token nor a 410."""
    admitted = {r["v"] for r in records if r.get("e") == "admit"}
    gone = {r["v"] for r in records if r.get("e") == "end" and r.get("outcome") == "gone"}
    out = []
    for r in records:
        if r.get("e") != "join" or r["v"] in admitted or r["v"] in gone:
            continue
        req = urllib.request.Request(  # noqa: S310 - loopback only
            f"{api}/rooms/{ROOM}/status", headers={"Authorization": f"Bearer {r['ticket']}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
                state = json.loads(resp.read()).get("state")
                result = "admitted" if state == "admitted" else "waiting"
        except urllib.error.HTTPError as exc:
            result = "reclaimed" if exc.code == 410 else f"http {exc.code}"
        out.append({"e": "audit", "v": r["v"], "result": result, "t": time.time()})
    return out


def warm_up(api: str, origin: str, key: str, timeout: float = 30, room: str = "demo") -> None:
    """One visitor end to end before the burst, so the origin has loaded the public keys (a
    deployed origin is warm when the doors open; this is not part of the judged run). In
    another room than the judged one: its drainer learns nothing from this hurried visit."""
    status, joined = _http("POST", f"{api}/rooms/{room}/join", body={})
    if status != 201:
        raise RuntimeError(f"warm-up join answered {status} {joined}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _http("POST", f"{api}/admin/rooms/{room}/drain", key)
        req = urllib.request.Request(  # noqa: S310 - loopback only
            f"{api}/rooms/{room}/status", headers={"Authorization": f"Bearer {joined['ticket']}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            body = json.loads(resp.read())
        if body["state"] == "admitted":
            bearer = {"Authorization": f"Bearer {body['token']}"}
            hello = urllib.request.Request(f"{origin}/api/hello", headers=bearer)  # noqa: S310
            with urllib.request.urlopen(hello, timeout=10):  # noqa: S310
                pass
            done = urllib.request.Request(  # noqa: S310
                f"{api}/rooms/{room}/complete", method="POST", headers=bearer
            )
            with urllib.request.urlopen(done, timeout=10):  # noqa: S310
                return
        time.sleep(1)
    raise TimeoutError("the warm-up visitor was not admitted in time")


def history(
    host: str, origin: str, visitors: int, seconds: float, calls: int = 3, think: float = 1.0
) -> int:
    """Visitors before the burst, as a room left on all the time has them: `visitors` over
    `seconds`, each let straight in, using the origin as the burst's visitors do (`calls`
    requests, about `think` seconds apart) and completing. Returns how many completed (they
    are not part of the judged run: their records are not written)."""

    def visit(at: float) -> bool:
        time.sleep(max(0.0, at - time.monotonic()))
        outcome = client.wait(host, ROOM, timeout=30)
        if outcome.kind != "admitted" or outcome.token is None:
            return False
        bearer = {"Authorization": f"Bearer {outcome.token}"}
        for _ in range(calls):
            hello = urllib.request.Request(f"{origin}/api/hello", headers=bearer)  # noqa: S310
            with urllib.request.urlopen(hello, timeout=10):  # noqa: S310 - loopback only
                pass
            time.sleep(think * random.uniform(0.5, 1.5))
        return (
            _http("POST", f"{host}/rooms/{ROOM}/complete", body=None, bearer=outcome.token)[0]
            == 204
        )

    gap, start = seconds / max(1, visitors), time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, min(visitors, 16))) as pool:
        return sum(pool.map(visit, [start + i * gap for i in range(visitors)]))


def run_locust(
    command: list[str], workers: int, env: dict[str, str], log: Any
) -> subprocess.CompletedProcess[bytes]:
    """Locust alone, or as a master with `workers` workers on this machine; the workers get
    no admin key in their environment (it reaches them from the master, with the options)."""
    if workers <= 0:
        return subprocess.run(  # noqa: S603 - fixed argv
            command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    port = dynamodb_local.free_port()
    master = [*command, "--master", "--expect-workers", str(workers), "--loglevel", "INFO"]
    master += ["--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
    worker_env = {k: v for k, v in env.items() if k != "WAITINGROOM_ADMIN_KEY"}
    worker = [*command[:5], "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    procs = [
        subprocess.Popen(  # noqa: S603 - fixed argv
            worker, env=worker_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        for _ in range(workers)
    ]
    try:
        return subprocess.run(  # noqa: S603 - fixed argv
            master, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    finally:
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_watched(
    command: list[str], workers: int, env: dict[str, str], log: Any, db_port: int
) -> tuple[subprocess.CompletedProcess[bytes], list[dict[str, Any]]]:
    """`run_locust`, with the room's state item watched in the store meanwhile: Locust's
    result and the watcher's `tick` records."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")  # DynamoDB Local takes any
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    store = build_store(StoreSettings(dynamodb_endpoint=f"http://127.0.0.1:{db_port}"))
    watcher = StateWatcher(store, ROOM)
    watcher.start()
    try:
        result = run_locust(command, workers, env, log)
    finally:
        states = watcher.stop()
        if watcher.failed:
            print(f"state watcher stopped early: {watcher.failed}", flush=True)  # noqa: T201
    return result, states


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--visitors", type=int, default=2000, help="visitors in the burst")
    p.add_argument("--burst-seconds", type=float, default=5)
    p.add_argument("--tail", type=int, default=200, help="visitors in the tail after the burst")
    p.add_argument("--tail-seconds", type=float, default=20)
    p.add_argument("--max-active", type=int, default=150)
    p.add_argument(
        "--max-active-changes",
        default="30:250,75:150",
        help="operator changes, SECONDS:MAX_ACTIVE,... ('' for none)",
    )
    p.add_argument("--session-seconds", type=int, default=20)
    p.add_argument("--pickup-seconds", type=int, default=15)
    p.add_argument("--max-seconds", type=float, default=170, help="cap on the Locust run")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run Locust distributed: a master and this many workers on this machine, the "
        "admin key given to the master only (as loadtests/README.md shows)",
    )
    p.add_argument(
        "--edge",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="visitors go through the local caching edge (nginx), as they go through "
        "CloudFront in AWS (default); --no-edge sends every request straight to the API (nginx "
        "still starts with the stack)",
    )
    p.add_argument(
        "--history",
        type=int,
        default=30,
        help="visitors let straight in over --history-seconds before the burst, who use the "
        "origin and complete as the burst's do (a room left on all the time has seen visitors "
        "before a launch: the drainer has learned how long a session holds a place); 0: a room "
        "created just before the drop",
    )
    p.add_argument("--history-seconds", type=float, default=15)
    p.add_argument("--out", type=Path, default=ROOT / "artifacts" / "rehearsal")
    args = p.parse_args(argv)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    records_path = out / "records.jsonl"
    api_port, origin_port, db_port, edge_port = (
        dynamodb_local.free_port(),
        dynamodb_local.free_port(),
        dynamodb_local.free_port(),
        dynamodb_local.free_port(),
    )
    api, origin = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{origin_port}"
    visitors_host = f"http://127.0.0.1:{edge_port}" if args.edge else api
    key = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "WAITINGROOM_ADMIN_KEY": key,
        "WAITINGROOM_TICK_SECONDS": "1",
        "DEMO_ROOMS": f"demo,{ROOM}",
        "WAITINGROOM_LOG_LEVEL": "WARNING",
    }
    started = time.monotonic()
    stack_log = (out / "stack.log").open("w")
    stack = start_stack(out / "stack", [api_port, origin_port, db_port, edge_port], env, stack_log)
    try:
        _wait_for(f"{origin}/health", 90)
        create_room(api, key, ROOM, args, origin)
        warm_up(api, origin, key)
        print(  # noqa: T201
            f"stack up in {time.monotonic() - started:.0f} s: API {api}, origin {origin}, "
            + (f"visitors through the edge {visitors_host}" if args.edge else "no edge"),
            flush=True,
        )
        if args.history > 0:
            done = history(visitors_host, origin, args.history, args.history_seconds)
            print(  # noqa: T201
                f"history: {done} of {args.history} visitors went straight in, used the origin "
                f"and completed over {args.history_seconds:.0f} s before the burst"
            )
        print(  # noqa: T201
            f"running {args.visitors} visitors in {args.burst_seconds:.0f} s + {args.tail} over "
            f"{args.tail_seconds:.0f} s, max_active {args.max_active} "
            f"(changes: {args.max_active_changes or 'none'})",
            flush=True,
        )
        command = locust_command(
            visitors_host,
            origin,
            ROOM,
            records_path,
            burst_users=args.visitors,
            burst_seconds=args.burst_seconds,
            tail_users=args.tail,
            tail_seconds=args.tail_seconds,
            max_seconds=args.max_seconds,
            max_active_changes=args.max_active_changes,
            admin_host=api if args.edge else None,
            stop_timeout=5,
        )
        with (out / "locust.log").open("w") as locust_log:
            locust, states = run_watched(command, args.workers, env, locust_log, db_port)
        print(f"locust finished (exit {locust.returncode}); waiting for the room to drain")  # noqa: T201
        drained = wait_drained(api, key, args.pickup_seconds + 4, timeout=90)
        records = verdict.load_records(records_path) + states
        audits = audit(api, records)
        with records_path.open("a") as f:
            f.writelines(json.dumps(r) + "\n" for r in states + audits)
        records += audits
    finally:
        stop_stack(stack)
        stack_log.close()
    v = verdict.analyse(records, drained=drained)
    print(verdict.write_report(v, records, out))  # noqa: T201
    print(  # noqa: T201
        f"\nrehearsal took {time.monotonic() - started:.0f} s; verdict, chart and records in "
        f"{out}/ (verdict.txt, chart.html, records.jsonl; Locust log: locust.log)"
    )
    if not drained:
        print("note: the room was not empty at the end; unresolved tickets are not judged")  # noqa: T201
    return 0 if v.passed else 1


if __name__ == "__main__":
    sys.exit(main())

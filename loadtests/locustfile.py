"""Locust: a burst of visitors through the waiting room, an operator, and a verdict at the end.

Each visitor waits through `waitingroom.client.Visitor`, as a browser or an app does
(CLIENTS.md): it joins once, looks at the room's public state (and once at its settled slot)
and calls /status only to pick its token up; with --status-only it polls /status at the
server's pace instead, as clients did before the public documents. When admitted it calls the
guarded origin a few times and completes, or abandons (before pickup, or after it without
completing). Each visitor's `end` record counts its requests by kind. One operator changes
max_active mid-run and samples the room's stats. The burst shape spawns thousands of visitors
within seconds, then a tail, and stops by itself once every visitor's journey is over (or at
--max-seconds).

Every event is recorded as JSON lines (--records); in distributed mode the workers send their
records to the master, which writes the file and the verdict (see loadtests/README.md).

  locust -f loadtests/locustfile.py --headless --room demo            # 127.0.0.1:8080 + :8081
  locust -f loadtests/locustfile.py --headless --host https://wait.example.com --room launch \
         --origin https://shop.example.com --burst-users 20000 --burst-seconds 10
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import threading
import time
from collections import Counter
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
from locust import FastHttpUser, LoadTestShape, events, task
from locust.env import Environment
from locust.exception import CatchResponseError
from locust.runners import MasterRunner, WorkerRunner

from waitingroom import client

LOCAL_API = "http://127.0.0.1:8080"
LOCAL_ORIGIN = "http://127.0.0.1:8081"
MESSAGE = "waitingroom_records"


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    g = parser.add_argument_group("waiting room")
    g.add_argument("--room", default="demo", env_var="WR_ROOM", help="room id")
    g.add_argument(
        "--origin",
        default="",
        env_var="WR_ORIGIN",
        help="guarded origin base URL (default: 127.0.0.1:8081 for a local host, else the "
        "room's origin_url)",
    )
    g.add_argument("--burst-users", type=int, default=2000, env_var="WR_BURST_USERS")
    g.add_argument("--burst-seconds", type=float, default=5, env_var="WR_BURST_SECONDS")
    g.add_argument("--tail-users", type=int, default=200, env_var="WR_TAIL_USERS")
    g.add_argument("--tail-seconds", type=float, default=20, env_var="WR_TAIL_SECONDS")
    g.add_argument(
        "--arrival-spread",
        type=float,
        default=1.0,
        env_var="WR_ARRIVAL_SPREAD",
        help="seconds over which each visitor Locust starts waits before joining, at random: "
        "Locust starts a second's users at once, and people do not arrive in step (0: at once)",
    )
    g.add_argument(
        "--max-seconds",
        type=float,
        default=300,
        env_var="WR_MAX_SECONDS",
        help="hard stop of the shape even if visitors are still waiting",
    )
    g.add_argument("--origin-calls", type=int, default=3, env_var="WR_ORIGIN_CALLS")
    g.add_argument("--think-seconds", type=float, default=1.0, env_var="WR_THINK_SECONDS")
    g.add_argument(
        "--leave-before-pickup",
        type=float,
        default=0.05,
        env_var="WR_LEAVE_BEFORE_PICKUP",
        help="share of visitors who stop polling while waiting (never pick up)",
    )
    g.add_argument(
        "--leave-without-complete",
        type=float,
        default=0.05,
        env_var="WR_LEAVE_WITHOUT_COMPLETE",
        help="share of admitted visitors who never call complete",
    )
    g.add_argument(
        "--max-active-changes",
        default="",
        env_var="WR_MAX_ACTIVE_CHANGES",
        help="operator changes as SECONDS:MAX_ACTIVE,... from the start (needs the admin key "
        "in WAITINGROOM_ADMIN_KEY)",
    )
    g.add_argument(
        "--admin-key",
        default="",
        env_var="WAITINGROOM_ADMIN_KEY",
        help="the room's admin key, for the operator (max_active changes, stats); given to the "
        "master, it reaches the workers with the other options",
    )
    g.add_argument(
        "--admin-host",
        default="",
        env_var="WR_ADMIN_HOST",
        help="where the operator's admin calls go when the visitors' --host is an edge that "
        "does not route /admin (default: --host)",
    )
    g.add_argument("--records", default="artifacts/loadtest/records.jsonl", env_var="WR_RECORDS")
    g.add_argument(
        "--verdict-dir",
        default="",
        env_var="WR_VERDICT_DIR",
        help="where the verdict goes (default: next to the records); 'none' skips it",
    )
    g.add_argument("--drained", action="store_true", help="judge unresolved tickets as lost")
    g.add_argument(
        "--status-only",
        action="store_true",
        env_var="WR_STATUS_ONLY",
        help="visitors poll /status instead of reading the public documents (the baseline)",
    )


# -- records ------------------------------------------------------------------------------


class Recorder:
    """Buffers records; flushes them to the file (local/master) or to the master (worker)."""

    def __init__(self) -> None:
        self.buffer: list[dict[str, Any]] = []
        self.path: Path | None = None
        self.env: Environment | None = None
        self.lock = threading.Lock()
        self.joined = 0
        self.ended = 0
        self._flusher: Any = None

    def setup(self, env: Environment) -> None:
        self.env = env
        if not isinstance(env.runner, WorkerRunner):
            self.path = Path(env.parsed_options.records)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")
        if isinstance(env.runner, MasterRunner):
            env.runner.register_message(MESSAGE, lambda msg, **_: self.write(msg.data))

    def emit(self, **record: Any) -> None:
        record.setdefault("t", time.time())
        self.buffer.append(record)

    def write(self, records: list[dict[str, Any]]) -> None:
        if not records or self.path is None:
            return
        for r in records:
            if r.get("e") == "join":
                self.joined += 1
            elif r.get("e") == "end":
                self.ended += 1
        with self.lock, self.path.open("a") as f:
            f.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))

    def flush(self) -> None:
        batch, self.buffer = self.buffer, []
        if not batch or self.env is None:
            return
        if isinstance(self.env.runner, WorkerRunner):
            self.env.runner.send_message(MESSAGE, batch)
        else:
            self.write(batch)

    def start(self) -> None:
        def loop() -> None:
            while True:
                gevent.sleep(0.5)
                self.flush()

        if self._flusher is None:
            self._flusher = gevent.spawn(loop)


recorder = Recorder()
_ids = itertools.count(1)


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    recorder.setup(environment)


@events.test_start.add_listener
def _start(environment: Environment, **_: Any) -> None:
    recorder.start()
    if not isinstance(environment.runner, WorkerRunner):
        opts = environment.parsed_options
        mode = "status_only" if opts.status_only else "documents"
        recorder.emit(
            e="run",
            room=opts.room,
            host=_host(environment),
            mode=mode,
            max_active_changes=opts.max_active_changes,
            operator=bool(opts.admin_key),
        )


@events.test_stop.add_listener
def _stop(environment: Environment, **_: Any) -> None:
    recorder.flush()


@events.request.add_listener
def _on_request(
    request_type: str,
    name: str,
    response: Any,
    exception: BaseException | None,
    **_: Any,
) -> None:
    if exception is None:
        return
    status = getattr(response, "status_code", 0) or 0
    # a failure this file marked says what happened (with the transport's cause, if any);
    # any other exception is named with its message
    kind = str(exception) if isinstance(exception, CatchResponseError) else _cause(exception)
    kind = kind[:120]
    recorder.emit(e="error", name=f"{request_type} {name}", status=status, kind=kind)


@events.quitting.add_listener
def _verdict(environment: Environment, **_: Any) -> None:
    recorder.flush()
    opts = environment.parsed_options
    if isinstance(environment.runner, WorkerRunner) or opts.verdict_dir == "none":
        return
    from loadtests import verdict

    path = Path(opts.records)
    records = verdict.load_records(path)
    v = verdict.analyse(records, drained=opts.drained)
    out = Path(opts.verdict_dir) if opts.verdict_dir else path.parent
    print(verdict.write_report(v, records, out))  # noqa: T201
    print(f"verdict and chart: {out}/verdict.txt, {out}/chart.html")  # noqa: T201
    rates = request_rates(records)
    if rates:
        shown = ", ".join(f"{k} {rates[k]:.2f}" for k in sorted(rates))
        print(f"requests per waiting visitor per minute: {shown}")  # noqa: T201
    if not v.passed:
        environment.process_exit_code = 1


def _cause(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _answer(resp: Any) -> str:
    """What a response was, for a failure: its status, or why there was none."""
    status = resp.status_code or 0
    if status:
        return f"answered {status}"
    error = getattr(resp, "error", None)
    return f"got no answer ({_cause(error) if error else 'no cause given'})"


def _host(env: Environment) -> str:
    return (env.host or LOCAL_API).rstrip("/")


def _is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in {"127.0.0.1", "localhost", "::1"}


def _to_admin_host(user: FastHttpUser) -> None:
    """Send `user`'s requests to --admin-host (the API, when the visitors go through an edge
    that does not route /admin); a loopback address only when --host is one."""
    admin_host = (user.environment.parsed_options.admin_host or "").rstrip("/")
    if admin_host:
        if _is_loopback(_host(user.environment)) and not _is_loopback(admin_host):
            raise ValueError("--admin-host must be a loopback address when --host is one")
        user.client.base_url = admin_host


def _token_seq(token: str) -> int | None:
    """Which drainer tick admitted this token: its `iat` (every ticket a tick admits carries
    that tick's time; ticks are at least a second apart), read unverified."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return int(claims["iat"])
    except (IndexError, KeyError, ValueError):
        return None


def _record_exact(visitor: client.Visitor, vid: str) -> bool:
    """Record the first exact place the visitor sees (its position, the ETA shown with it and
    its rank in the queue, when its settled slot gives it): the verdict compares it with the
    estimate the join gave and with the wait that followed. True once recorded."""
    here, ticket = visitor.place, visitor.ticket
    if here is None or ticket is None or not here.exact:
        return False
    ss = visitor.slot
    rank = ss.rank_of(ticket.k, ticket.shard) if ss and ss.holds(ticket.k, ticket.shard) else None
    if rank is None and here.kind == "waiting" and visitor.state is not None:
        rank = here.position + visitor.state.consumed - 1
    state = visitor.state
    consumed = state.consumed if state is not None else None
    at = state.updated_at if state is not None else None
    recorder.emit(
        e="exact", v=vid, position=here.position, eta=here.eta, rank=rank, consumed=consumed, at=at
    )
    return True


def request_rates(records: list[dict[str, Any]]) -> dict[str, float]:
    """Requests per waiting visitor per minute, by kind (join, state, slot, status) and in all,
    over the visitors whose `end` record counts their requests and the time they waited."""
    counts: Counter[str] = Counter()
    minutes = 0.0
    for r in records:
        if r.get("e") == "end" and r.get("waited_s") and r.get("requests"):
            counts.update(r["requests"])
            minutes += float(r["waited_s"]) / 60
    if minutes <= 0:
        return {}
    rates = {k: n / minutes for k, n in counts.items()}
    rates["all"] = sum(counts.values()) / minutes
    return rates


# -- users --------------------------------------------------------------------------------


class Visitor(FastHttpUser):
    """One person: join once, wait, use the origin, complete (or abandon)."""

    host = LOCAL_API  # only ever a loopback address unless --host says otherwise
    weight = 100
    network_timeout = 30.0
    connection_timeout = 10.0

    def wait_time(self) -> float:
        return 3600.0  # one journey per visitor; afterwards the user idles until the run ends

    def on_start(self) -> None:
        self.done = False
        # CLIENTS.md: never send cookies (the edge's cache serves the documents to everybody);
        # the ticket and the token travel as Authorization headers
        self.client.cookiejar.set_policy(DefaultCookiePolicy(allowed_domains=[]))

    @task
    def journey(self) -> None:
        if self.done:
            return
        self.done = True
        opts = self.environment.parsed_options
        worker = getattr(self.environment.runner, "client_id", "local")
        vid = f"{worker}-{os.getpid()}-{next(_ids)}"
        rng = random.Random()
        plan = "complete"
        r = rng.random()
        if r < opts.leave_before_pickup:
            plan = "leave_before_pickup"
        elif r < opts.leave_before_pickup + opts.leave_without_complete:
            plan = "leave_without_complete"
        visitor = client.Visitor(opts.room, status_only=opts.status_only, rng=rng)
        # Locust starts each second's users together: spread them over the second they stand for
        gevent.sleep(rng.uniform(0, max(0.0, opts.arrival_spread)))
        outcome = "error"
        self.joined_at: float | None = None
        self.waited_until: float | None = None
        try:
            outcome = self._journey(visitor, vid, plan, rng, opts)
        except gevent.GreenletExit:
            outcome = "stopped"
            raise
        finally:
            end = self.waited_until or time.time()
            waited = round(end - self.joined_at, 3) if self.joined_at is not None else None
            recorder.emit(
                e="end", v=vid, outcome=outcome, requests=dict(visitor.requests), waited_s=waited
            )

    def _send(self, call: client.Call) -> client.Reply:
        """One request of the visitor's, named by its kind in Locust's statistics."""
        with self.client.request(
            call.method,
            call.path,
            name=call.kind,
            headers=dict(call.headers),
            json=call.json,
            catch_response=True,
        ) as resp:
            status = resp.status_code or 0
            expected = (
                status < 400
                or (status == 404 and call.kind == "slot")  # not settled here yet
                or (status == 410 and call.kind == "status")  # reclaimed or closed: judged later
            )
            if expected:
                resp.success()
            else:
                resp.failure(f"{call.kind} {_answer(resp)}")
            try:
                body = resp.json() if resp.content else None
            except ValueError:
                body = None
            retry_after = resp.headers.get("Retry-After") if resp.headers else None
            return client.Reply(status, {"Retry-After": retry_after} if retry_after else {}, body)

    def _journey(
        self, visitor: client.Visitor, vid: str, plan: str, rng: random.Random, opts: Any
    ) -> str:
        t0 = time.time()
        looks_left = rng.randint(0, 4) if plan == "leave_before_pickup" else None
        exact_seen = looked = False
        while (call := visitor.next()) is not None:
            if call.kind in ("state", "status") and looks_left is not None:
                if looks_left == 0:
                    self.waited_until = time.time()
                    return "left_waiting"
                looks_left -= 1
            if call.after > 0:
                gevent.sleep(call.after)
            joined = visitor.ticket is not None
            reply = self._send(call)
            visitor.answer(reply, time.time())
            if not exact_seen and self.joined_at is not None:
                exact_seen = _record_exact(visitor, vid)
            if not looked and call.kind == "state" and visitor.state is not None:
                looked = True  # how far the room had admitted then: a sample for the verdict
                state = visitor.state
                recorder.emit(e="look", v=vid, consumed=state.consumed, at=state.updated_at)
            if not joined and visitor.ticket is not None and call.kind == "join":
                self.joined_at = time.time()
                recorder.emit(
                    e="join",
                    v=vid,
                    t0=t0,
                    number=visitor.joined_number,
                    ticket=visitor.ticket.text,
                    plan=plan,
                    position=visitor.place.position if visitor.place else None,
                )
        self.waited_until = time.time()
        result = visitor.outcome
        assert result is not None
        if result.kind != "admitted" or result.token is None:
            if visitor.ticket is None:
                return "join_failed"
            return "gone" if result.status == 410 else "error"
        token = result.token
        recorder.emit(e="admit", v=vid, exp=result.expires_at, seq=_token_seq(token))
        origin = opts.origin or (
            LOCAL_ORIGIN if _is_loopback(_host(self.environment)) else result.origin_url or ""
        )
        bearer = {"Authorization": f"Bearer {token}"}
        for _ in range(opts.origin_calls):
            if origin:
                with self.client.get(
                    f"{origin.rstrip('/')}/api/hello",
                    headers=bearer,
                    name="origin /api/hello",
                    catch_response=True,
                ) as resp:
                    if resp.status_code != 200:
                        resp.failure(f"origin {_answer(resp)}")
            gevent.sleep(opts.think_seconds * rng.uniform(0.5, 1.5))
        if plan == "leave_without_complete":
            return "left_active"
        with self.client.post(
            f"/rooms/{opts.room}/complete", headers=bearer, name="complete", catch_response=True
        ) as resp:
            if resp.status_code != 204:
                resp.failure(f"complete {_answer(resp)}")
                return "error"
        return "completed"


class Watcher(FastHttpUser):
    """One per run: reads the room state ten times a second (from the API, when --admin-host
    says where it is) and records each new version's admissions as of the commit that made them:
    the verdict judges a join's place against the admissions by then, and the visitors' own
    looks miss a state that lived less than a second."""

    host = LOCAL_API
    fixed_count = 1

    def on_start(self) -> None:
        _to_admin_host(self)
        self.version = -1

    def wait_time(self) -> float:
        return 0.1

    @task
    def watch(self) -> None:
        room = self.environment.parsed_options.room
        with self.client.get(
            f"/rooms/{room}/state", name="watch state", catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"state {_answer(resp)}")
                return
            doc = resp.json()
            if int(doc["version"]) > self.version:
                self.version = int(doc["version"])
                recorder.emit(
                    e="tick",
                    at=doc["updated_at"],
                    committed=doc.get("committed_at") or doc["updated_at"],
                    consumed=doc["consumed"],
                )


class Operator(FastHttpUser):
    """One per run (also in distributed mode): changes max_active on schedule, samples stats."""

    host = LOCAL_API
    fixed_count = 1

    def on_start(self) -> None:
        opts = self.environment.parsed_options
        self.key = opts.admin_key or os.environ.get("WAITINGROOM_ADMIN_KEY", "")
        self.started = time.time()
        _to_admin_host(self)
        changes = self.environment.parsed_options.max_active_changes
        self.changes = sorted(
            (float(s), int(m)) for s, m in (c.split(":") for c in changes.split(",") if c)
        )
        if not self.key:
            # said in the records: the verdict cannot then check max_active and says so
            recorder.emit(e="operator", problem="no admin key: no stats read, no changes made")
            return
        stats = self._stats()
        if stats:
            recorder.emit(e="config", max_active=stats["max_active"])

    def wait_time(self) -> float:
        # four samples a second: the verdict judges a join's place against the admissions by
        # then, and a big admission must not go unseen for a second (4 requests/s to the API)
        return 0.25

    def _stats(self) -> dict[str, Any] | None:
        room = self.environment.parsed_options.room
        with self.client.get(
            f"/admin/rooms/{room}/stats",
            headers={"Authorization": f"Bearer {self.key}"},
            name="admin stats",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"stats {_answer(resp)}")
                return None
            data: dict[str, Any] = resp.json()
            return data

    @task
    def operate(self) -> None:
        if not self.key:
            return
        room = self.environment.parsed_options.room
        elapsed = time.time() - self.started
        while self.changes and self.changes[0][0] <= elapsed:
            _, max_active = self.changes.pop(0)
            with self.client.put(
                f"/admin/rooms/{room}",
                json={"max_active": max_active},
                headers={"Authorization": f"Bearer {self.key}"},
                name="admin set max_active",
                catch_response=True,
            ) as resp:
                if resp.status_code == 200:
                    recorder.emit(e="config", max_active=max_active)
                else:
                    resp.failure(f"put room {_answer(resp)}")
        stats = self._stats()
        if stats:
            recorder.emit(
                e="stats",
                waiting=stats["waiting"],
                active=stats["active"],
                admitted_total=stats["admitted_total"],
                max_active=stats["max_active"],
            )


FIXED_USERS = 2  # the Operator and the Watcher, one each, besides the visitors


class Burst(LoadTestShape):
    """--burst-users within --burst-seconds, then --tail-users over --tail-seconds; stops when
    every visitor's journey is over, or at --max-seconds."""

    use_common_options = False

    def tick(self) -> tuple[int, float] | None:
        opts = self.runner.environment.parsed_options if self.runner else None
        if opts is None:
            return None
        t = self.get_run_time()
        burst, tail = opts.burst_users, opts.tail_users
        total = burst + tail
        if t > opts.max_seconds:
            return None
        spawn_done = t > opts.burst_seconds + opts.tail_seconds
        if spawn_done and recorder.ended >= total:
            return None
        fixed = FIXED_USERS
        if t < opts.burst_seconds:
            return burst + fixed, max(1.0, burst / max(opts.burst_seconds, 0.1))
        if t < opts.burst_seconds + opts.tail_seconds:
            done = (t - opts.burst_seconds) / max(opts.tail_seconds, 0.1)
            return burst + fixed + int(tail * done), max(1.0, tail / max(opts.tail_seconds, 0.1))
        return total + fixed, max(1.0, tail / max(opts.tail_seconds, 0.1))

"""`make dev`: the whole stack on this machine, stopped together on Ctrl-C.

DynamoDB Local (in memory), the API (uvicorn), the drainer loop, the demo origin behind the
guard, and the edge (nginx) in front of the API and the origin on one host, as CloudFront is in
AWS: each its own process, wired by environment variables exactly as in AWS. A visitor opens the
room on the edge, waits, and lands on the origin on the same host with the token cookie.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from pydantic import SecretStr

from devtools import dynamodb_local, edge
from waitingroom import bootstrap
from waitingroom.settings import ApiSettings, StoreSettings
from waitingroom.store import make_client
from waitingroom.table import ensure_table
from waitingroom.tokens import KeySet

DEV_DIR = dynamodb_local.PROJECT_ROOT / ".dev"
DEMO_ROOM = "demo"
# every child in a process group of its own: a Ctrl-C in the terminal reaches only this process,
# which stops them in order (a drainer interrupted mid-tick would print a traceback)
OWN_GROUP = 0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def origin_app() -> Any:
    """uvicorn --factory target for the demo origin (configured by DEMO_* variables)."""
    from devtools.demo_origin import create_app
    from origin_guard.settings import room_health_from_env

    jwks_url = os.environ["DEMO_JWKS_URL"]
    # the guard's own settings for a room that is down (origin_guard/README.md)
    health = room_health_from_env(os.environ, jwks_url)
    return create_app(
        jwks_url=jwks_url,
        issuer=os.environ.get("WAITINGROOM_ISSUER", "waitingroom"),
        rooms=os.environ.get("DEMO_ROOMS", DEMO_ROOM).split(","),
        waiting_room_url=os.environ["DEMO_WAITING_ROOM_URL"],
        room_health=health,
    )


def _wait_http(url: str, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our own localhost URL
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def run(
    port: int = 8080,
    origin_port: int = 8081,
    db_port: int | None = None,
    max_active: int = 50,
    edge_port: int | None = None,
) -> int:
    """Run the stack until Ctrl-C or SIGTERM; ports left out are free ones."""
    try:
        edge.find_nginx()
    except edge.NginxMissing as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    DEV_DIR.mkdir(exist_ok=True)
    db_port = db_port or dynamodb_local.free_port()
    edge_port = edge_port or dynamodb_local.free_port()
    admin_key = os.environ.get("WAITINGROOM_ADMIN_KEY") or secrets.token_urlsafe(24)
    keys_file = DEV_DIR / "signing-keys.json"
    keys_file.write_text(KeySet.generate(kid=f"dev-{int(time.time())}").to_json())
    keys_file.chmod(0o600)
    api_url = f"http://127.0.0.1:{port}"
    origin_url = f"http://127.0.0.1:{origin_port}"
    edge_url = f"http://127.0.0.1:{edge_port}"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
        "WAITINGROOM_DYNAMODB_ENDPOINT": f"http://127.0.0.1:{db_port}",
        "WAITINGROOM_TABLE": os.environ.get("WAITINGROOM_TABLE", "waitingroom"),
        "WAITINGROOM_COOKIE_SECURE": "false",
    }
    procs: list[subprocess.Popen[bytes]] = []

    def stop_all(*_: object) -> None:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    code = 0
    try:
        procs.append(dynamodb_local.start(db_port, process_group=OWN_GROUP))
        settings = StoreSettings(
            dynamodb_endpoint=env["WAITINGROOM_DYNAMODB_ENDPOINT"], table=env["WAITINGROOM_TABLE"]
        )
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        client = make_client(settings)
        ensure_table(client, settings.table)
        ticket_secret = secrets.token_urlsafe(32)
        _create_demo_room(settings, ticket_secret, edge_url, max_active)
        api_env = {
            **env,
            "WAITINGROOM_TICKET_SECRET": ticket_secret,
            "WAITINGROOM_ADMIN_KEY": admin_key,
            # behind the edge every caller comes from 127.0.0.1: the per-client limits key on
            # the address the edge appends to X-Forwarded-For (a caller that sends none, like
            # the load tests that call the API directly, is keyed on its own address)
            "WAITINGROOM_CLIENT_KEY": os.environ.get("WAITINGROOM_CLIENT_KEY", "forwarded_for"),
            "WAITINGROOM_TRUSTED_PROXIES": os.environ.get("WAITINGROOM_TRUSTED_PROXIES", "1"),
            # DynamoDB Local on a busy machine answers far slower than DynamoDB: locally a store
            # call may take 3 s (not 1 s), and a stopped store still gets its 503 within ~3 s
            "WAITINGROOM_STORE_READ_TIMEOUT": os.environ.get("WAITINGROOM_STORE_READ_TIMEOUT", "3"),
            "WAITINGROOM_STORE_BUDGET_SECONDS": os.environ.get(
                "WAITINGROOM_STORE_BUDGET_SECONDS", "3.5"
            ),
        }
        drainer_env = {
            **env,
            "WAITINGROOM_SIGNING_KEYS_FILE": str(keys_file),
            "WAITINGROOM_TICK_SECONDS": os.environ.get("WAITINGROOM_TICK_SECONDS", "2"),
        }
        origin_env = {
            **env,
            "DEMO_JWKS_URL": f"{api_url}/.well-known/jwks.json",
            # the guard adds the page the visitor asked for as ?return_to=
            "DEMO_WAITING_ROOM_URL": f"{edge_url}/rooms/{{room}}",
        }
        uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "--log-level", "warning"]
        procs.append(
            subprocess.Popen(
                [
                    *uvicorn,
                    "waitingroom.handler:local_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env=api_env,
                process_group=OWN_GROUP,
            )
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "waitingroom.drainer"],
                env=drainer_env,
                process_group=OWN_GROUP,
            )
        )
        _wait_http(f"{api_url}/health")
        _wait_http(f"{api_url}/.well-known/jwks.json")
        procs.append(
            subprocess.Popen(
                [
                    *uvicorn,
                    "devtools.devstack:origin_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(origin_port),
                ],
                env=origin_env,
                process_group=OWN_GROUP,
            )
        )
        _wait_http(f"{origin_url}/health")
        procs.append(
            edge.start(edge_port, api_url, origin_url, DEV_DIR / "edge", process_group=OWN_GROUP)
        )
        sys.stdout.write(
            f"""
waitingroom is up (Ctrl-C stops everything)

  open {edge_url}/rooms/{DEMO_ROOM}   (the waiting room; room "{DEMO_ROOM}", max_active {max_active})

  edge (nginx)      {edge_url}          /rooms/, /.well-known/ -> API (cached as the API says), the rest -> demo origin
  API               {api_url}          (OpenAPI: {api_url}/docs)
  demo origin       {origin_url}          (behind the guard: needs an admission token)
  DynamoDB Local    http://127.0.0.1:{db_port}
  admin key         {admin_key}
  edge access log   {DEV_DIR / "edge" / edge.ACCESS_LOG}   (JSON lines)

Try it (in another terminal, from this directory):
  export WAITINGROOM_URL={api_url} WAITINGROOM_ADMIN_KEY={admin_key}
  .venv/bin/waitingroom rooms stats {DEMO_ROOM} --watch   # the operators' CLI; Ctrl-C stops watching
  T=$(curl -s -X POST {edge_url}/rooms/{DEMO_ROOM}/join | python3 -c 'import json,sys; print(json.load(sys.stdin)["ticket"])')
  curl -s -i {edge_url}/rooms/{DEMO_ROOM}/state   # twice: X-Cache: Hit
  curl -s -H "Authorization: Bearer $T" {edge_url}/rooms/{DEMO_ROOM}/status
  curl -s -H "Authorization: Bearer $WAITINGROOM_ADMIN_KEY" {api_url}/admin/rooms/{DEMO_ROOM}/stats
"""  # noqa: E501
        )
        sys.stdout.flush()
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        failed = [p.args for p in procs if p.poll() is not None]
        sys.stderr.write(f"a process stopped unexpectedly: {failed}\n")
        code = 1
    except KeyboardInterrupt:
        sys.stdout.write("\nstopping…\n")
        sys.stdout.flush()
    finally:
        for signum in STOP_SIGNALS:  # a second Ctrl-C must not cut the stopping short
            signal.signal(signum, signal.SIG_IGN)
        stop_all()
    if code == 0:
        sys.stdout.write("stopped\n")
    return code


@contextlib.contextmanager
def _sigttou_ignored() -> Iterator[None]:
    """A process group not in the foreground may hand the terminal over only with SIGTTOU
    ignored (otherwise the kernel stops it)."""
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTTOU, previous)


def _hold_terminal() -> Callable[[], None]:
    """Become the terminal's foreground process group, alone; returns what gives it back.

    A Ctrl-C signals the terminal's whole foreground group: under `make dev` that includes
    make, which then dies of it (status 130) whatever the stack does. Holding the terminal, only
    this process hears it, stops what it started and exits 0, and make with it. Nothing changes
    without a terminal or in the background."""
    if not sys.stdin.isatty():
        return lambda: None
    fd = sys.stdin.fileno()
    try:
        before = os.tcgetpgrp(fd)
    except OSError:  # a terminal, but not this session's
        return lambda: None
    if before != os.getpgrp():
        return lambda: None
    try:
        if os.getpgrp() != os.getpid():  # not yet leading a group of its own (under make)
            os.setpgid(0, 0)
        with _sigttou_ignored():
            os.tcsetpgrp(fd, os.getpgrp())
    except OSError:
        with contextlib.suppress(OSError):
            os.setpgid(0, before)
        return lambda: None
    # suspended alone (Ctrl-Z), this process would leave make's shell waiting with no prompt
    signal.signal(signal.SIGTSTP, signal.SIG_IGN)

    def give_back() -> None:
        with _sigttou_ignored(), contextlib.suppress(OSError):
            os.tcsetpgrp(fd, before)

    return give_back


def _create_demo_room(
    store: StoreSettings, ticket_secret: str, origin_url: str, max_active: int
) -> None:
    """The demo room; its visitors are sent to `origin_url` (the edge) once admitted."""
    settings = ApiSettings(
        dynamodb_endpoint=store.dynamodb_endpoint,
        table=store.table,
        ticket_secret=SecretStr(ticket_secret),
    )
    bootstrap.build_service(settings).put_room(
        DEMO_ROOM, {"max_active": max_active, "origin_url": f"{origin_url}/"}
    )


def main() -> None:
    """`make dev`; the terminal is held here, not in `run`, which the load tests call too."""
    give_back_terminal = _hold_terminal()
    try:
        code = run(
            port=int(os.environ.get("PORT", "8080")),
            origin_port=int(os.environ.get("ORIGIN_PORT", "8081")),
            edge_port=int(os.environ.get("EDGE_PORT", "8000")),
            db_port=int(os.environ["DYNAMODB_PORT"]) if os.environ.get("DYNAMODB_PORT") else None,
        )
    finally:
        give_back_terminal()
    sys.exit(code)


if __name__ == "__main__":
    main()

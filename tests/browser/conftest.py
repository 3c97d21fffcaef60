"""The local stack (`python -m devtools.devstack`, the edge included) on free ports, and Debian's
chromium.

Started once per module; stopped with SIGTERM (devstack stops its own children). Nothing here
downloads a browser: `make setup` installs chromium through apt.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from devtools import dynamodb_local
from tests.browser.stack import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, STARTUP_SECONDS, Stack


def _wait_ready(stack: Stack, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(
                    f"the local stack exited with code {proc.returncode} while starting "
                    f"(is `make setup` done?):\n{stack.log_tail()}"
                )
            try:
                ok = (
                    client.get(f"{stack.api_url}/health").status_code == 200
                    and client.get(
                        f"{stack.api_url}/admin/rooms/demo/stats", headers=stack.admin
                    ).status_code
                    == 200
                    and client.get(f"{stack.origin_url}/health").status_code == 200
                    and client.get(f"{stack.edge_url}/rooms/demo").status_code == 200
                )
            except httpx.TransportError:
                ok = False
            if ok:
                return
            time.sleep(0.25)
    pytest.fail(f"the local stack was not ready within {STARTUP_SECONDS} s:\n{stack.log_tail()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what this fixture started
        proc.wait()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port, origin_port, edge_port, db_port = (
        dynamodb_local.free_port(),
        dynamodb_local.free_port(),
        dynamodb_local.free_port(),
        dynamodb_local.free_port(),
    )
    admin_key = secrets.token_urlsafe(24)
    stack = Stack(
        api_url=f"http://127.0.0.1:{port}",
        origin_url=f"http://127.0.0.1:{origin_port}",
        edge_url=f"http://127.0.0.1:{edge_port}",
        admin_key=admin_key,
        log=ARTIFACTS / "devstack.log",
    )
    env = {
        **os.environ,
        "PORT": str(port),
        "ORIGIN_PORT": str(origin_port),
        "EDGE_PORT": str(edge_port),
        "DYNAMODB_PORT": str(db_port),
        "WAITINGROOM_ADMIN_KEY": admin_key,
        "WAITINGROOM_TICK_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    with stack.log.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devtools.devstack"],
            cwd=dynamodb_local.PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_ready(stack, proc)
            yield stack
        finally:
            _stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make setup` (installs Debian's chromium with apt-get)"
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()

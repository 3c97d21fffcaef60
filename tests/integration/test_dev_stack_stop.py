"""Ctrl-C on `make dev` in a terminal: the stack says "stopped", prints no traceback, stops every
process it started, and make exits 0 (tried as a user would: in a pseudo-terminal, where Ctrl-C
signals the terminal's whole foreground process group, make included)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from devtools import dynamodb_local

pytestmark = pytest.mark.integration

ROOT = dynamodb_local.PROJECT_ROOT
UP = b"waitingroom is up"


def _read(fd: int, seconds: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], seconds)
    if not ready:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:  # the terminal's last process has gone
        return b""


def _ctrl_c_in_a_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str, float]:
    """Run `argv` as the foreground job of a new terminal, type Ctrl-C once the stack is up;
    returns the exit status, everything printed, and how long stopping took."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        ["setsid", "--ctty", *argv],  # a session whose controlling terminal is `terminal`
        cwd=ROOT,
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    out = b""
    try:
        deadline = time.monotonic() + 90
        while UP not in out and proc.poll() is None and time.monotonic() < deadline:
            out += _read(controller, 0.5)
        assert UP in out, out.decode(errors="replace")
        out += _read(controller, 1)
        os.write(controller, b"\x03")  # the terminal turns it into SIGINT
        pressed = time.monotonic()
        while proc.poll() is None and time.monotonic() < pressed + 30:
            out += _read(controller, 0.5)
        took = time.monotonic() - pressed
        while chunk := _read(controller, 0.2):
            out += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(controller)
    return proc.returncode, out.decode(errors="replace"), took


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.parametrize(
    "argv",
    [
        # -o: the suite already runs in the project's virtualenv; make must not rebuild it
        ["make", "--no-print-directory", "-o", ".venv/.installed-stamp", "dev"],
        [str(Path(".venv/bin/python")), "-m", "devtools.devstack"],
    ],
    ids=["make dev", "python -m devtools.devstack"],
)
def test_ctrl_c_stops_the_dev_stack_cleanly(argv: list[str]) -> None:
    ports = {
        name: str(dynamodb_local.free_port())
        for name in ("PORT", "ORIGIN_PORT", "EDGE_PORT", "DYNAMODB_PORT")
    }
    env = {**os.environ, **ports, "PYTHONUNBUFFERED": "1"}
    code, out, took = _ctrl_c_in_a_terminal(argv, env)

    assert code == 0, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert "make: ***" not in out, out
    assert out.rstrip().endswith("stopped"), out
    assert took < 15, out
    for name in ("PORT", "ORIGIN_PORT", "EDGE_PORT"):
        assert not _answers(f"http://127.0.0.1:{ports[name]}/health"), f"{name} still answers"

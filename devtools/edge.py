"""The local edge: Debian's nginx in front of the API and the demo origin, as CloudFront is in AWS.

Waiting visitors read two public documents (`/rooms/{room}/state`, `/rooms/{room}/slots/{slot}`)
that the edge answers from its cache; `make dev` and the tests put this edge in front so that what
reaches the API locally is what would reach it behind CloudFront. The configuration is the file
`devtools/edge/nginx.conf`; everything nginx writes (pid, logs, temp files, cache) goes under one
work directory, so it runs as an ordinary user and as root alike. The access log is one JSON
object a line (`access.log` in the work directory): a line with a non-empty `upstream_addr` is a
request that reached the API or the origin.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "edge" / "nginx.conf"
ACCESS_LOG = "access.log"
ERROR_LOG = "error.log"
_TEMP_DIRS = ("body", "proxy", "fastcgi", "uwsgi", "scgi")


class NginxMissing(Exception):
    """nginx is not installed: run `make setup` or `apt-get install nginx` (Debian's package)."""


def find_nginx() -> str:
    """Debian's nginx: on PATH, or in /usr/sbin (often not on an ordinary user's PATH)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise NginxMissing(
            "nginx is not installed: run `make setup`, or `sudo apt-get install nginx` "
            "(Debian's package; the local edge needs nothing else)"
        )
    return found


def _host_port(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise ValueError(f"expected http://host:port, got {url!r}")
    return f"{parts.hostname}:{parts.port}"


def render(port: int, api_url: str, origin_url: str, workdir: Path, cache: bool = True) -> str:
    """The configuration for this edge: the template with its {{placeholders}} filled in."""
    # As root, nginx would run its workers as `nobody`, who cannot write the work directory:
    # keep them as the current user. An ordinary user's nginx cannot switch users at all.
    user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
    values = {
        "user": user,
        "workdir": str(workdir),
        "port": str(port),
        "api": _host_port(api_url),
        "origin": _host_port(origin_url),
        "cache": "edge" if cache else "off",
    }
    text = TEMPLATE.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    if "{{" in text:
        raise ValueError(f"{TEMPLATE} has a placeholder this module does not fill")
    return text


def start(
    port: int,
    api_url: str,
    origin_url: str,
    workdir: Path,
    timeout: float = 15,
    cache: bool = True,
    process_group: int | None = None,
) -> subprocess.Popen[bytes]:
    """nginx in the foreground on 127.0.0.1:port, in front of `api_url` (`/rooms/`,
    `/.well-known/`) and `origin_url` (everything else), with an empty cache and access log;
    returns once the port answers. `cache=False` is the same proxy caching nothing (a
    baseline: every request reaches the API, logged alike); `process_group` as Popen's."""
    nginx = find_nginx()
    workdir = workdir.resolve()
    # a fresh cache and log each time: a cached answer from an earlier stack would be wrong
    shutil.rmtree(workdir / "cache", ignore_errors=True)
    (workdir / ACCESS_LOG).unlink(missing_ok=True)
    for d in _TEMP_DIRS:
        (workdir / "tmp" / d).mkdir(parents=True, exist_ok=True)
    (workdir / "cache").mkdir()
    conf = workdir / "nginx.conf"
    conf.write_text(render(port, api_url, origin_url, workdir, cache), encoding="utf-8")
    proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [
            nginx,
            "-p",
            f"{workdir}/",
            "-e",
            str(workdir / ERROR_LOG),
            "-c",
            str(conf),
            "-g",
            "daemon off;",
        ],
        stdin=subprocess.DEVNULL,
        process_group=process_group,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"nginx exited with code {proc.returncode}: see {workdir / ERROR_LOG}\n"
                + _tail(workdir / ERROR_LOG)
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise TimeoutError(f"nginx did not listen on port {port} within {timeout} s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Stop nginx (SIGTERM: fast shutdown of the master and its workers)."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no error log)"

"""The operator CLI against a real HTTP server (uvicorn on 127.0.0.1) and DynamoDB Local."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY, FakeClock
from waitingroom.cli import main
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.service import WaitingRoom

pytestmark = pytest.mark.integration


def run(capsys: pytest.CaptureFixture[str], url: str, *args: str, key: str = ADMIN_KEY) -> str:
    main(["--url", url, "--admin-key", key, *args])
    return capsys.readouterr().out


def test_operators_run_an_event_from_the_cli(
    server: str,
    service: WaitingRoom,
    drainer: Drainer,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = run(capsys, server, "--json", "rooms", "create", "gig", "--max-active", "2")
    assert json.loads(out)["max_active"] == 2
    for _ in range(10):
        service.join("gig", None)
    clock.advance(1 + SETTLE_DELAY_SECONDS)
    drainer.tick_room("gig")
    stats = json.loads(run(capsys, server, "--json", "rooms", "stats", "gig"))
    assert (stats["active"], stats["waiting"], stats["admitted_last_tick"]) == (2, 8, 2)

    # raising max_active shows in the very next tick
    run(capsys, server, "rooms", "set", "gig", "--max-active", "5")
    clock.advance(3)
    drainer.tick_room("gig")
    out = run(
        capsys, server, "rooms", "stats", "gig", "--watch", "--iterations", "2", "--interval", "0"
    )
    assert len(re.findall(r"^admitted_last_tick +3$", out, re.M)) == 2

    # pause: admissions stop
    assert "paused" in run(capsys, server, "rooms", "pause", "gig")
    run(capsys, server, "rooms", "set", "gig", "--max-active", "9")
    clock.advance(3)
    drainer.tick_room("gig")
    assert (
        json.loads(run(capsys, server, "--json", "rooms", "stats", "gig"))["admitted_last_tick"]
        == 0
    )

    # close: joins refused with a clear message
    assert "closed" in run(capsys, server, "rooms", "close", "gig")
    clock.advance(3)
    req = urllib.request.Request(f"{server}/rooms/gig/join", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=5)
    assert refused.value.code == 409
    assert "closed to new joins" in json.loads(refused.value.read())["message"]
    assert "drain" in run(capsys, server, "drain", "gig", "--once")


def test_a_wrong_admin_key_or_a_bad_value_is_a_clear_error(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--url", server, "--admin-key", "wrong", "rooms", "stats", "gig"])
    assert "error 401" in str(exc.value) and "admin key" in str(exc.value)
    with pytest.raises(SystemExit) as exc:
        main(
            ["--url", server, "--admin-key", ADMIN_KEY, "rooms", "create", "x", "--max-active", "0"]
        )
    assert "error 422" in str(exc.value) and "max_active" in str(exc.value)
    with pytest.raises(SystemExit) as exc:
        main(["--url", "http://127.0.0.1:9", "rooms", "stats", "gig"])
    assert "cannot reach" in str(exc.value)


def test_sigv4_signs_for_api_gateway_with_the_default_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from waitingroom.cli import _sigv4_headers

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    headers = _sigv4_headers(
        "PUT", "https://abc.execute-api.eu-west-1.amazonaws.com/admin/rooms/x", b"{}", "eu-west-1"
    )
    auth = headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in auth
    assert "X-Amz-Date" in headers


def test_every_room_setting_reaches_the_api_from_the_cli(
    server: str, service: WaitingRoom, capsys: pytest.CaptureFixture[str]
) -> None:
    service.binding_key = b"b" * 32
    flags = [
        *("--max-active", "3", "--max-admits-per-minute", "60", "--session-seconds", "900"),
        *("--pickup-seconds", "30", "--shards", "4", "--slot-seconds", "2"),
        *("--status", "paused", "--origin-url", "https://shop.example/"),
        *("--max-tickets-per-client", "2", "--max-joins-per-minute-per-client", "5"),
        *("--challenge-bits", "4", "--bind-tokens"),
    ]
    created = json.loads(run(capsys, server, "--json", "rooms", "create", "gate", *flags))
    expected = {
        "max_active": 3,
        "max_admits_per_minute": 60,
        "session_seconds": 900,
        "pickup_seconds": 30,
        "shards": 4,
        "slot_seconds": 2,
        "status": "paused",
        "origin_url": "https://shop.example/",
        "max_tickets_per_client": 2,
        "max_joins_per_minute_per_client": 5,
        "challenge_bits": 4,
        "bind_tokens": True,
    }
    assert {k: created[k] for k in expected} == expected
    cfg = service.config("gate")
    assert {k: getattr(cfg, k) for k in expected} == expected

    # set changes only what it is given; --no-bind-tokens turns binding off
    out = run(capsys, server, "--json", "rooms", "set", "gate", "--no-bind-tokens")
    assert json.loads(out) == {**created, "bind_tokens": False, "version": created["version"] + 1}

    # the API still decides what is allowed, and says why
    with pytest.raises(SystemExit) as exc:
        run(capsys, server, "rooms", "set", "gate", "--slot-seconds", "3")
    assert "error 409" in str(exc.value) and "slot_seconds is fixed" in str(exc.value)
    with pytest.raises(SystemExit) as exc:
        run(capsys, server, "rooms", "set", "gate", "--challenge-bits", "99")
    assert "error 422" in str(exc.value) and "challenge_bits" in str(exc.value)

    # a scheduled room from the CLI: --opens-at takes ISO 8601 or epoch seconds
    out = run(
        capsys, server, "--json", "rooms", "create", "later", "--max-active", "1",
        "--opens-at", "2100-01-01T00:00:00Z",
    )  # fmt: skip
    assert json.loads(out)["status"] == "scheduled"
    assert json.loads(out)["opens_at"] == 4102444800.0


def test_options_after_the_command_as_the_readme_shows(
    server: str, service: WaitingRoom, capsys: pytest.CaptureFixture[str]
) -> None:
    service.put_room("gig", {"max_active": 4})
    main(["rooms", "stats", "gig", "--json", "--url", server, "--admin-key", ADMIN_KEY])
    assert json.loads(capsys.readouterr().out)["max_active"] == 4
    main(["rooms", "set", "gig", "--max-active", "6", "--url", server, "--admin-key", ADMIN_KEY])
    assert service.config("gig").max_active == 6


def test_ctrl_c_stops_watching_with_stopped_and_exit_status_0(
    server: str, service: WaitingRoom
) -> None:
    service.put_room("gig", {"max_active": 4})
    command = ["rooms", "stats", "gig", "--watch", "--interval", "0.2"]
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "waitingroom.cli",
            *command,
            "--url",
            server,
            "--admin-key",
            ADMIN_KEY,
        ],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert watch.stdout is not None
        seen = [watch.stdout.readline() for _ in range(40)]
        assert any(line.startswith("max_active") for line in seen), seen
        watch.send_signal(signal.SIGINT)
        out = "".join(seen) + watch.communicate(timeout=10)[0]
    finally:
        watch.kill()
    assert watch.returncode == 0, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    assert out.rstrip().endswith("stopped")

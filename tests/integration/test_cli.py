"""The operator CLI against a real HTTP server (uvicorn on 127.0.0.1) and DynamoDB Local."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import uvicorn

from devtools import dynamodb_local
from tests.conftest import ADMIN_KEY, FakeClock, wired_app
from waitingroom.cli import main
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.service import WaitingRoom
from waitingroom.settings import ApiSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def server(service: WaitingRoom, api_settings: ApiSettings) -> Iterator[str]:
    app = wired_app(service, api_settings)
    port = dynamodb_local.free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


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

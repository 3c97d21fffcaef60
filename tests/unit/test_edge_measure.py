"""The edge measurement counts, from the proxy's access log, what reached the API."""

from __future__ import annotations

import json
from pathlib import Path

from loadtests.edge import Result, measure, verdicts


def _line(t: float, uri: str, cache: str, upstream: bool, method: str = "GET") -> str:
    return json.dumps(
        {
            "msec": t,
            "method": method,
            "uri": uri,
            "status": 200,
            "upstream_cache_status": cache,
            "upstream_addr": "127.0.0.1:8080" if upstream else "",
            "upstream_status": "200" if upstream else "",
        }
    )


def test_only_requests_with_an_upstream_reached_the_api(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    lines = [
        _line(10.0, "/rooms/r/state", "HIT", False),
        _line(10.1, "/rooms/r/state", "HIT", False),
        _line(10.2, "/rooms/r/state", "STALE", False),  # a visitor served stale...
        _line(10.2, "/rooms/r/state", "EXPIRED", True),  # ...while one refresh went upstream
        _line(10.3, "/rooms/r/slots/7", "MISS", True),
        _line(10.4, "/rooms/r/status", "BYPASS", True),
        _line(10.5, "/rooms/r/join", "", True, method="POST"),  # not a waiting request
        _line(10.6, "/rooms/other/state", "MISS", True),  # another room
        _line(30.0, "/rooms/r/state", "MISS", True),  # outside the window
    ]
    log.write_text("\n".join(lines) + "\n")
    r = measure(log, "r", 10.0, 20.0, waiting=100, mode="edge", visitors=100)
    assert r.api_waiting_rps == 0.3  # the refresh, the slot, the pickup over 10 s
    assert r.state_requests == 3
    assert r.state_hit_ratio == 1.0
    assert r.per_visitor_minute == round(0.3 * 60 / 100, 3)


def test_the_verdict_fails_when_the_api_load_grows_with_the_crowd() -> None:
    def edge(visitors: int, rps: float) -> Result:
        return Result("edge", visitors, visitors, 45, rps, rps * 60 / visitors, 10, 100, 0.99, 0)

    flat = verdicts([edge(500, 1.0), edge(2000, 1.2)])
    grows = verdicts([edge(500, 1.0), edge(2000, 4.0)])
    assert all(ok for _, ok in flat)
    assert not grows[-1][1]

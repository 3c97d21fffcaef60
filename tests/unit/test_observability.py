"""JSON logs without secrets; metrics batched per container and emitted as CloudWatch EMF."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import pytest

from waitingroom.observability import JsonFormatter, MetricsBuffer, emit_emf


def test_log_lines_are_json_with_extras_and_never_a_token() -> None:
    record = logging.LogRecord(
        "waitingroom.api", logging.INFO, __file__, 1, "picked up", None, None
    )
    record.room = "demo"
    record.token = "eyJhbGciOi.secret.sig"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "picked up" and line["room"] == "demo" and line["level"] == "INFO"
    assert line["token"] == "[redacted]"


Emitted = list[tuple[str, str, dict[str, float], dict[str, float]]]


def test_counts_are_held_and_emitted_at_most_once_per_interval() -> None:
    now = [0.0]
    out: Emitted = []

    def emit(service: str, room: str, c: Mapping[str, float], g: Mapping[str, float]) -> None:
        out.append((service, room, dict(c), dict(g)))

    m = MetricsBuffer("api", emit, flush_seconds=60, clock=lambda: now[0])
    for _ in range(1000):
        m.count("demo", "polls")
    m.count("other", "joins", 3)
    assert out == []  # a thousand polls, not a single line yet
    now[0] = 61
    m.count("demo", "polls")
    assert out == [
        ("api", "demo", {"polls": 1001.0}, {}),
        ("api", "other", {"joins": 3.0}, {}),
    ]


def test_a_failing_emitter_never_breaks_the_caller() -> None:
    def broken(service: str, room: str, c: Mapping[str, float], g: Mapping[str, float]) -> None:
        raise RuntimeError("stdout closed")

    m = MetricsBuffer("api", broken, flush_seconds=0)
    m.count("demo", "joins")  # flushes and swallows the error (logged)


def test_emf_documents_name_the_room_and_the_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    emit_emf("drainer", "demo", {"admissions": 50}, {"active": 50, "waiting": 450})
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "waitingroom"
    assert ["room", "service"] in directive["Dimensions"]
    assert {m["Name"] for m in directive["Metrics"]} == {"admissions", "active", "waiting"}
    assert (doc["room"], doc["admissions"], doc["waiting"]) == ("demo", [50.0], [450.0])

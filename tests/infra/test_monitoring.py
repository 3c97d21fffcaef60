"""Alarms, the dashboard and the drainer's failure destination, on the translated template.

The dashboard and the room alarms read the EMF metrics the code emits: the last tests run the
drainer and the API's use cases on DynamoDB Local, collect what they emit, and show that every
name the dashboard or an alarm looks for is among them, in the namespace and dimensions the
queries name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock
from tests.infra.checks import (
    alarm_action_problems,
    alarms_watching,
    dashboard_body,
    dashboard_metric_names,
    drainer_destination_problems,
    insights_alarms,
    resources_of,
)
from tests.infra.conftest import Translate
from tests.infra.test_template import broken_copy
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.observability import MetricsBuffer, emit_emf
from waitingroom.service import Admitted, WaitingRoom
from waitingroom.store import Store
from waitingroom.tokens import KeySet


def _alarm(cfn: dict[str, Any], name: str) -> dict[str, Any]:
    props: dict[str, Any] = cfn["Resources"][name]["Properties"]
    return props


def test_drainer_errors_and_silence_are_alarms(cfn: dict[str, Any]) -> None:
    errors = alarms_watching(cfn, "AWS/Lambda", "Errors", "DrainerFunction")
    silent = alarms_watching(cfn, "AWS/Lambda", "Invocations", "DrainerFunction")
    assert errors and silent
    quiet = _alarm(cfn, silent[0])
    # no run at all (not even a failed one) must fire it: missing data is a breach
    assert quiet["TreatMissingData"] == "breaching"
    assert quiet["ComparisonOperator"] == "LessThanThreshold"
    periods = {m["MetricStat"]["Period"] for m in quiet["Metrics"] if "MetricStat" in m}
    assert quiet["EvaluationPeriods"] * max(periods) <= 120  # two minutes without a good run


def test_a_room_admitting_nobody_while_people_wait_is_an_alarm(cfn: dict[str, Any]) -> None:
    [name] = insights_alarms(cfn, "stalled")
    alarm = _alarm(cfn, name)
    assert alarm["EvaluationPeriods"] * alarm["Metrics"][0]["Period"] <= 180
    assert alarm["Threshold"] == 1


@pytest.mark.parametrize(
    ("namespace", "metric", "target"),
    [
        ("AWS/Lambda", "Throttles", "ApiFunction"),
        ("AWS/Lambda", "Throttles", "GuardFunction"),
        ("AWS/DynamoDB", "WriteThrottleEvents", "Table"),
        ("AWS/DynamoDB", "ReadThrottleEvents", "Table"),
        ("AWS/ApiGateway", "5xx", "WaitingRoomApi"),
        ("AWS/Lambda", "Url5xxCount", "ApiFunction"),
        ("AWS/Lambda", "Errors", "GuardFunction"),
    ],
)
def test_throttles_5xx_and_guard_errors_are_alarms(
    cfn: dict[str, Any], namespace: str, metric: str, target: str
) -> None:
    assert alarms_watching(cfn, namespace, metric, target)


def test_api_gateway_429s_are_counted_from_its_access_log_and_alarmed(
    cfn: dict[str, Any],
) -> None:
    [stage] = [
        s["Properties"]
        for s in resources_of(cfn, "AWS::ApiGatewayV2::Stage").values()
        if s["Properties"]["ApiId"] == {"Ref": "WaitingRoomApi"}
    ]
    group = stage["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert '"status":"$context.status"' in stage["AccessLogSettings"]["Format"]
    [metric_filter] = [
        f["Properties"]
        for f in resources_of(cfn, "AWS::Logs::MetricFilter").values()
        if f["Properties"]["LogGroupName"] == {"Ref": group}
    ]
    assert metric_filter["FilterPattern"] == '{ $.status = "429" }'
    name = metric_filter["MetricTransformations"][0]["MetricName"]
    assert [
        a
        for a in resources_of(cfn, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == name
    ]


def test_every_alarm_notifies_the_topic_the_email_subscribes_to(cfn: dict[str, Any]) -> None:
    assert len(resources_of(cfn, "AWS::CloudWatch::Alarm")) >= 8
    assert alarm_action_problems(cfn, "AlarmTopic") == []


def test_the_drainers_failed_runs_go_to_a_destination(cfn: dict[str, Any]) -> None:
    assert drainer_destination_problems(cfn, "DrainerFunction") == []


def test_the_dashboard_shows_waiting_active_admissions_time_in_queue_and_errors(
    cfn: dict[str, Any],
) -> None:
    body = dashboard_body(cfn)
    titles = " ".join(w["properties"]["title"].lower() for w in body["widgets"])
    for wanted in ("waiting", "active", "admissions per minute", "time in queue", "errors"):
        assert wanted in titles
    alarms = next(w for w in body["widgets"] if w["type"] == "alarm")
    always = [
        a for a in resources_of(cfn, "AWS::CloudWatch::Alarm").values() if "Condition" not in a
    ]
    assert len(alarms["properties"]["alarms"]) == len(always)


# ------------------------------------------------------------------ broken copies
def test_an_alarm_that_notifies_nobody_is_caught(tmp_path: Path, translate_file: Translate) -> None:
    text = (
        "      TreatMissingData: breaching\n"
        "      AlarmActions: [!Ref AlarmTopic]\n"
        "      OKActions: [!Ref AlarmTopic]\n"
    )
    path = broken_copy(tmp_path, text, "      TreatMissingData: breaching\n")
    problems = alarm_action_problems(translate_file(path), "AlarmTopic")
    assert problems == [
        "DrainerNotRunningAlarm: AlarmActions does not notify AlarmTopic",
        "DrainerNotRunningAlarm: OKActions does not notify AlarmTopic",
    ]


def test_a_drainer_without_a_failure_destination_is_caught(
    tmp_path: Path, translate_file: Translate
) -> None:
    text = (
        "        DestinationConfig:\n"
        "          OnFailure:\n"
        "            Type: SQS\n"
        "            Destination: !GetAtt DrainerFailureQueue.Arn\n"
    )
    path = broken_copy(tmp_path, text, "")
    assert drainer_destination_problems(translate_file(path), "DrainerFunction") != []


def test_a_drainer_that_may_not_write_its_destination_is_caught(
    tmp_path: Path, translate_file: Translate
) -> None:
    path = broken_copy(tmp_path, "Action: sqs:SendMessage", "Action: sqs:GetQueueUrl")
    problems = drainer_destination_problems(translate_file(path), "DrainerFunction")
    assert problems == ["DrainerRole may not send to its OnFailure destination DrainerFailureQueue"]


# ------------------------------------------------------------------ what the code emits
class Recorded:
    """An Emit that keeps every (service, room, names) it is given."""

    def __init__(self) -> None:
        self.names: dict[str, set[str]] = {}

    def __call__(
        self, service: str, room: str, counts: Mapping[str, float], gauges: Mapping[str, float]
    ) -> None:
        self.names.setdefault(service, set()).update(counts, gauges)


@pytest.fixture
def emitted(store: Store, clock: FakeClock) -> dict[str, set[str]]:
    """A visitor's whole journey and two drainer ticks, with every metric recorded."""
    record = Recorded()
    api = MetricsBuffer("api", record, flush_seconds=0, clock=clock)
    svc = WaitingRoom(store, [b"x" * 32], issuer="waitingroom", clock=clock, metrics=api)
    drainer = Drainer(
        store,
        lambda: KeySet.generate("k"),
        issuer="waitingroom",
        clock=clock,
        metrics=MetricsBuffer("drainer", record, flush_seconds=0, clock=clock),
    )
    svc.put_room("demo", {"max_active": 1})
    tickets = [svc.join("demo", None).ticket for _ in range(3)]
    clock.advance(1 + SETTLE_DELAY_SECONDS)
    drainer.tick_room("demo")
    clock.advance(1.01)
    [admitted] = [r for t in tickets if isinstance(r := svc.poll("demo", t), Admitted)]
    svc.complete("demo", admitted.token)
    clock.advance(2)
    drainer.tick_room("demo")
    api.flush()
    return record.names


def test_the_dashboard_reads_only_metrics_the_code_emits(
    cfn: dict[str, Any], emitted: dict[str, set[str]]
) -> None:
    searched = dashboard_metric_names(dashboard_body(cfn))
    assert set(searched) == {"api", "drainer"}
    errors_only = {"errors_5xx", "unavailable"}  # counted when a request fails: none did here
    for service, names in searched.items():
        assert names - errors_only <= emitted[service], (service, names - emitted[service])


def test_the_stalled_gauge_the_alarm_reads_is_emitted_each_tick(
    emitted: dict[str, set[str]],
) -> None:
    assert "stalled" in emitted["drainer"]


def test_emf_documents_have_the_namespace_and_dimensions_the_queries_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emit_emf("drainer", "demo", {}, {"stalled": 1, "waiting": 5})
    document = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "waitingroom"
    assert sorted(directive["Dimensions"][0]) == ["room", "service"]
    assert document["service"] == "drainer" and document["room"] == "demo"
    assert document["stalled"] in (1, [1])

"""Least privilege that holds: what each function's role may write, against what its code writes.

The use cases run on DynamoDB Local with every write recorded (operation and partition key, from
botocore's own parameters); each write must be one the function's role allows, and the public
API's role must refuse every partition only the drainer or the operators write (the JWKS above
all). Broken copies of the template show the checks notice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock
from tests.infra.checks import least_privilege_problems, may_write, operator_policy_problems
from tests.infra.conftest import Translate
from tests.infra.test_template import broken_copy
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.service import Admitted, WaitingRoom
from waitingroom.settings import StoreSettings
from waitingroom.store import Store, make_client
from waitingroom.tokens import KeySet

Write = tuple[str, str]  # (IAM action, partition key)


def _pk(item: dict[str, Any]) -> str:
    return str(item["pk"]["S"])


class WriteRecorder:
    """botocore hook: every write as (dynamodb:<Action>, pk), transactions item by item."""

    def __init__(self) -> None:
        self.writes: set[Write] = set()

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        op = model.name
        if op == "PutItem":
            self.writes.add(("dynamodb:PutItem", _pk(params["Item"])))
        elif op in ("UpdateItem", "DeleteItem"):
            self.writes.add((f"dynamodb:{op}", _pk(params["Key"])))
        elif op == "TransactWriteItems":
            for item in params["TransactItems"]:
                for kind, body in item.items():
                    action = {"Put": "PutItem", "ConditionCheck": "ConditionCheckItem"}.get(
                        kind, f"{kind}Item"
                    )
                    self.writes.add((f"dynamodb:{action}", _pk(body.get("Item") or body["Key"])))
        elif op == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for r in requests:
                    item = r.get("PutRequest", {}).get("Item") or r["DeleteRequest"]["Key"]
                    self.writes.add(("dynamodb:BatchWriteItem", _pk(item)))

    def take(self) -> set[Write]:
        writes, self.writes = self.writes, set()
        return writes


@pytest.fixture
def recorded(
    dynamodb_endpoint: str, table: str, clock: FakeClock
) -> Iterator[tuple[Store, WriteRecorder]]:
    client = make_client(StoreSettings(dynamodb_endpoint=dynamodb_endpoint))
    recorder = WriteRecorder()
    client.meta.events.register("provide-client-params.dynamodb", recorder)
    yield Store(client, table, clock=clock), recorder
    client.meta.events.unregister("provide-client-params.dynamodb", recorder)


@pytest.fixture
def writes_by_part(
    recorded: tuple[Store, WriteRecorder], clock: FakeClock
) -> dict[str, set[Write]]:
    """The writes of operators, visitors and the drainer over a whole room's life."""
    store, recorder = recorded
    svc = WaitingRoom(store, [b"x" * 32], issuer="waitingroom", clock=clock, revocation_list=True)
    drainer = Drainer(store, lambda: KeySet.generate("k"), issuer="waitingroom", clock=clock)
    parts: dict[str, set[Write]] = {"operators": set(), "visitors": set(), "drainer": set()}

    svc.put_room("demo", {"max_active": 2, "max_tickets_per_client": 5})
    svc.set_status("demo", "paused", "ops")
    svc.set_status("demo", "open", "ops")
    svc.request_drain("demo", "ops")
    parts["operators"] |= recorder.take()

    tickets = [svc.join("demo", f"key-{i}", client="203.0.113.9").ticket for i in range(4)]
    store.put_unheld("demo", 0, 0, 99, "a join whose answer failed after its number was taken")
    parts["visitors"] |= recorder.take()
    clock.advance(1 + SETTLE_DELAY_SECONDS)
    drainer.refresh_keys()
    drainer.tick_room("demo")
    parts["drainer"] |= recorder.take()
    clock.advance(1.01)
    admitted = [r for t in tickets if isinstance(r := svc.poll("demo", t), Admitted)]
    assert admitted
    for a in admitted:
        svc.complete("demo", a.token)
    parts["visitors"] |= recorder.take()
    clock.advance(5)
    drainer.tick_room("demo")
    parts["drainer"] |= recorder.take()

    svc.put_room("idle", {"max_active": 5})
    parts["operators"] |= recorder.take()
    drainer.tick_room("idle")  # nobody waits: the drainer mints places ahead
    parts["drainer"] |= recorder.take()
    clock.advance(1.01)
    assert isinstance(svc.join("idle", None).status, Admitted)  # straight in: a claimed place
    parts["visitors"] |= recorder.take()

    svc.put_room("nolines", {"max_active": 50, "queueing": "reject"})
    parts["operators"] |= recorder.take()
    drainer.tick_room("nolines")
    parts["drainer"] |= recorder.take()
    clock.advance(1.01)
    for _ in range(11):  # the pool's places, then one of the free places given as a number
        svc.join("nolines", None)
    writes = recorder.take()
    assert ("dynamodb:UpdateItem", "ROOM#nolines#Q#FREE") in writes
    parts["visitors"] |= writes
    return parts


def _role(cfn: dict[str, Any], function: str) -> str:
    return str(cfn["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0])


def refused(cfn: dict[str, Any], function: str, writes: set[Write]) -> list[Write]:
    role = _role(cfn, function)
    return sorted(w for w in writes if not may_write(cfn, role, *w))


def test_each_function_may_write_what_its_code_writes(
    cfn: dict[str, Any], writes_by_part: dict[str, set[Write]]
) -> None:
    assert writes_by_part["visitors"] and writes_by_part["operators"]
    assert refused(cfn, "ApiFunction", writes_by_part["visitors"]) == []
    assert refused(cfn, "AdminFunction", writes_by_part["operators"]) == []
    assert refused(cfn, "DrainerFunction", writes_by_part["drainer"]) == []


def test_the_public_api_cannot_write_the_jwks_or_what_only_others_write(
    cfn: dict[str, Any], writes_by_part: dict[str, set[Write]]
) -> None:
    visitor_pks = {pk for _, pk in writes_by_part["visitors"]}
    others = {pk for part in ("drainer", "operators") for _, pk in writes_by_part[part]}
    only_others = others - visitor_pks
    assert {"KEYS", "ROOM#demo", "ROOM#demo#SLOTS", "ROOMS"} <= only_others
    role = _role(cfn, "ApiFunction")
    for action in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"):
        writable = [pk for pk in only_others if may_write(cfn, role, f"dynamodb:{action}", pk)]
        assert writable == [], action


def test_operators_cannot_write_the_jwks(cfn: dict[str, Any]) -> None:
    role = _role(cfn, "AdminFunction")
    assert not may_write(cfn, role, "dynamodb:PutItem", "KEYS")
    assert may_write(cfn, role, "dynamodb:PutItem", "ROOM#demo")


def test_least_privilege(cfn: dict[str, Any]) -> None:
    assert least_privilege_problems(cfn) == []


# ------------------------------------------------------------------ broken copies
API_WRITE_CONDITION = (
    "                Condition:\n"
    "                  ForAllValues:StringLike:\n"
    "                    dynamodb:LeadingKeys:\n"
    '                      - "ROOM#*#Q#*"\n'
)


def test_an_api_role_that_may_write_any_partition_is_caught(
    tmp_path: Path, translate_file: Translate
) -> None:
    text = Path(broken_copy(tmp_path, API_WRITE_CONDITION, "")).read_text()
    # the rest of the list, now a stray list item, goes too
    for pattern in ("ROOM#*#LEDGER#*", "ROOM#*#IDEM#*", "ROOM#*#CLIENT#*", "ROOM#*#REVOKED"):
        text = text.replace(f'                      - "{pattern}"\n', "", 1)
    path = tmp_path / "template.yaml"
    path.write_text(text)
    cfn = translate_file(path)
    assert may_write(cfn, _role(cfn, "ApiFunction"), "dynamodb:PutItem", "KEYS")


def test_an_api_role_that_may_write_room_state_is_caught(
    tmp_path: Path, translate_file: Translate
) -> None:
    path = broken_copy(tmp_path, '- "ROOM#*#REVOKED"', '- "ROOM#*"')
    cfn = translate_file(path)
    assert may_write(cfn, _role(cfn, "ApiFunction"), "dynamodb:PutItem", "ROOM#demo")


def test_a_secret_without_its_resource_policy_is_caught(
    tmp_path: Path, translate_file: Translate
) -> None:
    path = broken_copy(tmp_path, "      SecretId: !Ref SigningKeySecret\n", "      SecretId: x\n")
    problems = least_privilege_problems(translate_file(path))
    assert "SigningKeySecret: expected one resource policy, found 0" in problems


def test_a_secret_policy_that_lets_the_api_read_the_signing_keys_is_caught(
    tmp_path: Path, translate_file: Translate
) -> None:
    path = broken_copy(
        tmp_path,
        "                  - !GetAtt DrainerRole.Arn\n",
        "                  - !GetAtt DrainerRole.Arn\n                  - !GetAtt ApiRole.Arn\n",
    )
    problems = least_privilege_problems(translate_file(path))
    assert problems == [
        "SigningKeySecret: readable by roles ['ApiRole', 'DrainerRole'], want ['DrainerRole']"
    ]


def test_an_operator_policy_wider_than_admin_is_caught(
    tmp_path: Path, translate_file: Translate
) -> None:
    path = broken_copy(tmp_path, "${WaitingRoomApi}/*/*/admin/*", "${WaitingRoomApi}/*")
    assert operator_policy_problems(translate_file(path), "WaitingRoomApi") != []


def test_a_stack_without_an_operator_policy_output_is_caught(
    tmp_path: Path, translate_file: Translate
) -> None:
    path = broken_copy(tmp_path, "    Value: !Ref OperatorPolicy\n", "    Value: none\n")
    assert operator_policy_problems(translate_file(path), "WaitingRoomApi") == [
        "no managed operator policy is a stack output"
    ]

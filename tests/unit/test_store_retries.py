"""What the store tries again: only what is safe. A write that timed out may still land, so it
is sent once (one ambiguous failure, at most one unheld place); throttling and refused
connections prove nothing happened, reads change nothing, transactions carry a token."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from waitingroom.settings import ApiSettings, DrainerSettings
from waitingroom.store import Conflict, RetryPolicy, Store, StoreUnavailable

URL = "http://127.0.0.1:1"


def timeout() -> Exception:
    return ReadTimeoutError(endpoint_url=URL, error="read timed out")


def refused() -> Exception:
    return EndpointConnectionError(endpoint_url=URL)


def client_error(code: str, op: str = "UpdateItem") -> Exception:
    return ClientError({"Error": {"Code": code, "Message": "x"}}, op)


class Flaky:
    """A client whose calls fail with the given errors, in order, then succeed."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _answer(self, op: str, kwargs: dict[str, Any], ok: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((op, kwargs))
        if self.errors:
            raise self.errors.pop(0)
        return ok

    def update_item(self, **kw: Any) -> dict[str, Any]:
        return self._answer("update_item", kw, {"Attributes": {"n": {"N": "7"}}})

    def get_item(self, **kw: Any) -> dict[str, Any]:
        return self._answer("get_item", kw, {})

    def transact_write_items(self, **kw: Any) -> dict[str, Any]:
        return self._answer("transact_write_items", kw, {})


def store(client: Flaky, policy: RetryPolicy | None = None) -> tuple[Store, list[float]]:
    slept: list[float] = []
    s = Store(client, "t", retry=policy, sleep=slept.append)  # type: ignore[arg-type]
    return s, slept


def test_a_counter_bump_that_timed_out_is_sent_once_and_reported_ambiguous() -> None:
    client = Flaky(timeout(), timeout(), timeout())
    s, _ = store(client)
    with pytest.raises(StoreUnavailable) as caught:
        s.bump_counter("demo", 10, 0, 1)
    assert caught.value.ambiguous
    assert len(client.calls) == 1  # a second ADD would land twice: one more unheld place


@pytest.mark.parametrize("code", ["InternalServerError", "ServiceUnavailable"])
def test_a_500_on_a_counter_bump_is_ambiguous_too(code: str) -> None:
    client = Flaky(client_error(code))
    s, _ = store(client)
    with pytest.raises(StoreUnavailable) as caught:
        s.bump_counter("demo", 10, 0, 1)
    assert caught.value.ambiguous and len(client.calls) == 1


@pytest.mark.parametrize(
    "error", [client_error("ProvisionedThroughputExceededException"), refused()]
)
def test_a_bump_that_provably_did_nothing_is_tried_again(error: Exception) -> None:
    client = Flaky(error, error)
    s, slept = store(client)
    assert s.bump_counter("demo", 10, 0, 1) == 7
    assert len(client.calls) == 3 and len(slept) == 2
    assert all(0 <= w <= 1.0 for w in slept)


def test_throttling_past_the_attempts_is_unavailable_and_not_ambiguous() -> None:
    client = Flaky(*[client_error("ThrottlingException")] * 5)
    s, _ = store(client, RetryPolicy(attempts=3))
    with pytest.raises(StoreUnavailable) as caught:
        s.bump_counter("demo", 10, 0, 1)
    assert not caught.value.ambiguous
    assert len(client.calls) == 3


def test_a_read_that_timed_out_is_read_again() -> None:
    client = Flaky(timeout())
    s, _ = store(client)
    assert s.get_public_state("demo") is None
    assert len(client.calls) == 2


def test_no_attempt_starts_that_could_outlast_the_budget() -> None:
    """When a second attempt could hang past the budget, a timed-out read is not read again:
    the visitor gets its 503 at once instead of after a second timeout."""
    client = Flaky(timeout(), timeout())
    s, _ = store(client, RetryPolicy(attempts=3, budget_seconds=1.0, attempt_seconds=1.0))
    with pytest.raises(StoreUnavailable):
        s.get_public_state("demo")
    assert len(client.calls) == 1


def test_a_transaction_is_tried_again_with_the_same_idempotency_token() -> None:
    client = Flaky(timeout())
    s, _ = store(client)
    s._transact([{"Put": {"Item": {}}}])
    tokens = [kw["ClientRequestToken"] for _, kw in client.calls]
    assert len(tokens) == 2 and tokens[0] == tokens[1]  # DynamoDB applies it once


def test_a_lost_condition_is_a_conflict_at_once() -> None:
    client = Flaky(client_error("ConditionalCheckFailedException", "PutItem"))
    s, _ = store(client)
    with pytest.raises(Conflict):
        s.bump_counter("demo", 10, 0, 1)
    assert len(client.calls) == 1


def test_the_api_gives_up_sooner_than_the_drainer() -> None:
    api = ApiSettings(ticket_secret="x" * 16)  # type: ignore[arg-type]
    drainer = DrainerSettings(signing_keys="{}")  # type: ignore[arg-type]
    quick, patient = RetryPolicy.from_settings(api), RetryPolicy.from_settings(drainer)
    assert quick.budget_seconds <= 3 and quick.attempt_seconds <= 1.5
    assert patient.budget_seconds > quick.budget_seconds

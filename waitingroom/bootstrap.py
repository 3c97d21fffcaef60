"""The composition root: the one place settings, clients, store, service, drainer and app are
built. The Lambda handlers, the local stack and the tests build through here.

Every builder is a plain function of its settings and an optional store or clock (tests pass
their own). `lambda_api()` and `lambda_drainer()` are the only caches: one app or drainer per
Lambda container, built on the first invocation (never at import) and reused while it is warm.
The drainer's bundle has no web framework: the API's modules are imported inside its builders.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from waitingroom.drainer import Drainer
from waitingroom.observability import MetricsBuffer, emit_emf, emit_nothing
from waitingroom.settings import ApiSettings, DrainerSettings, StoreSettings
from waitingroom.store import RetryPolicy, Store, make_client
from waitingroom.tokens import KeySet

if TYPE_CHECKING:
    from fastapi import FastAPI
    from mangum import Mangum

    from waitingroom.service import WaitingRoom

log = logging.getLogger("waitingroom.bootstrap")
Clock = Callable[[], float]


def build_store(settings: StoreSettings, clock: Clock = time.time) -> Store:
    return Store(
        make_client(settings),
        settings.table,
        clock=clock,
        retry=RetryPolicy.from_settings(settings),
    )


def secrets_provider(settings: StoreSettings) -> SecretsProvider:
    import boto3

    return SecretsProvider(boto3_client=boto3.client("secretsmanager", region_name=settings.region))


# -- the API --------------------------------------------------------------------------------------


def ticket_secrets(settings: ApiSettings, provider: SecretsProvider | None = None) -> list[bytes]:
    """The ticket HMAC secrets, comma-separated: the first signs, all verify (rotation)."""
    if settings.ticket_secret is not None:
        raw = settings.ticket_secret.get_secret_value()
    else:
        assert settings.ticket_secret_id is not None  # the settings validator ensures one
        value = (provider or secrets_provider(settings)).get(settings.ticket_secret_id)
        raw = value.decode() if isinstance(value, bytes) else str(value)
    return [s.strip().encode() for s in raw.split(",") if s.strip()]


def build_service(
    settings: ApiSettings, store: Store | None = None, clock: Clock = time.time
) -> WaitingRoom:
    from waitingroom.service import WaitingRoom

    emit = emit_emf if settings.metrics_enabled() else emit_nothing
    return WaitingRoom(
        store or build_store(settings, clock),
        ticket_secrets(settings),
        issuer=settings.issuer,
        state_ttl=settings.state_cache_seconds,
        config_ttl=settings.config_cache_seconds,
        clock=clock,
        room_defaults=settings.room_defaults(),
        metrics=MetricsBuffer("api", emit, clock=clock),
        binding_key=(
            settings.binding_key.get_secret_value().encode() if settings.binding_key else None
        ),
        revocation_list=settings.revocation_list,
    )


def build_app(settings: ApiSettings | None = None, service: WaitingRoom | None = None) -> FastAPI:
    """The API app: from the environment's settings unless given."""
    from waitingroom.api import create_app

    settings = settings or ApiSettings()
    return create_app(service or build_service(settings), settings)


@cache
def lambda_api() -> Mangum:
    from mangum import Mangum

    from waitingroom.observability import configure_logging

    configure_logging()
    return Mangum(build_app(), lifespan="off")


# -- the drainer ----------------------------------------------------------------------------------


def signing_keys(settings: DrainerSettings, provider: SecretsProvider | None = None) -> KeySet:
    """The signing keys from the environment, a file, or Secrets Manager (generated on first use
    when the secret is empty, so a fresh deployment needs no manual key step)."""
    if settings.signing_keys is not None:
        return KeySet.from_json(settings.signing_keys.get_secret_value())
    if settings.signing_keys_file:
        return KeySet.from_json(Path(settings.signing_keys_file).read_text())
    assert settings.signing_keys_secret_id
    provider = provider or secrets_provider(settings)
    value = provider.get(settings.signing_keys_secret_id, force_fetch=True)
    text = (value.decode() if isinstance(value, bytes) else str(value or "")) or "{}"
    if json.loads(text).get("keys"):
        return KeySet.from_json(text)
    keyset = KeySet.generate(kid=time.strftime("k%Y%m%d%H%M%S", time.gmtime()))
    provider.set(settings.signing_keys_secret_id, keyset.to_json())
    log.info("generated a new signing key set", extra={"kid": keyset.active_kid})
    return keyset


def build_drainer(
    settings: DrainerSettings,
    store: Store | None = None,
    clock: Clock = time.time,
    owner: str | None = None,
) -> Drainer:
    emit = emit_emf if settings.metrics_enabled() else emit_nothing
    return Drainer(
        store or build_store(settings, clock),
        lambda: signing_keys(settings),
        issuer=settings.issuer,
        owner=owner,
        lease_seconds=settings.lease_seconds,
        clock=clock,
        metrics=MetricsBuffer("drainer", emit, flush_seconds=0, clock=clock),
    )


@cache
def lambda_drainer() -> tuple[DrainerSettings, Drainer]:
    settings = DrainerSettings()
    return settings, build_drainer(settings)


def forget_built() -> None:
    """Forget the container's built objects (tests that change the environment)."""
    lambda_api.cache_clear()
    lambda_drainer.cache_clear()


def built() -> dict[str, Any]:
    """How many of each cached object this container has built (tests)."""
    return {
        "api": lambda_api.cache_info().currsize,
        "drainer": lambda_drainer.cache_info().currsize,
    }

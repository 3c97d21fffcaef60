"""Settings, one class per deployable, read from WAITINGROOM_* variables by the composition
root (`waitingroom.bootstrap`) when it first builds what needs them."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from waitingroom import rooms


def _room_default(spec: rooms.RoomField[Any]) -> Any:
    """An optional WAITINGROOM_DEFAULT_<NAME> for a room setting, bounded like the setting."""
    assert spec.kind == "int", f"only integer room settings have an environment default ({spec})"
    return Field(default=None, ge=spec.ge, le=spec.le, description=spec.description)


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAITINGROOM_", extra="ignore")

    table: str = "waitingroom"
    # Set for DynamoDB Local (http://127.0.0.1:8000); unset in AWS.
    dynamodb_endpoint: str | None = None
    region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("WAITINGROOM_REGION", "AWS_REGION")
    )
    issuer: str = "waitingroom"
    # CloudWatch EMF metrics: "auto" emits them when running in Lambda.
    metrics: Literal["auto", "emf", "off"] = "auto"
    # How long one store call may take (waitingroom.store.dynamodb.table): each attempt's
    # connect and read timeouts, how many attempts, and the time after which no new attempt
    # starts. Only what provably did not happen is tried again (throttling, refused
    # connections), and reads. Patient here (the drainer); the API answers visitors sooner.
    store_connect_timeout: float = Field(default=1.0, gt=0, le=10)
    store_read_timeout: float = Field(default=3.0, gt=0, le=30)
    store_attempts: int = Field(default=3, ge=1, le=10)
    store_budget_seconds: float = Field(default=10.0, gt=0, le=60)

    def metrics_enabled(self) -> bool:
        if self.metrics == "auto":
            return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
        return self.metrics == "emf"


class ApiSettings(StoreSettings):
    # A visitor gets its 503 and Retry-After within about 2 s when the store does not answer
    # (its page retries later), rather than after botocore's 3 x 60 s.
    store_connect_timeout: float = Field(default=0.5, gt=0, le=10)
    store_read_timeout: float = Field(default=1.0, gt=0, le=30)
    store_budget_seconds: float = Field(default=2.5, gt=0, le=60)
    # Queue-ticket HMAC secrets, comma-separated: the first signs, all verify (rotation).
    ticket_secret: SecretStr | None = None
    # In AWS: the Secrets Manager secret holding the ticket secret(s).
    ticket_secret_id: str | None = None
    admin_auth: Literal["key", "iam"] = "key"
    admin_key: SecretStr | None = None
    cookie_secure: bool = True
    state_cache_seconds: float = Field(default=1.0, gt=0, le=10)
    config_cache_seconds: float = Field(default=2.0, gt=0, le=60)
    max_body_bytes: int = Field(default=16_384, ge=1024)
    # Room defaults for fields a new room leaves out (WAITINGROOM_DEFAULT_*; infra parameters),
    # with the bounds the API enforces on the same settings (waitingroom.rooms).
    default_max_active: int | None = _room_default(rooms.MAX_ACTIVE)
    default_max_admits_per_minute: int | None = _room_default(rooms.MAX_ADMITS_PER_MINUTE)
    default_session_seconds: int | None = _room_default(rooms.SESSION_SECONDS)
    default_pickup_seconds: int | None = _room_default(rooms.PICKUP_SECONDS)
    default_shards: int | None = _room_default(rooms.SHARDS)
    # Who a client is, for the per-client join limits of rooms that set them:
    #   source_ip     API Gateway's requestContext source IP (locally: the ASGI client address)
    #   forwarded_for the address `trusted_proxies` hops from the right of X-Forwarded-For
    #                 (each trusted proxy, e.g. CloudFront, appends the address it saw)
    #   cookie        the `client_cookie` cookie, set on first join (browsers only: a bot drops it)
    #   cloudfront_viewer  the CloudFront-Viewer-Address header (the viewer's ip:port) on a
    #                 request through the function URL, which only CloudFront can call (origin
    #                 access control); the source IP otherwise (API Gateway, locally)
    client_key: Literal["source_ip", "forwarded_for", "cookie", "cloudfront_viewer"] = "source_ip"
    trusted_proxies: int = Field(default=1, ge=1, le=10)
    client_cookie: str = Field(default="waitingroom_client", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # Failed admin key checks allowed per client and minute, per container (0: no limit).
    admin_max_failures_per_minute: int = Field(default=0, ge=0)
    # Shared with origin guards (GUARD_BINDING_KEY) in rooms with bind_tokens.
    binding_key: SecretStr | None = None
    # Complete also records the token in the room's revocation list (one more write per
    # complete), served at GET /rooms/{room}/revoked for guards with GUARD_REVOCATION_URL.
    revocation_list: bool = False

    def room_defaults(self) -> dict[str, int]:
        prefix = "default_"
        return {
            name[len(prefix) :]: value
            for name, value in self.model_dump().items()
            if name.startswith(prefix) and value is not None
        }

    @model_validator(mode="after")
    def _need_a_ticket_secret(self) -> ApiSettings:
        if self.ticket_secret is None and self.ticket_secret_id is None:
            raise ValueError(
                "set WAITINGROOM_TICKET_SECRET (local) or WAITINGROOM_TICKET_SECRET_ID (AWS)"
            )
        if self.ticket_secret is not None and len(self.ticket_secret.get_secret_value()) < 16:
            raise ValueError("WAITINGROOM_TICKET_SECRET must be at least 16 characters")
        if self.binding_key is not None and len(self.binding_key.get_secret_value()) < 16:
            raise ValueError("WAITINGROOM_BINDING_KEY must be at least 16 characters")
        return self


class DrainerSettings(StoreSettings):
    # The private signing keys (JSON, see tokens.KeySet), inline, in a file, or in Secrets
    # Manager. Only the drainer ever reads these.
    signing_keys: SecretStr | None = None
    signing_keys_file: str | None = None
    signing_keys_secret_id: str | None = None
    tick_seconds: float = Field(default=5.0, gt=0, le=60)
    run_seconds: float = Field(default=55.0, gt=0, le=900)
    lease_seconds: float = Field(default=30.0, gt=0, le=300)

    @model_validator(mode="after")
    def _need_signing_keys(self) -> DrainerSettings:
        if not (self.signing_keys or self.signing_keys_file or self.signing_keys_secret_id):
            raise ValueError(
                "set WAITINGROOM_SIGNING_KEYS, WAITINGROOM_SIGNING_KEYS_FILE or "
                "WAITINGROOM_SIGNING_KEYS_SECRET_ID"
            )
        return self

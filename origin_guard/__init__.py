"""Refuse origin requests that carry no valid admission token from the waiting room.

Install it alone (PyJWT is its only dependency) and either put `AdmissionGuardMiddleware` in
front of an ASGI app or deploy `origin_guard.authorizer.handler` as an API Gateway authorizer.
"""

from origin_guard.middleware import AdmissionGuardMiddleware
from origin_guard.settings import GuardSettings, get_settings, get_verifier
from origin_guard.verify import (
    AdmissionClaims,
    GuardConfigError,
    Reason,
    TokenRejected,
    TokenVerifier,
)

__all__ = [
    "AdmissionClaims",
    "AdmissionGuardMiddleware",
    "GuardConfigError",
    "GuardSettings",
    "Reason",
    "TokenRejected",
    "TokenVerifier",
    "get_settings",
    "get_verifier",
]

"""The one exception hierarchy of the service. Services raise these; only `insights.api` maps them to HTTP.

    LeaseoraError                 code            HTTP
    ├── InvalidInput              validation_error     422
    │   ├── IngestError
    │   └── SchemaMismatch
    ├── NotFound                  resource_not_found   404
    ├── AuthenticationFailed      authentication_error 401
    ├── PermissionDenied          permission_denied    403
    ├── RateLimited               rate_limit_exceeded  429
    ├── ServiceUnavailable        server_error         503
    ├── ModelNotAvailable         server_error         503
    └── Conflict                  conflict             409
"""

from __future__ import annotations

from typing import Any


class LeaseoraError(Exception):
    """Base of every error the service raises on purpose; carries a stable code and details."""

    code = "server_error"
    status = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidInput(LeaseoraError):
    """The caller's input is wrong; the message says which field and why."""

    code = "validation_error"
    status = 422


class IngestError(InvalidInput):
    """A file cannot be ingested at all (unreadable, not tabular, missing required columns, no usable row)."""


class SchemaMismatch(InvalidInput):
    """Input whose columns or types do not match what a trained model expects."""


class NotFound(LeaseoraError):
    """The resource does not exist, or belongs to another account (never say which)."""

    code = "resource_not_found"
    status = 404


class AuthenticationFailed(LeaseoraError):
    """No key, an unknown key or a revoked key."""

    code = "authentication_error"
    status = 401


class PermissionDenied(LeaseoraError):
    """The key is valid but lacks the permission the endpoint needs."""

    code = "permission_denied"
    status = 403


class RateLimited(LeaseoraError):
    """The key's plan allows no more requests right now."""

    code = "rate_limit_exceeded"
    status = 429

    def __init__(self, message: str, *, retry_after: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class ServiceUnavailable(LeaseoraError):
    """A backing service (Redis, the database) cannot be reached; the caller may retry."""

    code = "server_error"
    status = 503

    def __init__(self, message: str, *, retry_after: int = 5, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class ModelNotAvailable(LeaseoraError):
    """No champion model is registered yet (run `leaseora train`)."""

    code = "server_error"
    status = 503


class Conflict(LeaseoraError):
    """The action clashes with the current state (e.g. a nightly run is already in progress)."""

    code = "conflict"
    status = 409

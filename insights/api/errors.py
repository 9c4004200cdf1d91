"""The platform's error format, for every error the API returns:

    {"success": false, "error": {"code": "...", "message": "...", "details": {...}}}

Never a stack trace: unexpected exceptions are logged and answered with `server_error`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from insights.errors import LeaseoraError, RateLimited, ServiceUnavailable

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "validation_error",
    401: "authentication_error",
    403: "permission_denied",
    404: "resource_not_found",
    405: "validation_error",  # the platform's codes have no other for a method the path does not take
    409: "conflict",
    413: "validation_error",
    415: "validation_error",
    422: "validation_error",
    429: "rate_limit_exceeded",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The platform's error envelope."""
    return {"success": False, "error": {"code": code, "message": message, "details": details or {}}}


def _leaseora_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LeaseoraError)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited | ServiceUnavailable):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status, headers=headers)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = []
    for item in exc.errors():
        location = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        fields.append({"field": location, "message": item.get("msg", "invalid"), "type": item.get("type")})
    message = "; ".join(f"{f['field'] or 'request'}: {f['message']}" for f in fields) or "invalid request"
    return JSONResponse(error_body("validation_error", message, {"errors": fields}), status_code=422)


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "server_error")
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


def _unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(error_body("server_error", "internal error; it has been logged"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the platform's format."""
    app.add_exception_handler(LeaseoraError, _leaseora_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)

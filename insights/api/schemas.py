"""Request and response models of the API (documented in OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ErrorDetail(BaseModel):
    """The error object of the platform's error format."""

    code: str = Field(examples=["validation_error"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    """`{"success": false, "error": {...}}`, the shape of every error."""

    success: Literal[False] = False
    error: ErrorDetail


class QueryIn(BaseModel):
    """A natural-language question, optionally with a webhook for the finished answer."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=2000, examples=["What is the optimal rent price for a 2-bedroom apartment in Berlin?"])
    webhook_url: str | None = Field(default=None, max_length=2048, examples=["https://example.com/hooks/leaseora"])

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must contain text")
        return value.strip()


class QueryAccepted(BaseModel):
    """202 answer of `POST /ai/query`."""

    status: Literal["Processing query..."] = "Processing query..."
    query_id: str
    status_url: str


class QueryError(BaseModel):
    """Why a query failed."""

    code: str
    message: str


class QueryStatus(BaseModel):
    """A query's state, with its answer once `completed` or its error once `failed`."""

    query_id: str
    query: str
    status: Literal["queued", "processing", "completed", "failed"]
    created_at: str | None = None
    completed_at: str | None = None
    interpretation: dict[str, Any] | None = None
    answer: str | None = None
    result: dict[str, Any] | None = None
    confidence_score: float | None = None
    model_version: str | None = None
    sources: list[Any] | None = None
    error: QueryError | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing, invalid or revoked API key"},
    403: {"model": ErrorResponse, "description": "The key lacks the permission"},
    422: {"model": ErrorResponse, "description": "Invalid input"},
    429: {"model": ErrorResponse, "description": "Rate limit exceeded (see Retry-After)"},
}

"""Request and response models of the API (documented in OpenAPI)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def refuse_nul(value: Any) -> Any:
    """`value` (raw request JSON) unchanged; ValueError when a text in it holds a NUL character, which
    PostgreSQL cannot store: refused here, it cannot fail a database write shared with other requests."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters (\\u0000)")
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key)
            refuse_nul(item)
    elif isinstance(value, list):
        for item in value:
            refuse_nul(item)
    return value


class ErrorDetail(BaseModel):
    """The error object of the platform's error format."""

    code: str = Field(examples=["validation_error"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    """`{"success": false, "error": {...}}`, the shape of every error."""

    success: Literal[False] = False
    error: ErrorDetail


def refuse_bool(value: Any) -> Any:
    """`value` unchanged; ValueError for true/false, which pydantic would otherwise take as the number 1 or 0."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


class TextInput(BaseModel):
    """A request model whose texts may not hold NUL characters (see `refuse_nul`)."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        return refuse_nul(data)


class QueryIn(TextInput):
    """A natural-language question, optionally with a webhook for the finished answer."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=2000, examples=["What is the optimal rent price for a 2-bedroom apartment in Berlin?"])
    webhook_url: str | None = Field(default=None, max_length=2048, examples=["https://example.com/hooks/leaseora"])

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        # Spaces and invisible characters (zero-width spaces, joiners, byte-order marks) are no question.
        if not any(ch.isprintable() and not ch.isspace() for ch in value):
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


class PropertyFeaturesIn(TextInput):
    """The canonical property features with their bounds, shared by properties and listings.

    Numbers must be finite: Python's JSON reader accepts `NaN` and `Infinity`, which are no rents or sizes.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    city: str = Field(min_length=1, max_length=128, examples=["Berlin"])
    country: str | None = Field(default=None, max_length=64)
    district: str | None = Field(default=None, max_length=128)
    postcode: str | None = Field(default=None, max_length=32)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    property_type: str | None = Field(default=None, max_length=64, examples=["apartment"])
    bedrooms: float | None = Field(default=None, ge=0, le=30)
    rooms: float | None = Field(default=None, ge=0, le=60)
    bathrooms: float | None = Field(default=None, ge=0, le=30)
    size_sqm: float | None = Field(default=None, gt=5, le=2000)
    floor: float | None = Field(default=None, ge=-5, le=300)
    total_floors: float | None = Field(default=None, ge=0, le=300)
    year_built: float | None = Field(default=None, ge=1000, le=2100)
    furnished: bool | None = None
    parking: bool | None = None
    balcony: bool | None = None
    elevator: bool | None = None
    pets_allowed: bool | None = None

    @field_validator("latitude", "longitude", "bedrooms", "rooms", "bathrooms", "size_sqm", "floor", "total_floors",
                     "year_built", mode="before")
    @classmethod
    def _number_not_bool(cls, value: Any) -> Any:
        return refuse_bool(value)


class PropertyIn(PropertyFeaturesIn):
    """One property of the caller's portfolio, in the canonical schema (only `property_id` and `city` required)."""

    model_config = ConfigDict(extra="forbid")

    property_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", examples=["prop_12345"])
    extra: dict[str, str | float | bool | None] = Field(default_factory=dict, max_length=100)


class PropertiesIn(BaseModel):
    """A batch of properties to create or update."""

    model_config = ConfigDict(extra="forbid")

    properties: list[PropertyIn] = Field(min_length=1, max_length=1000)

    @field_validator("properties")
    @classmethod
    def _one_row_per_id(cls, value: list[PropertyIn]) -> list[PropertyIn]:
        first: dict[str, int] = {}
        for i, row in enumerate(value):
            if row.property_id in first:
                raise ValueError(f"property_id {row.property_id!r} is given twice (items {first[row.property_id]} and {i}); "
                                 "send each property once")
            first[row.property_id] = i
        return value


class ListingIn(PropertyFeaturesIn):
    """One rent observation (a unit offered or let at a monthly rent), in the canonical schema."""

    model_config = ConfigDict(extra="forbid")

    listing_id: str | None = Field(default=None, max_length=128)
    property_id: str | None = Field(default=None, max_length=128)
    listed_at: date | None = None
    monthly_rent: float = Field(gt=0, examples=[1450])
    currency: str | None = Field(default=None, min_length=3, max_length=3, examples=["EUR"])

    @field_validator("monthly_rent", mode="before")
    @classmethod
    def _rent_not_bool(cls, value: Any) -> Any:
        return refuse_bool(value)


class ListingsIn(BaseModel):
    """A batch of rent observations for the next nightly run to ingest."""

    model_config = ConfigDict(extra="forbid")

    listings: list[ListingIn] = Field(min_length=1, max_length=10_000)

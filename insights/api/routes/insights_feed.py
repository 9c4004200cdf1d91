"""`GET /ai/insights`: the public market insights feed (no authentication)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from insights import defaults
from insights.api.feed_cache import FeedParams
from insights.api.schemas import ErrorResponse

router = APIRouter(prefix="/ai", tags=["insights"])
NO_NUL = r"^[^\x00]*$"  # PostgreSQL cannot compare with a text holding NUL

CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=300"
"""Insights change once per publish (nightly): clients and proxies may keep a page for a minute."""


class FeedInsight(BaseModel):
    """One published market insight."""

    id: int
    insight: str = Field(examples=["Berlin rental market showing 3.2% growth year over year"])
    confidence_score: float = Field(ge=0, le=1, description="Calibrated probability that the claim is true")
    created_at: str = Field(description="ISO 8601, UTC")
    kind: str
    city: str | None
    country: str | None
    segment: str | None
    metric: str
    value: float | None
    low: float | None
    high: float | None
    unit: str | None
    period_start: str | None
    period_end: str | None
    sample_size: int
    direction: str | None = Field(description="up, down or flat")
    method: str | None


class FeedMeta(BaseModel):
    """The platform's pagination block."""

    current_page: int
    total_pages: int
    total_count: int
    limit: int


class FeedPage(BaseModel):
    """A page of the feed, returned when `page` is given."""

    success: bool = True
    data: list[FeedInsight]
    meta: FeedMeta


@router.get(
    "/insights",
    summary="Published market insights, newest first",
    response_model=list[FeedInsight] | FeedPage,
    responses={
        200: {"description": "A JSON list of insights; with `page`, `{success, data, meta}`."},
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
        422: {"model": ErrorResponse, "description": "Invalid parameters"},
    },
)
async def list_insights(
    request: Request,
    page: Annotated[int | None, Query(ge=1, le=100_000, description="Page number; adds the meta block")] = None,
    limit: Annotated[int, Query(ge=1, le=defaults.FEED_MAX_PAGE_SIZE)] = defaults.FEED_PAGE_SIZE,
    city: Annotated[str | None, Query(min_length=1, max_length=128, pattern=NO_NUL)] = None,
    kind: Annotated[str | None, Query(min_length=1, max_length=64, pattern=NO_NUL)] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
) -> Any:
    """Served from a cache that each publish refreshes, with ETag/If-None-Match and Cache-Control.

    `async` on purpose: a warm page is answered on the event loop without a thread hop or any I/O.
    """
    params = FeedParams(page=page, limit=limit, city=city, kind=kind, min_confidence=min_confidence)
    cache = request.app.state.feed_cache
    rendered = cache.lookup(params)
    if rendered is None:  # the blocking part (Redis, database) runs off the event loop
        runtime = request.app.state.runtime
        rendered = await run_in_threadpool(cache.load, runtime.session_factory, runtime.redis, params)
    headers = {"ETag": rendered.etag, "Cache-Control": CACHE_CONTROL}
    if _matches(request.headers.get("if-none-match"), rendered.etag):
        return Response(status_code=304, headers=headers)
    return Response(content=rendered.body, media_type="application/json", headers=headers)


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = {part.strip().removeprefix("W/") for part in header.split(",")}
    return etag in candidates or "*" in candidates

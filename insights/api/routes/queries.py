"""`POST /ai/query` (accepted at once, worked off by an RQ worker) and `GET /ai/query/{id}`."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Request, Response

from insights.api.deps import AuthFirstRoute, RuntimeDep, requires
from insights.api.schemas import ERROR_RESPONSES, ErrorResponse, QueryAccepted, QueryIn, QueryStatus
from insights.services.keys import Principal
from insights.services.webhooks import validate_webhook_url
from insights.storage import queries_repo
from insights.worker.enqueue import job_running

#: A question is at most 2,000 characters and a webhook URL 2,048: a body larger than this is not a query.
MAX_QUERY_BODY_BYTES = 64 * 1024

router = APIRouter(prefix="/ai", tags=["queries"], route_class=AuthFirstRoute)
QueryCaller = Annotated[Principal, requires("ai:query")]


@router.post(
    "/query",
    status_code=202,
    response_model=QueryAccepted,
    responses={**ERROR_RESPONSES, 503: {"model": ErrorResponse, "description": "Queue unavailable; retry later"}},
    summary="Ask a question in natural language; the answer is computed asynchronously",
)
async def post_query(body: QueryIn, caller: QueryCaller, request: Request, response: Response) -> QueryAccepted:
    """Record the query, enqueue it, and answer 202 with where to find the result.

    The hot path of the API, measured in benchmarks/bench_query.py: the key check (cached) and the
    rate limiter (asyncio Redis) on the event loop, before the body is read (`AuthFirstRoute`), then
    the query joins the intake's next group (one commit and one Redis round trip for all the queries
    arriving together).
    """
    webhook = validate_webhook_url(body.webhook_url) if body.webhook_url else None
    future = request.app.state.intake.submit(account_id=caller.account_id, text=body.query, webhook_url=webhook)
    query_id = await asyncio.wrap_future(future)
    status_url = f"/ai/query/{query_id}"
    response.headers["Location"] = status_url
    return QueryAccepted(query_id=query_id, status_url=status_url)


@router.get(
    "/query/{query_id}",
    response_model=QueryStatus,
    response_model_exclude_none=True,
    responses={**ERROR_RESPONSES, 404: {"model": ErrorResponse, "description": "No such query for this account"}},
    summary="A query's status and, once completed, its answer",
)
def get_query(query_id: str, caller: QueryCaller, runtime: RuntimeDep) -> dict:
    """`queued`, `processing` (a worker has it), `completed` (with the answer) or `failed` (with the reason)."""
    with runtime.session_factory() as session:
        record = queries_repo.get_query(session, query_id=query_id, account_id=caller.account_id)
    running = record.status not in queries_repo.FINISHED and job_running(runtime.redis, record.id)
    return queries_repo.query_to_dict(record, running=running)

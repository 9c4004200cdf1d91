"""Repository functions for natural-language queries (keyword-only, typed)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from insights.errors import NotFound
from insights.storage.tables import QueryRecord, WebhookEvent, iso_utc, utcnow


def new_query_id() -> str:
    """A public, unguessable query id."""
    return f"q_{uuid.uuid4().hex}"


def create_query(session: Session, *, account_id: int | None, text: str, webhook_url: str | None) -> QueryRecord:
    """Record an accepted query as `queued` (committed, so it survives a Redis failure)."""
    record = QueryRecord(id=new_query_id(), account_id=account_id, text=text, status="queued", webhook_url=webhook_url)
    session.add(record)
    session.commit()
    return record


def get_query(session: Session, *, query_id: str, account_id: int | None) -> QueryRecord:
    """The account's query; another account's query is `NotFound`, never revealed."""
    record = session.get(QueryRecord, query_id) if "\x00" not in query_id else None  # PostgreSQL refuses NUL
    if record is None or (account_id is not None and record.account_id != account_id):
        raise NotFound(f"query {query_id!r} not found")
    return record


@dataclass(frozen=True)
class Pending:
    """What a worker needs of a query it is about to answer."""

    text: str
    webhook_url: str | None
    account_id: int | None


#: Statuses after which a query never changes again.
FINISHED = ("completed", "failed")
_QUERIES = QueryRecord.__table__
#: Core statement (compiled once, cached by SQLAlchemy): the ORM's bulk-update path costs about three
#: times as much per call, and this write is on every query's path. The status test is spelt as two
#: comparisons rather than NOT IN, whose expanding parameter SQLAlchemy re-renders on every execution.
_STORE_ANSWER = (
    _QUERIES.update()
    .where(_QUERIES.c.id == bindparam("query_id"), *(_QUERIES.c.status != s for s in FINISHED))
    .values(status="completed", interpretation=bindparam("interpretation"), answer=bindparam("answer"),
            result=bindparam("result"), confidence_score=bindparam("confidence_score"),
            model_version=bindparam("model_version"), sources=bindparam("sources"), error_code=None,
            error_message=None, attempts=bindparam("attempts"), started_at=bindparam("started_at"),
            completed_at=bindparam("completed_at"))
)


def pending_query(session: Session, *, query_id: str) -> Pending | None:
    """The text, webhook and account of a query still to be answered; None when it is finished or gone."""
    row = session.execute(
        select(QueryRecord.text, QueryRecord.webhook_url, QueryRecord.account_id)
        .where(QueryRecord.id == query_id, QueryRecord.status.not_in(FINISHED))
    ).one_or_none()
    return None if row is None else Pending(text=row.text, webhook_url=row.webhook_url, account_id=row.account_id)


def mark_completed(session: Session | Connection, *, query_id: str, payload: dict[str, Any], started_at: datetime | None = None,
                   attempts: int = 1) -> bool:
    """Store a finished answer (interpretation, answer, result, confidence, model version, sources).

    One UPDATE of a query not yet finished; False when another attempt finished it first (the
    answer is then not stored twice and the caller sends no second webhook). Takes a session or,
    cheaper (the worker does this), a plain connection: the write needs no ORM state.
    """
    stored = session.execute(_STORE_ANSWER, {
        "query_id": query_id,
        "interpretation": payload.get("interpretation"),
        "answer": payload.get("answer"),
        "result": payload.get("result"),
        "confidence_score": payload.get("confidence_score"),
        "model_version": payload.get("model_version"),
        "sources": payload.get("sources"),
        "attempts": attempts,
        "started_at": started_at,
        "completed_at": utcnow(),
    }).rowcount
    session.commit()
    return stored > 0


def mark_failed(session: Session, *, query_id: str, code: str, message: str, final: bool = True,
                attempts: int | None = None) -> bool:
    """Record a failure: `failed` when no retry is left, else back to `queued` with the last error kept.

    False when the query was already completed (a completed answer is never overwritten).
    """
    values: dict[str, Any] = {"status": "failed" if final else "queued", "error_code": code,
                              "error_message": message[:2000], "completed_at": utcnow() if final else None}
    if attempts is not None:
        values["attempts"] = attempts
    stored = session.execute(
        update(QueryRecord).where(QueryRecord.id == query_id, QueryRecord.status != "completed").values(**values)
    ).rowcount
    session.commit()
    return stored > 0


def queued_query_ids(session: Session, *, older_than_seconds: float) -> list[str]:
    """Queries not finished after a while: candidates for re-enqueueing after an outage."""
    from datetime import timedelta

    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    rows = session.scalars(
        select(QueryRecord.id).where(QueryRecord.status.not_in(FINISHED), QueryRecord.created_at < cutoff)
    )
    return list(rows)


def add_webhook_event(session: Session, *, query_id: str, url: str) -> WebhookEvent:
    """Record a webhook delivery to be made for a finished query."""
    event = WebhookEvent(query_id=query_id, url=url, status="pending")
    session.add(event)
    session.commit()
    return event


def query_to_dict(record: QueryRecord, *, running: bool = False) -> dict[str, Any]:
    """The public shape of a query: status, and the answer once completed or the error once failed.

    The database holds `queued` until a worker stores the outcome; `running` (a worker has the job,
    as RQ reports it) turns a waiting query into `processing`.
    """
    body: dict[str, Any] = {
        "query_id": record.id,
        "query": record.text,
        "status": "processing" if running and record.status not in FINISHED else record.status,
        "created_at": iso_utc(record.created_at),
    }
    if record.status == "completed":
        body.update(
            completed_at=iso_utc(record.completed_at),
            interpretation=record.interpretation,
            answer=record.answer,
            result=record.result,
            confidence_score=record.confidence_score,
            model_version=record.model_version,
            sources=record.sources,
        )
    elif record.status == "failed":
        body["error"] = {"code": record.error_code or "server_error", "message": record.error_message or "failed"}
    return body

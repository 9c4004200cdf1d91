"""Repository functions for natural-language queries (keyword-only, typed)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
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
    record = session.get(QueryRecord, query_id)
    if record is None or (account_id is not None and record.account_id != account_id):
        raise NotFound(f"query {query_id!r} not found")
    return record


@dataclass(frozen=True)
class Started:
    """What a worker needs of a query it starts."""

    text: str
    webhook_url: str | None
    account_id: int | None


def mark_processing(session: Session, *, query_id: str) -> Started | None:
    """Move a query to `processing` and count the attempt, in one statement; None when it is finished or gone."""
    row = session.execute(
        update(QueryRecord)
        .where(QueryRecord.id == query_id, QueryRecord.status.not_in(("completed", "failed")))
        .values(status="processing", attempts=QueryRecord.attempts + 1, started_at=utcnow())
        .returning(QueryRecord.text, QueryRecord.webhook_url, QueryRecord.account_id)
    ).one_or_none()
    session.commit()
    return None if row is None else Started(text=row.text, webhook_url=row.webhook_url, account_id=row.account_id)


def mark_completed(session: Session, *, query_id: str, payload: dict[str, Any]) -> None:
    """Store a finished answer (interpretation, answer, result, confidence, model version, sources)."""
    session.execute(
        update(QueryRecord)
        .where(QueryRecord.id == query_id)
        .values(
            status="completed",
            interpretation=payload.get("interpretation"),
            answer=payload.get("answer"),
            result=payload.get("result"),
            confidence_score=payload.get("confidence_score"),
            model_version=payload.get("model_version"),
            sources=payload.get("sources"),
            error_code=None,
            error_message=None,
            completed_at=utcnow(),
        )
    )
    session.commit()


def mark_failed(session: Session, *, query_id: str, code: str, message: str, final: bool = True) -> None:
    """Record a failure: `failed` when no retry is left, else back to `queued` with the last error kept."""
    session.execute(
        update(QueryRecord)
        .where(QueryRecord.id == query_id, QueryRecord.status != "completed")
        .values(status="failed" if final else "queued", error_code=code, error_message=message[:2000],
                completed_at=utcnow() if final else None)
    )
    session.commit()


def queued_query_ids(session: Session, *, older_than_seconds: float) -> list[str]:
    """Queries still `queued`/`processing` after a while: candidates for re-enqueueing after an outage."""
    from datetime import timedelta

    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    rows = session.scalars(
        select(QueryRecord.id).where(QueryRecord.status.in_(("queued", "processing")), QueryRecord.created_at < cutoff)
    )
    return list(rows)


def add_webhook_event(session: Session, *, query_id: str, url: str) -> WebhookEvent:
    """Record a webhook delivery to be made for a finished query."""
    event = WebhookEvent(query_id=query_id, url=url, status="pending")
    session.add(event)
    session.commit()
    return event


def query_to_dict(record: QueryRecord) -> dict[str, Any]:
    """The public shape of a query: status, and the answer once completed or the error once failed."""
    body: dict[str, Any] = {
        "query_id": record.id,
        "query": record.text,
        "status": record.status,
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

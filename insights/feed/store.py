"""Storing insight runs and reading the public feed (keyword-only repository functions).

Each run replaces the current set in one transaction: the previous current rows stay in the table as
history (`current = False`), the new rows become current, and only those that pass both gates are
`published` — confidence at least the floor, and at least `min_market_size` distinct units behind them.
The feed serves published rows of the current run only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from insights import defaults
from insights.errors import InvalidInput
from insights.feed.generate import InsightRecord
from insights.feed.published import changed_here
from insights.storage.tables import Insight, utcnow

#: Key of the PostgreSQL advisory lock that serialises concurrent replacements of the current set.
_REPLACE_LOCK = 0x1E45E0


@dataclass(frozen=True)
class ReplaceCounts:
    """What one replacement did."""

    stored: int
    published: int
    retired: int


def replace_insights(
    session: Session,
    *,
    insights: Sequence[InsightRecord],
    run_id: str,
    confidence_floor: float,
    min_market_size: int,
) -> ReplaceCounts:
    """Make `insights` the current set (committed atomically); earlier current rows become history."""
    if min_market_size < defaults.MIN_MARKET_SIZE_FLOOR:
        raise InvalidInput(f"min_market_size must be at least {defaults.MIN_MARKET_SIZE_FLOOR}")
    if not 0.0 <= confidence_floor <= 1.0:
        raise InvalidInput("confidence_floor must be between 0 and 1")
    try:
        if session.get_bind().dialect.name == "postgresql":
            # Two runs publishing at once would otherwise both leave their rows current.
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REPLACE_LOCK})
        retired = session.execute(
            update(Insight).where(Insight.current.is_(True)).values(current=False)
        ).rowcount
        now = utcnow()
        rows = [_row(record, run_id=run_id, now=now, floor=confidence_floor, min_size=min_market_size) for record in insights]
        session.add_all(rows)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    changed_here()
    return ReplaceCounts(stored=len(rows), published=sum(row.published for row in rows), retired=int(retired or 0))


def _row(record: InsightRecord, *, run_id: str, now: object, floor: float, min_size: int) -> Insight:
    publish = record.confidence_score >= floor and record.sample_size >= min_size
    return Insight(
        run_id=run_id,
        kind=record.kind,
        city=record.city,
        country=record.country,
        segment=record.segment,
        metric=record.metric,
        value=record.value,
        low=record.low,
        high=record.high,
        unit=record.unit,
        period_start=record.period_start,
        period_end=record.period_end,
        sample_size=record.sample_size,
        direction=record.direction,
        method=(record.method or "")[:255],
        text=record.text,
        confidence_score=record.confidence_score,
        published=publish,
        current=True,
        created_at=now,
    )


def list_published(
    session: Session,
    *,
    city: str | None = None,
    kind: str | None = None,
    min_confidence: float | None = None,
    offset: int = 0,
    limit: int = defaults.FEED_PAGE_SIZE,
) -> tuple[list[Insight], int]:
    """One page of the current published insights, newest first, and how many match in total.

    `city` matches case-insensitively; `limit` is capped at FEED_MAX_PAGE_SIZE.
    """
    if offset < 0 or limit < 1:
        raise InvalidInput("offset must be >= 0 and limit >= 1")
    conditions = [Insight.published.is_(True), Insight.current.is_(True)]
    if city is not None:
        conditions.append(func.lower(Insight.city) == city.lower())
    if kind is not None:
        conditions.append(Insight.kind == kind)
    if min_confidence is not None:
        conditions.append(Insight.confidence_score >= min_confidence)
    total = session.scalar(select(func.count()).select_from(Insight).where(*conditions)) or 0
    page = session.scalars(
        select(Insight)
        .where(*conditions)
        .order_by(Insight.created_at.desc(), Insight.id.desc())
        .offset(offset)
        .limit(min(limit, defaults.FEED_MAX_PAGE_SIZE))
    ).all()
    return list(page), int(total)

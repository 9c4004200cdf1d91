"""Storing insight runs: atomic replacement, history, publish gates and the feed query."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from insights.errors import InvalidInput
from insights.feed.generate import InsightRecord
from insights.feed.store import list_published, replace_insights
from insights.storage.tables import Insight


def record(city: str = "Berlin", *, confidence: float = 0.9, sample_size: int = 50, kind: str = "rent_growth") -> InsightRecord:
    return InsightRecord(
        kind=kind, city=city, country="Germany", segment=None, metric="rent_index_growth_yoy", value=3.2, low=1.0,
        high=5.4, unit="%", period_start=date(2025, 10, 1), period_end=date(2026, 10, 31), sample_size=sample_size,
        direction="up", method="hedonic index", confidence_score=confidence,
        text=f"{city} rental market showing 3.2% growth year over year (October 2026 vs October 2025).",
    )


def test_publish_gates_need_confidence_and_sample_size(session: Session) -> None:
    batch = [
        record("Berlin"),
        record("Munich", confidence=0.59),  # below the floor
        record("Hamburg", sample_size=9),  # below the privacy threshold
        record("Frankfurt", confidence=0.6, sample_size=10),  # exactly at both gates
    ]
    counts = replace_insights(session, insights=batch, run_id="r1", confidence_floor=0.6, min_market_size=10)
    assert (counts.stored, counts.published, counts.retired) == (4, 2, 0)
    rows, total = list_published(session)
    assert total == 2
    assert {row.city for row in rows} == {"Berlin", "Frankfurt"}


def test_a_run_replaces_the_current_set_and_keeps_history(session: Session) -> None:
    replace_insights(session, insights=[record("Berlin"), record("Munich")], run_id="r1", confidence_floor=0.6, min_market_size=10)
    counts = replace_insights(session, insights=[record("Hamburg")], run_id="r2", confidence_floor=0.6, min_market_size=10)
    assert counts.retired == 2
    rows, total = list_published(session)
    assert total == 1 and rows[0].city == "Hamburg" and rows[0].run_id == "r2"
    history = session.scalars(select(Insight).where(Insight.run_id == "r1")).all()
    assert len(history) == 2 and not any(row.current for row in history)
    assert all(row.published for row in history)  # what was published then stays on record


def test_a_failed_run_leaves_the_previous_set_current(session: Session) -> None:
    replace_insights(session, insights=[record("Berlin")], run_id="r1", confidence_floor=0.6, min_market_size=10)
    broken = replace(record("Munich"), text=None)  # type: ignore[arg-type]  # NOT NULL violation on insert
    with pytest.raises(Exception):
        replace_insights(session, insights=[record("Hamburg"), broken], run_id="r2", confidence_floor=0.6, min_market_size=10)
    rows, total = list_published(session)
    assert total == 1 and rows[0].city == "Berlin"
    assert session.scalars(select(Insight).where(Insight.run_id == "r2")).all() == []


def test_privacy_floor_cannot_be_configured_below_five(session: Session) -> None:
    with pytest.raises(InvalidInput):
        replace_insights(session, insights=[record()], run_id="r1", confidence_floor=0.6, min_market_size=4)


def test_feed_filters_pages_and_orders_newest_first(session: Session) -> None:
    batch = [record(f"City {i:02d}", confidence=0.6 + i / 100) for i in range(25)] + [record("Berlin", kind="rent_level")]
    replace_insights(session, insights=batch, run_id="r1", confidence_floor=0.6, min_market_size=10)
    first, total = list_published(session, limit=10)
    second, _ = list_published(session, offset=10, limit=10)
    assert total == 26 and len(first) == 10 and len(second) == 10
    assert not {row.id for row in first} & {row.id for row in second}
    ordered = first + second
    assert [row.id for row in ordered] == sorted((row.id for row in ordered), reverse=True)
    assert list_published(session, city="berlin")[1] == 1
    assert list_published(session, kind="rent_level")[1] == 1
    high, count = list_published(session, min_confidence=0.8)
    assert count == 6 and all(row.confidence_score >= 0.8 for row in high)  # City 20-24 and Berlin
    assert len(list_published(session, limit=1000)[0]) == 26  # capped at FEED_MAX_PAGE_SIZE (100)

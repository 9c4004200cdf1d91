"""The published insights a process reads once per publish: what it holds, and when it reads again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from insights.feed.published import PublishedInsights, published_insights, read_published
from insights.feed.store import replace_insights
from insights.storage.tables import Insight
from tests.feed.test_store import record


def publish(session_factory: sessionmaker[Session], *records, run_id: str = "r1") -> None:
    with session_factory() as session:
        replace_insights(session, insights=list(records), run_id=run_id, confidence_floor=0.6, min_market_size=10)


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on `engine` while the test runs."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


def test_it_holds_the_current_published_rows_by_city_newest_first(session_factory) -> None:
    publish(session_factory, record("Berlin"), record("Munich", confidence=0.5), run_id="old")  # Munich is below the floor
    publish(session_factory, record("Berlin"), record("Berlin", kind="rent_level"), record("Hamburg"),
            replace(record("Warsaw"), country="Poland"), record("Munich", confidence=0.5))
    held = published_insights(session_factory)
    with session_factory() as session:
        expected = session.scalars(select(Insight).where(Insight.published.is_(True), Insight.current.is_(True))
                                   .order_by(Insight.created_at.desc(), Insight.id.desc())).all()
    assert held.countries == {"Berlin": "Germany", "Hamburg": "Germany", "Warsaw": "Poland"}
    assert [r.id for r in held.of(["Berlin"])] == [r.id for r in expected if r.city == "Berlin"]
    assert [r.id for r in held.of(["Warsaw", "Berlin", "Munich", "Nowhere"])] == [
        r.id for r in expected if r.city in ("Berlin", "Warsaw")]
    assert held.of([]) == [] and held.of(["Munich"]) == []
    assert all(r.run_id == "r1" for r in held.of(held.countries))  # history is never served


def test_a_replacement_in_this_process_is_seen_at_once(session_factory) -> None:
    publish(session_factory, record("Berlin"))
    assert list(published_insights(session_factory).countries) == ["Berlin"]
    publish(session_factory, record("Hamburg"), run_id="r2")
    assert list(published_insights(session_factory).countries) == ["Hamburg"]


def test_it_reads_again_only_when_the_set_changed(session_factory, statements) -> None:
    publish(session_factory, record("Berlin"), record("Hamburg"))
    reader = PublishedInsights(session_factory, check_every=3600)
    first = reader.get()
    statements.clear()
    assert reader.get() is first and statements == []  # within the check interval: no database access at all

    # Another process changes the set (no notice reaches this one): seen at the next check.
    reader.check_every = 0
    assert reader.get() is first and len(statements) == 1  # checked, unchanged: the held set stays
    with session_factory() as session:
        session.execute(update(Insight).where(Insight.city == "Hamburg").values(published=False))
        session.commit()
    assert list(reader.get().countries) == ["Berlin"]
    with session_factory() as session:  # a row added to the current set
        session.add(Insight(run_id="r1", kind="rent_growth", city="Munich", country="Germany", metric="rent_index_growth_yoy",
                            value=1.0, unit="%", sample_size=50, direction="up", method="test", text="Munich rents up 1%.",
                            confidence_score=0.9, published=True, current=True))
        session.commit()
    assert sorted(reader.get().countries) == ["Berlin", "Munich"]
    with session_factory() as session:
        assert sorted(read_published(session).countries) == ["Berlin", "Munich"]
    with session_factory() as session:  # one row withdrawn and an older one published in the same commit
        session.execute(update(Insight).where(Insight.city == "Berlin").values(published=False))
        session.execute(update(Insight).where(Insight.city == "Hamburg").values(published=True))
        session.commit()
    assert sorted(reader.get().countries) == ["Hamburg", "Munich"]  # same count and largest id, other rows

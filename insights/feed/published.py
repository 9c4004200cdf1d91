"""The current published insights as one process reads them: once per publish, not once per question.

Answers to market-trend and comparison questions need the published set. A process keeps the set it
last read for each database and, at most once per `CHECK_EVERY` seconds, asks whether the set
changed: the number, the largest id and the sum of the ids of the current published rows (each
publish inserts new rows and retires the old ones; the sum also tells a withdrawn row swapped for
another). A replacement made in this process (`replace_insights`) is seen at once;
one made by another process within `CHECK_EVERY` seconds, as with the API's feed cache.

The rows handed out are detached `Insight` objects shared by every reader: read them, never change them.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from insights.storage.tables import Insight

CHECK_EVERY = 1.0
"""Seconds a process trusts its last check that the published set did not change."""

_CURRENT = (Insight.published.is_(True), Insight.current.is_(True))
_generation = 0  # bumped by every replacement in this process


def changed_here() -> None:
    """Tell this process's readers that the published set was just replaced (called after the commit)."""
    global _generation
    _generation += 1


@dataclass(frozen=True)
class Published:
    """One reading of the current published insights."""

    by_city: dict[str, list[Insight]]  # each city's rows, newest first
    countries: dict[str, str | None]

    @property
    def cities(self) -> list[tuple[str, str | None]]:
        """(city, country) of every city with published insights."""
        return list(self.countries.items())

    def of(self, cities: Iterable[str]) -> list[Insight]:
        """The rows of the given cities (names as stored), newest first."""
        names = set(cities)
        if len(names) == 1:
            return list(self.by_city.get(names.pop(), ()))
        rows = [row for name in names for row in self.by_city.get(name, ())]
        return sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)


def read_published(session: Session) -> Published:
    """Read the current published set from the database."""
    by_city: dict[str, list[Insight]] = {}
    countries: dict[str, str | None] = {}
    query = select(Insight).where(*_CURRENT, Insight.city.is_not(None)).order_by(Insight.created_at.desc(), Insight.id.desc())
    for row in session.scalars(query):
        by_city.setdefault(row.city, []).append(row)
        countries.setdefault(row.city, row.country)
    return Published(by_city=by_city, countries=countries)


class PublishedInsights:
    """The published set of one database, re-read only when it changed."""

    def __init__(self, session_factory: sessionmaker[Session], *, check_every: float = CHECK_EVERY) -> None:
        self._session_factory = session_factory
        self.check_every = check_every
        self._lock = threading.Lock()
        self._published: Published | None = None
        self._fingerprint: tuple[object, ...] | None = None
        self._generation = -1
        self._checked_at = float("-inf")

    def get(self) -> Published:
        """The current published set (a database read only when it may have changed)."""
        now = time.monotonic()
        published = self._published
        if published is not None and self._generation == _generation and now - self._checked_at < self.check_every:
            return published
        with self._lock:
            generation = _generation
            with self._session_factory() as session:
                fingerprint = tuple(session.execute(select(func.count(), func.max(Insight.id), func.sum(Insight.id)).where(*_CURRENT)).one())
                if self._published is None or fingerprint != self._fingerprint:
                    self._published = read_published(session)
                    self._fingerprint = fingerprint
            self._generation, self._checked_at = generation, time.monotonic()
            return self._published


_readers: weakref.WeakKeyDictionary[sessionmaker[Session], PublishedInsights] = weakref.WeakKeyDictionary()
_readers_lock = threading.Lock()


def published_insights(session_factory: sessionmaker[Session]) -> Published:
    """The current published insights of the database behind `session_factory`."""
    reader = _readers.get(session_factory)
    if reader is None:
        with _readers_lock:
            reader = _readers.setdefault(session_factory, PublishedInsights(session_factory))
    return reader.get()

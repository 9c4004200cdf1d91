"""Storage of ingested rows: bulk lookups, bulk inserts and updates, and loading rows back as canonical frames.

Keyword-only functions on a caller's `Session`; the caller owns the transaction (ingest stores a
whole file in one). Everything works in bulk: hashes and keys are looked up in chunks with `IN`,
rows are inserted with one executemany per chunk (SQLite) or `COPY` (PostgreSQL), never row by row.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ARRAY, JSON, Date, DateTime, Select, String, Text, any_, bindparam, cast, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from insights.data.canonical import DTYPES, json_objects
from insights.data.schema import COLUMNS, Kind
from insights.storage.tables import Base, CalendarDay, IngestFile, Lease, Listing, PropertyRow, utcnow

#: Rows per INSERT executemany / COPY batch, and keys per `IN (...)` lookup (SQLite allows 32,766 parameters).
CHUNK_ROWS = 5_000
LOOKUP_CHUNK = 5_000

#: The table each kind of file is stored in.
TABLES: dict[Kind, type[Base]] = {
    Kind.LISTINGS: Listing,
    Kind.LEASES: Lease,
    Kind.PROPERTIES: PropertyRow,
    Kind.CALENDAR: CalendarDay,
}

HashedTable = type[Listing] | type[Lease] | type[PropertyRow]


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------- lookups


def existing_hashes(session: Session, *, table: HashedTable, hashes: Iterable[str]) -> set[str]:
    """The subset of `hashes` already stored in `table` (looked up in chunks, not row by row)."""
    wanted = sorted(set(hashes))
    found: set[str] = set()
    for chunk in _chunks(wanted, LOOKUP_CHUNK):
        found.update(session.scalars(select(table.row_hash).where(_among(session, table.row_hash, list(chunk)))))
    return found


def _among(session: Session, column: Any, values: list[Any]) -> Any:
    """`column IN values`; on PostgreSQL one array parameter (`= ANY`) instead of thousands of placeholders."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, value=values, type_=ARRAY(String)))
    return column.in_(values)


def existing_properties(session: Session, *, property_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Market properties (no account) among `property_ids`: property_id -> (primary key, row_hash)."""
    wanted = sorted(set(property_ids))
    found: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(wanted, LOOKUP_CHUNK):
        query = select(PropertyRow.property_id, PropertyRow.id, PropertyRow.row_hash).where(
            PropertyRow.account_id.is_(None), _among(session, PropertyRow.property_id, list(chunk))
        )
        found.update({pid: (pk, row_hash) for pid, pk, row_hash in session.execute(query)})
    return found


def existing_calendar_days(session: Session, *, listing_ids: Iterable[str]) -> pd.DataFrame:
    """Stored days of `listing_ids`: id, listing_id, date (datetime64), available, price, extra_json.

    `extra_json` is the stored JSON text, normalised like `json_objects` writes it (sorted keys, no
    spaces), so that a caller can compare it with new rows without decoding every row.
    """
    wanted = sorted(set(listing_ids))
    columns = ["id", "listing_id", "date", "available", "price", "extra_json"]
    parts: list[pd.DataFrame] = []
    for chunk in _chunks(wanted, LOOKUP_CHUNK):
        query = select(
            CalendarDay.id, CalendarDay.listing_id, CalendarDay.date, CalendarDay.available, CalendarDay.price,
            cast(CalendarDay.extra, Text),
        ).where(_among(session, CalendarDay.listing_id, list(chunk)))
        parts.append(_frame(session.execute(query).all(), columns))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    frame["date"] = pd.to_datetime(frame["date"]).astype(DTYPES["datetime"])
    frame["listing_id"] = frame["listing_id"].astype("str")
    frame["available"] = frame["available"].astype("boolean")
    frame["price"] = frame["price"].astype("float64")
    frame["extra_json"] = [_normalised_json(text) for text in frame["extra_json"].tolist()]
    return frame


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """A frame from result rows, built column-wise (pandas inspects each Row object otherwise: slow)."""
    values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    return pd.DataFrame({name: pd.Series(list(column), dtype=object) for name, column in zip(columns, values, strict=True)})


def _normalised_json(text: str | None) -> str:
    """JSON text as `json_objects` writes it: texts it wrote itself come back unchanged, without decoding."""
    if not text or text in ("{}", "null"):
        return "{}"
    if ", " not in text and ": " not in text:
        return text
    value = json.loads(text)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- rows <-> frames


def rows_from_frame(
    frame: pd.DataFrame, *, kind: Kind, extra_columns: Sequence[str], source: str | None, row_hashes: Sequence[str] | None
) -> list[dict[str, Any]]:
    """Table rows (dicts) from a clean canonical frame.

    Missing values become None, datetimes UTC-aware `datetime`, dates `date`; the extra columns
    become `extra` as JSON text (see `bulk_insert`), plus `row_hash`, `source` and timestamps.
    """
    table = TABLES[Kind(kind)].__table__
    names = [name for name in COLUMNS[Kind(kind)] if name in table.c]
    lists = [_python_values(frame[name], table.c[name].type) for name in names]
    lists.append(json_objects(frame, extra_columns))
    names.append("extra")
    now = utcnow()
    stamps = {"ingested_at": now} if "ingested_at" in table.c else {"created_at": now, "updated_at": now}
    constant = {"source": source, **stamps}
    rows = [dict(zip(names, values, strict=True), **constant) for values in zip(*lists, strict=True)]
    if row_hashes is not None:
        for row, row_hash in zip(rows, row_hashes, strict=True):
            row["row_hash"] = row_hash
    return rows


def _python_values(values: pd.Series, sql_type: Any) -> list[Any]:
    """A column as plain Python values the drivers accept; every kind of missing becomes None.

    Each distinct value is converted once (files repeat values a lot), then spread back by code.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if isinstance(sql_type, Date):
        converted = [stamp.date() for stamp in pd.DatetimeIndex(uniques)]
    elif isinstance(sql_type, DateTime):
        converted = [stamp.to_pydatetime().replace(tzinfo=UTC) for stamp in pd.DatetimeIndex(uniques)]
    else:
        converted = pd.Index(uniques).to_numpy(dtype=object).tolist()
        converted = [value.item() if hasattr(value, "item") else value for value in converted]
    table = np.empty(len(converted) + 1, dtype=object)
    table[: len(converted)] = converted
    table[-1] = None  # code -1: a missing cell
    return table[codes].tolist()


# --------------------------------------------------------------------------- writes


def bulk_insert(session: Session, *, table: type[Base], rows: Sequence[dict[str, Any]]) -> int:
    """Insert `rows` (dicts of column values) into `table` in the session's transaction; returns how many.

    A JSON column's value may be a dict or its JSON text (ingest encodes `extra` in bulk). SQLite
    gets one DBAPI executemany per chunk, PostgreSQL one `COPY ... FROM STDIN`: both bypass the
    ORM's per-row work, which dominates at 100k rows, but run on the session's own connection.
    """
    if not rows:
        return 0
    sql_table = table.__table__
    names = [column.name for column in sql_table.c if column.name in rows[0]]
    session.flush()
    connection = session.connection()
    dialect = connection.dialect
    raw = connection.connection.driver_connection
    try:
        return _insert_raw(raw, dialect, sql_table, names, rows)
    except dialect.loaded_dbapi.IntegrityError as exc:
        # Same exception as the ORM path would raise, so callers need not know the driver.
        raise IntegrityError(f"bulk insert into {sql_table.name}", None, exc) from exc


def _insert_raw(raw: Any, dialect: Any, sql_table: Any, names: list[str], rows: Sequence[dict[str, Any]]) -> int:
    convert = _converters(sql_table, names, dialect)
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    table_name = dialect.identifier_preparer.format_table(sql_table)
    if dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {table_name} ({quoted}) FROM STDIN") as copy:
            for values in _tuples(rows, names, convert):
                copy.write_row(values)
        return len(rows)
    placeholders = ", ".join("?" for _ in names)
    statement = f"INSERT INTO {table_name} ({quoted}) VALUES ({placeholders})"
    cursor = raw.cursor()
    try:
        for chunk in _chunks(rows, CHUNK_ROWS):
            cursor.executemany(statement, _tuples(chunk, names, convert))
    finally:
        cursor.close()
    return len(rows)


def _tuples(rows: Sequence[dict[str, Any]], names: list[str], convert: list[Any]) -> list[tuple[Any, ...]]:
    """Rows as DBAPI parameter tuples in `names` order, converting only the columns that need it."""
    getter = operator.itemgetter(*names)
    tuples = [getter(row) for row in rows] if len(names) > 1 else [(getter(row),) for row in rows]
    conversions = [(position, fn) for position, fn in enumerate(convert) if fn is not None]
    if not conversions:
        return tuples
    converted: list[tuple[Any, ...]] = []
    for values in tuples:
        mutable = list(values)
        for position, fn in conversions:
            mutable[position] = fn(mutable[position])
        converted.append(tuple(mutable))
    return converted


def _converters(sql_table: Any, names: list[str], dialect: Any) -> list[Any]:
    """Per column: None (pass as is) or a function giving the value the DBAPI expects."""
    converters: list[Any] = []
    for name in names:
        column_type = sql_table.c[name].type
        if isinstance(column_type, JSON):
            converters.append(_json_text)
        elif dialect.name == "sqlite" and isinstance(column_type, (Date, DateTime)):
            converters.append(column_type.bind_processor(dialect))  # SQLAlchemy's own text format for SQLite
        else:
            converters.append(None)
    return converters


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def bulk_insert_listings(session: Session, *, rows: Sequence[dict[str, Any]]) -> int:
    """Insert listing rows (dicts of `Listing` columns); returns how many."""
    return bulk_insert(session, table=Listing, rows=rows)


def bulk_insert_leases(session: Session, *, rows: Sequence[dict[str, Any]]) -> int:
    """Insert lease rows (dicts of `Lease` columns); returns how many."""
    return bulk_insert(session, table=Lease, rows=rows)


def bulk_insert_properties(session: Session, *, rows: Sequence[dict[str, Any]]) -> int:
    """Insert property rows (dicts of `PropertyRow` columns); returns how many."""
    return bulk_insert(session, table=PropertyRow, rows=rows)


def bulk_insert_calendar_days(session: Session, *, rows: Sequence[dict[str, Any]]) -> int:
    """Insert calendar-day rows (dicts of `CalendarDay` columns); returns how many."""
    return bulk_insert(session, table=CalendarDay, rows=rows)


def bulk_update(session: Session, *, table: type[Base], rows: Sequence[dict[str, Any]]) -> int:
    """Update rows of `table` by primary key (each dict carries `id`); returns how many.

    JSON values may be given as JSON text, as for `bulk_insert`.
    """
    json_columns = {column.name for column in table.__table__.c if isinstance(column.type, JSON)}
    decoded = [
        {key: json.loads(value) if key in json_columns and isinstance(value, str) else value for key, value in row.items()}
        for row in rows
    ]
    for chunk in _chunks(decoded, CHUNK_ROWS):
        session.execute(update(table), list(chunk))
    return len(rows)


def refresh_statistics(session: Session, *, table: type[Base]) -> None:
    """Let PostgreSQL re-plan queries on `table` after a bulk load (no-op on SQLite).

    Why: psycopg prepares a statement after a few executions and PostgreSQL may then keep a generic
    plan made while the table was empty: a sequential scan comparing each row with every key of the
    lookup (10 s per 5,000 hashes at 70k rows). ANALYZE refreshes the statistics and invalidates
    such plans in every connection. Run it after the commit, so that its lock is held only briefly.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"ANALYZE {session.get_bind().dialect.identifier_preparer.format_table(table.__table__)}"))


def record_ingest_file(
    session: Session,
    *,
    path: str,
    sha256: str,
    kind: Kind,
    rows_read: int,
    rows_stored: int,
    rows_rejected: int,
    rows_duplicate: int,
    rejects_path: str | None,
) -> IngestFile:
    """Add the record of one ingest (flushed, so its id is known)."""
    record = IngestFile(
        path=path,
        sha256=sha256,
        kind=Kind(kind).value,
        rows_read=rows_read,
        rows_stored=rows_stored,
        rows_rejected=rows_rejected,
        rows_duplicate=rows_duplicate,
        rejects_path=rejects_path,
    )
    session.add(record)
    session.flush()
    return record


# --------------------------------------------------------------------------- reads


def load_listings(session: Session, *, since: datetime | None = None, city: str | None = None) -> pd.DataFrame:
    """Stored listings as a canonical frame (extras expanded into columns), index `id`, oldest first.

    `since` keeps rows ingested at or after that time; `city` keeps one city (case-insensitive for ASCII
    letters on SQLite, for all letters on PostgreSQL).
    """
    query = select(Listing).order_by(Listing.id)
    if since is not None:
        query = query.where(Listing.ingested_at >= since)
    if city is not None:
        query = query.where(func.lower(Listing.city) == city.lower())
    return _load(session, query, Kind.LISTINGS)


def load_leases(session: Session, *, since: datetime | None = None, property_id: str | None = None) -> pd.DataFrame:
    """Stored leases as a canonical frame (extras expanded), index `id`."""
    query = select(Lease).order_by(Lease.id)
    if since is not None:
        query = query.where(Lease.ingested_at >= since)
    if property_id is not None:
        query = query.where(Lease.property_id == property_id)
    return _load(session, query, Kind.LEASES)


def load_calendar(
    session: Session, *, listing_id: str | None = None, start: date | None = None, end: date | None = None
) -> pd.DataFrame:
    """Stored calendar days as a canonical frame (extras expanded), index `id`; `start`/`end` inclusive."""
    query = select(CalendarDay).order_by(CalendarDay.listing_id, CalendarDay.date)
    if listing_id is not None:
        query = query.where(CalendarDay.listing_id == listing_id)
    if start is not None:
        query = query.where(CalendarDay.date >= start)
    if end is not None:
        query = query.where(CalendarDay.date <= end)
    return _load(session, query, Kind.CALENDAR)


def load_properties(session: Session, *, account_id: int | None = None, city: str | None = None) -> pd.DataFrame:
    """Stored properties of one account (None: the market properties from ingested files), index `id`."""
    query = select(PropertyRow).order_by(PropertyRow.id)
    query = query.where(PropertyRow.account_id.is_(None) if account_id is None else PropertyRow.account_id == account_id)
    if city is not None:
        query = query.where(func.lower(PropertyRow.city) == city.lower())
    return _load(session, query, Kind.PROPERTIES)


def _load(session: Session, query: Select[Any], kind: Kind) -> pd.DataFrame:
    table = TABLES[kind].__table__
    names = [name for name in COLUMNS[kind] if name in table.c]
    columns = [table.c.id, *(table.c[name] for name in names), table.c.extra]
    result = session.execute(query.with_only_columns(*columns)).all()
    frame = _frame(result, ["id", *names, "extra"]).set_index("id")
    canonical = pd.DataFrame(index=frame.index)
    for name, ctype in COLUMNS[kind].items():
        canonical[name] = _typed(frame[name], ctype) if name in frame else pd.Series(index=frame.index, dtype=DTYPES[ctype])
    return pd.concat([canonical, _expand_extras(frame["extra"])], axis=1)


def _typed(values: pd.Series, ctype: str) -> pd.Series:
    if ctype == "datetime":
        stamps = pd.to_datetime(values, utc=True)
        return stamps.dt.tz_localize(None).astype(DTYPES["datetime"])
    if ctype == "bool":
        return values.astype("object").where(values.notna(), None).astype("boolean")
    return values.astype(DTYPES[ctype])


def _expand_extras(extras: pd.Series) -> pd.DataFrame:
    """The `extra` dicts as columns, typed as ingest typed them: boolean, float or str."""
    records = [value if isinstance(value, dict) else {} for value in extras.tolist()]
    frame = pd.DataFrame.from_records(records, index=extras.index)
    for name in frame.columns:
        present = frame[name].dropna()
        if not present.empty and all(isinstance(value, bool) for value in present):
            frame[name] = frame[name].astype("object").where(frame[name].notna(), None).astype("boolean")
        elif not present.empty and all(isinstance(value, (int, float)) for value in present):
            frame[name] = frame[name].astype("float64")
        else:
            frame[name] = frame[name].astype("str")
    return frame

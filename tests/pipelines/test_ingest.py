"""The ingest stage end to end on SQLite or PostgreSQL (TEST_DATABASE_URL): storage, idempotence, rejects, rollback."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from insights.config import Settings
from insights.data.load import get_preset
from insights.errors import IngestError
from insights.storage import ingest_repo
from insights.storage.tables import CalendarDay, IngestFile, Lease, Listing, PropertyRow
from pipelines.ingest import IngestSummary, ingest_command, ingest_file

Ingest = Callable[..., IngestSummary]


@pytest.fixture
def ingest(settings: Settings, session_factory: sessionmaker[Session]) -> Ingest:
    """`ingest_file` bound to the test's settings and database."""

    def run(path: Path, **options: Any) -> IngestSummary:
        options.setdefault("kind", "listings")
        return ingest_file(path, settings=settings, session_factory=session_factory, **options)

    return run


def ingest_preset(ingest: Ingest, name: str, path: Path) -> IngestSummary:
    preset = get_preset(name)
    return ingest(path, kind=preset.kind, mapping=preset.mapping, drop=preset.drop, constants=preset.constants)


def count(session_factory: sessionmaker[Session], table: type) -> int:
    with session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def head_of(source: Path, target: Path, rows: int) -> Path:
    """The header and first `rows` data lines of a (gzipped) CSV, as a new gzipped file."""
    with gzip.open(source, "rt", encoding="utf-8") as stream:
        lines = [next(stream) for _ in range(rows + 1)]
    with gzip.open(target, "wt", encoding="utf-8") as stream:
        stream.writelines(lines)
    return target


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- shared data sets


def test_poland_ingests_once_and_only_once(ingest: Ingest, shared_data: Path, session_factory: sessionmaker[Session]) -> None:
    path = shared_data / "poland_apartments_rent.csv.gz"
    first = ingest_preset(ingest, "poland", path)
    assert (first.read, first.stored, first.rejected, first.duplicates) == (70_847, 70_847, 0, 0)
    again = ingest_preset(ingest, "poland", path)
    assert (again.read, again.stored, again.rejected, again.duplicates) == (70_847, 0, 0, 70_847)
    assert count(session_factory, Listing) == 70_847
    with session_factory() as session:
        records = session.scalars(select(IngestFile).order_by(IngestFile.id)).all()
        krakow = ingest_repo.load_listings(session, city="KRAKOW")
    assert [(r.rows_stored, r.rows_duplicate) for r in records] == [(70_847, 0), (0, 70_847)]
    assert records[0].sha256 == records[1].sha256 and records[0].kind == "listings"
    assert len(krakow) > 1000 and set(krakow["city"]) == {"krakow"}
    assert krakow["has_security"].dtype == "boolean" and krakow["centre_distance"].dtype == "float64"


@pytest.mark.parametrize(
    ("name", "table", "counts"),
    [
        ("brazil", Listing, (10_692, 10_328, 4, 360)),
        ("munich", Listing, (3_082, 3_082, 0, 0)),
        ("albany-listings", PropertyRow, (421, 421, 0, 0)),
    ],
)
def test_shared_data_sets_ingest_with_their_presets(
    ingest: Ingest, shared_data: Path, session_factory: sessionmaker[Session], name: str, table: type, counts: tuple[int, ...]
) -> None:
    summary = ingest_preset(ingest, name, shared_data / get_preset(name).filename)
    assert (summary.read, summary.stored, summary.rejected, summary.duplicates) == counts
    assert count(session_factory, table) == counts[1]
    again = ingest_preset(ingest, name, shared_data / get_preset(name).filename)
    assert (again.stored, again.duplicates) == (0, counts[1] + counts[3])


def test_albany_calendar_whole_file(ingest: Ingest, shared_data: Path, session_factory: sessionmaker[Session]) -> None:
    summary = ingest_preset(ingest, "albany-calendar", shared_data / "albany_airbnb_calendar.csv.gz")
    assert (summary.read, summary.stored, summary.rejected, summary.duplicates) == (153_665, 153_665, 0, 0)
    assert count(session_factory, CalendarDay) == 153_665


def test_calendar_reingest_updates_changed_days_only(
    ingest: Ingest, shared_data: Path, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    path = head_of(shared_data / "albany_airbnb_calendar.csv.gz", tmp_path / "calendar.csv.gz", 2_000)
    first = ingest_preset(ingest, "albany-calendar", path)
    assert (first.read, first.stored, first.duplicates) == (2_000, 2_000, 0)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[:9, "available"] = frame.loc[:9, "available"].map({"t": "f", "f": "t"})
    changed = tmp_path / "calendar2.csv"
    frame.to_csv(changed, index=False)
    second = ingest_preset(ingest, "albany-calendar", changed)
    assert (second.stored, second.updated, second.duplicates) == (10, 10, 1_990)
    with session_factory() as session:
        days = ingest_repo.load_calendar(session, listing_id=frame.loc[0, "listing_id"])
    assert bool(days.iloc[0]["available"]) is (frame.loc[0, "available"] == "t")
    assert count(session_factory, CalendarDay) == 2_000


def test_calendar_conflicting_days_in_one_file_are_rejected(ingest: Ingest, tmp_path: Path) -> None:
    path = write(
        tmp_path / "cal.csv",
        "listing_id,date,available,price\n1,2024-11-05,t,$70.00\n1,2024-11-05,t,$70.00\n1,2024-11-05,f,$70.00\n",
    )
    summary = ingest(path, kind="calendar")
    assert (summary.stored, summary.duplicates, summary.rejected) == (1, 1, 1)
    rejects = pd.read_csv(summary.rejects_path)
    assert rejects["reason"].tolist() == ["listing_id=1, date=2024-11-05 00:00:00: repeats row 2 with different values"]


def test_properties_upsert_by_property_id(ingest: Ingest, tmp_path: Path, session_factory: sessionmaker[Session]) -> None:
    first = ingest(write(tmp_path / "p.csv", "property_id,city,bedrooms\nA,Albany,2\nB,Albany,3\n"), kind="properties")
    assert (first.stored, first.updated) == (2, 0)
    second = ingest(write(tmp_path / "p2.csv", "property_id,city,bedrooms\nA,Albany,2\nB,Albany,4\nC,Troy,1\n"), kind="properties")
    assert (second.stored, second.updated, second.duplicates) == (2, 1, 1)
    with session_factory() as session:
        stored = ingest_repo.load_properties(session)
    assert stored.set_index("property_id")["bedrooms"].to_dict() == {"A": 2.0, "B": 4.0, "C": 1.0}


def test_leases_are_stored_and_loaded(ingest: Ingest, tmp_path: Path, session_factory: sessionmaker[Session]) -> None:
    path = write(
        tmp_path / "leases.csv",
        "lease_id,property_id,start_date,end_date,monthly_rent,currency\n"
        "L1,P1,2024-01-01,2024-12-31,900,EUR\nL2,P1,01.02.2025,,950,EUR\nL3,P2,2024-05-01,2024-04-01,900,EUR\n",
    )
    summary = ingest(path, kind="leases")
    assert (summary.stored, summary.rejected) == (2, 1)
    with session_factory() as session:
        leases = ingest_repo.load_leases(session, property_id="P1")
    assert leases["start_date"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2025-02-01")]
    assert pd.isna(leases["end_date"].iloc[1]) and count(session_factory, Lease) == 2


# --------------------------------------------------------------------------- rejects and extras


def test_rejects_file_holds_rows_reasons_and_original_values(ingest: Ingest, tmp_path: Path, settings: Settings) -> None:
    path = write(
        tmp_path / "listings.csv",
        "Town,Rent,Area,Balcony\nLyon,900,45,yes\nLyon,-5,45,no\nLyon,\"1 000\",3,no\n,800,50,yes\nLyon,900,45,yes\n",
    )
    summary = ingest(path, mapping={"city": "Town", "monthly_rent": "Rent", "size_sqm": "Area", "balcony": "Balcony"})
    assert (summary.read, summary.stored, summary.rejected, summary.duplicates) == (5, 1, 3, 1)
    assert summary.rejects_path is not None and summary.rejects_path.parent == settings.rejects_dir
    rejects = pd.read_csv(summary.rejects_path, dtype=str, keep_default_na=False)
    assert list(rejects.columns) == ["source_row", "reason", "Town", "Rent", "Area", "Balcony"]
    assert rejects["source_row"].tolist() == ["3", "4", "5"]
    assert rejects["reason"].tolist() == [
        "monthly_rent: must be > 0 (got -5)", "size_sqm: must be > 5 (got 3)", "city: missing (required)"
    ]
    assert rejects.loc[1, "Rent"] == "1 000"
    assert not list(settings.rejects_dir.glob("*.tmp"))


def test_extra_columns_are_stored_and_loaded_back(ingest: Ingest, tmp_path: Path, session_factory: sessionmaker[Session]) -> None:
    path = write(
        tmp_path / "f.csv",
        "city,monthly_rent,hasGarden,Heating,Service Charge\nLyon,900,yes,gas,\"1,200\"\nLyon,950,no,,80\n",
    )
    assert ingest(path).stored == 2
    with session_factory() as session:
        listings = ingest_repo.load_listings(session)
        extra = session.scalars(select(Listing.extra).order_by(Listing.id)).first()
    assert extra == {"has_garden": True, "heating": "gas", "service_charge": 1200}
    assert listings["has_garden"].tolist() == [True, False]
    assert listings["service_charge"].tolist() == [1200.0, 80.0]
    assert listings["heating"].iloc[0] == "gas" and pd.isna(listings["heating"].iloc[1])


def test_load_listings_filters_by_time(ingest: Ingest, tmp_path: Path, session_factory: sessionmaker[Session]) -> None:
    ingest(write(tmp_path / "a.csv", "city,monthly_rent\nLyon,900\n"))
    with session_factory() as session:
        cutoff = session.scalar(select(func.max(Listing.ingested_at)))
    ingest(write(tmp_path / "b.csv", "city,monthly_rent\nNice,1200\n"))
    with session_factory() as session:
        assert len(ingest_repo.load_listings(session)) == 2
        assert cutoff is not None
        later = ingest_repo.load_listings(session, since=cutoff + pd.Timedelta(microseconds=1))
    assert later["city"].tolist() == ["Nice"]


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"city,monthly_rent\n", "header but no data rows"),
        (gzip.compress(bytes(range(256)) * 20), "not a CSV or Parquet file"),
        (b"Price,Beds\n900,2\n", r"missing required column\(s\) for listings: city"),
        (b"city,monthly_rent\nLyon,-1\nLyon,abc\n", "no usable row"),
    ],
    ids=["empty", "header-only", "gzip-of-garbage", "missing-city", "all-rejected"],
)
def test_unusable_files_store_nothing(
    ingest: Ingest, tmp_path: Path, session_factory: sessionmaker[Session], content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(IngestError, match=message):
        ingest(path, mapping={"monthly_rent": "Price"} if b"Price" in content else {})
    assert count(session_factory, Listing) == 0 and count(session_factory, IngestFile) == 0


def test_latin1_file_ingests_with_a_warning(ingest: Ingest, tmp_path: Path, session_factory: sessionmaker[Session]) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("city,monthly_rent\nSão Paulo,3300\nMünchen,900\n".encode("latin-1"))
    summary = ingest(path)
    assert summary.stored == 2 and any("not UTF-8" in warning for warning in summary.warnings)
    with session_factory() as session:
        assert sorted(ingest_repo.load_listings(session)["city"]) == ["München", "São Paulo"]


def test_a_failure_mid_way_rolls_everything_back(
    ingest: Ingest, tmp_path: Path, session_factory: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = "".join(f"Lyon,{900 + i}\n" for i in range(12_000))
    path = write(tmp_path / "big.csv", "city,monthly_rent\nLyon,-1\n" + rows)
    real_insert = ingest_repo.bulk_insert
    calls: list[int] = []

    def insert_then_fail(session: Session, **kwargs: Any) -> int:
        calls.append(real_insert(session, **kwargs))  # the rows are in the transaction...
        raise RuntimeError("connection lost")  # ...when the database goes away

    monkeypatch.setattr(ingest_repo, "bulk_insert", insert_then_fail)
    with pytest.raises(RuntimeError, match="connection lost"):
        ingest(path)
    assert calls == [12_000]
    assert count(session_factory, Listing) == 0 and count(session_factory, IngestFile) == 0
    assert not list(settings.rejects_dir.iterdir())  # the attempt's rejects file is gone too
    monkeypatch.undo()
    assert ingest(path).stored == 12_000


# --------------------------------------------------------------------------- command


def test_ingest_command_with_a_preset_and_extra_flags(
    shared_data: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    text, code = ingest_command(
        shared_data / "munich_rent99.csv", preset="munich", sets=["property_type=apartment"], drops=["cheating"],
        settings=settings, session_factory=session_factory,
    )
    assert code == 0 and "read 3082, stored 3082, rejected 0, duplicates 0" in text
    with session_factory() as session:
        listings = ingest_repo.load_listings(session)
    assert set(listings["property_type"]) == {"apartment"} and "cheating" not in listings.columns
    assert {"location", "bath", "kitchen"} <= set(listings.columns)


def test_ingest_command_exit_codes(tmp_path: Path, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert ingest_command(empty, settings=settings, session_factory=session_factory)[1] == 1
    assert ingest_command(empty, maps=["city"], settings=settings, session_factory=session_factory)[1] == 2
    assert ingest_command(empty, kind="flats", settings=settings, session_factory=session_factory)[1] == 2
    text, code = ingest_command(empty, preset="nope", settings=settings, session_factory=session_factory)
    assert code == 2 and "known presets" in text


def test_ingest_command_uses_the_settings_database(tmp_path: Path, settings: Settings) -> None:
    path = write(tmp_path / "f.csv", "city,monthly_rent\nLyon,900\n")
    text, code = ingest_command(path, settings=settings)
    assert code == 0 and "stored 1" in text


def test_rows_committed_meanwhile_by_another_ingest_count_as_duplicates(
    ingest: Ingest, tmp_path: Path, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(write(tmp_path / "a.csv", "city,monthly_rent\nLyon,900\n"))
    real_lookup = ingest_repo.existing_hashes
    lookups: list[int] = []

    def stale_first_lookup(session: Session, **kwargs: Any) -> set[str]:
        lookups.append(1)
        return set() if len(lookups) == 1 else real_lookup(session, **kwargs)  # as if the other ingest had not committed yet

    monkeypatch.setattr(ingest_repo, "existing_hashes", stale_first_lookup)
    summary = ingest(write(tmp_path / "b.csv", "city,monthly_rent\nLyon,900\nNice,1200\n"))
    assert len(lookups) == 2 and (summary.stored, summary.duplicates) == (1, 1)
    assert count(session_factory, Listing) == 2 and count(session_factory, IngestFile) == 2

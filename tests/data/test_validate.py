"""Validation of canonical frames, and `load_canonical` / `load_preset` on tiny files and the shared data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from insights.data.load import extra_columns, load_canonical, load_preset
from insights.data.schema import LISTING_COLUMNS, Kind


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def reasons_by_row(rejects: pd.DataFrame) -> dict[int, str]:
    return dict(zip(rejects["source_row"], rejects["reason"], strict=True))


@pytest.fixture
def listings_file(tmp_path: Path) -> Path:
    return write(
        tmp_path / "listings.csv",
        "City,Rent,Area,Beds,Lat,Lon,Listed,Currency,Garden\n"
        "Lisbon,1500,70,2,38.7,-9.1,2024-03-01,EUR,yes\n"       # 2 ok
        "Lisbon,-10,70,2,38.7,-9.1,2024-03-01,EUR,no\n"         # 3 negative rent
        "Lisbon,abc,70,2,38.7,-9.1,2024-03-01,EUR,no\n"         # 4 rent not a number
        ",1500,70,2,38.7,-9.1,2024-03-01,EUR,no\n"              # 5 city missing
        "Lisbon,1500,3,2,38.7,-9.1,2024-03-01,EUR,no\n"         # 6 size too small
        "Lisbon,1500,70,31,38.7,-9.1,2024-03-01,EUR,no\n"       # 7 too many bedrooms
        "Lisbon,1500,70,2,95,-9.1,2024-03-01,EUR,no\n"          # 8 latitude out of range
        "Lisbon,1500,70,2,38.7,-9.1,someday,EUR,no\n"           # 9 unparseable date
        "Lisbon,5000000,70,2,38.7,-9.1,2024-03-01,EUR,no\n"     # 10 absurd rent for EUR
        "Lisbon,1500,2500,2,38.7,-9.1,2024-03-01,EUR,no\n"      # 11 size too large
        "Lisbon,\"$1,800.00\",70,2,38.7,-9.1,2024-03,EUR,-\n",  # 12 ok, month date, missing garden
    )


MAPPING = {
    "city": "City", "monthly_rent": "Rent", "size_sqm": "Area", "bedrooms": "Beds", "latitude": "Lat",
    "longitude": "Lon", "listed_at": "Listed", "currency": "Currency",
}


def test_bad_rows_are_rejected_with_reasons_naming_the_column(listings_file: Path) -> None:
    clean, rejects = load_canonical(listings_file, kind="listings", mapping=MAPPING)
    assert list(clean.index) == [2, 12]
    reasons = reasons_by_row(rejects)
    assert set(reasons) == {3, 4, 5, 6, 7, 8, 9, 10, 11}
    assert reasons[3].startswith("monthly_rent: must be > 0")
    assert reasons[4] == "monthly_rent: not a valid number ('abc')"
    assert reasons[5] == "city: missing (required)"
    assert reasons[6].startswith("size_sqm: must be > 5")
    assert reasons[7].startswith("bedrooms: must be <= 30")
    assert reasons[8].startswith("latitude: must be <= 90")
    assert reasons[9] == "listed_at: not a valid date ('someday')"
    assert reasons[10] == "monthly_rent: above the ceiling for its currency"
    assert reasons[11].startswith("size_sqm: must be <= 2000")


def test_rejects_keep_the_original_values(listings_file: Path) -> None:
    _, rejects = load_canonical(listings_file, kind="listings", mapping=MAPPING)
    row = rejects.set_index("source_row").loc[4]
    assert row["Rent"] == "abc" and row["City"] == "Lisbon" and row["Garden"] == "no"


def test_clean_rows_are_typed_and_keep_extras(listings_file: Path) -> None:
    clean, _ = load_canonical(listings_file, kind="listings", mapping=MAPPING)
    assert clean.loc[12, "monthly_rent"] == 1800.0
    assert clean.loc[12, "listed_at"] == pd.Timestamp("2024-03-01")
    assert clean["garden"].dtype == "boolean"
    assert bool(clean.loc[2, "garden"]) is True and pd.isna(clean.loc[12, "garden"])
    assert extra_columns(clean, "listings") == ["garden"] == clean.attrs["extra_columns"]
    assert list(clean.columns[: len(LISTING_COLUMNS)]) == list(LISTING_COLUMNS)


def test_a_row_with_several_problems_names_each_column(tmp_path: Path) -> None:
    path = write(tmp_path / "f.csv", "city,monthly_rent,bedrooms\nParis,0,-1\n")
    _, rejects = load_canonical(path, kind="listings")
    assert rejects["reason"].iloc[0] == "bedrooms: must be >= 0 (got -1); monthly_rent: must be > 0 (got 0)"


def test_rent_ceiling_depends_on_currency(tmp_path: Path) -> None:
    path = write(
        tmp_path / "f.csv",
        "city,monthly_rent,currency\nSao Paulo,45000,BRL\nSao Paulo,1000000,BRL\nTokyo,1000000,JPY\nX,2000000,XYZ\n",
    )
    clean, rejects = load_canonical(path, kind="listings")
    assert list(clean.index) == [2, 4, 5]
    assert list(rejects["source_row"]) == [3]


def test_lease_ending_before_it_starts_is_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path / "leases.csv",
        "lease_id,start_date,end_date,monthly_rent\nA,2024-01-01,2024-12-31,900\nB,2024-06-01,2024-01-31,900\n",
    )
    clean, rejects = load_canonical(path, kind=Kind.LEASES)
    assert list(clean["lease_id"]) == ["A"]
    assert reasons_by_row(rejects) == {3: "end_date: before start_date"}


def test_calendar_requires_listing_date_and_availability(tmp_path: Path) -> None:
    path = write(
        tmp_path / "cal.csv",
        "listing_id,date,available,price\n1,2024-11-05,t,$70.00\n1,2024-11-06,maybe,$70.00\n,2024-11-07,f,\n",
    )
    clean, rejects = load_canonical(path, kind="calendar")
    assert len(clean) == 1 and clean["price"].iloc[0] == 70.0
    reasons = reasons_by_row(rejects)
    assert reasons[3] == "available: not a valid yes/no value ('maybe')"
    assert reasons[4] == "listing_id: missing (required)"


def test_overlong_text_is_rejected_before_it_reaches_the_database(tmp_path: Path) -> None:
    path = write(tmp_path / "f.csv", f"city,monthly_rent\n{'x' * 200},900\n")
    _, rejects = load_canonical(path, kind="listings")
    assert rejects["reason"].iloc[0].startswith("city: longer than 128 characters")


def test_a_nul_character_past_the_binary_sniff_rejects_its_row_only(tmp_path: Path) -> None:
    good = "".join(f"Berlin,{900 + i}\n" for i in range(8000))  # past the 64 KiB the reader sniffs for binary
    path = write(tmp_path / "f.csv", f"city,monthly_rent\n{good}Ber\x00lin,900\nHamburg,950\n")
    clean, rejects = load_canonical(path, kind="listings")
    assert len(clean) == 8001 and len(rejects) == 1
    assert rejects["reason"].iloc[0].startswith("city: contains a NUL character")


def test_exact_duplicates_are_dropped_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "f.csv", "city,monthly_rent\nOslo,900\nOslo,900\nOslo,901\n")
    clean, _ = load_canonical(path, kind="listings")
    assert list(clean.index) == [2, 4] and clean.attrs["duplicates"] == 1
    everything, _ = load_canonical(path, kind="listings", dedupe=False)
    assert len(everything) == 3


@pytest.mark.parametrize(
    ("name", "clean_rows", "rejected", "duplicates"),
    [("brazil", 10_328, 4, 360), ("munich", 3_082, 0, 0), ("albany-listings", 421, 0, 0)],
)
def test_shared_presets_load(shared_data: Path, name: str, clean_rows: int, rejected: int, duplicates: int) -> None:
    clean, rejects = load_preset(name, shared_data)
    assert (len(clean), len(rejects), clean.attrs["duplicates"]) == (clean_rows, rejected, duplicates)


def test_brazil_preset_parses_words_and_drops_leaky_columns(shared_data: Path) -> None:
    clean, rejects = load_preset("brazil", shared_data)
    assert clean["pets_allowed"].dtype == "boolean" and clean["pets_allowed"].notna().all()
    assert clean["furnished"].notna().all()
    assert clean["floor"].isna().sum() > 2000  # "-" means no floor given (houses)
    assert not {"fire_insurance_r", "total_r"} & set(clean.columns)
    assert {"hoa_r", "property_tax_r", "parking_spaces"} <= set(clean.attrs["extra_columns"])
    assert (clean["currency"] == "BRL").all() and clean["monthly_rent"].max() == 45_000
    assert rejects["reason"].str.contains("size_sqm|floor").all()


def test_poland_preset_loads_every_row(shared_data: Path) -> None:
    clean, rejects = load_preset("poland", shared_data)
    assert len(clean) == 70_847 and rejects.empty
    assert clean["listed_at"].min() == pd.Timestamp("2023-11-01")
    assert clean["parking"].dtype == "boolean" and clean["has_security"].dtype == "boolean"
    assert clean["listing_id"].nunique() < len(clean)  # flats recur across monthly snapshots


def test_albany_calendar_preset_parses_dollar_prices(shared_data: Path) -> None:
    clean, rejects = load_preset("albany-calendar", shared_data)
    assert len(clean) == 153_665 and rejects.empty
    assert clean["price"].max() >= 1_350.0 and clean["available"].dtype == "boolean"

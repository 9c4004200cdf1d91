"""Reading source files (formats, encodings, junk) and parsing values by canonical type."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest

from insights.data.canonical import (
    SourceMapping,
    canonicalise,
    infer_extra,
    parse_booleans,
    parse_dates,
    parse_numbers,
    row_hashes,
    snake_case,
)
from insights.data.load import load_canonical
from insights.data.read import read_table
from insights.data.schema import SQFT_TO_SQM, Kind
from insights.errors import IngestError

CSV = "city,monthly_rent,bedrooms\nLyon,900,2\nNantes,750,1\n"


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    path = write_bytes(tmp_path / "f.csv", CSV.replace(",", delimiter).encode())
    table = read_table(path)
    assert table.delimiter == delimiter
    assert list(table.frame.columns) == ["city", "monthly_rent", "bedrooms"]
    assert list(table.frame.index) == [2, 3]


def test_semicolon_file_with_decimal_commas(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "f.csv", b"city;monthly_rent;size_sqm\nBerlin;1.250,50;65,5\nBerlin;980;70\n")
    clean, rejects = load_canonical(path, kind="listings")
    assert rejects.empty
    assert clean["monthly_rent"].tolist() == [1250.5, 980.0] and clean["size_sqm"].tolist() == [65.5, 70.0]


def test_gzip_is_detected_by_content_not_suffix(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "listings.csv", gzip.compress(CSV.encode()))
    table = read_table(path)
    assert table.format == "csv.gz" and len(table.frame) == 2


def test_parquet_by_suffix_and_by_magic_bytes(tmp_path: Path) -> None:
    frame = pd.DataFrame({"city": ["Lyon", "Nantes"], "monthly_rent": [900.0, 750.0], "listing_id": [1, 2]})
    frame.to_parquet(tmp_path / "f.parquet")
    os.replace(tmp_path / "f.parquet", tmp_path / "f.dat")
    for path in (tmp_path / "f.dat",):
        clean, rejects = load_canonical(path, kind="listings")
        assert rejects.empty and clean["monthly_rent"].tolist() == [900.0, 750.0]
        assert clean["listing_id"].tolist() == ["1", "2"]
    frame.to_parquet(tmp_path / "g.parquet")
    assert read_table(tmp_path / "g.parquet").format == "parquet"


def test_trailing_delimiter_columns_are_ignored(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "f.csv", b"city,monthly_rent,\nLyon,900,\n")
    assert list(read_table(path).frame.columns) == ["city", "monthly_rent"]


# --------------------------------------------------------------------------- unreadable input


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="empty"):
        read_table(write_bytes(tmp_path / "f.csv", b""))
    with pytest.raises(IngestError, match="empty"):
        read_table(write_bytes(tmp_path / "g.csv", b"\n  \n"))


def test_header_only_file(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="header but no data rows"):
        read_table(write_bytes(tmp_path / "f.csv", b"city,monthly_rent\n"))


def test_binary_junk(tmp_path: Path) -> None:
    junk = bytes(range(256)) * 40
    with pytest.raises(IngestError, match="not a CSV or Parquet file"):
        read_table(write_bytes(tmp_path / "f.csv", junk))


def test_gzip_of_garbage(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "f.csv.gz", gzip.compress(os.urandom(4096) + b"\x00"))
    with pytest.raises(IngestError, match="not a CSV or Parquet file"):
        read_table(path)


def test_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(CSV.encode() * 100)
    with pytest.raises(IngestError, match="not a valid gzip file"):
        read_table(write_bytes(tmp_path / "f.csv.gz", data[: len(data) // 2]))


def test_broken_parquet(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="not a readable Parquet file"):
        read_table(write_bytes(tmp_path / "f.parquet", b"PAR1 this is not parquet at all"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no such file"):
        read_table(tmp_path / "nope.csv")


def test_latin1_file_is_read_with_a_warning(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "f.csv", "city,monthly_rent\nSão Paulo,900\nBogotá,400\n".encode("latin-1"))
    with pytest.warns(UserWarning, match="not UTF-8"):
        table = read_table(path)
    assert table.encoding == "cp1252" and table.warnings
    assert table.frame["city"].tolist() == ["São Paulo", "Bogotá"]


def test_utf8_with_bom(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "f.csv", "\ufeffcity,monthly_rent\nMünchen,900\n".encode())
    table = read_table(path)
    assert list(table.frame.columns) == ["city", "monthly_rent"] and table.encoding == "utf-8"


def test_utf16_with_bom(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "f.csv", "city\tmonthly_rent\nMünchen\t900\n".encode("utf-16"))
    table = read_table(path)
    assert table.encoding == "utf-16" and table.frame["city"].tolist() == ["München"]


def test_duplicated_header_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="duplicated column names.*city"):
        read_table(write_bytes(tmp_path / "f.csv", b"city,city,monthly_rent\nA,B,1\n"))


def test_malformed_line_becomes_a_rejected_row(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "f.csv", b"city,monthly_rent\nLyon,900\nNantes,750,extra,cells\nLille,800\n")
    clean, rejects = load_canonical(path, kind="listings")
    assert list(clean.index) == [2, 4]
    assert rejects["source_row"].tolist() == [3] and "malformed line" in rejects["reason"].iloc[0]


# --------------------------------------------------------------------------- mapping


def raw(text: str, tmp_path: Path) -> pd.DataFrame:
    return read_table(write_bytes(tmp_path / "f.csv", text.encode())).frame


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    frame = raw("Price,Beds\n900,2\n", tmp_path)
    spec = SourceMapping(Kind.LISTINGS, mapping={"monthly_rent": "Price"})
    with pytest.raises(IngestError, match=r"missing required column\(s\) for listings: city") as caught:
        canonicalise(frame, spec, file_name="f.csv")
    assert "--map city=SOURCE" in caught.value.message and "monthly_rent=Price" in caught.value.message
    assert caught.value.details["missing"] == ["city"]


def test_mapping_to_an_absent_source_column_is_named(tmp_path: Path) -> None:
    frame = raw("Town,Price\nLyon,900\n", tmp_path)
    spec = SourceMapping(Kind.LISTINGS, mapping={"city": "City", "monthly_rent": "Price"})
    with pytest.raises(IngestError, match=r"--map city=City: f.csv has no column 'City'.*Town, Price"):
        canonicalise(frame, spec, file_name="f.csv")


def test_unknown_canonical_name(tmp_path: Path) -> None:
    frame = raw(CSV, tmp_path)
    with pytest.raises(IngestError, match="'rent' is not a canonical column"):
        canonicalise(frame, SourceMapping(Kind.LISTINGS, mapping={"rent": "monthly_rent"}))
    with pytest.raises(IngestError, match="'colour' is not a canonical column"):
        canonicalise(frame, SourceMapping(Kind.LISTINGS, constants={"colour": "red"}))


def test_invalid_constant(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="--set furnished=maybe: not a valid yes/no value"):
        canonicalise(raw(CSV, tmp_path), SourceMapping(Kind.LISTINGS, constants={"furnished": "maybe"}))


def test_map_drop_set_and_extras(tmp_path: Path) -> None:
    frame = raw("Town,Price,sqft,Notes,hasGarden,Agent Fee (EUR)\nLyon,900,1000,nice,yes,100\n", tmp_path)
    spec = SourceMapping(
        Kind.LISTINGS,
        mapping={"city": "Town", "monthly_rent": "Price", "size_sqft": "sqft"},
        drop=("Notes",),
        constants={"currency": "EUR", "furnished": "unfurnished"},
    )
    result = canonicalise(frame, spec)
    row = result.frame.iloc[0]
    assert row["city"] == "Lyon" and row["monthly_rent"] == 900.0 and row["currency"] == "EUR"
    assert row["size_sqm"] == pytest.approx(1000 * SQFT_TO_SQM)
    assert bool(row["furnished"]) is False
    assert result.extra_columns == ["has_garden", "agent_fee_eur"]
    assert "notes" not in result.frame.columns and "Notes" not in result.frame.columns
    assert result.columns_used["has_garden"] == "hasGarden"


def test_same_named_columns_map_themselves_and_clashing_extras_are_renamed(tmp_path: Path) -> None:
    frame = raw("City,monthly_rent,price,rooms,Zimmer\nLyon,900,1,3,4\n", tmp_path)
    result = canonicalise(frame, SourceMapping(Kind.LISTINGS, mapping={"rooms": "Zimmer"}))
    assert result.frame.iloc[0]["city"] == "Lyon" and result.frame.iloc[0]["rooms"] == 4.0
    assert result.extra_columns == ["price", "rooms_extra"]


def test_snake_case() -> None:
    assert snake_case("hasParkingSpace") == "has_parking_space"
    assert snake_case("hoa (R$)") == "hoa_r"
    assert snake_case("  parking spaces ") == "parking_spaces"


# --------------------------------------------------------------------------- values


def test_numbers() -> None:
    text = ["$1,234.00", "R$ 3.300", "1 200", "-", "", "52.0", "1.234,50", "95%", "-5", "(12)", "1,5", "3.300", "abc"]
    parsed = parse_numbers(pd.Series(text, dtype="str"))
    expected = [1234.0, 3300.0, 1200.0, None, None, 52.0, 1234.5, 95.0, -5.0, -12.0, 1.5, 3.3, None]
    assert [None if pd.isna(v) else v for v in parsed.values] == expected
    assert parsed.bad.tolist() == [False] * 12 + [True]


def test_numbers_from_a_european_column() -> None:
    parsed = parse_numbers(pd.Series(["1.200", "950,50", "2.000"], dtype="str"))
    assert parsed.values.tolist() == [1200.0, 950.5, 2000.0]


def test_booleans() -> None:
    text = ["yes", "No", "y", "n", "t", "F", "TRUE", "false", "1", "0", "acept", "not acept",
            "furnished", "not furnished", "unfurnished", "allowed", "not allowed", "", "maybe"]
    parsed = parse_booleans(pd.Series(text, dtype="str"))
    values = [None if pd.isna(v) else bool(v) for v in parsed.values]
    assert values == [True, False] * 7 + [False, True, False, None, None]
    assert parsed.bad.tolist() == [False] * 18 + [True]


def test_dates() -> None:
    text = ["2023-11", "2024-11-05", "05.11.2024", "5 Nov 2024", "2024-11-05T10:00:00+02:00", "2024/11/05", "", "junk", "05/11/24"]
    parsed = parse_dates(pd.Series(text, dtype="str"))
    stamps = [None if pd.isna(v) else str(v) for v in parsed.values]
    assert stamps[:6] == ["2023-11-01 00:00:00", "2024-11-05 00:00:00", "2024-11-05 00:00:00", "2024-11-05 00:00:00",
                          "2024-11-05 08:00:00", "2024-11-05 00:00:00"]
    assert stamps[6:] == [None, None, None]
    assert parsed.bad.tolist() == [False] * 7 + [True, True]


def test_slashed_dates_follow_the_column_and_reject_ambiguity() -> None:
    day_first = parse_dates(pd.Series(["03/04/2024", "31/12/2024"], dtype="str")).values
    assert [str(v.date()) for v in day_first] == ["2024-04-03", "2024-12-31"]
    month_first = parse_dates(pd.Series(["03/04/2024", "12/31/2024"], dtype="str")).values
    assert [str(v.date()) for v in month_first] == ["2024-03-04", "2024-12-31"]
    ambiguous = parse_dates(pd.Series(["03/04/2024", "04/04/2024"], dtype="str"))
    assert ambiguous.bad.tolist() == [True, False]


def test_extra_columns_are_typed() -> None:
    assert infer_extra(pd.Series(["t", "f", ""], dtype="str")).dtype == "boolean"
    assert infer_extra(pd.Series(["1", "0", "2.5"], dtype="str")).dtype == "float64"
    assert infer_extra(pd.Series(["1", "0", ""], dtype="str")).dtype == "float64"
    assert infer_extra(pd.Series(["brick", "wood", ""], dtype="str")).dtype == "str"


def test_row_hash_is_stable_and_ignores_missing_cells() -> None:
    a = pd.DataFrame({"city": pd.Series(["Lyon"], dtype="str"), "monthly_rent": [900.0]})
    b = a.assign(extra=pd.Series([None], dtype="str"))
    assert row_hashes(a).iloc[0] == row_hashes(b).iloc[0]
    assert row_hashes(a).iloc[0] != row_hashes(a.assign(monthly_rent=901.0)).iloc[0]
    expected = hashlib.sha256(b'{"city":"Lyon","monthly_rent":900}').hexdigest()
    assert row_hashes(a).iloc[0] == expected

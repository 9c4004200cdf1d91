"""Row-level validation of canonical frames (pandera): bad rows are set aside with a reason, never fatal.

What a row must satisfy, per kind, is a pandera `DataFrameSchema` built here from the canonical
schema plus bounds chosen from what real rent data holds:

- rents: above 0 and below a ceiling of USD 100,000 a month converted to the row's currency by an
  order-of-magnitude rate (Brazil's real top rents of R$ 45,000 pass; R$ 1,000,000 typos do not).
  An unknown currency gets a ceiling of 100 million, which only catches overflow and junk;
- sizes between 5 and 2,000 m², bedrooms and bathrooms 0-30, rooms 0-50, floors -5..200,
  year built 1000..next decade, latitude/longitude in range and not both 0 (null island);
- dates between 1900 and 2100, a lease ending after it starts;
- every text value short enough for its database column.

`validate` returns the clean rows and the rejected rows: their source row number, the values
exactly as read and a `reason` naming the column(s).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from insights.data.canonical import DTYPES, Canonical
from insights.data.read import SOURCE_ROW
from insights.data.schema import COLUMNS, REQUIRED, Kind

#: Column of a rejects frame that says why the row was rejected.
REASON = "reason"

#: Highest plausible monthly rent, in US dollars (prime Manhattan or London penthouses).
MAX_MONTHLY_RENT_USD = 100_000.0
#: Highest plausible nightly price of a short-term rental, in US dollars.
MAX_NIGHTLY_PRICE_USD = 50_000.0
#: Ceiling for a rent whose currency is unknown: only overflow and junk are caught.
MAX_RENT_UNKNOWN_CURRENCY = 100_000_000.0

#: US dollars per unit of currency, to an order of magnitude: only used to scale the rent ceiling.
USD_PER_UNIT: dict[str, float] = {
    "USD": 1.0, "EUR": 1.1, "GBP": 1.3, "CHF": 1.1, "CAD": 0.75, "AUD": 0.65, "NZD": 0.6, "PLN": 0.25,
    "CZK": 0.045, "HUF": 0.0028, "SEK": 0.095, "NOK": 0.095, "DKK": 0.15, "BRL": 0.2, "MXN": 0.055,
    "ARS": 0.001, "CLP": 0.0011, "COP": 0.00025, "JPY": 0.0068, "CNY": 0.14, "INR": 0.012, "KRW": 0.00075,
    "SGD": 0.75, "HKD": 0.13, "AED": 0.27, "ZAR": 0.055, "TRY": 0.03, "RUB": 0.011, "UAH": 0.024, "RON": 0.22,
    "ILS": 0.27, "THB": 0.028, "IDR": 0.000063, "PHP": 0.018, "VND": 0.00004, "NGN": 0.00065, "EGP": 0.02,
}

#: Longest text each canonical text column may hold (the database column sizes).
TEXT_LIMITS: dict[str, int] = {
    "listing_id": 128, "property_id": 128, "lease_id": 128, "unit_id": 128, "city": 128, "country": 64,
    "district": 128, "postcode": 32, "property_type": 64, "currency": 8,
}

_NUMERIC_BOUNDS: dict[str, tuple[float, float, bool]] = {
    # column: (low, high, low is exclusive)
    "size_sqm": (5.0, 2000.0, True),
    "bedrooms": (0.0, 30.0, False),
    "bathrooms": (0.0, 30.0, False),
    "rooms": (0.0, 50.0, False),
    "floor": (-5.0, 200.0, False),
    "total_floors": (0.0, 200.0, False),
    "year_built": (1000.0, float(date.today().year + 10), False),
    "latitude": (-90.0, 90.0, False),
    "longitude": (-180.0, 180.0, False),
    "monthly_rent": (0.0, float("inf"), True),
    "price": (0.0, float("inf"), False),
}
_DATE_RANGE = (pd.Timestamp("1900-01-01"), pd.Timestamp("2100-12-31"))


def schema_for(kind: Kind) -> pa.DataFrameSchema:
    """The pandera schema a canonical frame of `kind` must satisfy, row by row."""
    columns = COLUMNS[Kind(kind)]
    required = set(REQUIRED[Kind(kind)])
    specs = {
        name: pa.Column(DTYPES[ctype], checks=_column_checks(name, ctype), nullable=name not in required, required=True)
        for name, ctype in columns.items()
    }
    return pa.DataFrameSchema(specs, checks=_row_checks(Kind(kind)), strict=False, coerce=False)


def _column_checks(name: str, ctype: str) -> list[pa.Check]:
    if name in _NUMERIC_BOUNDS:
        low, high, exclusive = _NUMERIC_BOUNDS[name]
        low_check = pa.Check.gt(low, error=f"must be > {low:g}") if exclusive else pa.Check.ge(low, error=f"must be >= {low:g}")
        checks = [low_check]
        if high != float("inf"):
            checks.append(pa.Check.le(high, error=f"must be <= {high:g}"))
        return checks
    if ctype == "datetime":
        return [pa.Check.in_range(*_DATE_RANGE, error="must be between 1900 and 2100")]
    if name in TEXT_LIMITS:
        return [pa.Check.str_length(max_value=TEXT_LIMITS[name], error=f"longer than {TEXT_LIMITS[name]} characters"),
                pa.Check(_no_nul, error="contains a NUL character (PostgreSQL cannot store it)")]
    return []


def _no_nul(values: pd.Series) -> pd.Series:
    return ~values.astype("string").str.contains("\x00", regex=False).fillna(False)


def _row_checks(kind: Kind) -> list[pa.Check]:
    checks: list[pa.Check] = []
    columns = COLUMNS[kind]
    if "monthly_rent" in columns:
        checks.append(pa.Check(_rent_within_ceiling, error="monthly_rent: above the ceiling for its currency"))
    if "price" in columns:
        checks.append(pa.Check(_price_within_ceiling, error="price: above a plausible nightly price"))
    if "latitude" in columns:
        checks.append(pa.Check(_not_null_island, error="latitude/longitude: both 0 (not a real location)"))
    if kind is Kind.LEASES:
        checks.append(pa.Check(_ends_after_start, error="end_date: before start_date"))
    return checks


def rent_ceiling(currency: pd.Series) -> pd.Series:
    """Highest plausible monthly rent in each row's currency."""
    rate = currency.astype("str").str.upper().map(USD_PER_UNIT).astype("float64")
    return (MAX_MONTHLY_RENT_USD / rate).fillna(MAX_RENT_UNKNOWN_CURRENCY)


def _rent_within_ceiling(frame: pd.DataFrame) -> pd.Series:
    ceiling = rent_ceiling(frame["currency"])
    return (frame["monthly_rent"] <= ceiling) | frame["monthly_rent"].isna()


def _price_within_ceiling(frame: pd.DataFrame) -> pd.Series:
    # Calendar rows carry no currency: the ceiling is generous enough for any currency up to the yen.
    ceiling = MAX_NIGHTLY_PRICE_USD / USD_PER_UNIT["JPY"]
    return (frame["price"] <= ceiling) | frame["price"].isna()


def _not_null_island(frame: pd.DataFrame) -> pd.Series:
    return ~((frame["latitude"] == 0) & (frame["longitude"] == 0))


def _ends_after_start(frame: pd.DataFrame) -> pd.Series:
    return ~(frame["end_date"] < frame["start_date"]).fillna(False)


def validate(canonical: Canonical, raw: pd.DataFrame, *, bad_lines: dict[int, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a canonical frame into clean rows and rejected rows.

    `raw` is the frame as read (for the original values of rejected rows); `bad_lines` are
    malformed lines the reader skipped. Returns `(clean, rejects)`: `clean` is `canonical.frame`
    without the rejected rows (index `source_row`); `rejects` has `source_row`, `reason` and the
    source columns with their original values.
    """
    reasons: dict[int, list[str]] = defaultdict(list)
    for row, problems in canonical.problems.items():
        reasons[row].extend(problems)
    for row, reason in _schema_failures(canonical).items():
        reasons[row].extend(reason)
    bad_rows = pd.Index(sorted(reasons), name=SOURCE_ROW)
    clean = canonical.frame.drop(index=bad_rows)
    rejects = rejects_frame(raw, {row: _join(found) for row, found in reasons.items()}, bad_lines or {})
    return clean, rejects


def _schema_failures(canonical: Canonical) -> dict[int, list[str]]:
    try:
        schema_for(canonical.kind).validate(canonical.frame, lazy=True)
    except SchemaErrors as exc:
        return _reasons(exc.failure_cases, canonical)
    return {}


def _reasons(failures: pd.DataFrame, canonical: Canonical) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    structural = failures[failures["index"].isna()]
    if not structural.empty:
        # Wrong dtypes or a missing column in a canonical frame are bugs in canonicalise, not bad data.
        raise RuntimeError(f"canonical frame does not match its schema: {structural.to_dict('records')}")
    columns = ["schema_context", "column", "check", "failure_case", "index"]
    for context, column, check, value, row in failures[columns].itertuples(index=False):
        row = int(row)
        if check == "not_nullable":
            if any(problem.startswith(f"{column}:") for problem in canonical.problems.get(row, [])):
                continue  # already explained as an unparseable value
            message = f"{column}: missing (required)"
        elif context == "DataFrameSchema":
            message = str(check)  # a row-wide check: its message names its columns
        else:
            message = f"{column}: {check} (got {_show(value)})"
        if message not in found[row]:
            found[row].append(message)
    return found


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{value:.0f}"
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _join(reasons: list[str]) -> str:
    return "; ".join(dict.fromkeys(reasons))


def rejects_frame(raw: pd.DataFrame, reasons: dict[int, str], bad_lines: dict[int, str]) -> pd.DataFrame:
    """Rejected rows: `source_row`, `reason`, then every source column with the value as read."""
    rows = sorted(reasons)
    original = raw.loc[rows].astype("object") if rows else raw.iloc[0:0].astype("object")
    frame = original.copy()
    frame.insert(0, REASON, [reasons[row] for row in rows])
    frame.insert(0, SOURCE_ROW, rows)
    if bad_lines:
        extra = pd.DataFrame({SOURCE_ROW: list(bad_lines), REASON: list(bad_lines.values())})
        frame = pd.concat([frame, extra], ignore_index=True).sort_values(SOURCE_ROW, kind="stable")
    return frame.reset_index(drop=True)

"""One short, readable sentence per insight, built from its structured fields only.

Sentences name the market, the amount with its currency, the period and, for growth, how "flat" is
defined, so the sentence alone is a claim that can be checked.
"""

from __future__ import annotations

from datetime import date

#: How each growth horizon reads in a sentence.
HORIZON_WORDS: dict[str, str] = {
    "mom": "month over month",
    "qoq": "quarter over quarter",
    "yoy": "year over year",
}


def place(city: str) -> str:
    """A city as written in a sentence: sources that store names in lower case ('warszawa') get capitals."""
    return city.title() if city.islower() else city


def market_name(city: str, segment: str | None) -> str:
    """'Berlin' or 'Berlin 2-bedroom' (segment labels are written to follow the city)."""
    return f"{place(city)} {segment}" if segment else place(city)


def month_label(day: date) -> str:
    """'October 2026'."""
    return day.strftime("%B %Y")


def period_label(start: date, end: date, horizon: str) -> str:
    """The compared periods, e.g. 'October 2026 vs October 2025' or 'Q3 2026 vs Q2 2026'."""
    if horizon == "qoq":
        return f"{_quarter(end)} vs {_quarter(start)}"
    return f"{month_label(end)} vs {month_label(start)}"


def _quarter(day: date) -> str:
    return f"Q{(day.month - 1) // 3 + 1} {day.year}"


def percent(value: float, *, signed: bool = False) -> str:
    """'3.2%' (or '+3.2%' with `signed`); two decimals below 1%, so '+0.46%' never reads as '+0.5%'."""
    decimals = 2 if abs(value) < 1 else 1
    return f"{value:+.{decimals}f}%" if signed else f"{abs(value):.{decimals}f}%"


def amount(value: float, currency: str | None, *, decimals: int = 0) -> str:
    """'1,250 EUR'; 'currency not stated' when the data did not say."""
    return f"{value:,.{decimals}f} {currency or '(currency not stated)'}"


def growth_sentence(
    *, city: str, segment: str | None, horizon: str, direction: str, growth_pct: float,
    band_pct: float, start: date, end: date, adjusted: bool,
) -> str:
    """'Berlin rental market showing 3.2% growth year over year (October 2026 vs October 2025).'"""
    words = HORIZON_WORDS[horizon]
    periods = period_label(start, end, horizon)
    note = "" if adjusted or horizon == "yoy" else ", not seasonally adjusted"
    name = market_name(city, segment)
    if direction == "up":
        claim = f"{name} rental market showing {percent(growth_pct)} growth {words}"
    elif direction == "down":
        claim = f"{name} rental market showing a {percent(growth_pct)} decline {words}"
    else:
        claim = f"{name} rents flat {words} ({percent(growth_pct, signed=True)}, within ±{band_pct:g}%)"
    return f"{claim} ({periods}{note})."


def level_sentence(
    *, city: str, segment: str | None, per_sqm: bool, value: float, low: float, high: float,
    currency: str | None, month: date,
) -> str:
    """'Median asking rent in Berlin: 1,250 EUR a month in October 2026 (likely 1,190-1,310 EUR).'"""
    decimals = 2 if per_sqm else 0
    what = "Median asking rent per m²" if per_sqm else "Median asking rent"
    per = "" if per_sqm else " a month"
    likely = f"{low:,.{decimals}f}–{amount(high, currency, decimals=decimals)}"
    return (
        f"{what} in {market_name(city, segment)}: {amount(value, currency, decimals=decimals)}{per} "
        f"in {month_label(month)} (likely {likely})."
    )


def mover_sentence(
    *, city: str, rising: bool, growth_pct: float, horizon: str, start: date, end: date, markets: int,
) -> str:
    """'Berlin is the fastest-rising of 11 markets year over year: +6.1% (October 2026 vs October 2025).'"""
    which = "fastest-rising" if rising else "fastest-falling"
    return (
        f"{place(city)} is the {which} of {markets} markets {HORIZON_WORDS[horizon]}: "
        f"{percent(growth_pct, signed=True)} ({period_label(start, end, horizon)})."
    )


def occupancy_sentence(*, city: str, value_pct: float, low_pct: float, high_pct: float, month: date, proxy: bool) -> str:
    """'Occupancy in Berlin at 94.1% in October 2026 (likely 93.0-95.1%).'"""
    what = "Booked share of calendar days (occupancy proxy)" if proxy else "Occupancy"
    return f"{what} in {place(city)} at {value_pct:.1f}% in {month_label(month)} (likely {low_pct:.1f}–{high_pct:.1f}%)."


def occupancy_change_sentence(
    *, city: str, direction: str, change_pts: float, band_pts: float, horizon: str, start: date, end: date, proxy: bool,
) -> str:
    """'Occupancy in Berlin up 1.2 points year over year (October 2026 vs October 2025).'"""
    what = "Booked share of calendar days" if proxy else "Occupancy"
    words = HORIZON_WORDS[horizon]
    periods = period_label(start, end, horizon)
    if direction == "flat":
        return f"{what} in {place(city)} steady {words} ({change_pts:+.1f} points, within ±{band_pts:g}) ({periods})."
    return f"{what} in {place(city)} {direction} {abs(change_pts):.1f} points {words} ({periods})."


def days_to_let_sentence(*, city: str, value: float, low: float, high: float, month: date) -> str:
    """'Homes in Berlin took a median of 18 days to let in October 2026 (likely 15-22 days).'"""
    return (
        f"Homes in {place(city)} took a median of {value:.0f} days to let in {month_label(month)} "
        f"(likely {low:.0f}–{high:.0f} days)."
    )


def seasonal_sentence(*, city: str, direction: str, gap_pct: float, band_pct: float, start: date, end: date) -> str:
    """'Berlin asking rents run 5.2% higher in June–August than in December–February (Nov 2023–Oct 2026).'"""
    span = f"{start.strftime('%b %Y')}–{end.strftime('%b %Y')}"
    if direction == "flat":
        return (
            f"{place(city)} asking rents show no seasonal swing between June–August and December–February "
            f"({percent(gap_pct, signed=True)}, within ±{band_pct:g}%; {span})."
        )
    which = "higher" if direction == "up" else "lower"
    return f"{place(city)} asking rents run {percent(gap_pct)} {which} in June–August than in December–February ({span})."

"""Synthetic rental markets with known truth: the demo portfolio, test fixtures and benchmark data.

The model of the market
-----------------------
Every city has a base rent per m² (in its own currency: EUR in Germany, PLN in Poland, USD in the
United States) for a reference 60 m² apartment with no amenities in a district of premium 0, at the
first month of the window. The *true market rent* of a unit listed on day `t` is (logs throughout)::

    log market = log(base_rent_sqm[city] * 60)
               + size_elasticity * log(size_sqm / 60)
               + district_premium[city, district] + type_premium[type]
               + sum(amenity_premium[a] for each amenity the unit has)
               + new_build_premium * (year_built >= new_build_year)
               + log index[city, month(t)]
               + season_amplitude * cos(2 pi (month_of_year(t) - season_peak_month) / 12)

and the asking rent is `market * exp(eps)`, `eps ~ N(0, noise_sigma)`, rounded to a whole unit of
currency. `eps` is also the landlord's mispricing, so `log(asking / market) = eps` drives lease-up.
Bedrooms, rooms, bathrooms and floors have no effect of their own once size is known.

The index is seasonally adjusted: `log index[city, m] = m * log(1 + annual_growth[city]) / 12`
plus an optional random walk (`index_volatility`, off by default so realised growth equals the
drift). Unless given, a city's annual growth is drawn from a stated regime mixture (half "up",
a quarter "flat", a quarter "down", stratified so that any three or more cities show all kinds).

Listings, leases and vacancy: every property is one unit. The landlord's portfolio (properties.csv,
ids P...) sits in a market of `comparables` times as many other units (ids M...), and listings.csv
holds the listings of both, as a listings portal would; leases and the calendar are the portfolio's.
Each unit is onboarded once, on a day drawn over [window start - 12 months, window end]; each time
it falls vacant it is listed (one listing = one rent observation) and let after a wait whose
chance of ending within `horizon_days` (30) is::

    p = 1 / (1 + exp(-(intercept + city_offset[city] + slope * log(asking / market)
                        + leaseup_season_amplitude * cos(2 pi (month_of_year - peak) / 12))))

with `slope < 0`: overpriced units wait longer. The wait in days is `floor(Exponential)` with the
daily hazard `-log(1 - p) / 30`, so `P(days_to_let < 30) = p` exactly. The lease runs 6, 12 or 24
months, then the unit is listed again. Long-run occupancy is `E[term] / (E[term] + E[wait])`.

Mix shift: a unit's onboarding date is tilted by its quality (the city-free part of its log rent,
standardised): with `mix_tilt > 0` better units arrive later, so the listings of late months are
dearer than early ones for reasons that are not market growth; listing volume is also seasonal.
Naive trends of monthly medians therefore overstate growth (by ~4 points a year with the default
tilt); insights must correct for mix.

Truth keys (`DemoData.truth`, also written as truth.json)
--------------------------------------------------------
seed, start, end, months (list of "YYYY-MM"), model (the formula), reference_size_sqm,
currency_by_country, size_elasticity, noise_sigma, season {amplitude, peak_month, factor_by_month},
type_premia, amenity_premia, new_build {year, premium},
cities {name: {country, currency, latitude, longitude, base_rent_sqm, weight, annual_growth,
regime, leaseup_offset, districts {name: premium}}},
index {city: [index per window month, 1.0 at the first]},
growth {city: {annual, monthly_rate, quarterly_rate, monthly {YYYY-MM}, quarterly {YYYYQn},
yearly {YYYY}, yoy {YYYY-MM}}} (realised from the index; full quarters and calendar years only),
growth_distribution, index_volatility, leaseup {intercept, slope, season_amplitude, peak_month,
horizon_days, city_offset_sd, city_offsets}, lease_terms {months, probabilities},
expected_occupancy {city: {let_within_horizon, vacancy_days, occupancy}}, mix {tilt,
volume_seasonality, onboard_lead_months}, counts {properties, comparables, listings, leases,
calendar} (counts only from `generate`; `Market.truth()` has the rest).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from insights.data.schema import CALENDAR_COLUMNS, LEASE_COLUMNS, LISTING_COLUMNS, PROPERTY_COLUMNS

__all__ = [
    "City",
    "DemoData",
    "District",
    "LeaseUp",
    "Market",
    "draw_market",
    "generate",
    "generate_listings",
    "lease_up_probability",
    "load_demo_data",
    "random_markets",
    "read_canonical_csv",
    "save_demo_data",
    "true_market_rent",
    "write_demo_data",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

DEFAULT_SEED = 7
DEFAULT_END = date(2026, 10, 31)
DEFAULT_N_PROPERTIES = 4_000
DEFAULT_COMPARABLES = 2.0
DEFAULT_NOISE_SIGMA = 0.12
DEFAULT_SIZE_ELASTICITY = 0.8
DEFAULT_SEASON_AMPLITUDE = 0.03
DEFAULT_MIX_TILT = 0.8
SEASON_PEAK_MONTH = 7
REFERENCE_SIZE_SQM = 60.0
ONBOARD_LEAD_MONTHS = 12
VOLUME_SEASONALITY = 0.25
DAYS_PER_MONTH = 30.4375

CURRENCY_BY_COUNTRY: dict[str, str] = {"Germany": "EUR", "Poland": "PLN", "United States": "USD"}
PROPERTY_TYPES: tuple[str, ...] = ("apartment", "condo", "house", "studio")
TYPE_PREMIA: dict[str, float] = {"apartment": 0.0, "condo": 0.05, "house": 0.03, "studio": 0.06}
AMENITY_PREMIA: dict[str, float] = {
    "furnished": 0.08,
    "parking": 0.05,
    "balcony": 0.03,
    "elevator": 0.03,
    "pets_allowed": 0.02,
}
NEW_BUILD_YEAR = 2015
NEW_BUILD_PREMIUM = 0.07
LEASE_TERMS_MONTHS: tuple[int, ...] = (6, 12, 24)
LEASE_TERM_PROBABILITIES: tuple[float, ...] = (0.15, 0.65, 0.20)

#: Growth regimes (mean, sd of annual growth) and the stratified pattern cities are dealt from.
GROWTH_REGIMES: dict[str, tuple[float, float]] = {
    "up": (0.05, 0.02),
    "flat": (0.0, 0.005),
    "down": (-0.04, 0.015),
}
GROWTH_PATTERN: tuple[str, ...] = ("up", "flat", "down", "up")


@dataclass(frozen=True)
class District:
    """A district of a city: its log rent premium, offset from the city centre and postcode."""

    name: str
    premium: float
    north_km: float
    east_km: float
    postcode: str


@dataclass(frozen=True)
class City:
    """A market: location, currency (by country), base rent per m² and districts.

    `growth` and `leaseup_offset` fix those truths; left None they are drawn per seed.
    `weight` is the city's share of properties (small weights make thin markets).
    """

    name: str
    country: str
    latitude: float
    longitude: float
    base_rent_sqm: float
    districts: tuple[District, ...]
    weight: float = 1.0
    growth: float | None = None
    leaseup_offset: float | None = None

    @property
    def currency(self) -> str:
        """The currency rents are quoted in."""
        return CURRENCY_BY_COUNTRY[self.country]


def _districts(*rows: tuple[str, float, float, float, str]) -> tuple[District, ...]:
    return tuple(District(*row) for row in rows)


#: The built-in markets; base rents per m² follow 2024-25 asking rents (PLN: the Polish data set).
CITIES: tuple[City, ...] = (
    City("Berlin", "Germany", 52.5200, 13.4050, 15.5, _districts(
        ("Mitte", 0.15, 0.0, 0.0, "10115"), ("Prenzlauer Berg", 0.12, 2.5, 1.5, "10405"),
        ("Kreuzberg", 0.08, -2.0, 1.0, "10961"), ("Charlottenburg", 0.10, 0.0, -5.0, "10585"),
        ("Neukölln", -0.04, -4.0, 3.0, "12043"), ("Spandau", -0.15, 1.0, -12.0, "13581"),
        ("Marzahn", -0.18, 3.0, 12.0, "12679")), weight=1.4),
    City("Munich", "Germany", 48.1372, 11.5756, 21.5, _districts(
        ("Altstadt-Lehel", 0.18, 0.0, 0.5, "80331"), ("Schwabing", 0.12, 3.0, 0.0, "80801"),
        ("Maxvorstadt", 0.10, 1.5, -1.0, "80333"), ("Sendling", -0.02, -3.0, -2.0, "81369"),
        ("Pasing", -0.06, 0.0, -8.0, "81241"), ("Neuperlach", -0.12, -5.0, 6.0, "81735")), weight=1.0),
    City("Hamburg", "Germany", 53.5511, 9.9937, 15.0, _districts(
        ("HafenCity", 0.15, -0.8, 0.5, "20457"), ("Eimsbüttel", 0.08, 2.0, -2.0, "20255"),
        ("Altona", 0.06, 0.0, -4.0, "22765"), ("Winterhude", 0.07, 4.0, 1.5, "22301"),
        ("Wilhelmsburg", -0.15, -5.0, 1.0, "21107"), ("Harburg", -0.14, -9.0, -1.0, "21073")), weight=1.0),
    City("Frankfurt", "Germany", 50.1109, 8.6821, 17.0, _districts(
        ("Innenstadt", 0.12, 0.0, 0.0, "60311"), ("Sachsenhausen", 0.08, -1.5, 0.5, "60594"),
        ("Nordend", 0.09, 1.5, 0.8, "60318"), ("Bockenheim", 0.04, 0.8, -2.5, "60486"),
        ("Höchst", -0.12, -1.0, -10.0, "65929"), ("Griesheim", -0.10, -1.0, -6.0, "65933")), weight=0.7),
    City("Warsaw", "Poland", 52.2297, 21.0122, 80.0, _districts(
        ("Śródmieście", 0.15, 0.0, 0.0, "00-001"), ("Mokotów", 0.07, -4.0, 0.5, "02-001"),
        ("Wola", 0.05, 0.5, -3.0, "01-001"), ("Żoliborz", 0.08, 4.0, -1.0, "01-501"),
        ("Praga-Południe", -0.06, -1.0, 4.0, "03-901"), ("Białołęka", -0.14, 9.0, 3.0, "03-001"),
        ("Ursynów", -0.02, -10.0, 0.0, "02-776")), weight=1.1),
    City("Kraków", "Poland", 50.0647, 19.9450, 68.0, _districts(
        ("Stare Miasto", 0.15, 0.0, 0.0, "31-001"), ("Kazimierz", 0.10, -1.2, 0.5, "31-050"),
        ("Krowodrza", 0.04, 1.5, -2.0, "30-001"), ("Podgórze", 0.0, -2.5, 1.0, "30-501"),
        ("Nowa Huta", -0.15, 1.0, 9.0, "31-900")), weight=0.8),
    City("Wrocław", "Poland", 51.1079, 17.0385, 62.0, _districts(
        ("Stare Miasto", 0.12, 0.0, 0.0, "50-001"), ("Krzyki", 0.02, -3.0, 0.0, "53-001"),
        ("Śródmieście", 0.05, 1.5, 1.5, "50-301"), ("Fabryczna", -0.06, 0.0, -5.0, "54-001"),
        ("Psie Pole", -0.10, 4.0, 4.0, "51-001")), weight=0.6),
    City("Gdańsk", "Poland", 54.3520, 18.6466, 65.0, _districts(
        ("Śródmieście", 0.12, 0.0, 0.0, "80-001"), ("Wrzeszcz", 0.06, 2.5, -2.0, "80-201"),
        ("Oliwa", 0.05, 6.0, -3.0, "80-301"), ("Przymorze", 0.02, 5.0, -1.0, "80-336"),
        ("Chełm", -0.10, -2.0, -2.0, "80-034")), weight=0.5),
    City("New York", "United States", 40.7128, -74.0060, 62.0, _districts(
        ("Upper East Side", 0.15, 9.0, 3.0, "10021"), ("Midtown", 0.18, 5.0, 1.5, "10018"),
        ("Financial District", 0.17, -0.5, 0.3, "10004"), ("Williamsburg", 0.10, 2.0, 4.5, "11211"),
        ("Astoria", -0.02, 10.0, 6.0, "11102"), ("Bushwick", -0.03, 1.5, 8.0, "11237"),
        ("Fordham", -0.25, 18.0, 6.0, "10458"), ("Flushing", -0.10, 9.0, 14.0, "11354")), weight=1.5),
    City("Chicago", "United States", 41.8781, -87.6298, 27.0, _districts(
        ("The Loop", 0.12, 0.0, 0.0, "60603"), ("Lincoln Park", 0.10, 5.0, -0.5, "60614"),
        ("Wicker Park", 0.06, 3.0, -3.0, "60622"), ("Logan Square", 0.02, 5.5, -5.0, "60647"),
        ("Hyde Park", -0.05, -11.0, 3.0, "60615"), ("Rogers Park", -0.10, 15.0, -1.0, "60626")), weight=0.9),
    City("Austin", "United States", 30.2672, -97.7431, 24.0, _districts(
        ("Downtown", 0.15, 0.0, 0.0, "78701"), ("South Congress", 0.10, -2.5, 0.0, "78704"),
        ("East Austin", 0.05, 0.5, 2.5, "78702"), ("Mueller", 0.03, 5.0, 3.5, "78723"),
        ("Riverside", -0.10, -3.0, 4.0, "78741"), ("North Austin", -0.08, 15.0, 0.0, "78758")), weight=0.6),
)

_ALIASES: dict[str, str] = {
    "warszawa": "warsaw", "munchen": "munich", "muenchen": "munich", "cracow": "krakow",
    "nyc": "new york", "new york city": "new york", "frankfurt am main": "frankfurt",
}


@dataclass(frozen=True)
class LeaseUp:
    """The true lease-up model: P(let within `horizon_days`) is logistic in log(asking / market)."""

    intercept: float = 0.4
    slope: float = -8.0
    season_amplitude: float = 0.3
    horizon_days: int = 30
    city_offset_sd: float = 0.25

    def probability(
        self, log_ratio: FloatArray | float, month_of_year: IntArray | int, city_offset: FloatArray | float = 0.0
    ) -> FloatArray:
        """P(let within the horizon) for a log price ratio, a listing month (1-12) and a city offset."""
        season = self.season_amplitude * _season_wave(np.asarray(month_of_year))
        logit = self.intercept + np.asarray(city_offset) + self.slope * np.asarray(log_ratio) + season
        return 1.0 / (1.0 + np.exp(-logit))


@dataclass(frozen=True, eq=False)
class Market:
    """The true market, drawn before any property exists: index, growth and lease-up per city.

    `log_index[c, j]` is month `j - ONBOARD_LEAD_MONTHS` of the window (month 0 is `start`'s),
    so the months before the window, where units are already being let, have an index too.
    """

    seed: int
    cities: tuple[City, ...]
    start: date
    end: date
    months: int
    annual_growth: FloatArray
    regimes: tuple[str, ...]
    log_index: FloatArray
    leaseup_offsets: FloatArray
    noise_sigma: float
    size_elasticity: float
    season_amplitude: float
    index_volatility: float
    mix_tilt: float
    leaseup: LeaseUp

    @property
    def start_month(self) -> np.datetime64:
        """The first month of the window."""
        return np.datetime64(self.start, "M")

    def month_labels(self) -> list[str]:
        """The window's months as YYYY-MM."""
        return [str(self.start_month + m) for m in range(self.months)]

    def window_index(self) -> FloatArray:
        """The index per city over the window's months (1.0 at the first month)."""
        return np.exp(self.log_index[:, ONBOARD_LEAD_MONTHS:])

    def truth(self) -> dict[str, Any]:
        """Every parameter of the market as a JSON-ready dict (without data counts)."""
        return _market_truth(self)


@dataclass
class DemoData:
    """Generated frames in the canonical schema, with the truth they were drawn from.

    `listing_truth` (not part of the canonical files) has one row per listing: the true
    `market_rent`, `log_ratio` = log(asking / market) before rounding, `p_let` within the lease-up
    horizon, `days_to_let` (known even past the window end) and `let_by_end`.
    """

    properties: pd.DataFrame
    listings: pd.DataFrame
    leases: pd.DataFrame
    calendar: pd.DataFrame | None
    truth: dict[str, Any]
    listing_truth: pd.DataFrame | None = field(default=None, repr=False)


# --------------------------------------------------------------------------------------------
# The market


def draw_market(
    *,
    seed: int = DEFAULT_SEED,
    cities: Sequence[str | City] | None = None,
    start: date | str | None = None,
    end: date | str | None = None,
    months: int = 36,
    growth: Mapping[str, float] | None = None,
    noise_sigma: float = DEFAULT_NOISE_SIGMA,
    size_elasticity: float = DEFAULT_SIZE_ELASTICITY,
    season_amplitude: float = DEFAULT_SEASON_AMPLITUDE,
    index_volatility: float = 0.0,
    mix_tilt: float = DEFAULT_MIX_TILT,
    leaseup: LeaseUp | None = None,
) -> Market:
    """Draw the true market for a seed: per-city growth, index path and lease-up offsets.

    The window is `months` calendar months ending at `end` (default DEFAULT_END), or starting at
    `start`; give at most one. `growth` maps city names to true annual growth (e.g. 0.04) and
    overrides both `City.growth` and the random draw, which is made for every city either way so
    that fixing one city's growth leaves the others' unchanged.
    """
    if months < 1:
        raise ValueError("months must be at least 1")
    chosen = _resolve_cities(cities)
    window_start, window_end = _window(start, end, months)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[0])
    annual, regimes = _draw_growth(chosen, rng, growth)
    log_index = _draw_log_index(annual, months, index_volatility, rng)
    leaseup = leaseup or LeaseUp()
    offsets = rng.normal(0.0, leaseup.city_offset_sd, len(chosen))
    fixed = np.array([np.nan if c.leaseup_offset is None else c.leaseup_offset for c in chosen], dtype=float)
    offsets = np.where(np.isnan(fixed), offsets, fixed)
    return Market(
        seed=seed, cities=chosen, start=window_start, end=window_end, months=months,
        annual_growth=annual, regimes=regimes, log_index=log_index, leaseup_offsets=offsets,
        noise_sigma=noise_sigma, size_elasticity=size_elasticity, season_amplitude=season_amplitude,
        index_volatility=index_volatility, mix_tilt=mix_tilt, leaseup=leaseup,
    )


def _fold(name: str) -> str:
    """A city name without accents or case, so "krakow" finds "Kraków"."""
    name = name.replace("ł", "l").replace("Ł", "L").replace("ß", "ss")
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch))
    folded = " ".join(plain.lower().split())
    return _ALIASES.get(folded, folded)


def _resolve_cities(cities: Sequence[str | City] | None) -> tuple[City, ...]:
    if cities is None:
        return CITIES
    known = {_fold(city.name): city for city in CITIES}
    chosen: list[City] = []
    for city in cities:
        if isinstance(city, City):
            chosen.append(city)
        elif _fold(city) in known:
            chosen.append(known[_fold(city)])
        else:
            raise ValueError(f"unknown city {city!r}; known: {', '.join(c.name for c in CITIES)}")
    if not chosen or len({_fold(c.name) for c in chosen}) != len(chosen):
        raise ValueError("cities must be a non-empty list of distinct cities")
    return tuple(chosen)


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _window(start: date | str | None, end: date | str | None, months: int) -> tuple[date, date]:
    """First and last day of the window: `months` calendar months ending at `end` or from `start`."""
    if start is not None and end is not None:
        raise ValueError("give start or end, not both")
    if start is not None:
        first = np.datetime64(_as_date(start), "D")
        last = (np.datetime64(first, "M") + months).astype("datetime64[D]") - 1
    else:
        last = np.datetime64(_as_date(end or DEFAULT_END), "D")
        first = (np.datetime64(last, "M") - (months - 1)).astype("datetime64[D]")
    return first.astype(date), last.astype(date)


def _draw_growth(
    cities: tuple[City, ...], rng: np.random.Generator, growth: Mapping[str, float] | None
) -> tuple[FloatArray, tuple[str, ...]]:
    """Annual growth per city from the regime mixture, then City.growth, then `growth` overrides."""
    annual, drawn = _draw_regime_growth(len(cities), rng)
    regimes = list(drawn)
    overrides = {_fold(k): v for k, v in (growth or {}).items()}
    unknown = set(overrides) - {_fold(c.name) for c in cities}
    if unknown:
        raise ValueError(f"growth given for cities not generated: {sorted(unknown)}")
    for i, city in enumerate(cities):
        fixed = overrides.get(_fold(city.name), city.growth)
        if fixed is not None:
            annual[i] = fixed
            regimes[i] = "given"
    return annual.astype(float), tuple(str(r) for r in regimes)


def _draw_regime_growth(n: int, rng: np.random.Generator) -> tuple[FloatArray, list[str]]:
    """n annual growth rates from the regime mixture, with the regime of each."""
    # Regimes are dealt from a shuffled repeating pattern (stratified), so a handful of cities
    # always shows rising, flat and falling markets rather than leaving it to luck.
    regimes = [str(r) for r in rng.permutation(np.resize(np.array(GROWTH_PATTERN), n))]
    means = np.array([GROWTH_REGIMES[r][0] for r in regimes])
    sds = np.array([GROWTH_REGIMES[r][1] for r in regimes])
    annual = means + sds * rng.standard_normal(n)
    # Keep "up" and "down" clearly apart from "flat" so the regime label stays true.
    annual = np.where(np.array(regimes) == "up", np.maximum(annual, 0.015), annual)
    annual = np.where(np.array(regimes) == "down", np.minimum(annual, -0.015), annual)
    return annual.astype(float), regimes


def _draw_log_index(annual: FloatArray, months: int, volatility: float, rng: np.random.Generator) -> FloatArray:
    """Log index per city for months -ONBOARD_LEAD_MONTHS .. months-1; 0 at month 0."""
    m = np.arange(-ONBOARD_LEAD_MONTHS, months, dtype=float)
    drift = np.log1p(annual)[:, None] * m[None, :] / 12.0
    shocks = volatility * rng.standard_normal((len(annual), months))
    shocks[:, 0] = 0.0
    walk = np.zeros_like(drift)
    walk[:, ONBOARD_LEAD_MONTHS:] = np.cumsum(shocks, axis=1)
    return drift + walk


def _season_wave(month_of_year: IntArray | int) -> FloatArray:
    """cos wave over the months of the year, 1 at the summer peak, -1 six months later."""
    return np.cos(2.0 * np.pi * (np.asarray(month_of_year) - SEASON_PEAK_MONTH) / 12.0)


# --------------------------------------------------------------------------------------------
# Units (properties): features and their city-free log rent premium


@dataclass(frozen=True)
class _Units:
    """Feature arrays of n units; `city` and `district` index the market's cities / district table."""

    city: IntArray
    district: IntArray
    ptype: IntArray
    bedrooms: FloatArray
    rooms: FloatArray
    bathrooms: FloatArray
    size: FloatArray
    floor: FloatArray
    total_floors: FloatArray
    year_built: FloatArray
    amenities: dict[str, BoolArray]
    latitude: FloatArray
    longitude: FloatArray
    postcode: NDArray[np.object_]
    premium: FloatArray

    def __len__(self) -> int:
        return len(self.city)


@dataclass(frozen=True)
class _DistrictTable:
    """All districts of all cities flattened, so per-unit lookups are array indexing."""

    first: IntArray
    count: IntArray
    names: NDArray[np.object_]
    premium: FloatArray
    north_km: FloatArray
    east_km: FloatArray
    postcodes: NDArray[np.object_]

    @staticmethod
    def of(cities: tuple[City, ...]) -> _DistrictTable:
        all_districts = [d for c in cities for d in c.districts]
        count = np.array([len(c.districts) for c in cities], dtype=np.int64)
        return _DistrictTable(
            first=np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64),
            count=count,
            names=np.array([d.name for d in all_districts], dtype=object),
            premium=np.array([d.premium for d in all_districts], dtype=float),
            north_km=np.array([d.north_km for d in all_districts], dtype=float),
            east_km=np.array([d.east_km for d in all_districts], dtype=float),
            postcodes=np.array([_postcode_variants(d.postcode) for d in all_districts], dtype=object),
        )


_POSTCODE_VARIANTS = 8


def _postcode_variants(base: str) -> list[str]:
    """A few postcodes near a district's base code, in its national format (12345 or 12-345)."""
    digits = base.replace("-", "")
    width = len(digits)
    out = []
    for step in range(_POSTCODE_VARIANTS):
        code = str(min(int(digits) + 2 * step, 10**width - 1)).zfill(width)
        out.append(f"{code[:2]}-{code[2:]}" if "-" in base else code)
    return out


# Per-country type shares, in PROPERTY_TYPES order (apartment, condo, house, studio).
_TYPE_SHARES: dict[str, tuple[float, ...]] = {
    "Germany": (0.62, 0.08, 0.12, 0.18),
    "Poland": (0.64, 0.08, 0.10, 0.18),
    "United States": (0.45, 0.25, 0.18, 0.12),
}
# Bedroom distribution per type over 0..5 bedrooms.
_BEDROOM_SHARES = np.array([
    [0.00, 0.30, 0.40, 0.22, 0.08, 0.00],  # apartment
    [0.00, 0.35, 0.45, 0.20, 0.00, 0.00],  # condo
    [0.00, 0.00, 0.15, 0.40, 0.33, 0.12],  # house
    [1.00, 0.00, 0.00, 0.00, 0.00, 0.00],  # studio
])
# Size model per type: (m² base, m² per bedroom, lognormal sd).
_SIZE_MODEL = np.array([[22.0, 24.0, 0.13], [25.0, 25.0, 0.13], [45.0, 28.0, 0.15], [27.0, 0.0, 0.15]])


def _pick(shares: FloatArray, u: FloatArray) -> IntArray:
    """Vectorised categorical draw: row i picks from the distribution `shares[i]` with uniform u[i]."""
    cumulative = np.cumsum(shares, axis=1)
    return np.minimum((u[:, None] >= cumulative).sum(axis=1), shares.shape[1] - 1).astype(np.int64)


def _draw_units(market: Market, city: IntArray, rng: np.random.Generator) -> _Units:
    """Features for one unit per entry of `city`, all drawn column-wise (no loop over rows)."""
    n = len(city)
    table = _DistrictTable.of(market.cities)
    district = table.first[city] + np.floor(rng.random(n) * table.count[city]).astype(np.int64)
    countries = [c.country for c in market.cities]
    type_shares = np.array([_TYPE_SHARES[k] for k in countries])[city]
    ptype = _pick(type_shares, rng.random(n))
    bedrooms = _pick(_BEDROOM_SHARES[ptype], rng.random(n)).astype(float)
    size = _draw_size(ptype, bedrooms, rng)
    is_house, is_studio = ptype == 2, ptype == 3
    us = np.array([k == "United States" for k in countries])[city]
    total_floors, floor = _draw_floors(is_house, rng)
    amenities = _draw_amenities(ptype, total_floors, us, rng)
    year_built = _draw_year_built(n, market.end.year, rng)
    lat, lon = _draw_location(market, city, district, table, rng)
    units = _Units(
        city=city, district=district, ptype=ptype, bedrooms=bedrooms,
        rooms=np.where(is_studio, 1.0, bedrooms + 1.0 + (is_house & (rng.random(n) < 0.5))),
        bathrooms=_draw_bathrooms(bedrooms, is_house, us, rng), size=size, floor=floor,
        total_floors=total_floors, year_built=year_built, amenities=amenities, latitude=lat, longitude=lon,
        postcode=table.postcodes[district, rng.integers(0, _POSTCODE_VARIANTS, n)],
        premium=np.zeros(n),
    )
    return replace(units, premium=_unit_premium(market, units, table))


def _draw_size(ptype: IntArray, bedrooms: FloatArray, rng: np.random.Generator) -> FloatArray:
    base, per_bed, sd = _SIZE_MODEL[ptype].T
    size = (base + per_bed * bedrooms) * np.exp(sd * rng.standard_normal(len(ptype)))
    return np.round(np.clip(size, 15.0, 400.0), 1)


def _draw_floors(is_house: BoolArray, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    n = len(is_house)
    # Mostly walk-ups of 3-7 storeys, a fifth towers; houses have 1-3 storeys and no "floor".
    building = np.where(rng.random(n) < 0.2, rng.integers(8, 31, n), rng.integers(3, 8, n))
    total = np.where(is_house, rng.integers(1, 4, n), building).astype(float)
    floor = np.where(is_house, 0, np.floor(rng.random(n) * total)).astype(float)
    return total, floor


def _draw_amenities(
    ptype: IntArray, total_floors: FloatArray, us: BoolArray, rng: np.random.Generator
) -> dict[str, BoolArray]:
    n = len(ptype)
    is_house, is_studio = ptype == 2, ptype == 3
    p = {
        "furnished": np.where(is_studio, 0.45, 0.2),
        "parking": np.where(is_house, 0.85, np.where(us, 0.5, 0.3)),
        "balcony": np.where(is_house, 0.3, 0.55),
        "elevator": np.where(is_house, 0.0, np.where(total_floors >= 5, 0.9, 0.1)),
        "pets_allowed": np.where(us, 0.6, 0.4),
    }
    return {name: rng.random(n) < p[name] for name in AMENITY_PREMIA}


def _draw_year_built(n: int, last_year: int, rng: np.random.Generator) -> FloatArray:
    # Three building eras: pre-war/old stock, post-war to 2000, and new builds.
    era = rng.random(n)
    year = np.where(era < 0.3, rng.integers(1890, 1960, n),
                    np.where(era < 0.7, rng.integers(1960, 2000, n), rng.integers(2000, last_year + 1, n)))
    return year.astype(float)


def _draw_bathrooms(bedrooms: FloatArray, is_house: BoolArray, us: BoolArray, rng: np.random.Generator) -> FloatArray:
    half = np.where(us & (bedrooms > 0) & (rng.random(len(bedrooms)) < 0.3), 0.5, 0.0)
    return 1.0 + (bedrooms >= 3) + (is_house & (bedrooms >= 4)) + half


def _draw_location(
    market: Market, city: IntArray, district: IntArray, table: _DistrictTable, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    n = len(city)
    lat0 = np.array([c.latitude for c in market.cities])[city]
    lon0 = np.array([c.longitude for c in market.cities])[city]
    north = table.north_km[district] + 1.2 * rng.standard_normal(n)
    east = table.east_km[district] + 1.2 * rng.standard_normal(n)
    lat = lat0 + north / 111.32
    lon = lon0 + east / (111.32 * np.cos(np.radians(lat0)))
    return np.round(lat, 6), np.round(lon, 6)


def _unit_premium(market: Market, units: _Units, table: _DistrictTable) -> FloatArray:
    """The city-free, time-free part of a unit's log market rent (see the module docstring)."""
    types = np.array([TYPE_PREMIA[t] for t in PROPERTY_TYPES])
    premium = market.size_elasticity * np.log(units.size / REFERENCE_SIZE_SQM)
    premium = premium + table.premium[units.district] + types[units.ptype]
    for name, value in AMENITY_PREMIA.items():
        premium = premium + value * units.amenities[name]
    return premium + NEW_BUILD_PREMIUM * (units.year_built >= NEW_BUILD_YEAR)


# --------------------------------------------------------------------------------------------
# Time: days are int64 days since 1970-01-01


def _day(value: date) -> int:
    return int(np.datetime64(value, "D").astype(np.int64))


def _month_of(days: IntArray, market: Market) -> tuple[IntArray, IntArray]:
    """(window month index, month of year 1-12) of each day."""
    month = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    start = market.start_month.astype(np.int64)
    return month - start, month % 12 + 1


def _add_months(days: IntArray, months: IntArray) -> IntArray:
    """Same day of month `months` later, clipped to the month's end (Jan 31 + 1 -> Feb 28/29)."""
    month = days.astype("datetime64[D]").astype("datetime64[M]")
    day_of_month = days - month.astype("datetime64[D]").astype(np.int64)
    target = month + months
    first = target.astype("datetime64[D]").astype(np.int64)
    last = (target + 1).astype("datetime64[D]").astype(np.int64) - 1
    return np.minimum(first + day_of_month, last)


def _log_market_rent(market: Market, units: _Units, rows: IntArray, days: IntArray) -> FloatArray:
    """True log market rent of units `rows` listed on `days`."""
    city = units.city[rows]
    base = np.log(np.array([c.base_rent_sqm for c in market.cities]) * REFERENCE_SIZE_SQM)
    month, moy = _month_of(days, market)
    index = market.log_index[city, month + ONBOARD_LEAD_MONTHS]
    return base[city] + units.premium[rows] + index + market.season_amplitude * _season_wave(moy)


def _sample_days(
    market: Market, tilt: FloatArray, first_day: int, last_day: int, rng: np.random.Generator
) -> IntArray:
    """Days in [first_day, last_day], density ∝ exp(tilt * position) times a seasonal volume wave."""
    span = last_day - first_day + 1
    days = np.empty(len(tilt), dtype=np.int64)
    todo = np.arange(len(tilt))
    # Rejection sampling for the seasonal wave: a handful of vectorised rounds over the rejects.
    while todo.size:
        k = tilt[todo]
        v = rng.random(todo.size)
        small = np.abs(k) < 1e-9
        safe_k = np.where(small, 1.0, k)
        u = np.where(small, v, np.log1p(v * np.expm1(safe_k)) / safe_k)
        days[todo] = first_day + np.minimum(np.floor(u * span).astype(np.int64), span - 1)
        _, moy = _month_of(days[todo], market)
        accept = (1.0 + VOLUME_SEASONALITY * _season_wave(moy)) / (1.0 + VOLUME_SEASONALITY)
        todo = todo[rng.random(todo.size) >= accept]
    return days


def _standardise(values: FloatArray) -> FloatArray:
    sd = values.std()
    return (values - values.mean()) / (sd if sd > 0 else 1.0)


# --------------------------------------------------------------------------------------------
# Tenancies: listing -> wait -> lease -> listing ..., vectorised across units per round


@dataclass(frozen=True)
class _Spells:
    """One row per vacancy spell: the listing that opened it and the lease that closed it."""

    unit: IntArray
    listed: IntArray
    log_market: FloatArray
    log_ratio: FloatArray
    asking: FloatArray
    p_let: FloatArray
    wait: IntArray
    lease_start: IntArray
    lease_end: IntArray


def _simulate_spells(market: Market, units: _Units, rng: np.random.Generator) -> _Spells:
    """Run every unit from its onboarding day to the window end; one round per vacancy spell."""
    first = _day((market.start_month - ONBOARD_LEAD_MONTHS).astype(date))
    last = _day(market.end)
    day = _sample_days(market, market.mix_tilt * _standardise(units.premium), first, last, rng)
    rounds: list[dict[str, NDArray[Any]]] = []
    active = np.arange(len(units))
    while active.size:
        spell = _one_spell(market, units, active, day[active], rng)
        rounds.append(spell)
        day[active] = spell["lease_end"] + 1
        active = active[day[active] <= last]
    merged = {key: np.concatenate([r[key] for r in rounds]) for key in rounds[0]}
    return _Spells(**merged)


def _one_spell(
    market: Market, units: _Units, rows: IntArray, listed: IntArray, rng: np.random.Generator
) -> dict[str, NDArray[Any]]:
    n = len(rows)
    log_market = _log_market_rent(market, units, rows, listed)
    eps = market.noise_sigma * rng.standard_normal(n)
    _, moy = _month_of(listed, market)
    p_let = market.leaseup.probability(eps, moy, market.leaseup_offsets[units.city[rows]])
    # Exponential wait with P(wait < horizon) = p; floor() keeps that exact for whole days.
    hazard = -np.log1p(-np.minimum(p_let, 1.0 - 1e-12)) / market.leaseup.horizon_days
    wait = np.floor(rng.exponential(1.0 / hazard)).astype(np.int64)
    term = rng.choice(np.array(LEASE_TERMS_MONTHS), size=n, p=np.array(LEASE_TERM_PROBABILITIES))
    lease_start = listed + wait
    return {
        "unit": rows, "listed": listed, "log_market": log_market, "log_ratio": eps,
        "asking": np.round(np.exp(log_market + eps)), "p_let": p_let, "wait": wait,
        "lease_start": lease_start, "lease_end": _add_months(lease_start, term) - 1,
    }


# --------------------------------------------------------------------------------------------
# Frames


def _ids(prefix: str, n: int, width: int) -> NDArray[np.str_]:
    """prefix + zero-padded 1..n, vectorised (a million ids in a fraction of a second)."""
    if n == 0:
        return np.array([], dtype=str)
    digits = np.strings.zfill(np.arange(1, n + 1).astype(str), max(width, len(str(n))))
    return np.strings.add(prefix, digits)


def _to_dates(days: IntArray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(days.astype("datetime64[D]").astype("datetime64[us]"))


def _coerce(frame: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """Exactly the canonical columns, in order, with their canonical dtypes."""
    dtypes = {"str": "str", "float": "float64", "bool": "bool", "datetime": "datetime64[us]"}
    out = {}
    for name, kind in columns.items():
        values = frame[name]
        if kind == "datetime":
            values = pd.to_datetime(values)
        out[name] = values.astype(dtypes[kind])
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def _feature_frame(market: Market, units: _Units, rows: IntArray) -> dict[str, Any]:
    """The PROPERTY_FEATURES of units `rows`, as columns."""
    table = _DistrictTable.of(market.cities)
    city = units.city[rows]
    names = np.array([c.name for c in market.cities], dtype=object)
    countries = np.array([c.country for c in market.cities], dtype=object)
    columns: dict[str, Any] = {
        "city": names[city], "country": countries[city], "district": table.names[units.district[rows]],
        "postcode": units.postcode[rows], "latitude": units.latitude[rows], "longitude": units.longitude[rows],
        "property_type": np.array(PROPERTY_TYPES, dtype=object)[units.ptype[rows]],
        "bedrooms": units.bedrooms[rows], "rooms": units.rooms[rows], "bathrooms": units.bathrooms[rows],
        "size_sqm": units.size[rows], "floor": units.floor[rows], "total_floors": units.total_floors[rows],
        "year_built": units.year_built[rows],
    }
    columns.update({name: flags[rows] for name, flags in units.amenities.items()})
    return columns


def _currency(market: Market, units: _Units, rows: IntArray) -> NDArray[np.object_]:
    return np.array([c.currency for c in market.cities], dtype=object)[units.city[rows]]


def _properties_frame(
    market: Market, units: _Units, property_ids: NDArray[np.str_], rows: IntArray
) -> pd.DataFrame:
    return _coerce(pd.DataFrame({"property_id": property_ids[rows], **_feature_frame(market, units, rows)}),
                   PROPERTY_COLUMNS)


def _listings_frame(
    market: Market, units: _Units, property_ids: NDArray[np.str_], unit_rows: IntArray,
    listed: IntArray, rent: FloatArray,
) -> pd.DataFrame:
    data = {
        "listing_id": _ids("L", len(unit_rows), 7),
        "property_id": property_ids[unit_rows],
        **_feature_frame(market, units, unit_rows),
        "listed_at": _to_dates(listed),
        "monthly_rent": rent,
        "currency": _currency(market, units, unit_rows),
    }
    return _coerce(pd.DataFrame(data), LISTING_COLUMNS)


# --------------------------------------------------------------------------------------------
# Public generators


def generate(
    *,
    seed: int = DEFAULT_SEED,
    n_properties: int = DEFAULT_N_PROPERTIES,
    cities: Sequence[str | City] | None = None,
    start: date | str | None = None,
    end: date | str | None = None,
    months: int = 36,
    growth: Mapping[str, float] | None = None,
    noise_sigma: float = DEFAULT_NOISE_SIGMA,
    size_elasticity: float = DEFAULT_SIZE_ELASTICITY,
    season_amplitude: float = DEFAULT_SEASON_AMPLITUDE,
    index_volatility: float = 0.0,
    mix_tilt: float = DEFAULT_MIX_TILT,
    leaseup: LeaseUp | None = None,
    comparables: float = DEFAULT_COMPARABLES,
    include_calendar: bool = True,
    calendar_properties: int = 40,
    calendar_days: int = 180,
) -> DemoData:
    """Generate a portfolio with market listings, leases and an availability calendar, and its truth.

    Same arguments -> identical frames. `n_properties` is the landlord's portfolio (properties.csv,
    property ids P...; its leases and calendar). The market also holds `comparables` times as many
    other units (ids M...) that go through the same vacancy process; listings.csv has the listings
    of both, as a listings portal would. Each unit is listed about twice in 36 months (once per
    vacancy). Defaults: 4,000 properties, ~23,000 listings in 11 cities over the 36 months ending
    DEFAULT_END, in well under a second. The calendar covers the last `calendar_days` days of
    `calendar_properties` random portfolio properties. See the module docstring for the model.
    """
    if n_properties < 1 or comparables < 0:
        raise ValueError("n_properties must be at least 1 and comparables non-negative")
    market = draw_market(
        seed=seed, cities=cities, start=start, end=end, months=months, growth=growth,
        noise_sigma=noise_sigma, size_elasticity=size_elasticity, season_amplitude=season_amplitude,
        index_volatility=index_volatility, mix_tilt=mix_tilt, leaseup=leaseup,
    )
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)[1:]]
    weights = np.array([c.weight for c in market.cities])
    n_comparables = round(comparables * n_properties)
    city = np.concatenate([streams[0].permutation(_allocate(n, weights)) for n in (n_properties, n_comparables)])
    units = _draw_units(market, city, streams[0])
    property_ids = np.concatenate([_ids("P", n_properties, 6), _ids("M", n_comparables, 6)])
    spells = _simulate_spells(market, units, streams[1])
    return _assemble(market, units, property_ids, n_properties, spells, streams[2],
                     calendar_properties if include_calendar else 0, calendar_days)


def _allocate(n: int, weights: FloatArray) -> IntArray:
    """City of each of n units: shares follow weights, every city gets a few when n allows."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    share = weights / weights.sum()
    counts = np.floor(n * share).astype(np.int64)
    counts = np.maximum(counts, 2 if n >= 4 * len(share) else 0)
    order = np.argsort(-(n * share - np.floor(n * share)), kind="stable")
    while counts.sum() < n:
        counts[order[: n - counts.sum()]] += 1
    while counts.sum() > n:
        big = np.argsort(-counts, kind="stable")[: counts.sum() - n]
        counts[big] -= 1
    return np.repeat(np.arange(len(share)), counts)


def _assemble(
    market: Market, units: _Units, property_ids: NDArray[np.str_], n_portfolio: int, spells: _Spells,
    rng: np.random.Generator, calendar_properties: int, calendar_days: int,
) -> DemoData:
    """Cut the simulated spells to the window and build the canonical frames and the truth.

    Units 0..n_portfolio-1 are the portfolio: only they appear in properties, leases and calendar.
    """
    first, last = _day(market.start), _day(market.end)
    listed = np.flatnonzero((spells.listed >= first) & (spells.listed <= last))
    listed = listed[np.lexsort((spells.unit[listed], spells.listed[listed]))]
    listings = _listings_frame(market, units, property_ids, spells.unit[listed],
                               spells.listed[listed], spells.asking[listed])
    leases = _leases_frame(market, units, property_ids, spells, n_portfolio, first, last)
    calendar = _calendar_frame(market, spells, listed, listings, n_portfolio, calendar_properties,
                               calendar_days, rng)
    properties = _properties_frame(market, units, property_ids, np.arange(n_portfolio))
    truth = market.truth()
    truth["counts"] = {
        "properties": n_portfolio, "comparables": len(units) - n_portfolio, "listings": len(listings),
        "leases": len(leases), "calendar": 0 if calendar is None else len(calendar),
    }
    return DemoData(properties, listings, leases, calendar, truth, _listing_truth(listings, spells, listed, last))


def _listing_truth(listings: pd.DataFrame, spells: _Spells, listed: IntArray, last: int) -> pd.DataFrame:
    return pd.DataFrame({
        "listing_id": listings["listing_id"], "property_id": listings["property_id"],
        "market_rent": np.exp(spells.log_market[listed]), "log_ratio": spells.log_ratio[listed],
        "p_let": spells.p_let[listed], "days_to_let": spells.wait[listed],
        "let_by_end": spells.lease_start[listed] <= last,
    })


def _leases_frame(
    market: Market, units: _Units, property_ids: NDArray[np.str_], spells: _Spells, n_portfolio: int,
    first: int, last: int,
) -> pd.DataFrame:
    """The portfolio's leases signed by the window end that are still running at its start."""
    mine = spells.unit < n_portfolio
    keep = np.flatnonzero(mine & (spells.lease_start <= last) & (spells.lease_end >= first))
    keep = keep[np.lexsort((spells.lease_start[keep], spells.unit[keep]))]
    unit = spells.unit[keep]
    data = {
        "lease_id": _ids("S", len(keep), 7),
        "property_id": property_ids[unit],
        "unit_id": np.strings.add(property_ids[unit], "-U1"),
        "start_date": _to_dates(spells.lease_start[keep]),
        "end_date": _to_dates(spells.lease_end[keep]),
        "monthly_rent": spells.asking[keep],
        "currency": _currency(market, units, unit),
    }
    return _coerce(pd.DataFrame(data), LEASE_COLUMNS)


def _calendar_frame(
    market: Market, spells: _Spells, listed: IntArray, listings: pd.DataFrame, n_portfolio: int,
    n_units: int, n_days: int, rng: np.random.Generator,
) -> pd.DataFrame | None:
    """Daily availability of a few portfolio units: the current listing, vacant (available) or let."""
    candidates = np.unique(spells.unit[listed])
    candidates = candidates[candidates < n_portfolio]
    if n_units <= 0 or len(candidates) == 0:
        return None
    first, last = _day(market.start), _day(market.end)
    units = np.sort(rng.choice(candidates, size=min(n_units, len(candidates)), replace=False))
    days = np.arange(max(last - n_days + 1, first), last + 1, dtype=np.int64)
    grid_unit, grid_day = np.repeat(units, len(days)), np.tile(days, len(units))
    row, found = _latest_listing(spells.unit[listed], spells.listed[listed], grid_unit, grid_day, first)
    row, grid_day = row[found], grid_day[found]
    data = {
        "listing_id": listings["listing_id"].to_numpy()[row],
        "date": _to_dates(grid_day),
        "available": grid_day < spells.lease_start[listed[row]],
        "price": spells.asking[listed[row]],
    }
    return _coerce(pd.DataFrame(data), CALENDAR_COLUMNS)


def _latest_listing(
    unit: IntArray, listed: IntArray, query_unit: IntArray, query_day: IntArray, first: int
) -> tuple[IntArray, BoolArray]:
    """Per query, the position of the unit's latest listing on or before the day, and whether any."""
    # One sorted integer key (unit * span + day offset) turns the lookup into a single searchsorted.
    span = int(max(listed.max(), query_day.max())) - first + 1
    order = np.lexsort((listed, unit))
    key = unit[order] * span + (listed[order] - first)
    position = np.searchsorted(key, query_unit * span + (query_day - first), side="right") - 1
    found = (position >= 0) & (unit[order[np.maximum(position, 0)]] == query_unit)
    return order[np.maximum(position, 0)], found


def generate_listings(n_rows: int, seed: int = DEFAULT_SEED, *, market: Market | None = None) -> pd.DataFrame:
    """`n_rows` canonical listings drawn straight from the hedonic model, fully vectorised.

    For benchmarks and large calibration studies: no leases, no vacancy simulation; about four
    listings per property, dates spread over the window with the same mix tilt and seasonal volume.
    The truth is `market.truth()` (default market: `draw_market(seed=seed)`).
    """
    if n_rows < 0:
        raise ValueError("n_rows must be non-negative")
    market = market or draw_market(seed=seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])
    weights = np.array([c.weight for c in market.cities])
    n_units = max(1, n_rows // 4)
    units = _draw_units(market, rng.choice(len(weights), size=n_units, p=weights / weights.sum()), rng)
    rows = rng.integers(0, n_units, n_rows)
    tilt = market.mix_tilt * _standardise(units.premium)[rows]
    days = _sample_days(market, tilt, _day(market.start), _day(market.end), rng)
    order = np.lexsort((rows, days))
    rows, days = rows[order], days[order]
    rent = np.round(np.exp(_log_market_rent(market, units, rows, days)
                           + market.noise_sigma * rng.standard_normal(n_rows)))
    return _listings_frame(market, units, _ids("P", n_units, 6), rows, days, rent)


def random_markets(n_markets: int, seed: int = 0, *, thin_share: float = 0.25) -> list[City]:
    """`n_markets` synthetic cities with drawn true growth, for calibration studies.

    Countries, base rents (country-typical), 3-7 districts with premia and a growth from the
    regime mixture are drawn per city; a `thin_share` of them get a weight ~50x smaller than
    usual so they end up with very few listings. Pass the list as `cities=` to `generate`.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    countries = list(CURRENCY_BY_COUNTRY)
    boxes = {"Germany": (48, 54, 7, 14, 10.0, 22.0), "Poland": (50, 54, 15, 23, 45.0, 85.0),
             "United States": (30, 45, -120, -75, 18.0, 60.0)}
    growth, _ = _draw_regime_growth(n_markets, rng)
    cities = []
    for i in range(n_markets):
        country = countries[int(rng.integers(len(countries)))]
        lat0, lat1, lon0, lon1, rent0, rent1 = boxes[country]
        thin = rng.random() < thin_share
        cities.append(City(
            name=f"Market {i + 1:03d}", country=country,
            latitude=round(float(rng.uniform(lat0, lat1)), 4), longitude=round(float(rng.uniform(lon0, lon1)), 4),
            base_rent_sqm=round(float(rng.uniform(rent0, rent1)), 2),
            districts=_random_districts(country, rng),
            weight=float(rng.uniform(0.01, 0.03) if thin else rng.lognormal(0.0, 0.5)),
            growth=round(float(growth[i]), 5),
        ))
    return cities


def _random_districts(country: str, rng: np.random.Generator) -> tuple[District, ...]:
    n = int(rng.integers(3, 8))
    premia = np.round(rng.normal(0.0, 0.1, n), 3)
    base = int(rng.integers(10, 99)) * 1000
    codes = [str(base + 100 * k).zfill(5) for k in range(n)]
    if country == "Poland":
        codes = [f"{c[:2]}-{c[2:]}" for c in codes]
    return tuple(
        District(f"District {k + 1}", float(premia[k]), float(rng.normal(0, 4)), float(rng.normal(0, 4)), codes[k])
        for k in range(n)
    )


# --------------------------------------------------------------------------------------------
# Truth


def _market_truth(market: Market) -> dict[str, Any]:
    labels = market.month_labels()
    index = market.window_index()
    return {
        "seed": market.seed,
        "start": market.start.isoformat(),
        "end": market.end.isoformat(),
        "months": labels,
        "model": ("log market = log(base_rent_sqm*reference_size_sqm) + size_elasticity*log(size_sqm/"
                  "reference_size_sqm) + district + type + amenities + new_build + log index[city, month] "
                  "+ season; asking = round(market * exp(N(0, noise_sigma)))"),
        "reference_size_sqm": REFERENCE_SIZE_SQM,
        "currency_by_country": dict(CURRENCY_BY_COUNTRY),
        "size_elasticity": market.size_elasticity,
        "noise_sigma": market.noise_sigma,
        "season": {
            "amplitude": market.season_amplitude, "peak_month": SEASON_PEAK_MONTH,
            "factor_by_month": {str(m): float(np.exp(market.season_amplitude * _season_wave(m)))
                                for m in range(1, 13)},
        },
        "type_premia": dict(TYPE_PREMIA),
        "amenity_premia": dict(AMENITY_PREMIA),
        "new_build": {"year": NEW_BUILD_YEAR, "premium": NEW_BUILD_PREMIUM},
        "cities": {c.name: _city_truth(market, i) for i, c in enumerate(market.cities)},
        "index": {c.name: [float(v) for v in index[i]] for i, c in enumerate(market.cities)},
        "growth": {c.name: _growth_truth(market.annual_growth[i], index[i], labels)
                   for i, c in enumerate(market.cities)},
        "growth_distribution": {
            "regimes": {k: {"mean": m, "sd": s} for k, (m, s) in GROWTH_REGIMES.items()},
            "pattern": list(GROWTH_PATTERN),
            "rule": "regimes dealt from the shuffled repeating pattern; up >= 0.015, down <= -0.015",
        },
        "index_volatility": market.index_volatility,
        "leaseup": _leaseup_truth(market),
        "lease_terms": {"months": list(LEASE_TERMS_MONTHS), "probabilities": list(LEASE_TERM_PROBABILITIES)},
        "expected_occupancy": {c.name: _expected_occupancy(market, float(market.leaseup_offsets[i]))
                               for i, c in enumerate(market.cities)},
        "mix": {"tilt": market.mix_tilt, "volume_seasonality": VOLUME_SEASONALITY,
                "onboard_lead_months": ONBOARD_LEAD_MONTHS},
    }


def _city_truth(market: Market, i: int) -> dict[str, Any]:
    city = market.cities[i]
    return {
        "country": city.country, "currency": city.currency, "latitude": city.latitude,
        "longitude": city.longitude, "base_rent_sqm": city.base_rent_sqm, "weight": city.weight,
        "annual_growth": float(market.annual_growth[i]), "regime": market.regimes[i],
        "leaseup_offset": float(market.leaseup_offsets[i]),
        "districts": {d.name: d.premium for d in city.districts},
    }


def _growth_truth(annual: float, index: FloatArray, labels: list[str]) -> dict[str, Any]:
    """Drift rates and realised growth of the (seasonally adjusted) index per period."""
    series = pd.Series(index, index=pd.PeriodIndex(labels, freq="M"))

    def full_periods(freq: str, size: int) -> pd.Series:
        # Mean index per period; partial periods at the window's edges would bias the rate.
        grouped = series.groupby(series.index.asfreq(freq))
        means = grouped.mean()[grouped.size() == size]
        return (means / means.shift(1) - 1.0).dropna()

    return {
        "annual": float(annual),
        "monthly_rate": float((1 + annual) ** (1 / 12) - 1),
        "quarterly_rate": float((1 + annual) ** 0.25 - 1),
        "monthly": {str(p): float(v) for p, v in (series / series.shift(1) - 1).dropna().items()},
        "quarterly": {str(p): float(v) for p, v in full_periods("Q", 3).items()},
        "yearly": {str(p): float(v) for p, v in full_periods("Y", 12).items()},
        "yoy": {str(p): float(v) for p, v in (series / series.shift(12) - 1).dropna().items()},
    }


def _leaseup_truth(market: Market) -> dict[str, Any]:
    lu = market.leaseup
    return {
        "intercept": lu.intercept, "slope": lu.slope, "season_amplitude": lu.season_amplitude,
        "peak_month": SEASON_PEAK_MONTH, "horizon_days": lu.horizon_days, "city_offset_sd": lu.city_offset_sd,
        "city_offsets": {c.name: float(market.leaseup_offsets[i]) for i, c in enumerate(market.cities)},
        "definition": "P(days_to_let < horizon_days) = logistic(intercept + city_offset + slope * "
                      "log(asking / market) + season_amplitude * cos(2 pi (month - peak_month) / 12)); "
                      "days_to_let = floor(Exponential(hazard = -log(1 - P) / horizon_days))",
    }


def _expected_occupancy(market: Market, city_offset: float) -> dict[str, float]:
    """Long-run let share and vacancy, averaging over pricing noise and listing month."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    weights = weights / weights.sum()
    log_ratio = market.noise_sigma * nodes[:, None]
    p = market.leaseup.probability(log_ratio, np.arange(1, 13)[None, :], city_offset)
    hazard = -np.log1p(-p) / market.leaseup.horizon_days
    vacancy = float((weights[:, None] * (1.0 / np.expm1(hazard))).sum() / 12.0)
    term = float(np.dot(LEASE_TERMS_MONTHS, LEASE_TERM_PROBABILITIES)) * DAYS_PER_MONTH
    return {
        "let_within_horizon": float((weights[:, None] * p).sum() / 12.0),
        "vacancy_days": vacancy,
        "occupancy": term / (term + vacancy),
    }


def true_market_rent(frame: pd.DataFrame, truth: Mapping[str, Any]) -> FloatArray:
    """The true (median) market rent of each canonical listing row at its `listed_at`, from a truth dict.

    NaN where the city, district or month is not in the truth. `monthly_rent / true_market_rent`
    is exp(eps) up to rounding for generated listings.
    """
    cities = truth["cities"]
    ref = truth["reference_size_sqm"]
    base = frame["city"].map({k: math.log(v["base_rent_sqm"] * ref) for k, v in cities.items()})
    district = pd.Series(list(zip(frame["city"], frame["district"])), index=frame.index).map(
        {(c, d): p for c, v in cities.items() for d, p in v["districts"].items()})
    log_rent = (base + district + frame["property_type"].map(truth["type_premia"])
                + truth["size_elasticity"] * np.log(frame["size_sqm"] / ref)
                + truth["new_build"]["premium"] * (frame["year_built"] >= truth["new_build"]["year"]))
    for name, premium in truth["amenity_premia"].items():
        log_rent = log_rent + premium * frame[name].astype(bool)
    listed = pd.to_datetime(frame["listed_at"])
    month = ((listed.dt.year - int(truth["start"][:4])) * 12 + listed.dt.month - int(truth["start"][5:7]))
    log_rent = log_rent + _truth_log_index(frame["city"], month, truth)
    season = truth["season"]
    log_rent = log_rent + season["amplitude"] * np.cos(2 * np.pi * (listed.dt.month - season["peak_month"]) / 12)
    return np.exp(log_rent.to_numpy(dtype=float))


def _truth_log_index(city: pd.Series, month: pd.Series, truth: Mapping[str, Any]) -> FloatArray:
    names = list(truth["index"])
    table = np.log(np.array([truth["index"][n] for n in names], dtype=float))
    row = city.map({n: i for i, n in enumerate(names)}).to_numpy(dtype=float)
    col = month.to_numpy(dtype=float)
    ok = ~np.isnan(row) & (col >= 0) & (col < table.shape[1])
    out = np.full(len(city), np.nan)
    out[ok] = table[row[ok].astype(int), col[ok].astype(int)]
    return out


def lease_up_probability(
    log_ratio: FloatArray | float, month_of_year: IntArray | int, truth: Mapping[str, Any], city: str | None = None
) -> FloatArray:
    """True P(let within the horizon) from a truth dict (city None: offset 0)."""
    lu = truth["leaseup"]
    model = LeaseUp(lu["intercept"], lu["slope"], lu["season_amplitude"], lu["horizon_days"], lu["city_offset_sd"])
    offset = 0.0 if city is None else lu["city_offsets"][city]
    return model.probability(log_ratio, month_of_year, offset)


# --------------------------------------------------------------------------------------------
# Files


_FILES: dict[str, Mapping[str, str]] = {
    "properties": PROPERTY_COLUMNS,
    "listings": LISTING_COLUMNS,
    "leases": LEASE_COLUMNS,
    "calendar": CALENDAR_COLUMNS,
}


def _atomic_write(path: Path, write: Callable[[TextIO], object]) -> None:
    """Write via a temp file in the same folder and os.replace, so readers never see half a file."""
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp",
                                         delete=False, encoding="utf-8", newline="")
    try:
        with handle:
            write(handle)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def save_demo_data(data: DemoData, out_dir: Path | str) -> dict[str, Path]:
    """Write the frames as CSV and the truth as truth.json into `out_dir`, each atomically.

    Returns {"properties", "listings", "leases", ["calendar",] "truth"} -> path. truth.json goes
    last so its presence means the set is complete; a stale calendar.csv is removed.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in _FILES:
        frame = getattr(data, name)
        path = folder / f"{name}.csv"
        if frame is None:
            path.unlink(missing_ok=True)
            continue
        _atomic_write(path, lambda f, frame=frame: frame.to_csv(f, index=False, date_format="%Y-%m-%d"))
        paths[name] = path
    paths["truth"] = folder / "truth.json"
    _atomic_write(paths["truth"], lambda f: json.dump(data.truth, f, indent=1, ensure_ascii=False))
    return paths


def write_demo_data(
    out_dir: Path | str, *, seed: int = DEFAULT_SEED, n_properties: int = DEFAULT_N_PROPERTIES, **options: Any
) -> dict[str, Path]:
    """Generate (`generate(seed=..., n_properties=..., **options)`) and save into `out_dir`."""
    return save_demo_data(generate(seed=seed, n_properties=n_properties, **options), out_dir)


def read_canonical_csv(path: Path | str, columns: Mapping[str, str]) -> pd.DataFrame:
    """Read a CSV written by `save_demo_data` back into the canonical columns and dtypes."""
    text = {name: "str" for name, kind in columns.items() if kind == "str"}
    return _coerce(pd.read_csv(path, dtype=text, keep_default_na=False, na_values=[""]), columns)


def load_demo_data(out_dir: Path | str) -> DemoData:
    """Read a folder written by `save_demo_data` (listing_truth is not saved, so it is None)."""
    folder = Path(out_dir)
    frames = {name: read_canonical_csv(folder / f"{name}.csv", columns)
              for name, columns in _FILES.items() if (folder / f"{name}.csv").exists()}
    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    return DemoData(frames["properties"], frames["listings"], frames["leases"], frames.get("calendar"), truth)

"""Market insights from listings (and leases / calendars where present): pure DataFrames in, records out.

For every market (a city, and a city x property type or x bedrooms/rooms where the data has several)
and the latest period, `generate_insights` states:

- rent growth month over month, quarter over quarter (last full calendar quarter vs the one before)
  and year over year, from the hedonic index of `insights.feed.index` (constant quality, so a change in
  the mix of listed flats is not read as a change in price); with 24+ months of data the monthly and
  quarterly figures are seasonally adjusted, otherwise the sentence says they are not;
- the rent level: median asking rent and median rent per m² of the latest month;
- the fastest-rising and fastest-falling city;
- occupancy (leases, or the calendar as a proxy) and days to let (listings followed by a lease).

Privacy: a market-period with fewer than `min_market_size` distinct properties (or listings when
there is no property id) yields nothing, and `sample_size` is that distinct count, never a row count.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from insights import defaults
from insights.errors import InvalidInput
from insights.feed import confidence, text
from insights.feed.index import (
    BOOL_FEATURES,
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    OBS_PER_FEATURE,
    IndexFit,
    bool_values,
    fit_index,
    hedonic_features,
)

#: Relative growth within which a market counts as flat, per horizon (stated in every flat sentence).
FLAT_BAND: dict[str, float] = {"mom": 0.005, "qoq": 0.005, "yoy": 0.01}
#: Candidate half-widths (relative) of a level interval; the narrowest reaching LEVEL_TARGET is stated.
LEVEL_BANDS: tuple[float, ...] = (0.02, 0.03, 0.05, 0.10)
LEVEL_TARGET = 0.9
#: Months of history an index is fitted on (enough for year over year and seasonal adjustment).
WINDOW_MONTHS = 36
#: Months of index needed to estimate seasonal factors (each calendar month seen twice).
SEASONAL_MONTHS = 24
#: Months whose seasonal rent level the seasonal insight compares (named in its sentence).
SEASON_HIGH: tuple[int, ...] = (6, 7, 8)
SEASON_LOW: tuple[int, ...] = (12, 1, 2)
#: Seasonal gap within which a market counts as showing no seasonal swing.
SEASON_BAND = 0.01
#: Two-sided level of the growth interval `low..high`.
GROWTH_INTERVAL = 0.9
#: Bootstrap replicates per market.
N_BOOT = 200
#: Smallest spread (sd, as a multiple of the flat band) assumed for true growth across markets.
PRIOR_FLOOR = 1.0
#: Spread (sd of log growth) assumed when there are too few markets to estimate it.
PRIOR_FALLBACK: dict[str, float] = {"mom": 0.02, "qoq": 0.03, "yoy": 0.06}


@dataclass
class InsightRecord:
    """One insight: a sentence plus its structured, checkable claim and calibrated confidence."""

    kind: str
    city: str | None
    country: str | None
    segment: str | None
    metric: str
    value: float
    low: float | None
    high: float | None
    unit: str
    period_start: date
    period_end: date
    sample_size: int
    direction: str | None
    method: str
    confidence_score: float
    text: str

    def as_dict(self) -> dict[str, object]:
        """The record as a plain dict (e.g. for the `Insight` table or JSON)."""
        return asdict(self)


@dataclass(frozen=True)
class Market:
    """The rows of one market: a city, or a segment of it."""

    city: str
    country: str | None
    segment: str | None
    currency: str | None
    rows: pd.DataFrame


def generate_insights(
    listings: pd.DataFrame,
    *,
    leases: pd.DataFrame | None = None,
    calendar: pd.DataFrame | None = None,
    properties: pd.DataFrame | None = None,
    as_of: date | str | pd.Timestamp | None = None,
    min_market_size: int = defaults.MIN_MARKET_SIZE,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> list[InsightRecord]:
    """Insights for every market in canonical `listings` (plus leases/calendar/properties when given).

    `as_of` (default: the latest `listed_at`) fixes the latest month; later rows are ignored.
    Markets or periods with fewer than `min_market_size` distinct properties/listings are skipped.
    Same inputs and `seed` give the same records.
    """
    if min_market_size < defaults.MIN_MARKET_SIZE_FLOOR:
        raise InvalidInput(f"min_market_size must be at least {defaults.MIN_MARKET_SIZE_FLOOR}")
    # The matrices are small (clusters x k^2); BLAS threads only contend with each other on them.
    with threadpool_limits(limits=1, user_api="blas"):
        return _generate(
            listings, leases=leases, calendar=calendar, properties=properties, as_of=as_of,
            min_market_size=min_market_size, n_boot=n_boot, seed=seed,
        )


def _generate(
    listings: pd.DataFrame,
    *,
    leases: pd.DataFrame | None,
    calendar: pd.DataFrame | None,
    properties: pd.DataFrame | None,
    as_of: date | str | pd.Timestamp | None,
    min_market_size: int,
    n_boot: int,
    seed: int,
) -> list[InsightRecord]:
    frame = prepare_listings(listings, as_of=as_of)
    end = _latest_month(frame, calendar, as_of)
    if end is None:
        return []
    records: list[InsightRecord] = []
    estimates: list[tuple[Market, str, Growth]] = []
    seasons: list[tuple[Market, Growth]] = []
    for number, market in enumerate(markets(frame, end=end, min_market_size=min_market_size)):
        fit = _fit_market(market, n_boot=n_boot, seed=seed + number)
        estimates += [(market, h, g) for h, g in market_growth(market, fit, end=end, min_market_size=min_market_size).items()]
        records += level_records(market, end=end, min_market_size=min_market_size)
        gap = seasonal_gap(market, fit) if market.segment is None else None
        if gap is not None:
            seasons.append((market, gap))
    priors = growth_priors(estimates)
    records += [growth_record(market, horizon, growth, priors[horizon]) for market, horizon, growth in estimates]
    records += seasonal_records(seasons)
    city_growth = [(m, h, g) for m, h, g in estimates if m.segment is None]
    records += mover_records(city_growth, priors, seed=seed)
    unit_city = _unit_cities(listings, properties)
    if leases is not None and not leases.empty:
        records += occupancy_records(leases, unit_city, frame, end=end, min_market_size=min_market_size, seed=seed)
        records += days_to_let_records(frame, leases, end=end, min_market_size=min_market_size)
    if calendar is not None and not calendar.empty:
        records += calendar_records(calendar, unit_city, end=end, min_market_size=min_market_size, seed=seed)
    return _with_countries(records, listings, properties)


def _with_countries(records: list[InsightRecord], *frames: pd.DataFrame | None) -> list[InsightRecord]:
    """Fill the country of lease and calendar insights from the city's listings or properties."""
    known = [f[["city", "country"]].dropna() for f in frames if f is not None and {"city", "country"} <= set(f.columns)]
    if not known:
        return records
    country = pd.concat(known).drop_duplicates("city").set_index("city")["country"].astype(str).to_dict()
    for record in records:
        if record.country is None and record.city is not None:
            record.country = country.get(record.city)
    return records


# ---------------------------------------------------------------------------------------------
# Preparing listings and cutting markets


def _latest_month(frame: pd.DataFrame, calendar: pd.DataFrame | None, as_of: object) -> pd.Period | None:
    """The month insights describe: `as_of`'s, else the latest listing's, else the calendar's first full month."""
    if as_of is not None:
        return pd.Period(pd.Timestamp(as_of), freq="M")
    if not frame.empty:
        return frame["month"].max()
    if calendar is not None and not calendar.empty:
        first = pd.to_datetime(calendar["date"]).min()
        return pd.Period(first, freq="M") + (0 if first.day == 1 else 1)
    return None


def prepare_listings(listings: pd.DataFrame, *, as_of: date | str | pd.Timestamp | None = None) -> pd.DataFrame:
    """Usable listing rows with `month`, `unit` (privacy and bootstrap cluster) and `log_rent` added.

    Rows without a city, a date or a positive rent are dropped. `unit` is the property id, else the
    listing id, else the row itself: a flat relisted every month is one unit, not many.
    """
    required = ("city", "listed_at", "monthly_rent")
    if listings.empty:  # e.g. a calendar-only data set: no rent insights, the rest still runs
        listings = pd.DataFrame({column: pd.Series(dtype="object") for column in required})
    for column in required:
        if column not in listings:
            raise InvalidInput(f"listings need a `{column}` column to produce insights")
    frame = listings[[c for c in listings.columns if c in _KEPT]].copy()
    frame["listed_at"] = pd.to_datetime(frame["listed_at"], errors="coerce")
    frame["monthly_rent"] = pd.to_numeric(frame["monthly_rent"], errors="coerce")
    frame = frame[frame["city"].notna() & frame["listed_at"].notna() & (frame["monthly_rent"] > 0)]
    if as_of is not None:
        frame = frame[frame["listed_at"] < pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)]
    frame = frame.reset_index(drop=True)
    frame["month"] = frame["listed_at"].dt.to_period("M")
    frame["month_n"] = frame["month"].array.asi8  # months since 1970, for fast numeric filtering
    frame["unit"] = pd.factorize(_unit_ids(frame))[0]
    frame["log_rent"] = np.log(frame["monthly_rent"].to_numpy(dtype=float))
    # Per-market subsets are cut many times: numeric flags and categorical codes make that cheap.
    for name in BOOL_FEATURES:
        if name in frame:
            frame[name] = bool_values(frame[name])
    for name in ("city", *CATEGORICAL_FEATURES):
        if name in frame:
            frame[name] = frame[name].astype("category")
    return frame


#: Listing columns insights use; the rest (free text, extra source columns) is dropped on entry.
_KEPT = frozenset(
    {"listing_id", "property_id", "city", "country", "currency", "listed_at", "monthly_rent", "latitude", "longitude"}
    | set(NUMERIC_FEATURES) | set(BOOL_FEATURES) | set(CATEGORICAL_FEATURES)
)


def _unit_ids(frame: pd.DataFrame) -> pd.Series:
    unit = pd.Series(pd.NA, index=frame.index, dtype="string")
    for column, prefix in (("property_id", "P:"), ("listing_id", "L:")):
        if column in frame:
            unit = unit.fillna(prefix + frame[column].astype("string"))
    return unit.fillna("R:" + pd.Series(frame.index.astype(str), index=frame.index))


def markets(frame: pd.DataFrame, *, end: pd.Period, min_market_size: int) -> Iterator[Market]:
    """Each city, then its segments, that has at least `min_market_size` units in month `end`."""
    window = frame[(frame["month"] > end - WINDOW_MONTHS) & (frame["month"] <= end)]
    for city, rows in window.groupby("city", sort=True, observed=True):
        if _units(rows[rows["month"] == end]) < min_market_size:
            continue
        country = _mode(rows, "country")
        currency = _mode(rows, "currency")
        yield Market(str(city), country, None, currency, rows)
        for label, segment in _segments(rows):
            if _units(segment[segment["month"] == end]) >= min_market_size:
                yield Market(str(city), country, label, currency, segment)


def _segments(rows: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """(label, rows) per property type and per bedroom (else room) count, when a city has several."""
    kinds = rows["property_type"].astype("string") if "property_type" in rows else None
    for values in (kinds, _size_bucket(rows)):
        if values is None or values.nunique(dropna=True) < 2:
            continue
        for level, segment in rows.groupby(values, sort=True, observed=True):
            yield str(level), segment


def _size_bucket(rows: pd.DataFrame) -> pd.Series | None:
    """'studio', '1-bedroom' ... '3+-bedroom', or '1-room' ... '4+-room' when bedrooms are missing."""
    for column, top, word in (("bedrooms", 3, "bedroom"), ("rooms", 4, "room")):
        if column in rows and rows[column].notna().mean() >= 0.5:
            count = pd.to_numeric(rows[column], errors="coerce").round().clip(upper=top)
            return count.map({n: _bucket_label(int(n), top, word) for n in count.dropna().unique()}).astype("string")
    return None


def _bucket_label(n: int, top: int, word: str) -> str:
    if word == "bedroom" and n == 0:
        return "studio"
    return f"{n}{'+' if n >= top else ''}-{word}"


def _units(rows: pd.DataFrame) -> int:
    return int(rows["unit"].nunique())


def _mode(rows: pd.DataFrame, column: str) -> str | None:
    if column not in rows:
        return None
    values = rows[column].dropna()
    return None if values.empty else str(values.mode().iloc[0])


# ---------------------------------------------------------------------------------------------
# Rent growth


@dataclass(frozen=True)
class Growth:
    """A log growth estimate between two sets of months, its bootstrap draws and sample size."""

    estimate: float
    draws: np.ndarray
    start: pd.Period
    end: pd.Period
    sample_size: int
    adjusted: bool

    @property
    def se(self) -> float:
        """Bootstrap standard error of the log growth."""
        return float(np.std(self.draws, ddof=1)) if self.draws.size > 1 else float("inf")


def _fit_market(market: Market, *, n_boot: int, seed: int) -> IndexFit:
    rows = market.rows
    periods = pd.PeriodIndex(sorted(rows["month"].unique()), freq="M")
    codes = periods.get_indexer(rows["month"])
    # Keep the regression's parameter count within what the data carries (thin data, few features).
    budget = max(0, (len(rows) - len(periods)) // OBS_PER_FEATURE)
    features = hedonic_features(rows, max_features=budget)
    clusters = pd.factorize(rows["unit"])[0]
    return fit_index(rows["log_rent"].to_numpy(), codes, features, clusters, periods=periods, n_boot=n_boot, seed=seed)


def seasonal_effects(periods: pd.PeriodIndex) -> np.ndarray | None:
    """Matrix `S` (12 x periods): `S @ log_index` are the month-of-year effects; None without 24+ months.

    The log index is fitted as a linear trend plus month-of-year effects summing to zero. Linear in
    the index, so bootstrap replicates get their effects from the same matrix.
    """
    moy = np.asarray(periods.month) - 1
    if len(periods) < SEASONAL_MONTHS or np.bincount(moy, minlength=12).min() < 2:
        return None
    dummies = np.eye(12)[moy]
    coding = dummies[:, :11] - dummies[:, 11:12]  # effect coding: the 12 effects sum to zero
    t = (periods - periods[0]).map(lambda offset: offset.n).to_numpy(dtype=float)
    design = np.column_stack([np.ones(len(periods)), t, coding])
    to_effects = np.vstack([np.eye(11), -np.ones((1, 11))])  # 11 coded effects -> all 12 months
    return to_effects @ np.linalg.pinv(design)[2:, :]


def seasonal_adjuster(periods: pd.PeriodIndex) -> np.ndarray | None:
    """Matrix `A` with `A @ log_index` the seasonally adjusted index (effects removed), or None."""
    effects = seasonal_effects(periods)
    if effects is None:
        return None
    moy = np.asarray(periods.month) - 1
    return np.eye(len(periods)) - effects[moy, :]


def market_growth(market: Market, fit: IndexFit, *, end: pd.Period, min_market_size: int) -> dict[str, Growth]:
    """Growth per horizon ('mom', 'qoq', 'yoy') that the data spans and privacy allows."""
    adjust = seasonal_adjuster(fit.periods)
    point, boot = fit.log_index, fit.boot
    if adjust is not None:
        point, boot = adjust @ point, boot @ adjust.T  # NaN replicates stay NaN and are dropped below
    out: dict[str, Growth] = {}
    for horizon, (before, after) in _horizons(end).items():
        positions = [fit.position(p) for p in (*before, *after)]
        if any(p is None for p in positions):
            continue
        sizes = [_units_in(market, months) for months in (before, after)]
        if min(sizes) < min_market_size:
            continue
        a, b = positions[: len(before)], positions[len(before):]
        estimate = float(point[b].mean() - point[a].mean())
        draws = boot[:, b].mean(axis=1) - boot[:, a].mean(axis=1)
        out[horizon] = Growth(
            estimate=estimate, draws=draws[np.isfinite(draws)], start=before[0], end=after[-1],
            sample_size=min(sizes), adjusted=adjust is not None,
        )
    return out


def _units_in(market: Market, months: list[pd.Period]) -> int:
    """Distinct units of `market` listed in any of `months`."""
    wanted = np.isin(market.rows["month_n"].to_numpy(), [m.ordinal for m in months])
    return int(np.unique(market.rows["unit"].to_numpy()[wanted]).size)


def _horizons(end: pd.Period) -> dict[str, tuple[list[pd.Period], list[pd.Period]]]:
    """The months compared by each horizon: (earlier months, later months)."""
    quarter_end = end if end.month % 3 == 0 else end - end.month % 3
    latest = [quarter_end - 2, quarter_end - 1, quarter_end]
    return {
        "mom": ([end - 1], [end]),
        "qoq": ([m - 3 for m in latest], latest),
        "yoy": ([end - 12], [end]),
    }


def growth_priors(estimates: list[tuple[Market, str, Growth]]) -> dict[str, confidence.Prior]:
    """Per horizon, the spread of true growth across all markets of this run (see `confidence.fit_prior`)."""
    priors = {}
    for horizon, band in FLAT_BAND.items():
        chosen = [g for _, h, g in estimates if h == horizon and g.draws.size >= confidence.MIN_DRAWS]
        priors[horizon] = confidence.fit_prior(
            np.array([g.estimate for g in chosen]), np.array([g.se for g in chosen]),
            floor=PRIOR_FLOOR * band, fallback=PRIOR_FALLBACK[horizon],
        )
    return priors


def growth_claim(growth: Growth, horizon: str, prior: confidence.Prior) -> tuple[str, float]:
    """The stated direction (where the estimate lies) and its raw posterior probability."""
    band = FLAT_BAND[horizon]
    change = float(np.expm1(growth.estimate))
    direction = "up" if change > band else "down" if change < -band else "flat"
    if growth.draws.size < confidence.MIN_DRAWS:
        return direction, 1 / 3  # no trustworthy spread: no better than a guess among three directions
    mean, sd = confidence.posterior(growth.estimate, growth.se, prior)
    return direction, confidence.growth_band_probabilities(mean, sd, band)[direction]


def growth_family(direction: str, horizon: str, *, adjusted: bool) -> str:
    """The calibrator of a growth claim, e.g. 'growth_direction_mom' or 'growth_flat_qoq_nsa'.

    Month-on-month and quarter-on-quarter claims without seasonal adjustment are calibrated apart:
    there the whole market moves with the season, a different world from adjusted growth.
    """
    kind = "flat" if direction == "flat" else "direction"
    suffix = "_nsa" if horizon != "yoy" and not adjusted else ""
    return f"growth_{kind}_{horizon}{suffix}"


def growth_record(market: Market, horizon: str, growth: Growth, prior: confidence.Prior) -> InsightRecord:
    """The growth insight of one market and horizon, with its direction and calibrated confidence.

    The stated direction is where the estimate lies; its confidence is the posterior probability of
    that direction given the estimate, its bootstrap standard error and the spread of true growth
    across markets (`prior`), then recalibrated.
    """
    band = FLAT_BAND[horizon]
    pct = 100.0 * np.expm1(growth.estimate)
    direction, raw = growth_claim(growth, horizon, prior)
    score = confidence.calibrated(growth_family(direction, horizon, adjusted=growth.adjusted), raw, n=growth.sample_size)
    dof = max(1, min(growth.sample_size - 1, confidence.MAX_DOF))
    half = stats.t.ppf(0.5 + GROWTH_INTERVAL / 2, dof) * growth.se
    start, end = growth.start.start_time.date(), growth.end.end_time.date()
    adjusted = growth.adjusted or horizon == "yoy"
    method = (
        f"hedonic time-dummy index of log asking rent, {'seasonally adjusted' if adjusted else 'not seasonally adjusted'}; "
        f"{GROWTH_INTERVAL:.0%} interval from a {growth.draws.size}-replicate cluster bootstrap; confidence = posterior "
        f"probability of the direction given the spread of growth across {prior.markets} markets; "
        f"flat means within ±{100 * band:g}%"
    )
    return InsightRecord(
        kind="rent_growth",
        city=market.city,
        country=market.country,
        segment=market.segment,
        metric=f"rent_index_growth_{horizon}",
        value=round(float(pct), 2),
        low=round(float(100 * np.expm1(growth.estimate - half)), 2) if np.isfinite(half) else None,
        high=round(float(100 * np.expm1(growth.estimate + half)), 2) if np.isfinite(half) else None,
        unit="%",
        period_start=start,
        period_end=end,
        sample_size=growth.sample_size,
        direction=direction,
        method=method,
        confidence_score=score,
        text=text.growth_sentence(
            city=market.city, segment=market.segment, horizon=horizon, direction=direction, growth_pct=float(pct),
            band_pct=100 * band, start=start, end=end, adjusted=adjusted,
        ),
    )


# ---------------------------------------------------------------------------------------------
# Seasonal pattern


def seasonal_gap(market: Market, fit: IndexFit) -> Growth | None:
    """Log gap between the SEASON_HIGH and SEASON_LOW months' seasonal effects (24+ months of index)."""
    effects = seasonal_effects(fit.periods)
    if effects is None:
        return None
    contrast = effects[[m - 1 for m in SEASON_HIGH]].mean(axis=0) - effects[[m - 1 for m in SEASON_LOW]].mean(axis=0)
    draws = fit.boot @ contrast
    return Growth(
        estimate=float(contrast @ fit.log_index), draws=draws[np.isfinite(draws)], start=fit.periods[0],
        end=fit.periods[-1], sample_size=_units(market.rows), adjusted=False,
    )


def seasonal_records(seasons: list[tuple[Market, Growth]]) -> list[InsightRecord]:
    """Per city: do rents run higher in June-August than in December-February, and by how much."""
    usable = [g for _, g in seasons if g.draws.size >= confidence.MIN_DRAWS]
    prior = confidence.fit_prior(
        np.array([g.estimate for g in usable]), np.array([g.se for g in usable]),
        floor=PRIOR_FLOOR * SEASON_BAND, fallback=PRIOR_FALLBACK["qoq"],
    )
    return [_seasonal_record(market, gap, prior) for market, gap in seasons]


def _seasonal_record(market: Market, gap: Growth, prior: confidence.Prior) -> InsightRecord:
    change = float(np.expm1(gap.estimate))
    direction = "up" if change > SEASON_BAND else "down" if change < -SEASON_BAND else "flat"
    raw = 1 / 3
    if gap.draws.size >= confidence.MIN_DRAWS:
        mean, sd = confidence.posterior(gap.estimate, gap.se, prior)
        raw = confidence.growth_band_probabilities(mean, sd, SEASON_BAND)[direction]
    half = stats.norm.ppf(0.5 + GROWTH_INTERVAL / 2) * gap.se
    start, end = gap.start.start_time.date(), gap.end.end_time.date()
    return InsightRecord(
        kind="seasonality", city=market.city, country=market.country, segment=None, metric="seasonal_gap_jja_vs_djf",
        value=round(100 * change, 2), low=round(float(100 * np.expm1(gap.estimate - half)), 2),
        high=round(float(100 * np.expm1(gap.estimate + half)), 2), unit="%", period_start=start, period_end=end,
        sample_size=gap.sample_size, direction=direction,
        method="month-of-year effects of the hedonic index (linear trend removed), June-August minus December-February; "
        f"cluster bootstrap, posterior across {prior.markets} cities; no swing means within ±{100 * SEASON_BAND:g}%",
        confidence_score=confidence.calibrated("seasonal", raw, n=gap.sample_size),
        text=text.seasonal_sentence(
            city=market.city, direction=direction, gap_pct=100 * change, band_pct=100 * SEASON_BAND, start=start, end=end,
        ),
    )


# ---------------------------------------------------------------------------------------------
# Rent level


def level_records(market: Market, *, end: pd.Period, min_market_size: int) -> list[InsightRecord]:
    """Median asking rent and median rent per m² of month `end` (one value per distinct unit)."""
    rows = market.rows
    latest = rows[rows["month_n"].to_numpy() == end.ordinal]
    latest = latest.iloc[np.argsort(latest["listed_at"].to_numpy(), kind="stable")].drop_duplicates("unit", keep="last")
    out = []
    rent = latest["monthly_rent"].to_numpy(dtype=float)
    if rent.size >= min_market_size:
        out.append(_level_record(market, rent, end=end, per_sqm=False))
    if "size_sqm" in latest:
        size = pd.to_numeric(latest["size_sqm"], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(size) & (size > 0)
        if ok.sum() >= min_market_size:
            out.append(_level_record(market, rent[ok] / size[ok], end=end, per_sqm=True))
    return out


def level_interval(values: np.ndarray) -> tuple[float, float, float, float, float]:
    """(median, low, high, band, raw probability): the narrowest candidate band reaching LEVEL_TARGET."""
    median = float(np.median(values))
    for band in LEVEL_BANDS:
        low, high = median * (1 - band), median * (1 + band)
        raw = confidence.median_band_probability(values, low, high)
        if raw >= LEVEL_TARGET:
            break
    return median, low, high, band, raw


def _level_record(market: Market, values: np.ndarray, *, end: pd.Period, per_sqm: bool) -> InsightRecord:
    median, low, high, band, raw = level_interval(values)
    decimals = 2 if per_sqm else 0
    currency = market.currency
    month = end.start_time.date()
    return InsightRecord(
        kind="rent_level",
        city=market.city,
        country=market.country,
        segment=market.segment,
        metric="median_rent_per_sqm" if per_sqm else "median_rent",
        value=round(median, decimals),
        low=round(low, decimals),
        high=round(high, decimals),
        unit=f"{currency or 'currency'}/m²" if per_sqm else f"{currency or 'currency'}/month",
        period_start=month,
        period_end=end.end_time.date(),
        sample_size=int(values.size),
        direction=None,
        method=f"median of distinct units' asking rents; confidence that the market median is within ±{100 * band:g}% "
        "(Beta posterior of the shares below the bounds)",
        confidence_score=confidence.calibrated("level", raw, n=int(values.size)),
        text=text.level_sentence(
            city=market.city, segment=market.segment, per_sqm=per_sqm, value=median, low=low, high=high,
            currency=currency, month=month,
        ),
    )


# ---------------------------------------------------------------------------------------------
# Fastest movers


def mover_records(
    city_growth: list[tuple[Market, str, Growth]], priors: dict[str, confidence.Prior], *, seed: int,
) -> list[InsightRecord]:
    """The fastest-rising and fastest-falling city over the longest horizon with 3+ cities."""
    for horizon in ("yoy", "qoq", "mom"):
        entries = [(m, g) for m, h, g in city_growth if h == horizon and g.draws.size >= confidence.MIN_DRAWS]
        if len(entries) >= 3:
            return _movers(entries, horizon, priors[horizon], seed=seed)
    return []


def _movers(entries: list[tuple[Market, Growth]], horizon: str, prior: confidence.Prior, *, seed: int) -> list[InsightRecord]:
    # Ranking noisy estimates favours the noisiest (winner's curse): rank the posteriors instead,
    # which pull a thin market's extreme estimate towards the others.
    posteriors = np.array([confidence.posterior(g.estimate, g.se, prior) for _, g in entries])
    means, sds = posteriors[:, 0], posteriors[:, 1]
    out = []
    for rising in (True, False):
        sign = 1.0 if rising else -1.0
        best = int(np.argmax(sign * means))
        if sign * entries[best][1].estimate <= 0:
            continue  # "fastest-falling" of markets that all rose would mislead
        raw = confidence.rank_first_probabilities(sign * means, sds, seed=seed)[best]
        market, growth = entries[best]
        pct = 100.0 * float(np.expm1(growth.estimate))
        out.append(InsightRecord(
            kind="top_mover",
            city=market.city,
            country=market.country,
            segment=None,
            metric=f"fastest_{'rising' if rising else 'falling'}_{horizon}",
            value=round(pct, 2),
            low=None,
            high=None,
            unit="%",
            period_start=growth.start.start_time.date(),
            period_end=growth.end.end_time.date(),
            sample_size=growth.sample_size,
            direction="up" if rising else "down",
            method=f"rank of hedonic index growth among {len(entries)} cities; confidence = P(truly ranked first) "
            "from the cities' posterior distributions of growth",
            confidence_score=confidence.calibrated("rank", raw, n=growth.sample_size),
            text=text.mover_sentence(
                city=market.city, rising=rising, growth_pct=pct, horizon=horizon,
                start=growth.start.start_time.date(), end=growth.end.end_time.date(), markets=len(entries),
            ),
        ))
    return out


# ---------------------------------------------------------------------------------------------
# Occupancy, vacancy and days to let (leases), booked share (calendar)


def _unit_cities(listings: pd.DataFrame, properties: pd.DataFrame | None) -> pd.Series:
    """City by property id (from properties, else listings) and by listing id, for leases and calendars."""
    parts = []
    for frame in (properties, listings):
        if frame is not None and "property_id" in frame and "city" in frame:
            parts.append(frame[["property_id", "city"]].dropna().rename(columns={"property_id": "key"}))
    if "listing_id" in listings:
        parts.append(listings[["listing_id", "city"]].dropna().rename(columns={"listing_id": "key"}))
    if not parts:
        return pd.Series(dtype="string")
    table = pd.concat(parts).drop_duplicates("key")
    return pd.Series(table["city"].to_numpy(), index=table["key"].astype("string"))


#: Occupancy bands (percentage points) tried for the stated interval, narrowest first.
OCCUPANCY_BANDS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)
#: Change in occupancy (percentage points) within which occupancy counts as steady.
OCCUPANCY_FLAT_POINTS = 1.0


def _month_overlap(starts: np.ndarray, ends: np.ndarray, month: pd.Period) -> np.ndarray:
    """Days of each [start, end] spell (datetime64[D], end inclusive) that fall in `month`."""
    first = np.datetime64(month.start_time.date(), "D")
    last = np.datetime64(month.end_time.date(), "D")
    days = (np.minimum(ends, last) - np.maximum(starts, first)).astype("timedelta64[D]").astype(np.int64) + 1
    return np.clip(days, 0, None)


def lease_occupancy(leases: pd.DataFrame, seen: pd.DataFrame, months: list[pd.Period]) -> pd.DataFrame:
    """Occupied share of each active unit's days per month: rows are units, columns months (NaN: inactive).

    `seen` has per unit `first` and `last` days it is known to be managed (leases and listings); a
    unit counts in a month only if it was managed at the month's start and still known after it, so
    units that left the portfolio are not read as vacant.
    """
    unit = _lease_units(leases)
    starts = pd.to_datetime(leases["start_date"]).to_numpy("datetime64[D]")
    ends = pd.to_datetime(leases["end_date"]).fillna(pd.Timestamp.max.normalize()).to_numpy("datetime64[D]")
    columns = {}
    for month in months:
        days = pd.Series(_month_overlap(starts, ends, month), index=unit).groupby(level=0).sum()
        length = month.days_in_month
        active = (seen["first"] <= month.start_time) & (seen["last"] >= month.start_time)
        share = (days.reindex(seen.index).fillna(0) / length).clip(upper=1.0)
        columns[month] = share.where(active)
    return pd.DataFrame(columns)


def _lease_units(leases: pd.DataFrame) -> pd.Index:
    key = leases["property_id"].astype("string") if "property_id" in leases else pd.Series(pd.NA, index=leases.index)
    if "unit_id" in leases:
        key = leases["unit_id"].astype("string").fillna(key)
    fallback = pd.Series("lease:" + leases.index.astype(str), index=leases.index)
    return pd.Index(key.fillna(fallback))


def _seen(leases: pd.DataFrame, listings: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """First and last day each lease unit is known to be managed (leases, and listings of its property)."""
    unit = _lease_units(leases)
    lease_end = pd.to_datetime(leases["end_date"]).fillna(as_of).clip(upper=as_of)
    spells = pd.DataFrame({"first": pd.to_datetime(leases["start_date"]).to_numpy(), "last": lease_end.to_numpy()}, index=unit)
    if "property_id" in leases and "property_id" in listings:
        owner = pd.Series(unit, index=leases.index).groupby(leases["property_id"].astype("string")).first()
        listed = listings[["property_id", "listed_at"]].dropna()
        listed = listed.assign(unit=listed["property_id"].astype("string").map(owner)).dropna(subset=["unit"])
        extra = pd.DataFrame({"first": listed["listed_at"].to_numpy(), "last": listed["listed_at"].to_numpy()}, index=pd.Index(listed["unit"]))
        spells = pd.concat([spells, extra])
    return spells.groupby(level=0).agg(first=("first", "min"), last=("last", "max"))


def _bootstrap_means(shares: pd.DataFrame, *, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each column over its non-missing units, and cluster-bootstrap replicates (units resampled)."""
    values = shares.to_numpy(dtype=float)
    active = np.isfinite(values)
    filled = np.where(active, values, 0.0)
    weights = np.random.default_rng(seed).poisson(1.0, size=(n_boot, len(shares))).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        point = filled.sum(axis=0) / active.sum(axis=0)
        boot = (weights @ filled) / (weights @ active)
    return point, boot


def occupancy_records(
    leases: pd.DataFrame, unit_city: pd.Series, frame: pd.DataFrame, *, end: pd.Period, min_market_size: int, seed: int,
) -> list[InsightRecord]:
    """Per city: occupancy (and vacancy) of month `end` and its change month over month and year over year."""
    if not {"start_date", "end_date"} <= set(leases.columns):
        return []
    city = leases["property_id"].astype("string").map(unit_city) if "property_id" in leases else None
    if city is None or city.isna().all():
        return []
    months = [end - 12, end - 1, end]
    out: list[InsightRecord] = []
    for name, rows in leases.groupby(city.to_numpy(), sort=True):
        listed = frame[frame["city"] == name]
        shares = lease_occupancy(rows, _seen(rows, listed, end.end_time), months)
        out += _occupancy_insights(str(name), shares, end=end, min_market_size=min_market_size, seed=seed, proxy=False)
    return out


def _occupancy_insights(
    city: str, shares: pd.DataFrame, *, end: pd.Period, min_market_size: int, seed: int, proxy: bool,
) -> list[InsightRecord]:
    counts = shares.notna().sum(axis=0)
    if end not in shares or counts[end] < min_market_size:
        return []
    point, boot = _bootstrap_means(shares, n_boot=N_BOOT, seed=seed)
    j = list(shares.columns).index(end)
    out = [_occupancy_level(city, 100 * point[j], 100 * boot[:, j], end=end, n=int(counts[end]), proxy=proxy)]
    for horizon, before in (("mom", end - 1), ("yoy", end - 12)):
        if before in shares and counts[before] >= min_market_size:
            i = list(shares.columns).index(before)
            change = 100 * (boot[:, j] - boot[:, i])
            out.append(_occupancy_change(
                city, 100 * (point[j] - point[i]), change[np.isfinite(change)], horizon=horizon, before=before, end=end,
                n=int(min(counts[before], counts[end])), proxy=proxy,
            ))
    return out


def _occupancy_level(city: str, value: float, draws: np.ndarray, *, end: pd.Period, n: int, proxy: bool) -> InsightRecord:
    draws = draws[np.isfinite(draws)]
    se = float(np.std(draws, ddof=1)) if draws.size > 1 else float("inf")
    dist = stats.t(df=max(1, min(n - 1, confidence.MAX_DOF)), loc=value, scale=max(se, 1e-9))
    for band in OCCUPANCY_BANDS:
        raw = float(dist.cdf(value + band) - dist.cdf(value - band))
        if raw >= LEVEL_TARGET:
            break
    low, high = max(0.0, value - band), min(100.0, value + band)
    what = "calendar days booked or blocked (occupancy proxy)" if proxy else "unit-days under lease"
    return InsightRecord(
        kind="occupancy", city=city, country=None, segment=None, metric="occupancy_rate", value=round(float(value), 1),
        low=round(float(low), 1), high=round(float(high), 1), unit="%", period_start=end.start_time.date(), period_end=end.end_time.date(),
        sample_size=n, direction=None,
        method=f"share of {what} among active units; vacancy is 100 minus it; confidence that the true rate is within "
        f"±{band:g} points from a unit-cluster bootstrap (not checked against known truth)",
        confidence_score=confidence.calibrated("occupancy", raw, n=n),
        text=text.occupancy_sentence(
            city=city, value_pct=value, low_pct=low, high_pct=high, month=end.start_time.date(), proxy=proxy,
        ),
    )


def _occupancy_change(
    city: str, change: float, draws: np.ndarray, *, horizon: str, before: pd.Period, end: pd.Period, n: int, proxy: bool,
) -> InsightRecord:
    band = OCCUPANCY_FLAT_POINTS
    direction = "up" if change > band else "down" if change < -band else "flat"
    if draws.size < confidence.MIN_DRAWS:
        raw = 1 / 3
    else:
        dist = stats.t(df=max(1, min(n - 1, confidence.MAX_DOF)), loc=change, scale=max(float(np.std(draws, ddof=1)), 1e-9))
        raw = {"up": dist.sf(band), "down": dist.cdf(-band), "flat": dist.cdf(band) - dist.cdf(-band)}[direction]
    start, stop = before.start_time.date(), end.end_time.date()
    return InsightRecord(
        kind="occupancy_trend", city=city, country=None, segment=None, metric=f"occupancy_change_{horizon}",
        value=round(float(change), 2), low=None, high=None, unit="points", period_start=start, period_end=stop,
        sample_size=n, direction=direction,
        method=f"change in occupancy, unit-cluster bootstrap (not checked against known truth); steady means within ±{band:g} points",
        confidence_score=confidence.calibrated("occupancy", float(raw), n=n),
        text=text.occupancy_change_sentence(
            city=city, direction=direction, change_pts=change, band_pts=band, horizon=horizon, start=start, end=stop, proxy=proxy,
        ),
    )


def calendar_records(
    calendar: pd.DataFrame, unit_city: pd.Series, *, end: pd.Period, min_market_size: int, seed: int,
) -> list[InsightRecord]:
    """Per city: share of calendar days booked or blocked (an occupancy proxy) in month `end`."""
    days = calendar.dropna(subset=["listing_id", "date", "available"]).copy()
    days["date"] = pd.to_datetime(days["date"])
    days["month"] = days["date"].dt.to_period("M")
    days["booked"] = ~days["available"].map(_as_flag).astype(bool)
    days["city"] = days["listing_id"].astype("string").map(unit_city)
    # Only months the calendar covers from first to last day: a month cut at the scrape date would
    # compare a partial month (dominated by near-term bookings) with a whole one.
    first, last = days["date"].min(), days["date"].max()
    covered = [m for m in (end - 12, end - 1, end) if first <= m.start_time and last >= m.end_time.normalize()]
    days = days[days["city"].notna() & days["month"].isin(covered)]
    out: list[InsightRecord] = []
    for city, rows in days.groupby("city", sort=True):
        shares = rows.groupby(["listing_id", "month"])["booked"].mean().unstack("month")
        out += _occupancy_insights(str(city), shares, end=end, min_market_size=min_market_size, seed=seed, proxy=True)
    return out


def _as_flag(value: object) -> bool:
    # Calendars say True/False, 't'/'f' (Inside Airbnb), 'true'/'false' or 1/0.
    if isinstance(value, str):
        return value.strip().lower() in {"t", "true", "1", "yes", "y"}
    return bool(value)


def days_to_let_records(frame: pd.DataFrame, leases: pd.DataFrame, *, end: pd.Period, min_market_size: int) -> list[InsightRecord]:
    """Per city: median days from listing to the next lease start, for the latest month it is known for.

    A listing not let by the data's end is censored: it is known only to take longer than it has
    waited so far. The median is exact as long as every censored wait is longer than the stated
    interval's upper bound (those listings are above the median whatever their true wait), so the
    latest month where that holds is reported.
    """
    if "property_id" not in frame or "property_id" not in leases:
        return []
    waits = _waits(frame, leases, as_of=end.end_time)
    out = []
    for city, rows in waits.groupby("city", sort=True):
        for month in (end - k for k in range(6)):
            chosen = rows[rows["month"] == month]
            if chosen["unit"].nunique() < min_market_size:
                continue
            record = _days_to_let_record(str(city), chosen, month)
            if record is not None:
                out.append(record)
                break
    return out


def _waits(frame: pd.DataFrame, leases: pd.DataFrame, *, as_of: pd.Timestamp) -> pd.DataFrame:
    """Each listing's wait to the first lease of its property starting on or after it (inf if none yet)."""
    starts = pd.DataFrame({
        "property_id": leases["property_id"].astype("string"),
        "start": pd.to_datetime(leases["start_date"]),
    }).dropna().sort_values("start")
    # Only properties whose leases we hold can be followed from listing to lease; the other
    # listings (a portal's comparables) are neither let nor waiting as far as this data knows.
    listed = frame[["city", "unit", "month", "property_id", "listed_at"]].dropna(subset=["property_id"])
    listed = listed[listed["property_id"].astype("string").isin(starts["property_id"])]
    listed = listed.assign(property_id=listed["property_id"].astype("string")).sort_values("listed_at")
    merged = pd.merge_asof(listed, starts, left_on="listed_at", right_on="start", by="property_id", direction="forward")
    wait = (merged["start"] - merged["listed_at"]).dt.days.astype(float)
    censored = wait.isna()
    merged["days"] = wait.where(~censored, np.inf)
    merged["censored_at"] = np.where(censored, (as_of - merged["listed_at"]).dt.days, np.inf)
    return merged


def _days_to_let_record(city: str, rows: pd.DataFrame, month: pd.Period) -> InsightRecord | None:
    values = rows.drop_duplicates("unit", keep="last")
    days = values["days"].to_numpy(dtype=float)
    median = float(np.median(days))
    if not np.isfinite(median):
        return None
    low, high, raw = _days_interval(days, median)
    if high >= values["censored_at"].min():
        return None  # a listing still waiting might end up below `high`: the claim is not settled yet
    return InsightRecord(
        kind="days_to_let", city=city, country=None, segment=None, metric="median_days_to_let", value=round(float(median), 1),
        low=round(float(low), 1), high=round(float(high), 1), unit="days", period_start=month.start_time.date(),
        period_end=month.end_time.date(), sample_size=int(days.size), direction=None,
        method="median days from listing to the next lease of the property; confidence that the market median is "
        "within low..high (Beta posterior of the shares below the bounds)",
        confidence_score=confidence.calibrated("level", raw, n=int(days.size)),
        text=text.days_to_let_sentence(city=city, value=median, low=low, high=high, month=month.start_time.date()),
    )


def _days_interval(days: np.ndarray, median: float) -> tuple[float, float, float]:
    # Whole days are coarse near zero, so the band is at least two days either side.
    for band in (0.1, 0.2, 0.35, 0.5):
        half = max(2.0, band * median)
        low, high = max(0.0, median - half), median + half
        raw = confidence.median_band_probability(days, low, high)
        if raw >= LEVEL_TARGET:
            break
    return low, high, raw

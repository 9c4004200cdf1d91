"""Occupancy model: how likely a unit is to be let, and how full it stays, at a given asking rent.

Two sources of evidence feed one model class:

* **Leases** (long-term lets). Between two consecutive leases of a unit there is a vacancy spell:
  the gap from one lease's end to the next lease's start is the time it took to let the unit at the
  next lease's rent. `vacancy_spells` turns a lease table into such spells; the model learns
  P(let within 30 days | asking rent / market rent, property, month) from them.
* **Availability calendars** (short-term lets, e.g. Airbnb). `calendar_occupancy` turns the daily
  calendar into monthly occupancy per listing. Caution: in those calendars `available == False`
  means *booked or blocked by the host*, so the "occupancy" is a PROXY, not observed occupancy;
  models trained on it say so in `OccupancyModel.basis` and in their outputs.

Price enters only as the log ratio `log(asking_rent / market_rent)`. The market rent is passed in by
the caller (typically the rent model's estimate): this module never imports the rent model.

Monotonicity in price is structural, not hoped for: the logistic engine constrains its price
coefficient to be <= 0 (bounded optimisation), the LightGBM engine uses a -1 monotone constraint.
Every derived quantity (vacancy days, yearly occupancy) is a monotone transform of that output, so a
higher asking rent never raises the let probability nor the expected occupancy, for any row.

Yearly occupancy from the 30-day let probability (renewal model)
-----------------------------------------------------------------
Assume the time to let a vacant unit is exponential with a constant daily hazard λ (at a given price,
property and month), counted in whole days. Then p = P(fewer than 30 vacant days) = 1 - exp(-30 λ),
so λ = -ln(1 - p) / 30 and the expected vacancy per turnover is E[V] = E[floor(Exp(λ))] =
1 / (exp(λ) - 1) days (about 30 / -ln(1 - p) - 1/2). A unit alternates between a lease of mean
length L (learned per city from the completed leases that preceded vacancies, else 365 days) and a
vacancy; by the renewal-reward theorem the long-run share of days let is

    occupancy = L / (L + E[V]).

E[V] decreases in p and occupancy increases in E[V]^-1, so occupancy inherits p's monotonicity in
price. The month is the month the vacancy starts, so the figure reads "expected share of the year
let for a unit re-let in that month at that asking rent".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from insights.errors import InvalidInput, SchemaMismatch
from insights.ml.features import Inputs, months, numbers, strings, texts

#: Days in the let-within window the lease-up model predicts.
HORIZON_DAYS = 30

#: Mean lease length assumed when the training data carries none (days).
DEFAULT_LEASE_DAYS = 365.0

#: What the occupancy figures mean, by training source; copied into every output.
BASIS_LEASES = "lease-up: vacancy spells between consecutive leases"
BASIS_CALENDAR = "calendar proxy: available == False means booked OR blocked by the host"

#: Property features the model uses when present in the training frame.
CATEGORICAL_FEATURES: tuple[str, ...] = ("city", "property_type")
NUMERIC_FEATURES: tuple[str, ...] = ("bedrooms", "bathrooms", "size_sqm")

Target = Literal["let_30d", "occupancy"]
Engine = Literal["logistic", "lightgbm"]

#: Rows per tree-engine `predict` call in `price_response`: bounds memory when many units are priced.
PREDICT_CHUNK_ROWS = 400_000

# p is clipped away from 0 and 1 so that logs and -ln(1 - p) stay finite.
_EPS = 1e-9


# --------------------------------------------------------------------------------------------------
# Data preparation
# --------------------------------------------------------------------------------------------------


def vacancy_spells(
    leases: pd.DataFrame,
    properties: pd.DataFrame | None = None,
    listings: pd.DataFrame | None = None,
    *,
    as_of: pd.Timestamp | None = None,
    horizon_days: int = HORIZON_DAYS,
    listing_tolerance_days: int = 45,
) -> pd.DataFrame:
    """Vacancy spells between consecutive leases of each unit, labelled "let within `horizon_days`".

    End dates are inclusive (the last day the tenant has the unit), so a lease ending 31 Dec followed
    by one starting 1 Jan is a vacancy of 0 days. One row per vacancy: `unit_id`, `property_id`,
    `vacated_at` (end of the previous lease), `let_at` (start of the next lease, NaT if not let yet),
    `gap_days` (vacant days; for a censored spell the days vacant so far), `asking_rent`,
    `asking_source` ("listing" or "lease"), `listing_id`, `previous_rent`, `lease_days` (length of
    the lease that ended), `month` (of the first vacant day), `censored`, `overlap` and
    `let_within_30d` (1.0 when fewer than `horizon_days` vacant days, 0.0, or NaN when unknown).

    The asking rent is the rent of the unit's listing published nearest the vacancy start (within
    `listing_tolerance_days`) when `listings` are given, else the next lease's rent (the rent it was
    let at). Messy data is handled, not dropped silently:
    * the unit is `unit_id`, else `property_id` (a property with one unit);
    * duplicate leases (same unit and start) keep the longest;
    * overlapping leases (next start before the previous end: a negative gap) mean the unit was re-let
      before the old lease ran out: gap 0, `overlap=True`; a lease nested inside another is no re-let;
    * a lease with no end date is ongoing: if it is the unit's last lease there is no vacancy yet; if a
      later lease follows, the vacancy start is unknown and that spell is left out;
    * the last lease of a unit that ended before `as_of` opens a right-censored spell: its label is 0
      when it has already lasted `horizon_days` or more, NaN (unknown) otherwise, and its asking rent
      comes from a listing or stays NaN — units with one lease only land here. `as_of` defaults to
      the latest lease start or listing date: end dates may lie in the future, start dates do not.
    Rows carry the property features of `properties` when given (joined on `property_id`).
    """
    frame = _clean_leases(leases)
    as_of = pd.Timestamp(as_of) if as_of is not None else _knowledge_date(frame, listings)
    spells = _spells_from_sorted(frame, as_of, horizon_days)
    if listings is not None:
        spells = _attach_listings(spells, listings, listing_tolerance_days)
    if properties is not None and "property_id" in properties.columns:
        spells = _join_properties(spells, properties)
    return spells


def _clean_leases(leases: pd.DataFrame) -> pd.DataFrame:
    """Leases with a unit key and a start date, one per (unit, start), sorted by unit and start."""
    missing = {"start_date", "monthly_rent"} - set(leases.columns)
    if missing:
        raise InvalidInput(f"leases lack columns {sorted(missing)}", details={"missing": sorted(missing)})
    frame = leases.copy()
    unit = frame["unit_id"].astype("string") if "unit_id" in frame.columns else pd.Series(pd.NA, index=frame.index, dtype="string")
    prop = frame["property_id"].astype("string") if "property_id" in frame.columns else unit
    frame["unit_id"] = unit.fillna(prop)
    frame["property_id"] = prop.fillna(frame["unit_id"])
    # Nanosecond resolution: Timestamp.max, the sentinel for "never ends", must fit the dtype.
    frame["start_date"] = pd.to_datetime(frame["start_date"], errors="coerce").astype("datetime64[ns]")
    end = frame["end_date"] if "end_date" in frame.columns else pd.Series(pd.NaT, index=frame.index)
    frame["end_date"] = pd.to_datetime(end, errors="coerce").astype("datetime64[ns]")
    frame = frame.dropna(subset=["unit_id", "start_date"])
    # Longest lease first within a (unit, start) so drop_duplicates keeps it; NaT (ongoing) counts as longest.
    frame["_end_sort"] = frame["end_date"].fillna(pd.Timestamp.max)
    frame = frame.sort_values(["unit_id", "start_date", "_end_sort"], ascending=[True, True, False])
    frame = frame.drop_duplicates(["unit_id", "start_date"], keep="first").drop(columns="_end_sort")
    return frame.reset_index(drop=True)


def _knowledge_date(frame: pd.DataFrame, listings: pd.DataFrame | None) -> pd.Timestamp:
    """The latest date the data has certainly seen: the last lease start or listing date."""
    dates = [frame["start_date"]]
    if listings is not None and "listed_at" in listings.columns:
        dates.append(pd.to_datetime(listings["listed_at"], errors="coerce"))
    latest = pd.concat(dates).max()
    return pd.Timestamp(latest) if pd.notna(latest) else pd.Timestamp.now().normalize()


def _spells_from_sorted(frame: pd.DataFrame, as_of: pd.Timestamp, horizon_days: int) -> pd.DataFrame:
    unit = frame["unit_id"]
    by_unit = frame.groupby("unit_id", sort=False)
    next_start = by_unit["start_date"].shift(-1)
    is_last = next_start.isna()
    # A non-last lease without an end is over by the next start, but when it ended is unknown;
    # a last lease without an end is ongoing: it never opens a vacancy.
    unknown_end = frame["end_date"].isna() & ~is_last
    end_filled = frame["end_date"].fillna(next_start).fillna(pd.Timestamp.max)
    # A nested lease must not reopen a vacancy: the unit is free only after the latest end seen so far.
    covered = end_filled.groupby(unit).cummax()
    next_end = end_filled.groupby(unit).shift(-1)
    keep = ~unknown_end & (covered < pd.Timestamp.max)
    # A next lease wholly inside the current coverage (sublet, data duplicate) is not a re-let.
    keep &= is_last | (next_end > covered)
    keep &= ~is_last | (covered < as_of)  # a censored spell exists only once the last lease has ended
    spells, covered, next_start = frame[keep], covered[keep], next_start[keep]
    censored = next_start.isna().to_numpy()
    # Inclusive end dates: the vacant days are those strictly between the end and the next start.
    raw_gap = (next_start - covered).dt.days.to_numpy(dtype=float) - 1.0
    observed = (as_of - covered).dt.days.to_numpy(dtype=float)
    gap = np.where(censored, observed, np.clip(raw_gap, 0.0, None))
    label = np.where(censored, np.where(observed >= horizon_days, 0.0, np.nan), (gap < horizon_days).astype(float))
    return pd.DataFrame(
        {
            "unit_id": spells["unit_id"].astype("string").to_numpy(),
            "property_id": spells["property_id"].astype("string").to_numpy(),
            "vacated_at": covered.to_numpy(),
            "let_at": next_start.to_numpy(),
            "gap_days": gap,
            "asking_rent": by_unit["monthly_rent"].shift(-1)[keep].to_numpy(dtype=float),
            "asking_source": np.where(censored, None, "lease"),
            "previous_rent": spells["monthly_rent"].to_numpy(dtype=float),
            "lease_days": (spells["end_date"] - spells["start_date"]).dt.days.to_numpy(dtype=float) + 1.0,
            "month": (covered + pd.Timedelta(days=1)).dt.month.to_numpy(dtype=int),
            "censored": censored,
            "overlap": ~censored & (raw_gap < -1.0),
            "let_within_30d": label,
        }
    ).astype({"unit_id": "string", "property_id": "string", "asking_source": "string"})


def _attach_listings(spells: pd.DataFrame, listings: pd.DataFrame, tolerance_days: int) -> pd.DataFrame:
    """Asking rent and listing id of the listing published nearest each vacancy start."""
    needed = {"property_id", "listed_at", "monthly_rent"}
    if not needed <= set(listings.columns):
        raise InvalidInput(f"listings need columns {sorted(needed)} to give asking rents")
    right = pd.DataFrame(
        {
            "property_id": listings["property_id"].astype("string"),
            "listed_at": pd.to_datetime(listings["listed_at"], errors="coerce").astype("datetime64[ns]"),
            "listing_rent": pd.to_numeric(listings["monthly_rent"], errors="coerce"),
            "listing_id": listings["listing_id"].astype("string") if "listing_id" in listings.columns else pd.NA,
        }
    ).dropna(subset=["property_id", "listed_at", "listing_rent"]).sort_values("listed_at")
    left = spells.assign(_row=np.arange(len(spells)), _start=(spells["vacated_at"] + pd.Timedelta(days=1)).astype("datetime64[ns]"))
    matched = pd.merge_asof(
        left.sort_values("_start")[["_row", "_start", "property_id"]], right,
        left_on="_start", right_on="listed_at", by="property_id",
        direction="nearest", tolerance=pd.Timedelta(days=tolerance_days),
    ).set_index("_row").sort_index()
    out = spells.copy()
    found = matched["listing_rent"].notna().to_numpy()
    out["asking_rent"] = np.where(found, matched["listing_rent"].to_numpy(dtype=float), out["asking_rent"])
    out["asking_source"] = out["asking_source"].where(~found, "listing")
    out["listing_id"] = matched["listing_id"].astype("string").to_numpy()
    return out


def _join_properties(spells: pd.DataFrame, properties: pd.DataFrame) -> pd.DataFrame:
    props = properties.drop_duplicates("property_id").copy()
    props["property_id"] = props["property_id"].astype("string")
    clashing = [c for c in props.columns if c in spells.columns and c != "property_id"]
    return spells.merge(props.drop(columns=clashing), on="property_id", how="left")


def lease_terms(leases: pd.DataFrame, properties: pd.DataFrame | None = None, *, min_count: int = 20) -> dict[str, float]:
    """Mean lease length in days (inclusive end dates), per city with `min_count`+ leases, and overall as "*".

    Every lease with both dates counts, including those whose (contractual) end is still ahead:
    keeping only completed leases would under-count long leases, shorten L and overstate turnover.
    Leases shorter than `HORIZON_DAYS` are left out as data errors or short lets.
    """
    frame = _clean_leases(leases)
    days = (frame["end_date"] - frame["start_date"]).dt.days.astype(float) + 1.0
    days = days.where(days >= HORIZON_DAYS)
    terms = {"*": float(days.mean()) if days.notna().any() else DEFAULT_LEASE_DAYS}
    city = frame["city"] if "city" in frame.columns else None
    if city is None and properties is not None and {"property_id", "city"} <= set(properties.columns):
        unique = properties.drop_duplicates("property_id")
        city = frame["property_id"].map(pd.Series(unique["city"].to_numpy(), index=unique["property_id"].astype("string")))
    if city is not None:
        stats = days.groupby(city.astype("string")).agg(["mean", "count"])
        terms.update({str(c): float(row["mean"]) for c, row in stats.iterrows() if row["count"] >= min_count})
    return terms


def calendar_occupancy(
    calendar: pd.DataFrame,
    properties: pd.DataFrame | None = None,
    *,
    market_price: pd.Series | None = None,
    min_days: int = 7,
) -> pd.DataFrame:
    """Monthly occupancy PROXY per listing from a daily availability calendar.

    `available == False` means booked OR blocked by the host, so `occupancy` (share of the month's
    days not available) is a proxy for occupancy, never observed occupancy. Inside Airbnb calendars
    also look forward from the scrape date: far months are mostly host blocks, not bookings.

    One row per (listing, month) with at least `min_days` observed days: `listing_id`, `month_start`,
    `month`, `days`, `occupancy`, `asking_rent` (mean nightly price that month), `market_rent` (the
    reference price: `market_price[listing_id]` when given — e.g. a peer median or a model estimate —
    else the listing's own median nightly price, so the price signal is the nightly price relative to
    the listing's typical price) and `basis`. `properties` adds features: a listing frame is joined
    on `listing_id`, a property frame on `property_id == listing_id` (Inside Airbnb's convention).
    """
    missing = {"listing_id", "date", "available"} - set(calendar.columns)
    if missing:
        raise InvalidInput(f"calendar lacks columns {sorted(missing)}", details={"missing": sorted(missing)})
    days = _clean_calendar(calendar)
    monthly = (
        days.groupby(["listing_id", "month_start"], observed=True)
        .agg(days=("booked", "size"), booked=("booked", "sum"), asking_rent=("price", "mean"))
        .reset_index()
    )
    monthly = monthly[monthly["days"] >= min_days].copy()
    typical = days.groupby("listing_id", observed=True)["price"].median()
    reference = market_price if market_price is not None else typical
    reference = reference.set_axis(reference.index.astype("string"))
    monthly["market_rent"] = monthly["listing_id"].map(reference).astype(float)
    monthly["occupancy"] = monthly["booked"] / monthly["days"]
    monthly["month"] = monthly["month_start"].dt.month.astype(int)
    monthly["basis"] = BASIS_CALENDAR
    if properties is not None:
        monthly = monthly.merge(_features_by_listing(properties), on="listing_id", how="left")
    return monthly.reset_index(drop=True)


def _features_by_listing(properties: pd.DataFrame) -> pd.DataFrame:
    """Features keyed by `listing_id`: a listing frame's own ids, else `property_id` (Inside Airbnb: same id)."""
    if "listing_id" in properties.columns:
        features = properties.drop(columns=[c for c in ("monthly_rent", "listed_at") if c in properties.columns])
        return features.drop_duplicates("listing_id").astype({"listing_id": "string"})
    if "property_id" not in properties.columns:
        raise InvalidInput("properties need a listing_id or property_id column to join the calendar")
    features = properties.drop_duplicates("property_id").rename(columns={"property_id": "listing_id"})
    return features.astype({"listing_id": "string"})


def _clean_calendar(calendar: pd.DataFrame) -> pd.DataFrame:
    available = calendar["available"]
    if not pd.api.types.is_bool_dtype(available):
        # Raw Inside Airbnb files say "t"/"f"; anything else unrecognised is treated as unknown.
        available = available.astype("string").str.lower().map({"t": True, "true": True, "f": False, "false": False})
    price = calendar["price"] if "price" in calendar.columns else pd.Series(np.nan, index=calendar.index)
    if not pd.api.types.is_numeric_dtype(price):
        price = pd.to_numeric(price.astype("string").str.replace(r"[$,\s]", "", regex=True), errors="coerce")
    days = pd.DataFrame(
        {
            "listing_id": calendar["listing_id"].astype("string"),
            "month_start": pd.to_datetime(calendar["date"], errors="coerce").dt.to_period("M").dt.to_timestamp(),
            "booked": (~available.astype("boolean")).astype("Float64"),
            "price": price.astype(float),
        }
    )
    return days.dropna(subset=["listing_id", "month_start", "booked"]).astype({"booked": float})


# --------------------------------------------------------------------------------------------------
# Design matrix
# --------------------------------------------------------------------------------------------------


def log_price_ratio(frame: Inputs) -> np.ndarray:
    """log(asking_rent / market_rent) per row (of a frame or `Rows`); both must be positive numbers."""
    for column in ("asking_rent", "market_rent"):
        if column not in frame.columns:
            raise SchemaMismatch(f"occupancy input lacks column {column!r}", details={"missing": [column]})
    asking, market = numbers(frame, "asking_rent"), numbers(frame, "market_rent")
    bad = ~(np.isfinite(asking) & np.isfinite(market) & (asking > 0) & (market > 0))
    if bad.any():
        first = np.flatnonzero(bad)[0]
        raise InvalidInput(
            "asking_rent and market_rent must be positive numbers",
            details={"bad_rows": int(bad.sum()), "first_bad_index": str(frame.index[first])},
        )
    return np.log(asking / market)


def month_of(frame: Inputs) -> np.ndarray:
    """Month (1..12) per row (of a frame or `Rows`), from `month` or else `date`."""
    if "month" in frame.columns:
        month = numbers(frame, "month")
    elif "date" in frame.columns:
        month = months(frame, "date")[1]
    else:
        raise SchemaMismatch("occupancy input needs a 'month' (1-12) or a 'date' column", details={"missing": ["month"]})
    if not np.all(np.isin(month, np.arange(1, 13))):
        raise InvalidInput("month must be an integer 1-12 (or date a valid date) on every row")
    return month.astype(int)


@dataclass
class _Design:
    """Turns frames into the numeric design: column 0 is the log price ratio, then month, features."""

    categorical: dict[str, list[str]] = field(default_factory=dict)
    numeric: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # median, mean, std

    @classmethod
    def fit(cls, frame: pd.DataFrame, min_count: int) -> _Design:
        design = cls()
        for column in CATEGORICAL_FEATURES:
            if column in frame.columns and frame[column].notna().any():
                counts = frame[column].astype("string").value_counts()
                design.categorical[column] = sorted(counts[counts >= min_count].index.tolist())
        for column in NUMERIC_FEATURES:
            if column in frame.columns:
                values = _numeric_feature(frame, column)
                if np.isfinite(values).any():
                    median = float(np.nanmedian(values))
                    filled = np.where(np.isfinite(values), values, median)
                    design.numeric[column] = (median, float(filled.mean()), float(filled.std() or 1.0))
        return design

    def columns(self) -> list[str]:
        names = ["log_price_ratio"] + [f"month={m}" for m in range(1, 13)]
        for column, levels in self.categorical.items():
            names += [f"{column}={level}" for level in levels] + [f"{column}=<other>"]
        return names + list(self.numeric)

    def matrix(self, frame: Inputs, price: np.ndarray | None = None) -> np.ndarray:
        """The logistic engine's inputs; `price` (log price ratios) stands in for the frame's rents when given."""
        price = log_price_ratio(frame) if price is None else price
        blocks = [price[:, None], _one_hot(month_of(frame), list(range(1, 13)))]
        for column, levels in self.categorical.items():
            values = strings(frame, column, missing="<missing>")
            block = _one_hot(values, levels)
            blocks.append(np.hstack([block, (block.sum(axis=1) == 0)[:, None].astype(float)]))
        for column, (median, mean, std) in self.numeric.items():
            values = _numeric_feature(frame, column)
            blocks.append(((np.where(np.isfinite(values), values, median) - mean) / std)[:, None])
        return np.hstack(blocks)

    def frame(self, frame: Inputs, price: np.ndarray | None = None) -> pd.DataFrame:
        """The same inputs as a frame for tree engines (categories kept as pandas categoricals)."""
        price = log_price_ratio(frame) if price is None else price
        out = pd.DataFrame({"log_price_ratio": price, "month": month_of(frame)}, index=frame.index)
        for column, levels in self.categorical.items():
            known = set(levels)
            values = [value if value in known else "<other>" for value in texts(frame, column)]
            out[column] = pd.Categorical(values, categories=levels + ["<other>"])
        for column in self.numeric:
            out[column] = _numeric_feature(frame, column)
        return out


def _numeric_feature(frame: Inputs, column: str) -> np.ndarray:
    values = numbers(frame, column)
    # Sizes are skewed: a log makes one extra sqm matter less in a large flat than in a studio.
    return np.log1p(values) if column == "size_sqm" else values


def _one_hot(values: np.ndarray, levels: Sequence[Any]) -> np.ndarray:
    return (np.asarray(values)[:, None] == np.asarray(levels, dtype=object)[None, :]).astype(float)


# --------------------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------------------


def fit_constrained_logistic(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray, *, l2: float, upper_bound_first: float = 0.0
) -> tuple[float, np.ndarray]:
    """Weighted logistic regression (labels may be fractions) with coefficient 0 bounded above.

    Minimises mean weighted cross-entropy + l2 / (2 n) * |beta[1:]|^2. Neither the intercept nor the
    price coefficient is penalised: shrinking the price slope towards 0 would bias the very quantity
    the pricing relies on; bounding it at <= 0 is what makes the model monotone in price.
    Returns (intercept, coefficients).
    """
    n, k = x.shape
    w = weight / weight.mean()
    penalty = np.r_[0.0, 0.0, np.full(k - 1, l2 / n)]

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = theta[0] + x @ theta[1:]
        loss = np.mean(w * (np.logaddexp(0.0, eta) - y * eta)) + 0.5 * np.sum(penalty * theta**2)
        residual = w * (expit(eta) - y) / n
        grad = np.r_[residual.sum(), x.T @ residual] + penalty * theta
        return float(loss), grad

    bounds = [(None, None), (None, upper_bound_first)] + [(None, None)] * (k - 1)
    start = np.zeros(k + 1)
    start[0] = _logit(np.clip(np.average(y, weights=w), 1e-4, 1 - 1e-4))
    result = minimize(loss_and_grad, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000})
    return float(result.x[0]), result.x[1:]


def _logit(p: np.ndarray | float) -> np.ndarray | float:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------


class OccupancyModel:
    """P(let within 30 days) and expected yearly occupancy as functions of price, property and month.

    `target="let_30d"` learns from vacancy spells (`let_within_30d` labels) and derives yearly
    occupancy with the renewal model of the module docstring. `target="occupancy"` learns monthly
    occupancy directly from calendar rows (`occupancy` in [0, 1], weighted by `days`); it has no
    lease-up events, so its `let_probability_30d` is NaN. Either way output is non-increasing in the
    asking rent for every row (see module docstring).
    """

    def __init__(
        self,
        *,
        target: Target = "let_30d",
        engine: Engine = "logistic",
        l2: float = 1.0,
        min_category_count: int = 20,
        lightgbm_params: Mapping[str, Any] | None = None,
    ) -> None:
        self.target: Target = target
        self.engine: Engine = engine
        self.l2 = l2
        self.min_category_count = min_category_count
        self.lightgbm_params = dict(lightgbm_params or {})
        self.basis = BASIS_LEASES if target == "let_30d" else BASIS_CALENDAR
        self._design: _Design | None = None
        self._intercept = 0.0
        self._coef: np.ndarray = np.zeros(0)
        self._booster: Any = None
        self.base_rate_ = float("nan")
        self.lease_days_: dict[str, float] = {}
        self.default_lease_days_ = DEFAULT_LEASE_DAYS
        self.n_train_ = 0

    # -- fitting ------------------------------------------------------------------------------------

    def fit(self, frame: pd.DataFrame, *, lease_days: Mapping[str, float] | float | None = None) -> OccupancyModel:
        """Learn from labelled rows: features + `asking_rent`, `market_rent`, `month` or `date`, and the label.

        The label is `let_within_30d` (target "let_30d"; rows with NaN labels, i.e. censored spells not
        yet 30 days old, are skipped) or `occupancy` (target "occupancy"; weighted by `days` if present).
        `lease_days` is the mean lease length L of the renewal model: a number, or `lease_terms(leases)`
        (per city, "*" overall). Without it, L is the mean `lease_days` column of the training rows
        (completed leases only: biased short), else 365 days.
        """
        rows, y, weight = self._labelled(frame)
        self._design = _Design.fit(rows, self.min_category_count)
        self.base_rate_ = float(np.average(y, weights=weight))
        self._learn_lease_days(rows, lease_days)
        if self.engine == "logistic":
            self._intercept, self._coef = fit_constrained_logistic(self._design.matrix(rows), y, weight, l2=self.l2)
        elif self.engine == "lightgbm":
            self._booster = self._fit_lightgbm(self._design.frame(rows), y, weight)
        else:
            raise InvalidInput(f"unknown occupancy engine {self.engine!r}")
        self.n_train_ = len(rows)
        return self

    def _labelled(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        label = "let_within_30d" if self.target == "let_30d" else "occupancy"
        if label not in frame.columns:
            raise InvalidInput(f"training frame lacks the label column {label!r}")
        missing = [c for c in ("asking_rent", "market_rent") if c not in frame.columns]
        if missing:
            raise SchemaMismatch(f"training frame lacks columns {missing}", details={"missing": missing})
        values = pd.to_numeric(frame[label], errors="coerce")
        usable = values.notna() & pd.to_numeric(frame["asking_rent"], errors="coerce").gt(0)
        usable &= pd.to_numeric(frame["market_rent"], errors="coerce").gt(0)
        rows = frame[usable.to_numpy()]
        if len(rows) == 0:
            raise InvalidInput("no usable training rows (label, asking_rent and market_rent all needed)")
        y = values[usable].to_numpy(dtype=float).clip(0.0, 1.0)
        weight = np.ones(len(rows))
        if self.target == "occupancy" and "days" in rows.columns:
            weight = pd.to_numeric(rows["days"], errors="coerce").fillna(1.0).to_numpy(dtype=float)
        return rows, y, weight

    def _learn_lease_days(self, rows: pd.DataFrame, given: Mapping[str, float] | float | None) -> None:
        if isinstance(given, Mapping):
            self.lease_days_ = {str(k): float(v) for k, v in given.items() if k != "*"}
            self.default_lease_days_ = float(given.get("*", DEFAULT_LEASE_DAYS))
            return
        if given is not None:
            self.lease_days_, self.default_lease_days_ = {}, float(given)
            return
        if "lease_days" not in rows.columns:
            return
        days = pd.to_numeric(rows["lease_days"], errors="coerce")
        # Leases under a month are data errors or short lets; they would inflate the turnover rate.
        valid = days.where(days >= HORIZON_DAYS)
        if valid.notna().any():
            self.default_lease_days_ = float(valid.mean())
        if "city" in rows.columns:
            by_city = valid.groupby(rows["city"].astype("string")).agg(["mean", "count"])
            self.lease_days_ = {str(c): float(m) for c, (m, n) in by_city.iterrows() if n >= self.min_category_count}

    def _fit_lightgbm(self, x: pd.DataFrame, y: np.ndarray, weight: np.ndarray) -> Any:
        import lightgbm  # imported lazily: the logistic engine does not need it

        params: dict[str, Any] = {
            "objective": "cross_entropy",  # accepts fractional labels (calendar occupancy) and 0/1
            "n_estimators": 300,
            "learning_rate": 0.03,
            "num_leaves": 15,
            "min_child_samples": 40,
            "reg_lambda": 1.0,
            "verbose": -1,
            "n_jobs": 1,
            "monotone_constraints": [-1] + [0] * (x.shape[1] - 1),
            "monotone_constraints_method": "advanced",
        }
        params.update(self.lightgbm_params)
        model = lightgbm.LGBMRegressor(**params)
        return model.fit(x, y, sample_weight=weight)

    # -- prediction ---------------------------------------------------------------------------------

    def predict_probability(self, frame: Inputs) -> np.ndarray:
        """The model's raw probability per row: P(let within 30 days), or the monthly occupancy proxy."""
        design = self._require_fitted()
        self.check_schema(frame)
        if self.engine == "logistic":
            return expit(self._intercept + design.matrix(frame) @ self._coef)
        return np.clip(self._booster.predict(design.frame(frame)), 0.0, 1.0)

    def predict(self, frame: Inputs) -> pd.DataFrame:
        """Per row of a frame or `Rows`: `log_price_ratio`, `let_probability_30d`, `expected_vacancy_days`,
        `expected_occupancy`, `basis`."""
        out = pd.DataFrame(self.predict_rows(frame), index=frame.index)
        out["basis"] = pd.Categorical([self.basis] * len(out))
        return out

    def predict_rows(self, frame: Inputs) -> dict[str, np.ndarray]:
        """`predict`'s figures as arrays, without a frame (for a few rows, e.g. `Rows` of one unit)."""
        let_probability, vacancy, occupancy = self._outcomes(self.predict_probability(frame), self._lease_days(frame))
        return {"log_price_ratio": log_price_ratio(frame), "let_probability_30d": let_probability,
                "expected_vacancy_days": vacancy, "expected_occupancy": occupancy}

    def price_response(self, frame: Inputs) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """For the units of `frame` (a frame or `Rows`: features, `market_rent`, `month` or `date`; `asking_rent` is not
        read), a function from asking rents (one row per unit, any number of columns) to expected
        occupancy and let probability of the same shape: what `predict` gives for each unit at each
        rent, with the units' features turned into model inputs once rather than once per rent (a
        pricing search asks each unit at about a hundred rents in five rounds)."""
        design = self._require_fitted()
        self.check_schema(frame, ignore=("asking_rent",))
        market = numbers(frame, "market_rent")
        if not np.all(np.isfinite(market) & (market > 0)):
            raise InvalidInput("market_rent must be a positive number on every row")
        lease = self._lease_days(frame)
        n = len(frame)
        if self.engine == "logistic":
            rest = self._intercept + design.matrix(frame, price=np.zeros(n))[:, 1:] @ self._coef[1:]
        else:
            inputs = design.frame(frame, price=np.zeros(n)).reset_index(drop=True)

        def at(rents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rents = np.asarray(rents, dtype=float).reshape(n, -1)
            if not np.all(np.isfinite(rents) & (rents > 0)):
                raise InvalidInput("asking_rent and market_rent must be positive numbers")
            price = np.log(rents / market[:, None])
            if self.engine == "logistic":
                probability = expit(rest[:, None] + self._coef[0] * price)
            else:  # the trees read a frame: the units repeated at each rent, in bounded chunks
                k = price.shape[1]
                probability = np.empty(n * k)
                step = max(1, PREDICT_CHUNK_ROWS // k)
                for start in range(0, n, step):
                    units = np.arange(start, min(n, start + step))
                    rows = inputs.iloc[np.repeat(units, k)].reset_index(drop=True)
                    rows["log_price_ratio"] = price[units].ravel()
                    probability[start * k:(start + len(units)) * k] = self._booster.predict(rows)
                probability = np.clip(probability, 0.0, 1.0).reshape(n, k)
            let_probability, _, occupancy = self._outcomes(probability, lease[:, None])
            return occupancy, let_probability

        return at

    def _outcomes(self, probability: np.ndarray, lease: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Let probability, expected vacancy days and expected occupancy from the raw probability."""
        if self.target != "let_30d":
            missing = np.full(np.shape(probability), np.nan)
            return missing, missing, probability
        p = np.clip(probability, _EPS, 1 - _EPS)
        hazard = -np.log1p(-p) / HORIZON_DAYS
        # Whole vacant days: E[floor(Exponential(hazard))] = 1 / (e^hazard - 1), ~ 1/hazard - 1/2.
        vacancy = 1.0 / np.expm1(hazard)
        return probability, vacancy, lease / (lease + vacancy)

    def _lease_days(self, frame: Inputs) -> np.ndarray:
        if not self.lease_days_ or "city" not in frame.columns:
            return np.full(len(frame), self.default_lease_days_)
        default, known = self.default_lease_days_, self.lease_days_
        return np.array([default if city is None else known.get(city, default) for city in texts(frame, "city")], dtype=float)

    # -- introspection ------------------------------------------------------------------------------

    @property
    def price_slope(self) -> float:
        """d logit(p) / d log(asking / market): exact for the logistic engine, averaged for LightGBM (<= 0)."""
        self._require_fitted()
        if self.engine == "logistic":
            return float(self._coef[0])
        raise NotImplementedError("use average_price_slope(frame) for the LightGBM engine")

    def average_price_slope(self, frame: pd.DataFrame, *, half_width: float = 0.15) -> float:
        """Mean over rows of the secant slope of logit(p) between log ratios -half_width and +half_width."""
        low, high = frame.copy(), frame.copy()
        low["asking_rent"] = frame["market_rent"].astype(float) * np.exp(-half_width)
        high["asking_rent"] = frame["market_rent"].astype(float) * np.exp(half_width)
        diff = _logit(self.predict_probability(high)) - _logit(self.predict_probability(low))
        return float(np.mean(diff) / (2 * half_width))

    def unconstrained_price_slope(self, frame: pd.DataFrame) -> float:
        """Diagnostic (logistic engine): the price slope refitted on `frame` with the <= 0 bound lifted.

        A positive value means the data, taken at face value, show higher prices with MORE lets or
        occupancy — the signature of confounding (better units priced higher), not a real price
        response. The model itself always keeps the bound; this only tells how hard it binds.
        """
        design = self._require_fitted()
        if self.engine != "logistic":
            raise NotImplementedError("the diagnostic refits the logistic engine only")
        rows, y, weight = self._labelled(frame)
        _, coef = fit_constrained_logistic(design.matrix(rows), y, weight, l2=self.l2, upper_bound_first=np.inf)
        return float(coef[0])

    @property
    def feature_schema(self) -> dict[str, str]:
        """Columns the model reads and their canonical types (plus `month` (1-12) or `date`)."""
        design = self._require_fitted()
        schema = {"asking_rent": "float", "market_rent": "float"}
        schema.update({column: "str" for column in design.categorical})
        schema.update({column: "float" for column in design.numeric})
        return schema

    def check_schema(self, frame: Inputs, ignore: Sequence[str] = ()) -> None:
        """Raise `SchemaMismatch` when a column the model reads (other than `ignore`) is missing (month/date included)."""
        missing = [column for column in self.feature_schema if column not in frame.columns and column not in ignore]
        if "month" not in frame.columns and "date" not in frame.columns:
            missing.append("month")
        if missing:
            raise SchemaMismatch(f"occupancy input lacks columns {missing}", details={"missing": missing})

    def coefficients(self) -> dict[str, float]:
        """Logistic engine: named coefficients (intercept first), for reports and notebooks."""
        design = self._require_fitted()
        if self.engine != "logistic":
            return {}
        return {"intercept": self._intercept, **dict(zip(design.columns(), map(float, self._coef), strict=True))}

    def params(self) -> dict[str, Any]:
        """Hyper-parameters and learned scalars worth recording in the registry."""
        return {
            "target": self.target,
            "engine": self.engine,
            "l2": self.l2,
            "min_category_count": self.min_category_count,
            "lightgbm_params": self.lightgbm_params,
            "basis": self.basis,
            "base_rate": self.base_rate_,
            "default_lease_days": self.default_lease_days_,
            "n_train": self.n_train_,
        }

    def _require_fitted(self) -> _Design:
        if self._design is None:
            raise RuntimeError("OccupancyModel is not fitted")
        return self._design


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------


def reliability_table(probability: np.ndarray, outcome: np.ndarray, weight: np.ndarray | None = None, *, bins: int = 10) -> list[dict[str, float]]:
    """Calibration by equal-width probability bins: mean predicted vs observed rate, per non-empty bin."""
    p, y = np.asarray(probability, dtype=float), np.asarray(outcome, dtype=float)
    w = np.ones_like(p) if weight is None else np.asarray(weight, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    table = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            table.append(
                {
                    "bin_low": b / bins,
                    "bin_high": (b + 1) / bins,
                    "rows": int(mask.sum()),
                    "mean_predicted": float(np.average(p[mask], weights=w[mask])),
                    "observed_rate": float(np.average(y[mask], weights=w[mask])),
                }
            )
    return table


def evaluate(model: OccupancyModel, frame: pd.DataFrame, *, bins: int = 10) -> dict[str, Any]:
    """Held-out log loss, Brier score and calibration of the model vs a constant-rate baseline.

    The baseline predicts the training base rate for every row; `log_loss_skill` is
    1 - log_loss / baseline_log_loss (0 = no better than the constant, 1 = perfect). Rows are weighted
    by `days` for the calendar target, so a month counts by its observed days.
    """
    rows, y, weight = model._labelled(frame)
    p = np.clip(model.predict_probability(rows), 1e-6, 1 - 1e-6)
    base = np.full_like(p, np.clip(model.base_rate_, 1e-6, 1 - 1e-6))
    reliability = reliability_table(p, y, weight, bins=bins)
    log_loss, base_log_loss = _log_loss(y, p, weight), _log_loss(y, base, weight)
    return {
        "rows": len(rows),
        "basis": model.basis,
        "observed_rate": float(np.average(y, weights=weight)),
        "mean_predicted": float(np.average(p, weights=weight)),
        "log_loss": log_loss,
        "brier": float(np.average((p - y) ** 2, weights=weight)),
        "baseline_log_loss": base_log_loss,
        "baseline_brier": float(np.average((base - y) ** 2, weights=weight)),
        "log_loss_skill": 1.0 - log_loss / base_log_loss,
        "ece": float(sum(r["rows"] * abs(r["observed_rate"] - r["mean_predicted"]) for r in reliability) / len(rows)),
        "reliability": reliability,
    }


def _log_loss(y: np.ndarray, p: np.ndarray, weight: np.ndarray) -> float:
    return float(np.average(-(y * np.log(p) + (1 - y) * np.log1p(-p)), weights=weight))

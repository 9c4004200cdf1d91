"""Answers to landlord questions: interpretation + champion models + published insights -> the stored answer.

    >>> answer_question("What is the rent for a 2-bedroom apartment in Berlin?", context)["answer"]
    'A 2-bedroom apartment of about 71 m² in Berlin rents for about 1,010 EUR a month ...'

`answer_question` returns exactly what a completed query holds (and `leaseora ask --json` prints):
`interpretation`, `answer` (a few sentences), `result` (JSON-safe numbers, `status` first),
`confidence_score`, `model_version` (the rent champion used, or None) and `sources`.

How one question is answered, in order:
1. `interpret` (offline) gives the intent and entities;
2. the market: the city name as the rent model knows it (`match_data_city`; "Munich" finds
   "München"), or the caller's stored property (`property_id`, only within the caller's account);
   a city the model does not know, or knows from too few listings, gets a plain "too little data"
   answer with the nearest market it does know (gazetteer coordinates), never an invented number;
3. the unit: features the question does not give are filled from that market's typical unit
   (median size for the bedroom count, a district of typical rent level, ...), and every filled
   value is listed in `result["assumptions"]` with where it came from;
4. the intent's figures: rent estimate with 90% range, confidence, comparables and drivers; optimal
   rent with its revenue curve and ±5% sensitivity; let probability and occupancy at an asking rent;
   published insights for a trend; the same figures side by side for a comparison;
5. money always in the market's own currency; an asking rent in another currency is flagged and
   left out (there are no exchange rates offline), never converted.

What the model knows about its markets (cities, currencies, listing counts, typical sizes per
bedroom count, a typical district) is summarised once per model version (`market_summary`) from the
compact copy of the training listings the rent model keeps for comparables, so that a question costs
a few small model calls and at most two small indexed database lookups (property, insights).

When no rent champion exists, questions that need it raise `ModelNotAvailable`, which the worker
stores as a failed query with that message.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from insights.config import Settings
from insights.data.schema import PROPERTY_FEATURES
from insights.defaults import CONFIDENCE_BAND
from insights.errors import ModelNotAvailable
from insights.feed.published import published_insights
from insights.ml.features import Rows, as_float
from insights.ml.pricing import SENSITIVITY_STEP, price_units
from insights.ml.registry import LoadedModel
from insights.query.gazetteer import CityRecord, default_gazetteer, match_data_city
from insights.query.interpreter import Interpretation, interpret
from insights.query.text import fold
from insights.storage.tables import Insight, PropertyPrediction, PropertyRow, iso_utc

if TYPE_CHECKING:  # the worker imports this module; importing the worker here would be circular
    from insights.worker.context import ModelCache

#: Comparable listings shown with a rent estimate, and what is shown of each (with its distance).
COMPARABLES_K = 5
COMPARABLE_COLUMNS = ("listing_id", "district", "monthly_rent", "size_sqm", "bedrooms", "rooms", "listed_at")
#: Drivers of an estimate shown (largest money effect first).
TOP_DRIVERS = 3
#: Fewest training listings in a city for the model's figures about it to be given at all.
THIN_MARKET_ROWS = 20
#: Fewest training listings of the asked bedroom count in the city for a figure about that segment.
THIN_SEGMENT_ROWS = 3
#: Every n-th point of the pricing grid (0.70..1.40 x market in steps of 0.01) is returned as the curve.
CURVE_EVERY = 5
#: Published insights returned for a market-trend question (most relevant first).
MAX_INSIGHTS = 6
#: Insight sentences quoted in the answer text.
QUOTED_INSIGHTS = 3
#: Bedrooms of the unit compared across cities when a comparison names none.
DEFAULT_COMPARE_BEDROOMS = 2
#: Asking/market ratios outside this range are far from what the occupancy model learned from.
TRAINED_RATIO_RANGE = (0.7, 1.4)
#: Model summaries kept (one per model version; a worker rarely holds more than two).
SUMMARY_CACHE_SIZE = 4
#: Model results per unit kept per process (identical questions are answered without model calls).
ESTIMATE_CACHE_SIZE = 2048
#: Below this interpreter confidence the answer says how the question was read.
UNSURE_INTENT = 0.6

RENT = "rent"
OCCUPANCY = "occupancy"
INTENT_WORDS = {
    "rent_estimate": "a rent estimate",
    "optimal_rent": "the optimal asking rent",
    "occupancy_forecast": "an occupancy forecast",
    "market_trend": "a market trend",
    "compare_markets": "a comparison of markets",
}


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


@dataclass
class AnswerContext:
    """What answering needs: settings, database sessions, the champion models and the caller's account.

    `account_id` None (the local CLI) means the properties ingested from files (no account).
    """

    settings: Settings
    session_factory: sessionmaker[Session]
    models: ModelCache
    account_id: int | None = None


def answer_question(text: str, context: AnswerContext) -> dict[str, Any]:
    """Interpret and answer one question; the JSON-safe payload a completed query stores.

    Raises `ModelNotAvailable` when the question needs the rent model and none is trained yet.
    """
    interpretation = interpret(text)
    reply = _Answerer(context, interpretation).run()
    if interpretation.confidence < UNSURE_INTENT and interpretation.intent in INTENT_WORDS:
        reply.answer = f"(I read this as asking for {INTENT_WORDS[interpretation.intent]}.) {reply.answer}"
    payload = {
        "interpretation": interpretation.to_dict(),
        "answer": reply.answer,
        "result": reply.result,
        "confidence_score": None if reply.confidence is None else round(float(reply.confidence), 4),
        "model_version": reply.model_version,
        "sources": reply.sources,
    }
    return plain(payload)


def warm_up(context: AnswerContext) -> None:
    """Build what the first question would otherwise wait for: the interpreter (gazetteer, classifier),
    the champion models, the rent model's market summary and the published insights. Optional; for
    worker start-up."""
    interpret("What is the rent for a 2-bedroom apartment in Berlin?")
    rent = context.models.get(RENT)
    context.models.get(OCCUPANCY)
    if rent is not None:
        market_summary(rent)
    published_insights(context.session_factory)


# --------------------------------------------------------------------------------------------------
# What the rent model knows about its markets (built once per model version)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CityMarket:
    """One market as the rent model saw it in training."""

    name: str
    currency: str | None
    rows: int
    sizes: Mapping[int, float]
    rooms: Mapping[int, float]
    counts: Mapping[int, int]
    median_size: float | None
    size_range: tuple[float, float] | None
    district: str | None
    district_positions: Mapping[str, tuple[float, float]]
    year_built: float | None
    latest_listing: str | None
    annual_trend: float | None
    record: CityRecord | None
    table_rows: np.ndarray = field(repr=False)  # the city's rows of the summary's listings table
    listings: ListingArrays = field(repr=False)

    @property
    def country(self) -> str | None:
        """English country name (from the gazetteer), when the city is in it."""
        return self.record.country if self.record else None

    def typical_bedrooms(self) -> int | None:
        """The most common bedroom count of the city's listings."""
        return max(self.counts, key=lambda b: (self.counts[b], -b)) if self.counts else None

    def bedrooms_for_size(self, size: float) -> int | None:
        """The bedroom count whose median size is closest to `size` (counts with a few listings only)."""
        candidates = {b: s for b, s in self.sizes.items() if self.counts.get(b, 0) >= THIN_SEGMENT_ROWS}
        return min(candidates, key=lambda b: abs(candidates[b] - size)) if candidates else None


@dataclass(frozen=True)
class ListingArrays:
    """A market's training listings as arrays (row i is `table_rows[i]`), for the comparables search."""

    size: np.ndarray | None  # m², NaN where unknown
    bedrooms: np.ndarray | None  # NaN where unknown
    district: np.ndarray | None  # code into `districts`, -1 where unknown
    districts: Mapping[str, int]
    newest_first: np.ndarray  # sort key: newest listing first, undated last

    @classmethod
    def of(cls, rows: pd.DataFrame) -> ListingArrays:
        """Arrays of a city's rows of the training table."""
        def number(column: str) -> np.ndarray | None:
            return as_float(rows[column]) if column in rows else None

        district, districts = None, {}
        if "district" in rows:
            categories = rows["district"].astype("string").astype("category")
            district = categories.cat.codes.to_numpy(dtype=np.int64)
            districts = {str(name): code for code, name in enumerate(categories.cat.categories)}
        listed = pd.to_datetime(rows["listed_at"], errors="coerce") if "listed_at" in rows else pd.Series(pd.NaT, index=rows.index)
        stamps = listed.to_numpy(dtype="datetime64[ns]")
        newest_first = np.where(np.isnat(stamps), np.iinfo(np.int64).max, -stamps.astype(np.int64))
        return cls(number("size_sqm"), number("bedrooms"), district, districts, newest_first)


@dataclass
class MarketSummary:
    """The markets one rent-model version knows: names, currencies, counts and typical units."""

    version: str
    cities: dict[str, CityMarket]
    property_types: tuple[str, ...] | None
    countries: tuple[str, ...] | None
    listings: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    _matches: dict[str, str | None] = field(default_factory=dict, repr=False)
    _nearest: dict[tuple[int, str | None], tuple[CityMarket, float] | None] = field(default_factory=dict, repr=False)
    _in_country: dict[str, list[CityMarket]] = field(default_factory=dict, repr=False)

    @cached_property
    def known(self) -> tuple[str, ...]:
        """Names of the markets with enough data, sorted."""
        return tuple(sorted(m.name for m in self.cities.values() if m.rows >= THIN_MARKET_ROWS))

    def match(self, name: str | None) -> CityMarket | None:
        """The market a city name means ("Munich" -> the model's "München"), or None."""
        if not name:
            return None
        found = _memo(self._matches, name, lambda: match_data_city(name, self.cities))
        return self.cities[found] if found else None

    def nearest(self, record: CityRecord, *, exclude: str | None = None) -> tuple[CityMarket, float] | None:
        """The known market closest to a place (great-circle km), among markets with enough data."""
        return _memo(self._nearest, (record.geonameid, exclude), lambda: self._closest(record, exclude))

    def _closest(self, record: CityRecord, exclude: str | None) -> tuple[CityMarket, float] | None:
        best: tuple[CityMarket, float] | None = None
        for market in self.cities.values():
            if market.record is None or market.name == exclude or market.rows < THIN_MARKET_ROWS:
                continue
            km = _haversine_km(record.latitude, record.longitude, market.record.latitude, market.record.longitude)
            if best is None or km < best[1]:
                best = (market, km)
        return best

    def in_country(self, country: str | None) -> list[CityMarket]:
        """Known markets (with enough data) in a country, largest first."""
        if not country:
            return []
        wanted = fold(country)

        def find() -> list[CityMarket]:
            found = [m for m in self.cities.values() if m.country and fold(m.country) == wanted and m.rows >= THIN_MARKET_ROWS]
            return sorted(found, key=lambda m: -m.rows)

        return list(_memo(self._in_country, wanted, find))

    def largest(self, n: int) -> list[CityMarket]:
        """The n markets with the most listings."""
        return sorted(self.cities.values(), key=lambda m: -m.rows)[:n]


#: Entries a summary remembers per question-dependent lookup before it starts over.
SUMMARY_MEMO_SIZE = 4096


def _memo(memo: dict[Any, Any], key: Any, compute: Callable[[], Any]) -> Any:
    """`memo[key]`, computed on first use (a full memo is emptied first: it only saves repeated work)."""
    if key not in memo:
        if len(memo) >= SUMMARY_MEMO_SIZE:
            memo.clear()
        memo[key] = compute()
    return memo[key]


_summaries: OrderedDict[str, MarketSummary] = OrderedDict()
_summaries_lock = threading.Lock()


def market_summary(model: LoadedModel) -> MarketSummary:
    """The summary of a rent-model version, built on first use and cached by version."""
    cached = _summaries.get(model.version)
    if cached is not None:
        return cached
    built = _build_summary(model)
    with _summaries_lock:
        _summaries[model.version] = built
        while len(_summaries) > SUMMARY_CACHE_SIZE:
            _summaries.popitem(last=False)
    return built


def _build_summary(model: LoadedModel) -> MarketSummary:
    fitted = getattr(model.model, "_fitted", None)
    index = getattr(fitted, "comparables", None)
    table = getattr(index, "table", None)
    if table is None or "city" not in getattr(table, "columns", ()):
        raise ModelNotAvailable(
            f"rent model {model.version} carries no copy of its training listings; retrain it with `leaseora train`"
        )
    currencies = dict(getattr(fitted, "currencies", {}) or {})
    trend = getattr(getattr(fitted, "builder", None), "trend", None)
    trends = _annual_trends(trend)
    table = table.reset_index(drop=True)
    cities = {}
    gazetteer = default_gazetteer()
    for name, rows in table.groupby(table["city"].astype("string"), sort=True):
        name = str(name)
        cities[name] = _city_market(name, rows, currencies.get(name), _year_built(index, name), trends.get(name),
                                    gazetteer.resolve(name, fuzzy=False))
    builder = getattr(fitted, "builder", None)
    return MarketSummary(model.version, cities, _levels(builder, "property_type"), _levels(builder, "country"), table)


def _city_market(
    name: str, rows: pd.DataFrame, currency: str | None, year_built: float | None, trend: float | None,
    record: CityRecord | None,
) -> CityMarket:
    size = pd.to_numeric(rows["size_sqm"], errors="coerce") if "size_sqm" in rows else pd.Series(dtype=float)
    bedrooms = pd.to_numeric(rows["bedrooms"], errors="coerce").round() if "bedrooms" in rows else pd.Series(dtype=float)
    sizes, room_medians, counts = {}, {}, {}
    if bedrooms.notna().any():
        for b, part in rows.groupby(bedrooms, sort=True):
            counts[int(b)] = len(part)
            part_size = size.loc[part.index].dropna()
            if len(part_size):
                sizes[int(b)] = float(part_size.median())
            if "rooms" in part and part["rooms"].notna().any():
                room_medians[int(b)] = float(pd.to_numeric(part["rooms"], errors="coerce").median())
    known = size.dropna()
    listed = pd.to_datetime(rows["listed_at"], errors="coerce").max() if "listed_at" in rows else pd.NaT
    return CityMarket(
        name=name, currency=currency, rows=len(rows), sizes=sizes, rooms=room_medians, counts=counts,
        median_size=float(known.median()) if len(known) else None,
        size_range=(float(known.quantile(0.01)), float(known.quantile(0.99))) if len(known) >= 10 else None,
        district=_typical_district(rows, size), district_positions=_district_positions(rows),
        year_built=year_built, latest_listing=None if pd.isna(listed) else pd.Timestamp(listed).date().isoformat(),
        annual_trend=trend, record=record, table_rows=rows.index.to_numpy(), listings=ListingArrays.of(rows),
    )


def _typical_district(rows: pd.DataFrame, size: pd.Series) -> str | None:
    """The district holding the city's median listing when districts are ordered by rent level.

    Rent level is the district's median rent per m² (per listing where sizes are unknown); a district
    "of typical rent level" is a fairer stand-in for an unnamed location than the centre or the mean.
    """
    if "district" not in rows or rows["district"].notna().mean() < 0.5:
        return None
    rent = pd.to_numeric(rows["monthly_rent"], errors="coerce")
    level = rent / size.where(size > 0) if size.notna().mean() >= 0.5 else rent
    frame = pd.DataFrame({"district": rows["district"].astype("string"), "level": level}).dropna()
    if frame.empty:
        return None
    stats = frame.groupby("district")["level"].agg(["median", "size"]).sort_values("median")
    cumulative = stats["size"].cumsum()
    return str(stats.index[int(np.searchsorted(cumulative.to_numpy(), cumulative.iloc[-1] / 2.0))])


def _district_positions(rows: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Median position per district, when the model's copy of the listings has positions."""
    if not {"district", "latitude", "longitude"} <= set(rows.columns):
        return {}
    frame = rows[["district", "latitude", "longitude"]].dropna()
    medians = frame.groupby(frame["district"].astype("string"))[["latitude", "longitude"]].median()
    return {str(d): (float(r.latitude), float(r.longitude)) for d, r in medians.iterrows()}


def _year_built(index: Any, city: str) -> float | None:
    """The city's mean year built, from the comparables index's per-city feature means."""
    features = list(getattr(index, "features", []) or [])
    city_index = getattr(index, "cities", {}).get(city)
    if "year_built" not in features or city_index is None:
        return None
    value = float(np.asarray(city_index.mean)[features.index("year_built")])
    return round(value) if math.isfinite(value) and value > 1000 else None


def _annual_trends(trend: Any) -> dict[str, float]:
    """Annual rent change per city implied by the model's fitted city trend (log rent per m² per month)."""
    if trend is None or not hasattr(trend, "slope"):
        return {}
    slopes = np.asarray(trend.slope, dtype=float)
    return {str(c): float(np.expm1(12.0 * slopes[i])) for i, c in enumerate(trend.cities) if math.isfinite(slopes[i])}


def _levels(builder: Any, column: str) -> tuple[str, ...] | None:
    """Values of a low-cardinality string feature the model knows (None: not a categorical feature)."""
    levels = getattr(builder, "low_card", {}).get(column)
    return None if levels is None else tuple(str(v) for v in levels)


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


# --------------------------------------------------------------------------------------------------
# The unit asked about: given features, completed from the market's typical unit
# --------------------------------------------------------------------------------------------------


@dataclass
class Unit:
    """Model inputs of one unit and, per filled-in feature, the value assumed and why."""

    market: CityMarket
    features: dict[str, Any]
    assumptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    property_id: str | None = None

    def assume(self, name: str, value: Any, basis: str) -> None:
        """Set a feature the question did not give, recording the assumption."""
        self.features[name] = value
        self.assumptions[name] = {"value": value, "basis": basis}

    @property
    def bedrooms(self) -> int | None:
        value = self.features.get("bedrooms")
        return None if value is None else int(round(float(value)))

    def describe(self) -> str:
        """'a 2-bedroom apartment of about 71 m² in Berlin' (what the figures are for)."""
        words = describe_kind(self.features)
        if self.property_id:
            return f"your property {self.property_id} ({words.removeprefix('a ').removeprefix('an ')}) in {self.market.name}"
        return f"{words} in {self.market.name}"

    def public(self) -> dict[str, Any]:
        """The features used, for the result (missing ones left out)."""
        return {k: v for k, v in self.features.items() if v is not None and k != "listed_at"}

    def unknown(self, schema: Mapping[str, str]) -> list[str]:
        """Model features neither given nor assumed (the model treats them as unknown)."""
        return sorted(k for k in schema if self.features.get(k) is None and k not in ("city",))


def describe_kind(features: Mapping[str, Any]) -> str:
    """'a 2-bedroom apartment of about 71 m²', 'a furnished studio', 'a house' (no place)."""
    kind = features.get("property_type") or "unit"
    bedrooms = features.get("bedrooms")
    bedrooms = None if bedrooms is None else int(round(float(bedrooms)))
    if kind == "studio" or (bedrooms == 0 and kind in ("apartment", "unit")):
        words = "studio"
    elif bedrooms is not None:
        words = f"{bedrooms}-bedroom {kind}"
    else:
        words = str(kind)
    if features.get("furnished") is True:
        words = f"furnished {words}"
    size = features.get("size_sqm")
    if size:
        words += f" of about {float(size):,.0f} m²"
    return ("an " if words[:1] in "aeiou" else "a ") + words


def complete_unit(market: CityMarket, given: Mapping[str, Any], summary: MarketSummary, *, today: pd.Timestamp) -> Unit:
    """The unit with the features `given` (question or stored property) and the market's typical rest."""
    unit = Unit(market, {"city": market.name})
    unit.features.update({k: v for k, v in given.items() if v is not None})
    _complete_rooms(unit)
    _complete_type(unit, summary)
    _complete_size(unit)
    _complete_location(unit)
    if unit.features.get("year_built") is None and market.year_built is not None:
        unit.assume("year_built", market.year_built, f"average year built of listings in {market.name}")
    if summary.countries and unit.features.get("country") is None and market.country in summary.countries:
        unit.features["country"] = market.country
    unit.assume("listed_at", today.date().isoformat(), "today's market level")
    unit.features["listed_at"] = today
    return unit


def _complete_rooms(unit: Unit) -> None:
    market, features = unit.market, unit.features
    if features.get("bedrooms") is None:
        size = features.get("size_sqm")
        if features.get("property_type") == "studio":
            unit.assume("bedrooms", 0, "a studio has no separate bedroom")
        elif size is not None and (b := market.bedrooms_for_size(float(size))) is not None:
            unit.assume("bedrooms", b, f"the bedroom count whose median size in {market.name} is closest to {float(size):,.0f} m²")
        elif (b := market.typical_bedrooms()) is not None:
            unit.assume("bedrooms", b, f"the most common bedroom count of listings in {market.name}")
    bedrooms = unit.bedrooms
    if features.get("rooms") is None and bedrooms is not None and bedrooms in market.rooms:
        unit.assume("rooms", market.rooms[bedrooms], f"median rooms of {bedrooms}-bedroom listings in {market.name}")


def _complete_type(unit: Unit, summary: MarketSummary) -> None:
    if unit.features.get("property_type") is not None or summary.property_types is None:
        return
    known = summary.property_types
    if unit.bedrooms == 0 and "studio" in known:
        unit.assume("property_type", "studio", "no bedrooms: a studio")
    elif "apartment" in known:
        unit.assume("property_type", "apartment", "not given; apartments are the usual rental unit")


def _complete_size(unit: Unit) -> None:
    market, bedrooms = unit.market, unit.bedrooms
    if unit.features.get("size_sqm") is not None:
        return
    if bedrooms is not None and bedrooms in market.sizes and market.counts.get(bedrooms, 0) >= THIN_SEGMENT_ROWS:
        unit.assume("size_sqm", round(market.sizes[bedrooms], 1), f"median size of {bedrooms}-bedroom listings in {market.name}")
    elif market.median_size is not None:
        unit.assume("size_sqm", round(market.median_size, 1), f"median size of listings in {market.name}")


def _complete_location(unit: Unit) -> None:
    market, features = unit.market, unit.features
    has_position = features.get("latitude") is not None and features.get("longitude") is not None
    if features.get("district") is None and not has_position and market.district is not None:
        unit.assume("district", market.district, f"a district of typical rent level in {market.name}")
    district = features.get("district")
    if not has_position and district in market.district_positions:
        lat, lon = market.district_positions[district]
        unit.assume("latitude", round(lat, 5), f"median position of listings in {district}")
        unit.assume("longitude", round(lon, 5), f"median position of listings in {district}")


def unit_row(features: Mapping[str, Any], schema: Mapping[str, str]) -> dict[str, Any]:
    """The unit as one model input row (mapping) with every schema column, typed by the schema's kind
    (None where not known): what the models' pandas-free path (`predict_rows`, `explain`, ...) reads."""
    row: dict[str, Any] = {}
    for name, kind in schema.items():
        value = features.get(name)
        if value is None or kind == "bool":
            row[name] = value
        elif kind in ("float", "int"):
            row[name] = float(value)
        elif kind == "datetime":
            row[name] = pd.to_datetime(value, errors="coerce")
        else:
            row[name] = str(value)
    return row


# --------------------------------------------------------------------------------------------------
# Model results (cached per model version and unit)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """The rent model's figures for one unit."""

    rent: float
    low: float
    high: float
    confidence: float | None
    level: float


_estimates: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_estimates_lock = threading.Lock()


def _cache_key(kind: str, version: str, features: Mapping[str, Any], *extra: Any) -> tuple[Any, ...]:
    items = tuple(sorted((k, str(v)) for k, v in features.items() if v is not None))
    return (kind, version, items, *extra)


def _lookup(key: tuple[Any, ...]) -> Any | None:
    with _estimates_lock:
        if key in _estimates:
            _estimates.move_to_end(key)
            return _estimates[key]
    return None


def _remember(key: tuple[Any, ...], value: Any) -> Any:
    with _estimates_lock:
        _estimates[key] = value
        while len(_estimates) > ESTIMATE_CACHE_SIZE:
            _estimates.popitem(last=False)
    return value


def forget_answers() -> None:
    """Empty the per-process caches of interpretations and model results: the state of a warm worker
    that has not yet seen any of the questions to come. What does not depend on the questions stays
    (market summaries, the published insights)."""
    from insights.query.interpreter import forget_interpretations

    forget_interpretations()
    with _estimates_lock:
        _estimates.clear()


def _cached(key: tuple[Any, ...], compute: Any) -> Any:
    """Per-process LRU of model results: the same unit asked again costs no model call."""
    found = _lookup(key)
    return found if found is not None else _remember(key, compute())


def estimate_units(rent: LoadedModel, units: Sequence[Unit], level: float) -> list[Estimate]:
    """Rent estimates for several units in one model call (cached per unit)."""
    keys = [_cache_key("estimate", rent.version, u.features, level) for u in units]
    found = {k: v for k in keys if (v := _lookup(k)) is not None}
    missing = [i for i, k in enumerate(keys) if k not in found]
    if missing:
        schema = rent.feature_schema  # rows, not a frame: pandas would be most of the time for a few units
        predicted = rent.model.predict_rows([unit_row(units[i].features, schema) for i in missing], level=level)
        for j, i in enumerate(missing):
            confidence = float(predicted["confidence_score"][j])
            found[keys[i]] = _remember(keys[i], Estimate(
                float(predicted["rent_estimate"][j]), float(predicted["rent_low"][j]), float(predicted["rent_high"][j]),
                None if math.isnan(confidence) else confidence, level))
    return [found[k] for k in keys]


def comparables_of(rent: LoadedModel, unit: Unit, summary: MarketSummary, k: int = COMPARABLES_K) -> list[dict[str, Any]]:
    """The k most similar training listings of the unit's city: rent, size, bedrooms, district, date.

    With a position, the rent model's own similarity search (size, rooms, position, ...). Without
    one that search would sit at the city's mean position and favour central listings, so the
    unit's district (given or assumed) is searched instead, by bedrooms, size and recency.
    """
    model = rent.model
    located = unit.features.get("latitude") is not None and unit.features.get("longitude") is not None
    if located and hasattr(model, "comparable_rows"):
        def compute() -> list[dict[str, Any]]:
            _, rows, distance = model.comparable_rows([unit_row(unit.features, rent.feature_schema)], k)
            return _listing_records(model.comparables_table, rows, distance)
    else:
        compute = lambda: _district_comparables(summary.listings, unit, k)  # noqa: E731

    def records() -> list[dict[str, Any]]:
        rows = compute()
        for row in rows:
            row["currency"] = unit.market.currency
            if "listed_at" in row and pd.notna(row["listed_at"]):
                row["listed_at"] = pd.Timestamp(row["listed_at"]).date().isoformat()
            if "distance" in row:
                row["similarity_distance"] = round(float(row.pop("distance")), 3)
        return rows

    return _cached(_cache_key("comparables", rent.version, unit.features, k), records)


def _district_comparables(listings: pd.DataFrame, unit: Unit, k: int) -> list[dict[str, Any]]:
    """Listings of the unit's city nearest in bedrooms and size, its district first, newest on ties
    (`COMPARABLE_COLUMNS` and `distance` of each)."""
    market = unit.market
    arrays = market.listings
    distance = np.zeros(len(market.table_rows))
    size = unit.features.get("size_sqm")
    if size and arrays.size is not None:
        their = arrays.size
        with np.errstate(invalid="ignore", divide="ignore"):
            distance += np.nan_to_num(np.abs(np.log(np.where(their > 0, their, np.nan) / float(size))) / 0.15, nan=3.0)
    if unit.bedrooms is not None and arrays.bedrooms is not None:
        distance += np.nan_to_num(np.abs(arrays.bedrooms - unit.bedrooms), nan=2.0)
    district = unit.features.get("district")
    other = np.ones(len(distance), dtype=bool)
    if district is not None and arrays.district is not None:
        other = arrays.district != arrays.districts.get(str(district), -2)  # unknown districts (-1) are other
    top = np.lexsort((arrays.newest_first, np.round(distance, 6), other))[:k]
    return _listing_records(listings, market.table_rows[top], distance[top])


def _listing_records(listings: pd.DataFrame, rows: np.ndarray, distance: np.ndarray) -> list[dict[str, Any]]:
    """`COMPARABLE_COLUMNS` and `distance` of a few rows of a listings table (read per column: no frame)."""
    columns = {c: listings[c].array.take(rows) for c in COMPARABLE_COLUMNS if c in listings}
    return [{**{c: values[i] for c, values in columns.items()}, "distance": distance[i]} for i in range(len(rows))]


def drivers_of(rent: LoadedModel, unit: Unit, top: int = TOP_DRIVERS) -> list[dict[str, Any]]:
    """The main drivers of the estimate in money (from the model's SHAP explanation).

    The "city" term is left out: it is the city's level against a mix of all markets (in several
    currencies), not something about this unit. The other amounts are valued on top of it.
    """
    model = rent.model
    if not hasattr(model, "explain"):
        return []

    def compute() -> list[dict[str, Any]]:
        explained = model.explain([unit_row(unit.features, rent.feature_schema)], top=top + 6)
        drivers = [d for d in explained.iloc[0]["drivers"] if d["driver"] != "city" and abs(d["amount"]) >= 0.5]
        return [{"driver": d["driver"], "amount": round(float(d["amount"]), 2), "currency": unit.market.currency}
                for d in drivers[:top]]

    return _cached(_cache_key("drivers", rent.version, unit.features, top), compute)


def occupancy_rows(occupancy: LoadedModel, unit: Unit, market_rent: float, asking: Sequence[float], month: int) -> Rows:
    """Rows of the unit at each asking rent and in `month`, in the occupancy model's input schema."""
    schema = occupancy.feature_schema
    return Rows([{**unit_row({**unit.features, "market_rent": market_rent, "asking_rent": a}, schema), "month": month}
                 for a in asking])


def occupancy_basis(occupancy: LoadedModel) -> dict[str, Any]:
    """What 'occupancy' means for this model, in words."""
    basis = occupancy.basis or "unknown"
    if basis.startswith("calendar"):
        text = ("Occupancy here is a short-let calendar proxy (Airbnb-style): a night counts as occupied when the "
                "calendar shows it unavailable, which includes nights the host blocked, so it overstates true "
                "occupancy; it has no 30-day letting probability.")
    elif basis.startswith("lease-up"):
        lease_days = getattr(occupancy.model, "default_lease_days_", None)
        lease = f" with an average lease of about {lease_days / 30.44:.0f} months" if lease_days else ""
        text = ("Occupancy here is the expected share of the year let, from how quickly similar units were re-let "
                f"between leases (time to let at a given rent){lease}.")
    else:
        text = "The occupancy model does not say what its occupancy measures."
    return {"basis": basis, "explanation": text}


# --------------------------------------------------------------------------------------------------
# Storage lookups (small and indexed)
# --------------------------------------------------------------------------------------------------


def find_property(session: Session, *, account_id: int | None, property_id: str) -> PropertyRow | None:
    """The caller's property (another account's is never returned); exact id first, then any case."""
    owner = PropertyRow.account_id.is_(None) if account_id is None else PropertyRow.account_id == account_id
    row = session.scalar(select(PropertyRow).where(owner, PropertyRow.property_id == property_id).limit(1))
    if row is None:  # then in any case (an index on lower(property_id) serves this)
        row = session.scalar(
            select(PropertyRow).where(owner, func.lower(PropertyRow.property_id) == property_id.lower()).limit(1)
        )
    return row


def property_features(row: PropertyRow, schema: Mapping[str, str]) -> dict[str, Any]:
    """Stored features of a property (canonical ones and extra ones the model reads)."""
    features = {name: getattr(row, name) for name in PROPERTY_FEATURES if getattr(row, name) is not None}
    for name, value in (row.extra or {}).items():
        if name in schema and name not in features and value is not None:
            features[name] = value
    return features


_KIND_ORDER = {"rent_growth": 0, "rent_level": 1, "top_mover": 2, "occupancy": 3, "occupancy_trend": 4, "days_to_let": 5,
               "seasonality": 6}
_HORIZON_ORDER = {"yoy": 0, "qoq": 1, "mom": 2}


def _horizon(metric: str) -> str:
    return metric.rsplit("_", 1)[-1]


def rank_insights(rows: Iterable[Insight], segments: Sequence[str]) -> list[Insight]:
    """Most relevant first: the asked segment, then the whole city, then other segments; growth
    before levels before the rest; year over year before shorter horizons; newest first."""
    wanted = [s.lower() for s in segments]

    def key(row: Insight) -> tuple[Any, ...]:
        segment = (row.segment or "").lower()
        segment_rank = wanted.index(segment) if segment in wanted else len(wanted) if not segment else len(wanted) + 1
        end = row.period_end.toordinal() if row.period_end else 0
        created = row.created_at.timestamp() if row.created_at else 0.0
        return (segment_rank, _KIND_ORDER.get(row.kind, 9), _HORIZON_ORDER.get(_horizon(row.metric), 3),
                row.metric, -end, -created, -row.id)

    return sorted(rows, key=key)


def insight_dict(row: Insight) -> dict[str, Any]:
    """An insight as the answer shows it."""
    return {
        "id": row.id, "kind": row.kind, "city": row.city, "segment": row.segment, "metric": row.metric,
        "value": row.value, "low": row.low, "high": row.high, "unit": row.unit,
        "period_start": row.period_start, "period_end": row.period_end, "direction": row.direction,
        "sample_size": row.sample_size, "confidence_score": row.confidence_score, "text": row.text,
        "published_at": iso_utc(row.created_at),
    }


def segments_of(entities: Mapping[str, Any]) -> list[str]:
    """Insight segment labels matching the asked unit ('2-bedroom', 'studio', 'apartment')."""
    out = []
    bedrooms = entities.get("bedrooms")
    if bedrooms is not None:
        b = int(round(float(bedrooms)))
        out.append("studio" if b == 0 else f"{b}-bedroom" if b < 3 else "3+-bedroom")
    if entities.get("property_type"):
        out.append(str(entities["property_type"]))
    return out


# --------------------------------------------------------------------------------------------------
# Answering, per intent
# --------------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """What one intent handler produces."""

    answer: str
    result: dict[str, Any]
    confidence: float | None = None
    model_version: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Asking:
    """The asking rent of the question, and whether it can be set against the market's figures."""

    amount: float
    currency: str | None
    market_currency: str | None
    assumed_currency: bool

    @property
    def comparable(self) -> bool:
        return self.currency == self.market_currency or self.market_currency is None

    def public(self, ratio: float | None = None) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency, "market_currency": self.market_currency,
                "currency_assumed": self.assumed_currency, "used": self.comparable,
                "ratio_to_market": None if ratio is None else round(ratio, 4)}


class _Answerer:
    """Answers one interpreted question; collects the sources it used."""

    def __init__(self, context: AnswerContext, interpretation: Interpretation) -> None:
        self.context = context
        self.intent = interpretation.intent
        self.entities: dict[str, Any] = dict(interpretation.entities)
        self.sources: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.today = pd.Timestamp.now().normalize()
        self._rent: LoadedModel | None = None
        self._stored: Estimate | None = None  # a fresh stored prediction of the asked property
        self.currency_mismatch = False  # the question's currency is not the market's

    # ----- plumbing ------------------------------------------------------------------------------
    def run(self) -> Reply:
        handlers = {
            "rent_estimate": self.rent_estimate, "optimal_rent": self.optimal_rent,
            "occupancy_forecast": self.occupancy_forecast, "market_trend": self.market_trend,
            "compare_markets": self.compare,
        }
        if self.intent != "unsupported" and len(self.entities.get("cities") or ()) >= 2 and not self.entities.get("property_id"):
            reply = self.compare()  # two or more cities: side by side, whatever the wording
        else:
            reply = handlers.get(self.intent, self.unsupported)()
        reply.sources = self.sources + [s for s in reply.sources if s not in self.sources]
        if self.notes:
            reply.result.setdefault("notes", []).extend(n for n in self.notes if n not in reply.result.get("notes", []))
        return reply

    def source(self, item: dict[str, Any]) -> None:
        if item not in self.sources:
            self.sources.append(item)

    def rent(self) -> LoadedModel:
        """The rent champion; `ModelNotAvailable` when none is trained."""
        if self._rent is None:
            model = self.context.models.get(RENT)
            if model is None:
                raise ModelNotAvailable(
                    "no rent model has been trained yet: run `leaseora train` (or `leaseora up` on an empty home, "
                    "which loads demo data and trains) and ask again"
                )
            self._rent = model
            self.source({"type": "model", "name": RENT, "version": model.version})
        return self._rent

    def summary(self) -> MarketSummary:
        return market_summary(self.rent())

    def summary_if_trained(self) -> MarketSummary | None:
        """The summary when a rent model exists (for answers that can do without one)."""
        model = self.context.models.get(RENT)
        return market_summary(model) if model is not None else None

    # ----- the subject of a unit question: stored property or the question's unit ------------------
    def subject(self) -> Unit | Reply:
        """The completed unit asked about, or the reply explaining why there is none."""
        rent = self.rent()
        summary = self.summary()
        property_id = self.entities.get("property_id")
        if property_id:
            return self.property_subject(str(property_id), rent, summary)
        city = self.entities.get("city")
        if not city:
            return self.needs_city(summary)
        market = summary.match(city)
        if market is None or market.rows < THIN_MARKET_ROWS:
            return self.no_market(summary, city, country=self.entities.get("country"), market=market)
        given = {k: self.entities.get(k) for k in ("property_type", "bedrooms", "bathrooms", "size_sqm", "furnished")}
        unit = complete_unit(market, given, summary, today=self.today)
        problem = self.segment_problem(unit, summary)
        if problem is None:
            self.note_unusual_size(unit)
        return problem or unit

    def note_unusual_size(self, unit: Unit) -> None:
        """A given size outside what the market's listings cover makes the figures an extrapolation: say so."""
        size, span = unit.features.get("size_sqm"), unit.market.size_range
        if size is None or span is None or "size_sqm" in unit.assumptions or span[0] <= float(size) <= span[1]:
            return
        self.notes.append(f"{float(size):,.0f} m² is outside the sizes of nearly all listings in {unit.market.name} "
                          f"({span[0]:,.0f}–{span[1]:,.0f} m²), so the figures below are an extrapolation.")

    def property_subject(self, property_id: str, rent: LoadedModel, summary: MarketSummary) -> Unit | Reply:
        with self.context.session_factory() as session:
            row = find_property(session, account_id=self.context.account_id, property_id=property_id)
            prediction = None
            if row is not None:
                prediction = session.scalar(select(PropertyPrediction).where(PropertyPrediction.property_pk == row.id))
        if row is None:
            return _not_found(property_id)
        self.source({"type": "property", "property_id": row.property_id})
        market = summary.match(row.city)
        if market is None or market.rows < THIN_MARKET_ROWS:
            return self.no_market(summary, row.city, country=row.country, market=market)
        features = property_features(row, rent.feature_schema)
        for name in ("bedrooms", "bathrooms", "size_sqm", "property_type", "furnished"):
            if features.get(name) is None and self.entities.get(name) is not None:
                features[name] = self.entities[name]
        features.pop("city", None)
        unit = complete_unit(market, features, summary, today=self.today)
        unit.property_id = row.property_id
        problem = self.segment_problem(unit, summary)
        if problem is not None:
            return problem
        self.note_unusual_size(unit)
        self._stored = _fresh_prediction(prediction, rent.version, getattr(rent.model, "level", None))
        if self._stored is not None:
            self.source({"type": "prediction", "model_version": prediction.model_version,
                         "created_at": iso_utc(prediction.created_at)})
        return unit

    def segment_problem(self, unit: Unit, summary: MarketSummary) -> Reply | None:
        """A reply when the model has (almost) no listings like the unit, else None."""
        market, kind, bedrooms = unit.market, unit.features.get("property_type"), unit.bedrooms
        if kind and summary.property_types is not None and kind not in summary.property_types:
            known = ", ".join(summary.property_types)
            words = {"room": "rooms in shared homes", "commercial": "commercial properties"}.get(str(kind), f"{kind} listings")
            return Reply(
                f"I have no data on {words}, so I can't give a figure for {market.name} without guessing. "
                f"The rent model covers these property types: {known}.",
                {"status": "insufficient_data", "city": market.name, "segment": {"property_type": kind},
                 "reason": f"the model has no {kind} listings", "known_property_types": list(summary.property_types)},
            )
        if bedrooms is not None and market.counts and market.counts.get(bedrooms, 0) < THIN_SEGMENT_ROWS:
            have = market.counts.get(bedrooms, 0)
            covered = sorted(b for b, n in market.counts.items() if n >= THIN_SEGMENT_ROWS)
            span = f"{covered[0]} to {covered[-1]} bedrooms" if covered else "no bedroom count"
            found = f"has only {have} {bedrooms}-bedroom listing{'s' if have != 1 else ''}" if have else f"has no {bedrooms}-bedroom listings"
            return Reply(
                f"{market.name} {found} in my data, too few for an estimate I would stand behind. Its listings cover "
                f"{span}; ask about one of those instead.",
                {"status": "insufficient_data", "city": market.name, "segment": {"bedrooms": bedrooms},
                 "listings": have, "reason": f"fewer than {THIN_SEGMENT_ROWS} listings with {bedrooms} bedrooms",
                 "covered_bedrooms": covered},
            )
        return None

    def estimate(self, unit: Unit) -> Estimate:
        """The rent model's estimate (the stored prediction of a property when it is fresh)."""
        if self._stored is not None and unit.property_id:
            return self._stored
        level = self.context.settings.interval_level
        return estimate_units(self.rent(), [unit], level)[0]

    def asking(self, unit: Unit) -> Asking | None:
        """The question's asking rent, with the currency mismatch (if any) noted."""
        amount, currency = self.entities.get("asking_rent"), self.entities.get("currency")
        market_currency = unit.market.currency
        if amount is None:
            if currency and market_currency and currency != market_currency:
                self.currency_mismatch = True
                self.notes.append(f"You asked in {currency}, but rents in {unit.market.name} are quoted in "
                                  f"{market_currency}; amounts are in {market_currency} (no exchange rates offline).")
            return None
        asked = Asking(float(amount), currency or market_currency, market_currency, assumed_currency=currency is None)
        if asked.assumed_currency and market_currency:
            unit.assumptions["asking_rent_currency"] = {
                "value": market_currency, "basis": f"no currency given: read as {unit.market.name}'s currency"}
        if not asked.comparable:
            self.currency_mismatch = True
            self.notes.append(
                f"Your asking rent is in {asked.currency} ({money(asked.amount, asked.currency)}), but rents in "
                f"{unit.market.name} are in {market_currency}. Without exchange rates (this service works offline) "
                f"I can't compare the two, so your asking rent was not used and all figures are in {market_currency}."
            )
        return asked

    def unit_result(self, unit: Unit, estimate: Estimate, asking: Asking | None, *, key: str) -> dict[str, Any]:
        """The parts every unit answer shares; the estimate goes under `key`."""
        result: dict[str, Any] = {"status": "ok"}
        if unit.property_id:
            result["property_id"] = unit.property_id
        result.update(market=_market_dict(unit.market), unit=unit.public(), assumptions=unit.assumptions,
                      unknown_features=unit.unknown(self.rent().feature_schema))
        result[key] = _estimate_dict(estimate, unit.market.currency)
        if asking is not None:
            result["asking_rent"] = asking.public(asking.amount / estimate.rent if asking.comparable else None)
        result["currency_mismatch"] = self.currency_mismatch
        return result

    # ----- intents ---------------------------------------------------------------------------------
    def rent_estimate(self) -> Reply:
        unit = self.subject()
        if isinstance(unit, Reply):
            return unit
        rent, market = self.rent(), unit.market
        estimate = self.estimate(unit)
        comparables = comparables_of(rent, unit, self.summary())
        drivers = drivers_of(rent, unit)
        asking = self.asking(unit)
        self.source({"type": "comparables", "count": len(comparables)})
        result = self.unit_result(unit, estimate, asking, key="estimate")
        result.update(comparables=comparables, drivers=drivers)
        text = [f"{_cap(unit.describe())} rents for about {money(estimate.rent, market.currency)} a month "
                f"({estimate.level:.0%} range {money_range(estimate.low, estimate.high, market.currency)}"
                f"{_confidence_words(estimate.confidence)})."]
        if drivers:
            text.append("Main drivers: " + ", ".join(f"{d['driver']} {signed_money(d['amount'], market.currency)}" for d in drivers) + ".")
        if comparables:
            rents = [c["monthly_rent"] for c in comparables if c.get("monthly_rent") is not None]
            if rents:
                text.append(f"The {len(comparables)} most similar listings asked {money_range(min(rents), max(rents), market.currency)}.")
        if asking is not None and asking.comparable:
            text.append(f"Your asking rent of {money(asking.amount, market.currency)} is "
                        f"{_relative(asking.amount / estimate.rent)} this estimate.")
        text.append(_assumption_sentence(unit))
        return self.reply(text, result, estimate.confidence)

    def _with_occupancy(self, no_model: Callable[[Unit, Estimate], str]) -> Reply | tuple[Unit, Estimate, Any, dict[str, Any], LoadedModel]:
        """The subject unit, its estimate, the asked rent, the result so far and the occupancy champion;
        or the finished reply when there is no unit, or (`no_model` sentence) no occupancy model."""
        unit = self.subject()
        if isinstance(unit, Reply):
            return unit
        estimate = self.estimate(unit)
        asking = self.asking(unit)
        result = self.unit_result(unit, estimate, asking, key="market_rent")
        occupancy = self.context.models.get(OCCUPANCY)
        if occupancy is None:
            result["status"] = "no_occupancy_model"
            return self.reply([no_model(unit, estimate), _assumption_sentence(unit)], result, estimate.confidence)
        self.source({"type": "model", "name": OCCUPANCY, "version": occupancy.version})
        return unit, estimate, asking, result, occupancy

    def optimal_rent(self) -> Reply:
        found = self._with_occupancy(lambda unit, estimate: (
            f"The market rent for {unit.describe()} is about {money(estimate.rent, unit.market.currency)} a month, "
            "but no occupancy model has been trained yet, so I can't weigh rent against vacancy to find the "
            "revenue-maximising rent. Run `leaseora train` with lease or calendar data."))
        if isinstance(found, Reply):
            return found
        unit, estimate, asking, result, occupancy = found
        market = unit.market
        current = asking.amount if asking is not None and asking.comparable else estimate.rent
        priced, curve = self._priced(occupancy, unit, estimate.rent, current)
        basis = occupancy_basis(occupancy)
        optimal = float(priced["optimal_rent"])
        revenue = float(priced["optimal_revenue"])
        up, down = float(priced["revenue_change_up_5pct"]), float(priced["revenue_change_down_5pct"])
        result.update(
            optimal={
                "rent": round(optimal, 2), "currency": market.currency, "ratio_to_market": round(float(priced["optimal_ratio"]), 4),
                "expected_occupancy": round(float(priced["optimal_occupancy"]), 4),
                "let_probability_30d": _maybe(priced["optimal_let_probability_30d"]),
                "yearly_revenue": round(revenue, 2), "at_grid_edge": bool(priced["at_grid_edge"]),
            },
            sensitivity={
                "step": SENSITIVITY_STEP,
                "up": {"rent": round(optimal * (1 + SENSITIVITY_STEP), 2), "revenue_change": round(up, 4)},
                "down": {"rent": round(optimal * (1 - SENSITIVITY_STEP), 2), "revenue_change": round(down, 4)},
            },
            revenue_curve=curve, occupancy_basis=basis,
        )
        text = [f"For {unit.describe()}, the revenue-maximising asking rent is about {money(optimal, market.currency)} a month "
                f"({float(priced['optimal_ratio']):.2f}× the market estimate of {money(estimate.rent, market.currency)})."]
        let = _maybe(priced["optimal_let_probability_30d"])
        text.append(f"There the expected occupancy is {float(priced['optimal_occupancy']):.0%}"
                    + (f" (let within 30 days: {let:.0%})" if let is not None else "")
                    + f", about {money(revenue, market.currency)} a year.")
        step = f"{SENSITIVITY_STEP:.0%}"
        text.append(f"Asking {step} more ({money(optimal * (1 + SENSITIVITY_STEP), market.currency)}) changes yearly "
                    f"revenue by {up:+.1%}; {step} less ({money(optimal * (1 - SENSITIVITY_STEP), market.currency)}) by {down:+.1%}.")
        if priced["at_grid_edge"]:
            text.append("The optimum sits at the edge of the range searched (0.70–1.40× market): revenue was still "
                        "changing there, so read it as a bound, not a precise figure.")
        if asking is not None and asking.comparable:
            result["at_asking_rent"] = {"expected_occupancy": round(float(priced["expected_occupancy"]), 4),
                                        "yearly_revenue": round(float(priced["expected_revenue"]), 2)}
            text.append(f"At your {money(asking.amount, market.currency)} the expected yearly revenue is "
                        f"{money(float(priced['expected_revenue']), market.currency)}.")
        text += [basis["explanation"], _assumption_sentence(unit)]
        return self.reply(text, result, estimate.confidence)

    def _priced(self, occupancy: LoadedModel, unit: Unit, market_rent: float, asking: float) -> tuple[dict[str, Any], list[dict[str, float]]]:
        month = int(self.today.month)

        def compute() -> tuple[dict[str, Any], list[dict[str, float]]]:
            priced = price_units(occupancy, occupancy_rows(occupancy, unit, market_rent, [asking], month), with_curves=True)
            points = priced.curve(0)
            curve = [{k: round(v, 4 if k in ("ratio", "occupancy", "let_probability_30d") else 2) for k, v in p.items()}
                     for i, p in enumerate(points) if i % CURVE_EVERY == 0 or i == len(points) - 1]
            return priced.unit(0), curve

        return _cached(_cache_key("pricing", occupancy.version, unit.features, round(market_rent, 2), round(asking, 2), month), compute)

    def _occupancy(self, occupancy: LoadedModel, unit: Unit, market_rent: float, rents: list[float]) -> list[dict[str, Any]]:
        month = int(self.today.month)

        def compute() -> list[dict[str, Any]]:
            predicted = occupancy.model.predict_rows(occupancy_rows(occupancy, unit, market_rent, rents, month))
            return [_occupancy_dict({k: v[i] for k, v in predicted.items()}, rents[i], unit.market.currency)
                    for i in range(len(rents))]

        key = _cache_key("occupancy", occupancy.version, unit.features, round(market_rent, 2),
                         tuple(round(r, 2) for r in rents), month)
        return _cached(key, compute)

    def occupancy_forecast(self) -> Reply:
        found = self._with_occupancy(lambda unit, estimate: (
            f"No occupancy model has been trained yet, so I can't forecast letting for {unit.describe()}. "
            f"Its market rent is about {money(estimate.rent, unit.market.currency)} a month."))
        if isinstance(found, Reply):
            return found
        unit, estimate, asking, result, occupancy = found
        market = unit.market
        use_asking = asking is not None and asking.comparable
        rents = [asking.amount, estimate.rent] if use_asking else [estimate.rent]
        rows = self._occupancy(occupancy, unit, estimate.rent, rents)
        basis = occupancy_basis(occupancy)
        result.update(at_market_rent=rows[-1], occupancy_basis=basis)
        text = []
        if use_asking:
            ratio = asking.amount / estimate.rent
            result["at_asking_rent"] = rows[0]
            text.append(f"At {money(asking.amount, market.currency)} ({ratio:.2f}× the market estimate of "
                        f"{money(estimate.rent, market.currency)}), {unit.describe()} {_occupancy_words(rows[0])}.")
            text.append(f"At the market rent: {_occupancy_words(rows[-1], short=True)}.")
            if not TRAINED_RATIO_RANGE[0] <= ratio <= TRAINED_RATIO_RANGE[1]:
                text.append("That asking rent is far from the market rent, outside the range the occupancy model "
                            "learned from: treat the figures as rough.")
        else:
            text.append(f"At the market rent of about {money(estimate.rent, market.currency)}, {unit.describe()} "
                        f"{_occupancy_words(rows[-1])}.")
        text += [basis["explanation"], _assumption_sentence(unit)]
        return self.reply(text, result, estimate.confidence)

    def market_trend(self) -> Reply:
        city, country = self.entities.get("city"), self.entities.get("country")
        if self.entities.get("property_id"):
            property_id = str(self.entities["property_id"])
            with self.context.session_factory() as session:
                row = find_property(session, account_id=self.context.account_id, property_id=property_id)
            if row is None:
                return _not_found(property_id)
            self.source({"type": "property", "property_id": row.property_id})
            city, country = row.city, row.country
        insights = published_insights(self.context.session_factory)
        if city:
            name = match_data_city(city, list(insights.countries))
            return self.city_trend(city, rank_insights(insights.of([name]) if name else [], segments_of(self.entities)))
        if country:
            return self.country_trend(country, insights.of(c for c, co in insights.cities if _same_country(co, country)
                                                           or _same_country(country_of_city(c), country)))
        return self.needs_city(self.summary_if_trained(), published=list(insights.countries))

    def city_trend(self, city: str, rows: list[Insight]) -> Reply:
        summary = self.summary_if_trained()
        market = summary.match(city) if summary else None
        known = market is not None and market.rows >= THIN_MARKET_ROWS
        if not rows:
            if summary is None:
                return Reply(f"I have no published market insights for {city} yet, and no rent model has been "
                             "trained, so I can't say how rents there are moving.",
                             {"status": "insufficient_data", "city": city, "insights": []})
            if not known:
                return self.no_market(summary, city, country=self.entities.get("country"), market=market)
            text, trend = self.model_trend(market)
            result = {"status": "no_published_insights", "market": _market_dict(market), "insights": [], "model_trend": trend}
            return Reply(f"There are no published market insights for {market.name} yet. {text}".strip(), result,
                         model_version=self.rent().version if trend else None)
        shown = rows[:MAX_INSIGHTS]
        for row in shown:
            self.source({"type": "insight", "id": row.id})
        name = shown[0].city
        text = [f"Published insights for {name}, most relevant first:"]
        text += [f"{row.text} (confidence {row.confidence_score:.0%})" for row in shown[:QUOTED_INSIGHTS]]
        result = {"status": "ok", "market": _market_dict(market) if known else {"city": name, "country": shown[0].country},
                  "insights": [insight_dict(r) for r in shown], "insights_available": len(rows)}
        version = None
        if known and not any(r.kind == "rent_growth" for r in rows):
            extra, trend = self.model_trend(market)
            if trend:
                text.append(f"No rent-growth insight is published for {name}. {extra}")
                result["model_trend"], version = trend, self.rent().version
        return Reply("\n".join(text), result, confidence=shown[0].confidence_score, model_version=version)

    def model_trend(self, market: CityMarket) -> tuple[str, dict[str, Any] | None]:
        """What the rent model's fitted city trend says, labelled as indicative (no confidence score)."""
        if market.annual_trend is None:
            return "", None
        self.rent()  # records the model as a source
        trend = {"annual_change": round(market.annual_trend, 4),
                 "basis": "the rent model's fitted city trend of rent per m² over its training period; "
                          "not a published insight and without a confidence score"}
        text = (f"Indicatively, the rent model's fitted trend for {market.name} is {market.annual_trend:+.1%} a year in "
                f"rent per m² (from {market.rows:,} listings; not a published insight, so no confidence score).")
        return text, trend

    def country_trend(self, country: str, rows: list[Insight]) -> Reply:
        headline: dict[str, Insight] = {}
        for row in rank_insights([r for r in rows if r.kind == "rent_growth"], []):
            headline.setdefault(row.city or "", row)
        if not headline:
            summary = self.summary_if_trained()
            known = summary.in_country(country) if summary else []
            names = ", ".join(m.name for m in known)
            more = f" I do have listings for {names}: ask about one of those cities." if names else ""
            return Reply(f"There are no published rent-trend insights for {country} yet.{more}",
                         {"status": "insufficient_data", "country": country, "insights": [],
                          "known_markets": [m.name for m in known]})
        picked = sorted(headline.values(), key=lambda r: -(r.confidence_score or 0))[:MAX_INSIGHTS]
        for row in picked:
            self.source({"type": "insight", "id": row.id})
        text = [f"Published rent trends in {country}, by city:"]
        text += [f"{row.text} (confidence {row.confidence_score:.0%})" for row in picked]
        result = {"status": "ok", "country": country, "insights": [insight_dict(r) for r in picked]}
        return Reply("\n".join(text), result, confidence=picked[0].confidence_score)

    def compare(self) -> Reply:
        names = list(self.entities.get("cities") or ([self.entities["city"]] if self.entities.get("city") else []))
        summary = self.summary()
        if not names:
            return self.needs_city(summary)
        given = {k: self.entities.get(k) for k in ("property_type", "bedrooms", "bathrooms", "size_sqm", "furnished")}
        if given["bedrooms"] is None and given["property_type"] != "studio":
            given["bedrooms"] = DEFAULT_COMPARE_BEDROOMS
        if given["property_type"] is None and summary.property_types and "apartment" in summary.property_types:
            given["property_type"] = "apartment"
        entries, units = [], []
        for name in names:
            market = summary.match(name)
            if market is None or market.rows < THIN_MARKET_ROWS:
                entries.append(self._missing_entry(summary, name, market))
                continue
            unit = complete_unit(market, given, summary, today=self.today)
            problem = self.segment_problem(unit, summary)
            if problem is not None:
                entries.append({"city": name, "data_city": market.name, "status": "insufficient_data",
                                "reason": problem.result.get("reason")})
                continue
            units.append(unit)
            entries.append({"city": name, "data_city": market.name, "status": "ok", "country": market.country,
                            "currency": market.currency, "unit": unit.public(), "assumptions": unit.assumptions})
        estimates = estimate_units(self.rent(), units, self.context.settings.interval_level) if units else []
        by_city = {u.market.name: e for u, e in zip(units, estimates, strict=True)}
        self._attach_insights(entries, segments_of(given))
        for entry in entries:
            if entry["status"] == "ok":
                entry["market_rent"] = _estimate_dict(by_city[entry["data_city"]], entry["currency"])
        spec = describe_kind({k: v for k, v in given.items() if v is not None})
        result = {"status": "ok" if units else "insufficient_data", "segment": {k: v for k, v in given.items() if v is not None},
                  "defaults": {k: v for k, v in (("bedrooms", DEFAULT_COMPARE_BEDROOMS), ("property_type", "apartment"))
                               if self.entities.get(k) is None and given.get(k) == v},
                  "cities": entries, "same_currency": len({e.get("currency") for e in entries if e["status"] == "ok"}) <= 1}
        confidences = [e.confidence for e in estimates if e.confidence is not None]
        return self.reply([_compare_text(spec, entries, result["same_currency"])], result,
                          min(confidences) if confidences else None)

    def _missing_entry(self, summary: MarketSummary, name: str, market: CityMarket | None) -> dict[str, Any]:
        record = default_gazetteer().resolve(name)
        nearest = summary.nearest(record, exclude=market.name if market else None) if record else None
        return {"city": name, "status": "insufficient_data", "country": record.country if record else None,
                "listings": market.rows if market else 0,
                "nearest_market": _nearest_dict(nearest)}

    def _attach_insights(self, entries: list[dict[str, Any]], segments: Sequence[str]) -> None:
        insights = published_insights(self.context.session_factory)
        published = list(insights.countries)
        names = {e["city"]: match_data_city(e.get("data_city") or e["city"], published) for e in entries}
        rows = insights.of(n for n in names.values() if n)
        for entry in entries:
            mine = [r for r in rows if r.city == names[entry["city"]]]
            growth = rank_insights([r for r in mine if r.kind == "rent_growth"], segments)
            level = rank_insights([r for r in mine if r.kind == "rent_level" and r.metric == "median_rent"], segments)
            entry["growth"] = insight_dict(growth[0]) if growth else None
            entry["rent_level"] = insight_dict(level[0]) if level else None
            for row in (growth[:1] + level[:1]):
                self.source({"type": "insight", "id": row.id})

    def unsupported(self) -> Reply:
        summary = self.summary_if_trained()
        cities = [m.name for m in summary.largest(3)] if summary else ["Berlin", "Warsaw", "Austin"]
        a, b, c = (cities + cities * 3)[:3]
        examples = [
            ("rent_estimate", f"What is the rent for a 2-bedroom apartment in {a}?"),
            ("optimal_rent", f"What is the optimal rent for my 3-bedroom house in {b}?"),
            ("occupancy_forecast", f"Will my 1-bedroom flat in {c} let within 30 days at the market rent?"),
            ("market_trend", f"Are rents in {a} going up?"),
            ("compare_markets", f"Compare {a} and {b} rents."),
            ("rent_estimate", "Estimate the rent of prop_12345 (one of your properties)."),
        ]
        known = summary.known if summary else []
        text = ("I can answer questions about residential rents in the markets I have data for: rent estimates, the "
                "revenue-maximising rent, how fast a unit will let, market trends and comparisons of cities. For example: "
                + " ".join(f"“{q}”" for _, q in examples[:4]))
        if known:
            text += f" Markets with data: {', '.join(known)}."
        return Reply(text, {"status": "unsupported", "examples": [{"intent": i, "question": q} for i, q in examples],
                            "markets": known})

    # ----- replies without figures -------------------------------------------------------------------
    def needs_city(self, summary: MarketSummary | None, *, published: Sequence[str] = ()) -> Reply:
        country = self.entities.get("country")
        known = summary.in_country(country) if summary and country else []
        all_known = summary.known if summary else sorted(set(published))
        if country and known:
            text = f"Which city in {country}? I have data for {', '.join(m.name for m in known)}."
        elif country:
            text = f"I have no rental data for {country}." + (f" Markets I know: {', '.join(all_known)}." if all_known else "")
        else:
            text = "Which city do you mean?" + (f" I have data for {', '.join(all_known)}." if all_known else "")
        return Reply(text, {"status": "needs_city", "country": country, "known_markets": all_known,
                            "markets_in_country": [m.name for m in known]})

    def no_market(self, summary: MarketSummary, city: str, *, country: str | None, market: CityMarket | None) -> Reply:
        """Too little data for a city: say so, with the country and the nearest market that has data."""
        record = default_gazetteer().resolve(city, country)
        country_name = record.country if record else country
        nearest = summary.nearest(record, exclude=market.name if market else None) if record else None
        same_country = [m.name for m in summary.in_country(country_name) if market is None or m.name != market.name]
        where = f"{city} ({country_name})" if country_name else city
        if market is not None:
            text = [f"I have only {market.rows} listing{'s' if market.rows != 1 else ''} for {where}, too few for a figure I "
                    "would stand behind, so I won't guess."]
        else:
            text = [f"I don't have rental data for {where}, so I can't answer this without guessing."]
        if nearest is not None:
            near, km = nearest
            text.append(f"The nearest market I know is {near.name}{', ' + near.country if near.country else ''} "
                        f"(about {km:,.0f} km away).")
        if same_country:
            text.append(f"In {country_name} I have data for {', '.join(same_country)}.")
        known = summary.known
        if nearest is None and not same_country and known:
            text.append(f"Markets I know: {', '.join(known)}.")
        result = {"status": "insufficient_data", "city": city, "country": country_name,
                  "listings": market.rows if market else 0,
                  "reason": "too few listings" if market is not None else "no listings for this city",
                  "nearest_market": _nearest_dict(nearest), "markets_in_country": same_country, "known_markets": known}
        return Reply(" ".join(text), result)

    def reply(self, sentences: Sequence[str], result: dict[str, Any], confidence: float | None) -> Reply:
        notes = [n for n in self.notes if n]
        return Reply(" ".join([*notes, *[s for s in sentences if s]]), result, confidence, self.rent().version)


# --------------------------------------------------------------------------------------------------
# Small helpers: figures -> dicts and words
# --------------------------------------------------------------------------------------------------


def _not_found(property_id: str) -> Reply:
    # The same words whether the id does not exist or belongs to another account: nothing is revealed.
    return Reply(f"I could not find a property with the id {property_id} in your portfolio. Check the id, or ask "
                 "about a unit by city, size and bedrooms instead.", {"status": "not_found", "property_id": property_id})


def _fresh_prediction(prediction: PropertyPrediction | None, version: str, level: float | None) -> Estimate | None:
    """A stored prediction made by the current champion, as an `Estimate` (None when stale or empty)."""
    if prediction is None or prediction.model_version != version:
        return None
    payload = prediction.payload or {}
    values = [payload.get(k) for k in ("rent_estimate", "rent_low", "rent_high")]
    if any(not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
        return None
    confidence = payload.get("confidence_score")
    stored_level = payload.get("level", level)  # batch scoring uses the model's own level
    return Estimate(*map(float, values), float(confidence) if isinstance(confidence, (int, float)) else None,
                    float(stored_level) if isinstance(stored_level, (int, float)) else float("nan"))


def _estimate_dict(estimate: Estimate, currency: str | None) -> dict[str, Any]:
    return {"rent": round(estimate.rent, 2), "low": round(estimate.low, 2), "high": round(estimate.high, 2),
            "level": estimate.level, "currency": currency,
            "confidence_score": None if estimate.confidence is None else round(estimate.confidence, 4),
            "confidence_band": CONFIDENCE_BAND}


def _occupancy_dict(row: Mapping[str, Any], rent: float, currency: str | None) -> dict[str, Any]:
    occupancy = float(row["expected_occupancy"])
    return {"rent": round(rent, 2), "currency": currency,
            "let_probability_30d": _maybe(row.get("let_probability_30d")),
            "expected_occupancy": round(occupancy, 4),
            "expected_vacancy_days": _maybe(row.get("expected_vacancy_days"), 1),
            "yearly_revenue": round(rent * occupancy * 12, 2)}


def _market_dict(market: CityMarket) -> dict[str, Any]:
    return {"city": market.name, "country": market.country, "currency": market.currency,
            "listings": market.rows, "latest_listing": market.latest_listing}


def _nearest_dict(nearest: tuple[CityMarket, float] | None) -> dict[str, Any] | None:
    if nearest is None:
        return None
    market, km = nearest
    return {"city": market.name, "country": market.country, "currency": market.currency,
            "distance_km": round(km), "listings": market.rows}


def _compare_text(spec: str, entries: Sequence[dict[str, Any]], same_currency: bool) -> str:
    ok = [e for e in entries if e["status"] == "ok"]
    lines = [f"Side by side, {spec} (each city's typical size):" if ok else "I can't compare these markets:"]
    for entry in entries:
        if entry["status"] != "ok":
            near = entry.get("nearest_market")
            hint = f" (nearest market with data: {near['city']})" if near else ""
            lines.append(f"{entry['city']}: too little data{hint}.")
            continue
        rent = entry["market_rent"]
        line = (f"{entry['data_city']}: about {money(rent['rent'], rent['currency'])} a month "
                f"({money_range(rent['low'], rent['high'], rent['currency'])})")
        growth = entry.get("growth")
        if growth:
            line += f"; rents {growth['value']:+.1f}% {_horizon_words(growth['metric'])} (confidence {growth['confidence_score']:.0%})"
        lines.append(line + ".")
    if len(ok) >= 2 and same_currency:
        top, low = max(ok, key=lambda e: e["market_rent"]["rent"]), min(ok, key=lambda e: e["market_rent"]["rent"])
        lines.append(f"{top['data_city']} is {top['market_rent']['rent'] / low['market_rent']['rent'] - 1:.0%} dearer than {low['data_city']}.")
    elif len(ok) >= 2:
        currencies = sorted({e["currency"] for e in ok if e["currency"]})
        lines.append(f"Amounts are in each city's own currency ({', '.join(currencies)}) and are not converted "
                     "(no exchange rates offline); compare the growth rates rather than the amounts.")
    return " ".join(lines)


def _horizon_words(metric: str) -> str:
    return {"yoy": "year on year", "qoq": "quarter on quarter", "mom": "month on month"}.get(_horizon(metric), "")


def _occupancy_words(row: dict[str, Any], *, short: bool = False) -> str:
    let = row.get("let_probability_30d")
    occupancy = f"an expected occupancy of {row['expected_occupancy']:.0%} over a year"
    if let is None:
        return occupancy if short else f"has {occupancy}"
    vacancy = row.get("expected_vacancy_days")
    days = f" (about {vacancy:,.0f} vacant days per re-let)" if vacancy is not None and not short else ""
    if short:
        return f"{let:.0%} chance of letting within 30 days, {occupancy}"
    return f"has a {let:.0%} chance of letting within 30 days and {occupancy}{days}"


def _assumption_sentence(unit: Unit) -> str:
    shown = [(k, v) for k, v in unit.assumptions.items() if k not in ("listed_at", "latitude", "longitude", "asking_rent_currency")]
    if not shown:
        return ""
    words = {"size_sqm": lambda v: f"size {float(v):,.0f} m²", "bedrooms": lambda v: f"{v} bedroom{'s' if v != 1 else ''}",
             "rooms": lambda v: f"{float(v):g} room{'s' if float(v) != 1 else ''}", "district": lambda v: f"district {v}",
             "year_built": lambda v: f"built {v:.0f}", "property_type": lambda v: f"type {v}"}
    parts = [f"{words.get(k, lambda v, k=k: f'{k} {v}')(a['value'])} ({a['basis']})" for k, a in shown]
    return "Assumed: " + "; ".join(parts) + "."


def _confidence_words(confidence: float | None) -> str:
    if confidence is None:
        return ""
    return f"; {confidence:.0%} confidence that the true market rent is within ±{CONFIDENCE_BAND:.0%} of the estimate"


def _relative(ratio: float) -> str:
    if abs(ratio - 1) < 0.005:
        return "in line with"
    return f"{abs(ratio - 1):.0%} {'above' if ratio > 1 else 'below'}"


def _maybe(value: Any, digits: int = 4) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, digits) if math.isfinite(number) else None


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _same_country(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    gazetteer = default_gazetteer()
    return fold(a) == fold(b) or (gazetteer.country_code(a) or "?") == (gazetteer.country_code(b) or "!")


def country_of_city(city: str) -> str | None:
    """English country of a city name (through the gazetteer), or None."""
    record = default_gazetteer().resolve(city, fuzzy=False)
    return record.country if record else None


def money(amount: float, currency: str | None) -> str:
    """'1,450 EUR' (whole units; the currency named after the amount)."""
    amount = round(float(amount), 2)  # as stored in the result, so that text and numbers agree
    return f"{amount:,.0f} {currency}" if currency else f"{amount:,.0f}"


def money_range(low: float, high: float, currency: str | None) -> str:
    """'826–1,361 EUR'."""
    return f"{round(float(low), 2):,.0f}–{money(high, currency)}"


def signed_money(amount: float, currency: str | None) -> str:
    """'+310 EUR' / '−40 EUR'."""
    sign = "+" if amount >= 0 else "−"
    return f"{sign}{abs(amount):,.0f} {currency}" if currency else f"{sign}{abs(amount):,.0f}"


def plain(value: Any) -> Any:
    """`value` with only JSON types: numpy scalars unwrapped, NaN/inf/NA -> None, dates -> ISO strings."""
    kind = type(value)  # exact built-in types first: they are nearly all of an answer, and cheap to test
    if kind is str or kind is int or kind is bool:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:
        return {str(k): plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [plain(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, str):
        return value
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)

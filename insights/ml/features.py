"""From a canonical listing frame to the numeric matrix the rent model learns from.

What is built, and why:
- raw canonical and extra columns: numbers and booleans as floats, low-cardinality strings as LightGBM
  categoricals, high-cardinality strings (district, locality) target-encoded out of fold;
- derived features that trees cannot form on their own: size per room, floor ratio, distance to the
  city centre (the median position of the city's training listings);
- time: months since 2000-01 and month of year, from `listed_at`;
- a per-city log-rent trend (`CityTrend`): a linear level in time that the model's target is taken
  relative to, because trees are constant outside the training period and would predict a growing
  market at last year's level;
- optionally (`use_knn`; off by default, it did not help on the real data) a spatial neighbourhood:
  the mean log rent per m² (relative to the city trend) of the k nearest training listings in the
  same city, computed out of fold during training so a row never sees itself.
Ids (`listing_id`, `property_id`) are never features.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.neighbors import KDTree

from insights.errors import SchemaMismatch
from insights.ml.schema import check_frame

TARGET = "monthly_rent"
#: Columns that are never features: identities, the target, the unit of the target, lease bookkeeping.
NEVER_FEATURES: frozenset[str] = frozenset(
    {"listing_id", "property_id", "unit_id", "lease_id", TARGET, "currency", "start_date", "end_date"}
)
#: Strings with at most this many distinct values become LightGBM categoricals; more are target-encoded.
LOW_CARDINALITY = 32
#: Degrees to kilometres (north-south); east-west is scaled by cos(latitude) per city.
KM_PER_DEGREE = 111.2
#: 2000-01 is month 0 of the time feature: a fixed origin keeps features stable across retrainings.
TIME_ORIGIN_YEAR = 2000


def months_since_origin(values: pd.Series) -> np.ndarray:
    """Fractional months since 2000-01-01 (NaN where the date is missing)."""
    dates = pd.to_datetime(values, errors="coerce")
    months = (dates.dt.year - TIME_ORIGIN_YEAR) * 12 + (dates.dt.month - 1) + (dates.dt.day - 1) / 30.44
    return months.to_numpy(dtype=float, na_value=np.nan)


def as_float(values: pd.Series) -> np.ndarray:
    """A numeric or boolean column as float64, NaN for missing."""
    if ptypes.is_bool_dtype(values.dtype):
        values = values.astype("Float64")
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def city_codes(cities: pd.Series, known: pd.Index, unseen: int | None = None) -> np.ndarray:
    """Index of each row's value (as a string) in `known`; unseen or missing values get `unseen`
    (by default len(known): the global slot)."""
    codes = known.get_indexer(cities.astype("string")).astype(np.int64)
    codes[codes < 0] = len(known) if unseen is None else unseen
    return codes


class Rows:
    """Model input as a few rows of `column -> value` mappings instead of a frame.

    For one or a few units (a query's answer), pandas' per-column cost is most of a prediction's
    time (about 3 ms for one row of 20 columns); these rows give the same features with plain Python.
    Values are what a frame cell would hold: numbers, booleans, strings, timestamps, or None/NaN/NA
    for missing; an absent key is a missing value.
    """

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.rows = list(rows)
        self.columns = frozenset(key for row in self.rows for key in row)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def index(self) -> pd.RangeIndex:
        """Positions 0..n-1, like a frame's default index: results for rows are indexed so."""
        return pd.RangeIndex(len(self.rows))


Inputs = pd.DataFrame | Rows


def is_missing(value: Any) -> bool:
    """Whether a cell value is missing (None, NaN, pandas' NA or NaT)."""
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _number(column: str, value: Any) -> float:
    if is_missing(value):
        return math.nan
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        return float(value)
    raise SchemaMismatch(f"column {column!r} needs a number, got {value!r}", details={"mistyped": [column]})


def numbers(data: Inputs, column: str) -> np.ndarray:
    """A column as float64 (booleans as 0/1), NaN for missing or absent."""
    if isinstance(data, Rows):
        return np.array([_number(column, row.get(column)) for row in data.rows], dtype=float)
    return as_float(data[column]) if column in data.columns else np.full(len(data), np.nan)


def texts(data: Inputs, column: str) -> list[str | None]:
    """A column as strings (None for missing), as `astype("string")` renders each value."""
    if isinstance(data, Rows):
        return [None if is_missing(v := row.get(column)) else str(v) for row in data.rows]
    return [None if v is pd.NA else v for v in data[column].astype("string").tolist()]


def strings(data: Inputs, column: str, missing: str = "") -> np.ndarray:
    """A column as an object array of strings (as `texts`), `missing` where a value is missing."""
    if isinstance(data, Rows):
        return np.array([missing if v is None else v for v in texts(data, column)], dtype=object)
    return data[column].astype("string").fillna(missing).to_numpy(dtype=object)


def codes_in(data: Inputs, column: str, known: pd.Index, *, unseen: int) -> np.ndarray:
    """Position of each row's value (as a string) in `known`; `unseen` for missing or unknown values."""
    if isinstance(data, Rows):
        positions = _positions(known)
        return np.array([unseen if v is None else positions.get(v, unseen) for v in texts(data, column)], dtype=np.int64)
    return city_codes(data[column], known, unseen)


_position_maps: dict[int, tuple[pd.Index, dict[str, int]]] = {}


def _positions(known: pd.Index) -> dict[str, int]:
    """`{value: position}` of an index, built once per index object (kept while the index lives)."""
    found = _position_maps.get(id(known))
    if found is None or found[0] is not known:
        if len(_position_maps) >= 4096:
            _position_maps.clear()
        found = (known, {str(v): i for i, v in enumerate(known)})
        _position_maps[id(known)] = found
    return found[1]


def months(data: Inputs, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(fractional months since 2000-01-01, month of year) of a date column; NaN where missing."""
    if not isinstance(data, Rows):
        dates = pd.to_datetime(data[column], errors="coerce")
        return months_since_origin(dates), dates.dt.month.to_numpy(dtype=float, na_value=np.nan)
    since, month = np.full(len(data), np.nan), np.full(len(data), np.nan)
    for i, row in enumerate(data.rows):
        value = row.get(column)
        stamp = pd.NaT if is_missing(value) else pd.to_datetime(value, errors="coerce")
        if stamp is not pd.NaT:
            since[i] = (stamp.year - TIME_ORIGIN_YEAR) * 12 + (stamp.month - 1) + (stamp.day - 1) / 30.44
            month[i] = stamp.month
    return since, month


def _kind_of(column: str, values: pd.Series) -> str | None:
    """The schema kind of an input column ('float', 'bool', 'str', 'datetime'), or None if unusable."""
    if ptypes.is_bool_dtype(values.dtype):
        return "bool"
    if ptypes.is_numeric_dtype(values.dtype):
        return "float"
    if ptypes.is_datetime64_any_dtype(values.dtype):
        return "datetime"
    if ptypes.is_string_dtype(values.dtype) or ptypes.is_object_dtype(values.dtype) or isinstance(values.dtype, pd.CategoricalDtype):
        return "str"
    return None


def check_schema(frame: pd.DataFrame, schema: dict[str, str]) -> None:
    """Raise SchemaMismatch naming every missing or mistyped column of `frame` against `schema`."""
    check_frame(frame, schema, model="the rent model")


@dataclass
class CityTrend:
    """Per-city linear trend of log rent in time: offset(city, t) = level_c + slope_c * (t - mean_t_c).

    The slope is fitted on log rent per m² (when sizes are known) so that a change in the mix of
    listed flats is not mistaken for a price trend, and shrunk towards the pooled within-city slope
    in proportion to how much time spread a city has (`shrink`, in months² times rows).
    """

    shrink: float = 2000.0
    cities: pd.Index = field(default_factory=lambda: pd.Index([], dtype="string"))
    level: np.ndarray = field(default_factory=lambda: np.zeros(1))
    slope: np.ndarray = field(default_factory=lambda: np.zeros(1))
    mean_t: np.ndarray = field(default_factory=lambda: np.zeros(1))

    def fit(self, city: pd.Series, t: np.ndarray, log_rent: np.ndarray, log_unit: np.ndarray) -> CityTrend:
        """Fit levels and slopes from training rows (t may be all NaN: then there is no trend)."""
        self.cities = pd.Index(pd.unique(city.astype("string").dropna()), dtype="string")
        codes = city_codes(city, self.cities)
        k = len(self.cities)
        per_m2 = log_rent - np.nan_to_num(log_unit)
        has_t = np.isfinite(t)
        level, slope, mean_t = np.zeros(k + 1), np.zeros(k + 1), np.zeros(k + 1)
        sxy, sxx = np.zeros(k + 1), np.zeros(k + 1)
        for c in range(k + 1):
            rows = codes == c if c < k else np.ones(len(codes), bool)
            level[c] = log_rent[rows].mean() if rows.any() else log_rent.mean()
            timed = rows & has_t
            if timed.sum() >= 2:
                mean_t[c] = t[timed].mean()
                dt = t[timed] - mean_t[c]
                sxx[c] = np.sum(dt**2)
                sxy[c] = np.sum(dt * (per_m2[timed] - per_m2[timed].mean()))
        # The pooled within-city slope: sums of city-demeaned products (not the global slot's).
        pooled = sxy[:k].sum() / sxx[:k].sum() if sxx[:k].sum() > 0 else 0.0
        for c in range(k):
            raw = sxy[c] / sxx[c] if sxx[c] > 0 else 0.0
            weight = sxx[c] / (sxx[c] + self.shrink)
            slope[c] = weight * raw + (1 - weight) * pooled
        slope[k] = pooled
        self.level, self.slope, self.mean_t = level, slope, mean_t
        return self

    def offset(self, city: pd.Series, t: np.ndarray) -> np.ndarray:
        """The trend's log rent for each row (the city's mean level where the date is missing)."""
        return self.at(city_codes(city, self.cities), t)

    def at(self, codes: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The trend's log rent at city positions `codes` in `cities` (len(cities): unseen) and times `t`."""
        dt = np.where(np.isfinite(t), t - self.mean_t[codes], 0.0)
        return self.level[codes] + self.slope[codes] * dt


@dataclass
class NeighbourhoodIndex:
    """Per-city k-d trees of training positions (km) with each listing's relative log rent per m²."""

    k: int = 10
    trees: dict[str, KDTree] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    cos_lat: dict[str, float] = field(default_factory=dict)

    def fit(self, city: np.ndarray, lat: np.ndarray, lon: np.ndarray, value: np.ndarray, cos_lat: dict[str, float]) -> NeighbourhoodIndex:
        """Index the rows with a position and a finite value."""
        ok = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(value)
        self.cos_lat = cos_lat
        for name in pd.unique(city[ok]):
            rows = ok & (city == name)
            if rows.sum() >= self.k:
                self.trees[name] = KDTree(self._xy(name, lat[rows], lon[rows]), leaf_size=20)
                self.values[name] = value[rows]
        return self

    def _xy(self, name: str, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        return np.column_stack([lat * KM_PER_DEGREE, lon * KM_PER_DEGREE * self.cos_lat.get(name, 1.0)])

    def query(self, city: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Columns: mean neighbour value, log10 distance (km) to the k-th neighbour; NaN where unknown."""
        out = np.full((len(city), 2), np.nan)
        located = np.isfinite(lat) & np.isfinite(lon)
        for name, tree in self.trees.items():
            rows = np.flatnonzero(located & (city == name))
            if len(rows) == 0:
                continue
            distance, index = _query_sorted(tree, self._xy(name, lat[rows], lon[rows]), self.k)
            out[rows, 0] = self.values[name][index].mean(axis=1)
            out[rows, 1] = np.log10(distance[:, -1] + 0.01)
        return out


def _query_sorted(tree: KDTree, xy: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`tree.query(xy, k)`, faster: queries in spatial order (cache-friendly, ~1.7x) and, for big
    batches, in two threads (the k-d tree search releases the GIL for part of its work)."""
    order = np.lexsort((xy[:, 1], np.floor(xy[:, 0])))  # 1 km bands, then east-west
    chunks = np.array_split(order, 2) if len(order) > 20_000 else [order]
    with ThreadPoolExecutor(len(chunks)) as pool:
        results = list(pool.map(lambda rows: tree.query(xy[rows], k=k), chunks))
    distance, index = np.empty((len(xy), k)), np.empty((len(xy), k), dtype=np.int64)
    for rows, (d, i) in zip(chunks, results, strict=True):
        distance[rows], index[rows] = d, i
    return distance, index


@dataclass
class TargetEncoder:
    """Smoothed mean of a relative target per category: (sum + m * prior) / (count + m)."""

    smoothing: float = 20.0
    categories: pd.Index = field(default_factory=lambda: pd.Index([], dtype="string"))
    encoded: np.ndarray = field(default_factory=lambda: np.zeros(1))

    def fit(self, values: pd.Series, target: np.ndarray) -> TargetEncoder:
        """Learn the per-category smoothed means from rows with a finite target."""
        ok = np.isfinite(target)
        strings = values.astype("string")[ok]
        prior = float(target[ok].mean()) if ok.any() else 0.0
        stats = pd.DataFrame({"key": strings.to_numpy(), "y": target[ok]}).dropna().groupby("key")["y"].agg(["sum", "count"])
        self.categories = pd.Index(stats.index.astype("string"), dtype="string")
        means = (stats["sum"].to_numpy() + self.smoothing * prior) / (stats["count"].to_numpy() + self.smoothing)
        self.encoded = np.append(means, prior)  # last slot: unseen or missing category -> prior
        return self

    def transform(self, values: pd.Series) -> np.ndarray:
        """The encoding of each row's category."""
        return self.encoded[city_codes(values, self.categories)]

    def encode(self, data: Inputs, column: str) -> np.ndarray:
        """The encoding of each row's value of `column` (a frame's or rows')."""
        return self.encoded[codes_in(data, column, self.categories, unseen=len(self.categories))]


@dataclass
class FeatureBuilder:
    """Learns which columns to use and how, then turns frames into float32 matrices for LightGBM."""

    knn_k: int = 10
    use_knn: bool = False
    use_target_encoding: bool = True
    use_trend: bool = True
    low_cardinality: int = LOW_CARDINALITY
    schema: dict[str, str] = field(default_factory=dict)
    numeric: list[str] = field(default_factory=list)
    low_card: dict[str, pd.Index] = field(default_factory=dict)
    high_card: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    categorical: list[int] = field(default_factory=list)
    trend: CityTrend = field(default_factory=CityTrend)
    centres: dict[str, tuple[float, float]] = field(default_factory=dict)
    encoders: dict[str, TargetEncoder] = field(default_factory=dict)
    neighbourhood: NeighbourhoodIndex | None = None
    has_time: bool = False
    has_position: bool = False
    has_size: bool = False

    # ----- fitting -----------------------------------------------------------------------------
    def _choose_columns(self, frame: pd.DataFrame) -> None:
        """Decide each input column's role from its dtype and cardinality; remember the input schema."""
        n = len(frame)
        self.schema = {"city": "str"}
        for column in frame.columns:
            if column in NEVER_FEATURES or column == "city":
                continue
            values = frame[column]
            kind = _kind_of(column, values)
            distinct = values.nunique(dropna=True)
            if kind is None or distinct == 0:
                continue
            if column == "listed_at" and kind == "datetime":
                self.schema[column] = kind
                continue
            if kind == "datetime" or distinct < 2:
                continue  # other dates are bookkeeping; constant columns carry nothing
            if kind == "str":
                if distinct > max(0.5 * n, 1000):
                    continue  # free text or an id in disguise: no signal that generalises
                if distinct <= self.low_cardinality or not self.use_target_encoding:
                    self.low_card[column] = pd.Index(sorted(values.dropna().astype("string").unique()), dtype="string")
                else:
                    self.high_card.append(column)
            else:
                self.numeric.append(column)
            self.schema[column] = kind
        if frame["city"].nunique(dropna=True) > 1:
            self.low_card["city"] = pd.Index(sorted(frame["city"].dropna().astype("string").unique()), dtype="string")
        self.has_time = "listed_at" in self.schema and frame["listed_at"].notna().any()
        self.has_size = "size_sqm" in self.numeric
        self.has_position = "latitude" in self.numeric and "longitude" in self.numeric and frame["latitude"].notna().mean() > 0.5

    def log_unit(self, frame: pd.DataFrame) -> np.ndarray:
        """Log size where the model measures rent per m², else zeros (rent per listing)."""
        if not self.has_size:
            return np.zeros(len(frame))
        size = as_float(frame["size_sqm"])
        return np.log(np.where(size > 0, size, np.nan))

    def time(self, data: Inputs) -> np.ndarray:
        """Months since the origin, NaN when the model has no time or the row no date."""
        return self._dates(data)[0]

    def _dates(self, data: Inputs) -> tuple[np.ndarray, np.ndarray]:
        """(months since the origin, month of year), NaN when the model has no time or the row no date."""
        if not self.has_time or "listed_at" not in data.columns:
            return np.full(len(data), np.nan), np.full(len(data), np.nan)
        return months(data, "listed_at")

    def fit_transform(self, frame: pd.DataFrame, log_rent: np.ndarray, folds: np.ndarray) -> np.ndarray:
        """Fit on a training frame; out-of-fold encodings for its own rows (folds from group_folds)."""
        self._choose_columns(frame)
        t, month = self._dates(frame)
        unit = self.log_unit(frame)
        # Without the trend (use_trend=False, for measurement) only the city levels remain.
        self.trend = CityTrend().fit(frame["city"], t if self.use_trend else np.full(len(frame), np.nan), log_rent, unit)
        relative = log_rent - self.trend.offset(frame["city"], t) - unit  # log rent per m² vs the city trend
        if self.has_position:
            lat, lon = as_float(frame["latitude"]), as_float(frame["longitude"])
            cities = frame["city"].astype("string").fillna("").to_numpy()
            for name in pd.unique(cities):
                rows = (cities == name) & np.isfinite(lat) & np.isfinite(lon)
                if rows.any():
                    self.centres[name] = (float(np.median(lat[rows])), float(np.median(lon[rows])))
        base = self._base(frame, t, month)
        oof = self._oof_blocks(frame, relative, folds)
        if self.has_position and self.use_knn:
            self.neighbourhood = self._neighbourhood(frame, relative, np.ones(len(frame), bool))
        for column in self.high_card:
            self.encoders[column] = TargetEncoder().fit(frame[column], relative)
        self._name_columns()
        return np.hstack([base, oof]).astype(np.float32)

    def _oof_blocks(self, frame: pd.DataFrame, relative: np.ndarray, folds: np.ndarray) -> np.ndarray:
        """Target encodings and neighbourhood features of training rows, each from the other folds only."""
        width = len(self.high_card) + (2 if self.has_position and self.use_knn else 0)
        out = np.full((len(frame), width), np.nan)
        for fold in np.unique(folds):
            held, kept = folds == fold, folds != fold
            for j, column in enumerate(self.high_card):
                encoder = TargetEncoder().fit(frame[column][kept], relative[kept])
                out[held, j] = encoder.transform(frame[column][held])
            if self.has_position and self.use_knn:
                index = self._neighbourhood(frame, relative, kept)
                out[held, len(self.high_card):] = self._query(index, frame[held])
        return out

    def _cos_lat(self) -> dict[str, float]:
        return {name: float(np.cos(np.radians(lat))) for name, (lat, _) in self.centres.items()}

    def _neighbourhood(self, frame: pd.DataFrame, relative: np.ndarray, rows: np.ndarray) -> NeighbourhoodIndex:
        part = frame[rows]
        cities = part["city"].astype("string").fillna("").to_numpy()
        return NeighbourhoodIndex(k=self.knn_k).fit(
            cities, as_float(part["latitude"]), as_float(part["longitude"]), relative[rows], self._cos_lat()
        )

    @staticmethod
    def _query(index: NeighbourhoodIndex, data: Inputs) -> np.ndarray:
        return index.query(strings(data, "city"), numbers(data, "latitude"), numbers(data, "longitude"))

    def _name_columns(self) -> None:
        names = list(self.numeric) + list(self.low_card)
        names += [n for n, ok in (("size_per_room", self.has_size), ("floor_ratio", True), ("centre_distance_km", self.has_position)) if ok]
        if self.has_time:
            names += ["months_since_2000", "month_of_year"]
        names += [f"{column}_encoded" for column in self.high_card]
        if self.has_position and self.use_knn:
            names += ["neighbourhood_rent_per_sqm", "neighbourhood_distance"]
        self.names = names
        self.categorical = [names.index(column) for column in self.low_card]

    # ----- transforming ------------------------------------------------------------------------
    def _base(self, data: Inputs, t: np.ndarray, month: np.ndarray) -> np.ndarray:
        """Numeric, categorical, derived and time columns (everything that needs no training target)."""
        columns = [numbers(data, column) for column in self.numeric]
        for column, categories in self.low_card.items():
            codes = codes_in(data, column, categories, unseen=-1).astype(float)
            columns.append(np.where(codes < 0, np.nan, codes))
        if self.has_size:
            rooms = numbers(data, "rooms")
            rooms = np.where(np.isfinite(rooms), rooms, numbers(data, "bedrooms") + 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                columns.append(np.where(rooms > 0, numbers(data, "size_sqm") / rooms, np.nan))
        with np.errstate(divide="ignore", invalid="ignore"):
            total = numbers(data, "total_floors")
            columns.append(np.where(total > 0, numbers(data, "floor") / total, np.nan))
        if self.has_position:
            columns.append(self._centre_distance(data))
        if self.has_time:
            columns += [t, month]
        return np.column_stack(columns) if columns else np.empty((len(data), 0))

    @cached_property
    def _centre_table(self) -> tuple[pd.Index, np.ndarray]:
        """Cities with a centre, and their (lat, lon) rows plus a NaN row for any other city."""
        return pd.Index(list(self.centres), dtype="string"), np.array(list(self.centres.values()) + [(np.nan, np.nan)])

    def _centre_distance(self, data: Inputs) -> np.ndarray:
        known, centres = self._centre_table
        centre = centres[codes_in(data, "city", known, unseen=len(known))]
        lat, lon = numbers(data, "latitude"), numbers(data, "longitude")
        dy = (lat - centre[:, 0]) * KM_PER_DEGREE
        dx = (lon - centre[:, 1]) * KM_PER_DEGREE * np.cos(np.radians(centre[:, 0]))
        return np.hypot(dx, dy)

    def transform(self, data: Inputs) -> np.ndarray:
        """The feature matrix of new rows, from a frame or `Rows` (encodings and neighbourhoods from
        all training rows)."""
        blocks = [self._base(data, *self._dates(data))]
        blocks += [self.encoders[column].encode(data, column)[:, None] for column in self.high_card]
        if self.neighbourhood is not None:
            blocks.append(self._query(self.neighbourhood, data))
        return np.hstack(blocks).astype(np.float32)

    def offset(self, data: Inputs) -> np.ndarray:
        """The city trend's log rent for each row: the model predicts log rent relative to this."""
        cities = codes_in(data, "city", self.trend.cities, unseen=len(self.trend.cities))
        return self.trend.at(cities, self.time(data))

"""Comparable listings: the k most similar training listings in the same city.

Similarity is Euclidean distance in a per-city standardised space of size, rooms, bedrooms,
bathrooms, year built, floor and position (km east/north of the city's centre), so one standard
deviation of size counts as much as one of position. Missing values sit at the city mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from insights.ml.features import KM_PER_DEGREE, Inputs, as_float, numbers, strings

SIMILARITY_FEATURES: tuple[str, ...] = ("size_sqm", "rooms", "bedrooms", "bathrooms", "year_built", "floor", "latitude", "longitude")
#: What a comparable shows; kept as a compact copy of the training rows (the positions also let answers
#: place a typical unit in a district: `insights.query.answer`).
SHOWN: tuple[str, ...] = ("listing_id", "property_id", "city", "district", "latitude", "longitude", "monthly_rent", "size_sqm", "bedrooms", "rooms", "listed_at")
#: At most this many training rows are kept for comparables (the most recent ones): bounds the artifact.
MAX_ROWS = 300_000


@dataclass
class _CityIndex:
    mean: np.ndarray
    scale: np.ndarray
    neighbours: NearestNeighbors
    rows: np.ndarray  # positions in ComparablesIndex.table


@dataclass
class ComparablesIndex:
    """Per-city nearest-neighbour indexes over a compact copy of the training listings."""

    features: list[str] = field(default_factory=list)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    cities: dict[str, _CityIndex] = field(default_factory=dict)

    cos_lat: float = 1.0

    def _matrix(self, frame: Inputs) -> np.ndarray:
        """Similarity features as floats; positions in km so east-west and north-south compare."""
        columns = []
        for column in self.features:
            values = numbers(frame, column)
            if column == "latitude":
                values = values * KM_PER_DEGREE
            elif column == "longitude":
                values = values * KM_PER_DEGREE * self.cos_lat
            columns.append(values)
        return np.column_stack(columns) if columns else np.zeros((len(frame), 0))

    def _scale(self, part: np.ndarray) -> np.ndarray:
        """Per-feature standard deviations, with one common scale for the two position axes."""
        scale = np.nanstd(part, axis=0) if len(part) else np.ones(part.shape[1])
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        position = [i for i, c in enumerate(self.features) if c in ("latitude", "longitude")]
        if len(position) == 2:
            scale[position] = scale[position].max()
        return scale

    def fit(self, frame: pd.DataFrame, *, max_rows: int = MAX_ROWS, seed: int = 0) -> ComparablesIndex:
        """Keep a compact copy of (at most `max_rows`, most recent) training rows and index them per city."""
        if len(frame) > max_rows:
            order = frame["listed_at"].rank(method="first", ascending=False) if "listed_at" in frame else None
            keep = (order <= max_rows).to_numpy() if order is not None else np.isin(np.arange(len(frame)), np.random.default_rng(seed).choice(len(frame), max_rows, replace=False))
            frame = frame[keep]
        self.features = [c for c in SIMILARITY_FEATURES if c in frame.columns and frame[c].notna().any()]
        self.table = frame[[c for c in SHOWN if c in frame.columns]].reset_index(drop=True)
        if "latitude" in self.features:
            self.cos_lat = float(np.cos(np.radians(np.nanmedian(as_float(frame["latitude"])))))
        matrix = self._matrix(frame)
        cities = frame["city"].astype("string").fillna("").to_numpy()
        for name in pd.unique(cities):
            rows = np.flatnonzero(cities == name)
            part = matrix[rows]
            mean = np.nan_to_num(np.nanmean(part, axis=0))
            scale = self._scale(part)
            standard = np.nan_to_num((part - mean) / scale)
            self.cities[str(name)] = _CityIndex(mean, scale, NearestNeighbors().fit(standard), rows)
        return self

    def neighbours(self, frame: Inputs, k: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The k most similar training rows of the same city for each query row (a frame or `Rows`):
        arrays of query row (position), `table` row and distance, in (query row, rank) order.

        Cities without training rows yield nothing.
        """
        matrix = self._matrix(frame) if len(frame) else np.zeros((0, len(self.features)))
        cities = strings(frame, "city")
        queries, found_rows, distances = [], [], []
        for name in pd.unique(cities):
            index = self.cities.get(str(name))
            if index is None:
                continue
            rows = np.flatnonzero(cities == name)
            standard = np.nan_to_num((matrix[rows] - index.mean) / index.scale)
            kk = min(k, len(index.rows))
            distance, found = index.neighbours.kneighbors(standard, n_neighbors=kk)
            queries.append(np.repeat(rows, kk))
            found_rows.append(index.rows[found.ravel()])
            distances.append(distance.ravel())
        if not queries:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
        query_rows = np.concatenate(queries)
        order = np.argsort(query_rows, kind="stable")  # each city's block is already in rank order
        return query_rows[order], np.concatenate(found_rows)[order], np.concatenate(distances)[order]

    def query(self, frame: Inputs, k: int = 5) -> pd.DataFrame:
        """Long frame: one row per (query row, rank) with the comparable's shown columns and distance.

        `query_row` is the query's position in `frame` (a frame or `Rows`); cities without training
        rows yield nothing.
        """
        query_rows, rows, distance = self.neighbours(frame, k)
        if not len(rows):
            return pd.DataFrame(columns=["query_row", "rank", *self.table.columns, "distance"])
        starts = np.flatnonzero(np.r_[True, query_rows[1:] != query_rows[:-1]])  # where each query row's block starts
        rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)])) + 1  # 1.. within a block
        picked = self.table.iloc[rows].reset_index(drop=True)
        picked.insert(0, "rank", rank)
        picked.insert(0, "query_row", query_rows)
        picked["distance"] = distance
        return picked

"""Hedonic time-dummy rent index with a fast cluster bootstrap.

Per market, `log(rent) = delta[period] + features @ beta + error` is fitted by (ridge-stabilised) least
squares. `exp(delta[t] - delta[s]) - 1` is the growth from period `s` to `t` *at constant quality*: a
month in which only large flats are listed raises the raw median, not `delta`, because size is a
feature. The index needs no repeat listings; where listings recur (the same `listing_id` in several
monthly snapshots), their observations are correlated, so the bootstrap resamples whole clusters
(listings or properties), never single rows.

The bootstrap is exact (every replicate refits `beta` and `delta`) and vectorised: sufficient
statistics are summed per cluster once, each replicate is a weighted sum of them (Poisson(1) cluster
weights), and the per-replicate normal equations are solved in a batch through the Schur complement of
the period block, so the cost is `B x (clusters x k^2 + cluster-periods x k)` flops, not `B` refits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

#: Numeric property features used as hedonic controls. Size and location come first in
#: `hedonic_features` because they explain most of rent: when a market is thin, only the first few
#: columns are kept, so the regression never has more parameters than the data can carry.
NUMERIC_FEATURES: tuple[str, ...] = (
    "size_sqm",
    "year_built",
    "bedrooms",
    "rooms",
    "bathrooms",
    "floor",
    "total_floors",
)
BOOL_FEATURES: tuple[str, ...] = ("furnished", "parking", "balcony", "elevator", "pets_allowed")
CATEGORICAL_FEATURES: tuple[str, ...] = ("property_type", "district")
#: Construction-era boundaries: new builds carry a premium that a linear year term misses, and a
#: market whose new listings are increasingly new builds would otherwise show spurious growth.
ERA_BREAKS: tuple[int, ...] = (1945, 1980, 2000, 2010, 2015, 2020)

#: Observations per hedonic parameter a market needs before one more feature is added.
OBS_PER_FEATURE = 10
#: Most levels of one categorical feature kept as dummies (the rest share the base level).
MAX_LEVELS = 8
#: Ridge penalty per observation on the (standardised) features: tiny, it only keeps collinear or
#: near-constant features from making the normal equations singular.
RIDGE_PER_OBS = 1e-6
#: Bootstrap replicates solved at once (bounds the memory of the batched solve).
BATCH = 100


@dataclass(frozen=True)
class IndexFit:
    """A fitted log-rent index of one market over consecutive periods.

    `log_index[t]` is the constant-quality log rent level of `periods[t]` (the first period is 0);
    `boot` holds the bootstrap replicates of the same (NaN where a replicate drew no cluster of a
    period). `units[t]` counts distinct clusters (listings or properties) observed in period `t`.
    """

    periods: pd.PeriodIndex
    log_index: np.ndarray
    boot: np.ndarray
    units: np.ndarray
    n_features: int

    def position(self, period: pd.Period) -> int | None:
        """Index of `period` in `periods`, or None when the market was not observed then."""
        hits = np.flatnonzero(self.periods == period)
        return int(hits[0]) if hits.size else None

    def log_growth(self, start: pd.Period, end: pd.Period) -> tuple[float, np.ndarray] | None:
        """Point estimate and bootstrap replicates (NaN-free) of `log_index[end] - log_index[start]`."""
        i, j = self.position(start), self.position(end)
        if i is None or j is None:
            return None
        draws = self.boot[:, j] - self.boot[:, i]
        return float(self.log_index[j] - self.log_index[i]), draws[np.isfinite(draws)]


def hedonic_features(frame: pd.DataFrame, *, max_features: int | None = None) -> np.ndarray:
    """Standardised hedonic design matrix (no intercept) from the canonical property columns.

    Size enters as a log (rent scales roughly with a power of size); missing numeric values are set to
    the median with a missing-indicator column; location, when there is no district, enters as a
    quadratic surface in latitude/longitude, which captures a centre premium. Constant columns are
    dropped. At most `max_features` columns are kept, in priority order.
    """
    columns: list[np.ndarray] = _numeric(frame, "size_sqm")
    columns += _categorical(frame, "property_type")
    if "district" in frame and frame["district"].notna().any():
        columns += _categorical(frame, "district")
    else:
        columns += _location(frame)
    columns += _numeric(frame, "year_built") + _eras(frame)
    for name in NUMERIC_FEATURES[2:]:
        columns += _numeric(frame, name)
    for name in BOOL_FEATURES:
        columns += _boolean(frame, name)
    kept = [column for column in columns if np.nanstd(column) > 1e-9]
    if max_features is not None:
        kept = kept[:max_features]
    if not kept:
        return np.zeros((len(frame), 0))
    matrix = np.column_stack(kept)
    return (matrix - matrix.mean(axis=0)) / matrix.std(axis=0)


def _numeric(frame: pd.DataFrame, name: str) -> list[np.ndarray]:
    if name not in frame:
        return []
    values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
    if name == "size_sqm":
        values = np.log(np.where(values > 0, values, np.nan))
    missing = ~np.isfinite(values)
    if missing.mean() > 0.5:
        return []
    if not missing.any():
        return [values]
    filled = np.where(missing, np.nanmedian(values), values)
    return [filled, missing.astype(float)]


def _eras(frame: pd.DataFrame) -> list[np.ndarray]:
    if "year_built" not in frame:
        return []
    year = pd.to_numeric(frame["year_built"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(year).mean() > 0.5:
        return []
    return [(year >= cut).astype(float) for cut in ERA_BREAKS]


def _boolean(frame: pd.DataFrame, name: str) -> list[np.ndarray]:
    if name not in frame:
        return []
    values = bool_values(frame[name])
    if np.isnan(values).mean() > 0.5:
        return []
    return [np.where(np.isnan(values), np.nanmean(values), values)]


_TRUE = ("1", "1.0", "true", "t", "yes", "y")


def bool_values(column: pd.Series) -> np.ndarray:
    """A yes/no column as floats 1/0, NaN where missing ('yes'/'no', 't'/'f', True/False, 1/0)."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return pd.to_numeric(column, errors="coerce").astype("float64").to_numpy()
    text = column.astype("string").str.strip().str.lower()
    return np.where(text.isna().to_numpy(), np.nan, text.isin(_TRUE).to_numpy(dtype=float))


def _categorical(frame: pd.DataFrame, name: str) -> list[np.ndarray]:
    if name not in frame:
        return []
    codes, uniques = pd.factorize(frame[name])  # missing values get code -1, a level of their own
    counts = np.bincount(codes + 1, minlength=len(uniques) + 1)
    levels = np.argsort(-counts, kind="stable")[1 : MAX_LEVELS + 1] - 1  # the most frequent level is the base
    return [(codes == level).astype(float) for level in levels if counts[level + 1] > 0]


def _location(frame: pd.DataFrame) -> list[np.ndarray]:
    if "latitude" not in frame or "longitude" not in frame:
        return []
    lat = pd.to_numeric(frame["latitude"], errors="coerce").to_numpy(dtype=float)
    lon = pd.to_numeric(frame["longitude"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(lat).mean() > 0.5 or np.isnan(lon).mean() > 0.5:
        return []
    lat = np.where(np.isnan(lat), np.nanmedian(lat), lat) - np.nanmedian(lat)
    lon = np.where(np.isnan(lon), np.nanmedian(lon), lon) - np.nanmedian(lon)
    return [lat, lon, lat * lat, lon * lon, lat * lon]


def fit_index(
    log_rent: np.ndarray,
    period_codes: np.ndarray,
    features: np.ndarray,
    clusters: np.ndarray,
    *,
    periods: pd.PeriodIndex,
    n_boot: int = 200,
    seed: int = 0,
) -> IndexFit:
    """Fit the time-dummy index and `n_boot` cluster-bootstrap replicates of it.

    `period_codes[i]` indexes `periods` (every period must be observed at least once); `clusters[i]`
    is any integer label of the listing or property row `i` belongs to.
    """
    n_periods = len(periods)
    cluster_codes, cluster_labels = pd.factorize(pd.Series(clusters), sort=False)
    stats = _cluster_stats(log_rent, period_codes, features, cluster_codes, n_periods, len(cluster_labels))
    ridge = RIDGE_PER_OBS * len(log_rent)
    point = _solve(_weighted(stats, np.ones((1, len(cluster_labels)))), n_periods, ridge)[0]
    rng = np.random.default_rng(seed)
    replicates = [
        _solve(_weighted(stats, rng.poisson(1.0, size=(min(BATCH, n_boot - start), len(cluster_labels)))), n_periods, ridge)
        for start in range(0, n_boot, BATCH)
    ]
    boot = np.vstack(replicates) if replicates else np.empty((0, n_periods))
    units = np.asarray(
        pd.DataFrame({"p": period_codes, "c": cluster_codes}).drop_duplicates().groupby("p").size().reindex(range(n_periods), fill_value=0)
    )
    return IndexFit(
        periods=periods,
        log_index=point - point[0],
        boot=boot - boot[:, :1],
        units=units,
        n_features=features.shape[1],
    )


@dataclass(frozen=True)
class _Stats:
    """Per-cluster sufficient statistics of the weighted normal equations."""

    counts: sparse.csr_matrix  # clusters x periods: observations
    sum_y: sparse.csr_matrix  # clusters x periods: sum of log rent
    sum_x: sparse.csr_matrix  # clusters x (periods * k): per-period feature sums
    xx: np.ndarray  # clusters x k*k
    xy: np.ndarray  # clusters x k


def _cluster_stats(y: np.ndarray, t: np.ndarray, x: np.ndarray, c: np.ndarray, n_periods: int, n_clusters: int) -> _Stats:
    k = x.shape[1]
    ones = np.ones_like(y)
    shape = (n_clusters, n_periods)
    counts = sparse.csr_matrix((ones, (c, t)), shape=shape)
    sum_y = sparse.csr_matrix((y, (c, t)), shape=shape)
    rows = np.repeat(c, k)
    cols = (t[:, None] * k + np.arange(k)[None, :]).ravel()
    sum_x = sparse.csr_matrix((x.ravel(), (rows, cols)), shape=(n_clusters, n_periods * k))
    # One sparse cluster-indicator product per feature keeps memory at n x k, never n x k^2.
    member = sparse.csr_matrix((ones, (c, np.arange(len(y)))), shape=(n_clusters, len(y)))
    xx = np.hstack([member @ (x * x[:, [j]]) for j in range(k)]) if k else np.zeros((n_clusters, 0))
    xy = member @ (x * y[:, None])
    return _Stats(counts, sum_y, sum_x, xx, xy)


def _weighted(stats: _Stats, weights: np.ndarray) -> tuple[np.ndarray, ...]:
    """Weighted sums of the cluster statistics, one row per replicate."""
    w = weights.astype(float)
    # (sparse.T @ dense.T).T keeps the product sparse-times-dense, which scipy does fast.
    counts = (stats.counts.T @ w.T).T
    sum_y = (stats.sum_y.T @ w.T).T
    sum_x = (stats.sum_x.T @ w.T).T
    return counts, sum_y, sum_x, w @ stats.xx, w @ stats.xy


def _solve(sums: tuple[np.ndarray, ...], n_periods: int, ridge: float) -> np.ndarray:
    """Period effects of each replicate via the Schur complement of the (diagonal) period block."""
    counts, sum_y, sum_x, xx, xy = sums
    reps = counts.shape[0]
    k = xy.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_n = np.where(counts > 0, 1.0 / counts, 0.0)  # an undrawn period is solved as 0, then masked
        if k:
            m = sum_x.reshape(reps, n_periods, k)
            schur = xx.reshape(reps, k, k) - np.einsum("rtj,rt,rtl->rjl", m, inv_n, m) + ridge * np.eye(k)
            rhs = xy - np.einsum("rtj,rt,rt->rj", m, inv_n, sum_y)
            beta = np.linalg.solve(schur, rhs[:, :, None])[:, :, 0]
            delta = (sum_y - np.einsum("rtj,rj->rt", m, beta)) * inv_n
        else:
            delta = sum_y * inv_n
    return np.where(counts > 0, delta, np.nan)

"""Split-conformal prediction intervals with normalised scores and per-city (Mondrian) calibration.

Score of a calibration row: s = |log y - log ŷ| / σ̂(x), where σ̂ comes from a second model of the
absolute log residual, so intervals widen where the model is unsure. For a level 1 - α the interval
is ŷ · exp(± q · σ̂(x)), with q the ⌈(n + 1)(1 - α)⌉-th smallest score among the calibration rows of
the row's city when that city has at least `min_group_size` of them, else among all rows. Under
exchangeability this covers the true rent with probability at least 1 - α within each city.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Keep at most this many calibration scores per city: quantiles barely move, the artifact stays small.
MAX_SCORES = 50_000
#: Up to this many rows, groups are looked up row by row rather than through a pandas index.
SMALL_BATCH = 64


def conformal_quantile(sorted_scores: np.ndarray, level: float) -> float:
    """The finite-sample conformal quantile: the ⌈(n+1)·level⌉-th smallest score (inf if n is too small)."""
    n = len(sorted_scores)
    rank = math.ceil((n + 1) * level)
    return float(sorted_scores[rank - 1]) if 1 <= rank <= n else math.inf


def _subsample_sorted(values: np.ndarray, limit: int, seed: int) -> np.ndarray:
    values = values[np.isfinite(values)]
    if len(values) > limit:
        values = np.random.default_rng(seed).choice(values, size=limit, replace=False)
    return np.sort(values)


@dataclass
class MondrianScores:
    """Sorted calibration values per group (city) and overall, for conformal quantiles and CDFs."""

    min_group_size: int = 100
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    overall: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit(self, values: np.ndarray, group: np.ndarray, *, seed: int = 0) -> MondrianScores:
        """Store sorted values; groups with fewer than `min_group_size` rows fall back to the overall set."""
        self._index = None
        self.overall = _subsample_sorted(np.asarray(values, float), MAX_SCORES, seed)
        for name in pd.unique(group):
            rows = group == name
            if rows.sum() >= self.min_group_size:
                self.groups[str(name)] = _subsample_sorted(values[rows], MAX_SCORES, seed)
        return self

    def groups_index(self) -> dict[str, int]:
        """{group: position among `groups`} (built once; groups do not change after `fit`)."""
        if getattr(self, "_index", None) is None:
            self._index = {name: i for i, name in enumerate(self.groups)}
        return self._index

    def _sets(self, group: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(row indices, sorted values) for every set used by these rows (one pass over the rows)."""
        names = list(self.groups)
        if len(group) <= SMALL_BATCH:  # a dict lookup per row beats building an index for a few rows
            codes = np.array([self.groups_index().get(g, len(names)) for g in group], dtype=np.int64)
        else:
            codes = pd.Index(names, dtype=object).get_indexer(group)
            codes[codes < 0] = len(names)  # unseen or small groups: the overall set
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(names) + 2))
        sets = [*self.groups.values(), self.overall]
        return [(order[bounds[c]:bounds[c + 1]], sets[c]) for c in range(len(sets)) if bounds[c + 1] > bounds[c]]

    def quantile(self, level: float, group: np.ndarray) -> np.ndarray:
        """Per row: the conformal quantile at `level` of its group's scores."""
        out = np.empty(len(group))
        for rows, values in self._sets(group):
            out[rows] = conformal_quantile(values, level)
        return out

    def cdf(self, x: np.ndarray, group: np.ndarray) -> np.ndarray:
        """Per row: the share of its group's values ≤ x (empirical CDF, vectorised by searchsorted)."""
        out = np.empty(len(group))
        for rows, values in self._sets(group):
            out[rows] = np.searchsorted(values, x[rows], side="right") / len(values)
        return out


def interval_bounds(log_estimate: np.ndarray, sigma: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) rents from log estimates, σ̂ and per-row score quantiles: exp(log ŷ ± q σ̂)."""
    half = np.minimum(q * sigma, 50.0)  # an infinite quantile (tiny city) still gives a finite float
    return np.exp(log_estimate - half), np.exp(log_estimate + half)

"""Monitoring a champion: feature drift (population stability index) and live error on new data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from insights.ml.metrics import mdape

#: Shares below this are floored so that an empty bin does not make the PSI infinite.
_EPS = 1e-4

#: Categories beyond the most frequent ones of the reference are pooled into "other".
TOP_CATEGORIES = 20


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins: Σ (a − e) · ln(a / e)."""
    e = np.maximum(np.asarray(expected, dtype=float), _EPS)
    a = np.maximum(np.asarray(actual, dtype=float), _EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def _numeric_shares(reference: pd.Series, current: pd.Series, bins: int) -> tuple[np.ndarray, np.ndarray]:
    ref = pd.to_numeric(reference, errors="coerce").to_numpy(dtype=float)
    cur = pd.to_numeric(current, errors="coerce").to_numpy(dtype=float)
    edges = np.unique(np.nanquantile(ref[~np.isnan(ref)], np.linspace(0, 1, bins + 1)[1:-1])) if np.isfinite(ref).any() else np.array([])

    def shares(values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1)
        return np.r_[counts, missing.sum()] / max(len(values), 1)  # missing values are a bin of their own

    return shares(ref), shares(cur)


def _categorical_shares(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    ref = reference.astype("string").fillna("<missing>")
    cur = current.astype("string").fillna("<missing>")
    top = list(ref.value_counts().index[:TOP_CATEGORIES])
    ref = ref.where(ref.isin(top), "<other>")
    cur = cur.where(cur.isin(top), "<other>")
    levels = [*top, "<other>"]
    return (ref.value_counts(normalize=True).reindex(levels, fill_value=0).to_numpy(),
            cur.value_counts(normalize=True).reindex(levels, fill_value=0).to_numpy())


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], *, bins: int = 10) -> dict[str, float]:
    """PSI of each column (numeric: deciles of the reference; categorical: its top categories)."""
    drift: dict[str, float] = {}
    for column in columns:
        if column not in reference.columns or column not in current.columns or current[column].isna().all():
            continue
        ref, cur = reference[column], current[column]
        numeric = pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref)
        e, a = _numeric_shares(ref, cur, bins) if numeric else _categorical_shares(ref, cur)
        drift[column] = round(psi(e, a), 4)
    return drift


def live_error(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """The champion's error on rents that arrived after it was trained."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    ok = np.isfinite(y_true) & np.isfinite(y_pred) & (y_true > 0)
    if not ok.any():
        return {"rows": 0}
    return {"rows": int(ok.sum()), "mdape": mdape(y_true[ok], y_pred[ok])}

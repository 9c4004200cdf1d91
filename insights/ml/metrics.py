"""Accuracy, interval and calibration metrics of rent predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from insights.defaults import CONFIDENCE_BAND

if TYPE_CHECKING:
    from insights.ml.rent import RentModel

#: Cities with fewer test rows than this are left out of the per-city coverage report (too noisy).
MIN_CITY_ROWS = 200


def mdape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Median absolute percentage error, as a fraction (0.09 = 9%)."""
    return float(np.median(np.abs(np.asarray(y_pred) / np.asarray(y_true) - 1.0)))


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error, as a fraction."""
    return float(np.mean(np.abs(np.asarray(y_pred) / np.asarray(y_true) - 1.0)))


def coverage(y_true: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Share of true values inside [low, high]."""
    y = np.asarray(y_true)
    return float(np.mean((y >= np.asarray(low)) & (y <= np.asarray(high))))


def within_band(y_true: np.ndarray, y_pred: np.ndarray, band: float = CONFIDENCE_BAND) -> np.ndarray:
    """Whether each true value lies within ±band (relative) of its estimate: what confidence predicts."""
    return np.abs(np.asarray(y_true) / np.asarray(y_pred) - 1.0) <= band


def expected_calibration_error(probabilities: np.ndarray, outcomes: np.ndarray, *, bins: int = 10) -> float:
    """ECE with `bins` equal-width bins on [0, 1]: sum over bins of share * |mean outcome - mean probability|."""
    p = np.asarray(probabilities, dtype=float)
    o = np.asarray(outcomes, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(o[mask].mean() - p[mask].mean())
    return float(total)


def city_median_baseline(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """The naive estimate: each test row gets the median training rent of its city (global median if unseen)."""
    medians = train.groupby("city", observed=True)["monthly_rent"].median()
    estimate = test["city"].map(medians).astype(float)
    return estimate.fillna(float(train["monthly_rent"].median())).to_numpy()


def evaluate(model: RentModel, test_frame: pd.DataFrame, *, level: float | None = None) -> dict[str, Any]:
    """Accuracy, coverage (overall and per city with 200+ rows), relative width and confidence ECE on a test frame."""
    predictions = model.predict(test_frame, level=level)
    y = test_frame["monthly_rent"].to_numpy(dtype=float)
    estimate = predictions["rent_estimate"].to_numpy()
    low, high = predictions["rent_low"].to_numpy(), predictions["rent_high"].to_numpy()
    inside = (y >= low) & (y <= high)
    cities = test_frame["city"].astype("string").fillna("").to_numpy()
    per_city = {}
    for city in pd.unique(cities):
        mask = cities == city
        if mask.sum() >= MIN_CITY_ROWS:
            per_city[str(city)] = {"rows": int(mask.sum()), "coverage": float(inside[mask].mean()), "mdape": mdape(y[mask], estimate[mask])}
    return {
        "rows": int(len(y)),
        "level": float(level if level is not None else model.level),
        "mdape": mdape(y, estimate),
        "mape": mape(y, estimate),
        "coverage": float(inside.mean()),
        "mean_relative_width": float(np.mean((high - low) / estimate)),
        "confidence_ece": expected_calibration_error(predictions["confidence_score"].to_numpy(), within_band(y, estimate)),
        "mean_confidence": float(predictions["confidence_score"].mean()),
        "share_within_10pct": float(within_band(y, estimate).mean()),
        "per_city": per_city,
    }

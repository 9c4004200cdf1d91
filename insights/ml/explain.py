"""Per-prediction drivers in plain words and money, from LightGBM's SHAP contributions.

The model predicts log rent = baseline + Σ contributions, where LightGBM `pred_contrib=True` gives
exact TreeSHAP values in log space and the baseline is the city's trend level at the listing date
plus the trees' mean (a typical listing of that city and month). Log terms are
turned into money *sequentially*: drivers are ordered by the size of their log contribution, and
each is worth the change in rent it makes when added on top of the baseline and the larger drivers
before it: amount_j = B·exp(c_1 + … + c_j) − B·exp(c_1 + … + c_{j−1}). The amounts of all drivers
add up exactly to estimate − baseline; the larger drivers are valued first, so what is shown is as
close as possible to "what this feature alone does to this flat".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Feature names -> the plain-word driver they belong to (several features can make one driver).
_LOCATION_HINTS = ("latitude", "longitude", "centre", "neighbourhood", "distance", "poicount", "postcode", "location")


def driver_name(feature: str) -> str:
    """The plain-word driver a model feature belongs to (e.g. size_per_room -> 'size')."""
    name = feature.lower()
    if name.startswith("size"):
        return "size"
    if name in ("months_since_2000", "month_of_year"):
        return "listing date"
    if name.startswith("district"):
        return "district"
    if any(hint in name for hint in _LOCATION_HINTS):
        return "location"
    if name in ("rooms", "bedrooms"):
        return "rooms"
    if name in ("floor", "total_floors", "floor_ratio"):
        return "floor"
    return feature.removesuffix("_encoded").replace("_", " ")


def group_contributions(contributions: np.ndarray, names: list[str]) -> tuple[list[str], np.ndarray]:
    """Sum feature columns of a (rows × features) log-contribution matrix into plain-word drivers."""
    drivers = [driver_name(name) for name in names]
    labels = list(dict.fromkeys(drivers))
    grouped = np.zeros((contributions.shape[0], len(labels)))
    for j, driver in enumerate(drivers):
        grouped[:, labels.index(driver)] += contributions[:, j]
    return labels, grouped


def sequential_money(baseline: float, log_contributions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, money amounts in that order) of one row's drivers, largest |log contribution| first."""
    order = np.argsort(-np.abs(log_contributions), kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(log_contributions[order])])
    money = baseline * np.diff(np.exp(cumulative))
    return order, money


def describe(labels: list[str], baselines: np.ndarray, grouped: np.ndarray, currencies: np.ndarray, top: int) -> pd.DataFrame:
    """One row per prediction: baseline, the top drivers as records, and a sentence such as 'size +310 PLN'."""
    records, texts = [], []
    for i in range(grouped.shape[0]):
        order, money = sequential_money(float(baselines[i]), grouped[i])
        currency = f" {currencies[i]}" if currencies[i] else ""
        chosen = [
            {"driver": labels[j], "amount": float(amount), "log_contribution": float(grouped[i, j])}
            for j, amount in zip(order[:top], money[:top], strict=False)
        ]
        records.append(chosen)
        texts.append(", ".join(f"{d['driver']} {d['amount']:+,.0f}{currency}" for d in chosen))
    return pd.DataFrame({"baseline": baselines, "drivers": records, "explanation": texts})

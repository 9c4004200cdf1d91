"""Batch scoring of a portfolio with the champion models: estimates, intervals, confidence, occupancy, optimal rent."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from insights.errors import LeaseoraError
from insights.ml.pricing import price_units
from insights.ml.schema import conform

#: Columns a scored frame gains.
OUTPUT_COLUMNS = ("rent_estimate", "rent_low", "rent_high", "confidence_score", "model_version",
                  "expected_occupancy", "optimal_rent", "error")


def _row_errors(frame: pd.DataFrame) -> pd.Series:
    """Why a row cannot be scored ('' when it can)."""
    errors = pd.Series("", index=frame.index, dtype=object)
    if "city" not in frame.columns:
        return errors.where(False, "missing column: city")
    errors[frame["city"].isna() | (frame["city"].astype("string").str.strip() == "")] = "missing city"
    return errors


def score(
    frame: pd.DataFrame, rent: Any, *, occupancy: Any | None = None, level: float | None = None,
    as_of: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """`frame` plus OUTPUT_COLUMNS. `rent`/`occupancy` are registry `LoadedModel`s (they check the schema).

    Rows without a date are scored at `as_of` (default: now), i.e. at today's market level. A row
    that cannot be scored gets its reason in `error` and empty numbers; the others are scored in one
    vectorised batch.
    """
    out = frame.copy()
    for column in OUTPUT_COLUMNS:
        out[column] = np.nan if column not in ("model_version", "error") else None
    errors = _row_errors(frame)
    ok = errors == ""
    out["error"] = errors.where(~ok, None)
    if not ok.any():
        return out
    rows = _prepare(frame[ok], rent.feature_schema, as_of)
    try:
        predicted = rent.predict(rows, level=level)
    except LeaseoraError as exc:
        out.loc[ok, "error"] = exc.message
        return out
    out.loc[ok, ["rent_estimate", "rent_low", "rent_high", "confidence_score"]] = predicted[
        ["rent_estimate", "rent_low", "rent_high", "confidence_score"]].to_numpy()
    out.loc[ok, "model_version"] = rent.version
    if occupancy is not None:
        units = rows.assign(market_rent=predicted["rent_estimate"].to_numpy(), month=rows["listed_at"].dt.month)
        if "asking_rent" not in units.columns:
            units["asking_rent"] = units["market_rent"]
        priced = price_units(occupancy, conform(units, occupancy.feature_schema)).units
        out.loc[ok, "expected_occupancy"] = priced["expected_occupancy"].to_numpy()
        out.loc[ok, "optimal_rent"] = priced["optimal_rent"].to_numpy()
    return out


def _prepare(frame: pd.DataFrame, schema: dict[str, str], as_of: pd.Timestamp | None) -> pd.DataFrame:
    rows = conform(frame.copy(), schema)
    when = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp.now().normalize()
    if "listed_at" in rows.columns:
        rows["listed_at"] = pd.to_datetime(rows["listed_at"], errors="coerce").fillna(when)
    else:
        rows["listed_at"] = when
    return rows

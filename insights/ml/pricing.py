"""Optimal asking rent: the rent that maximises expected yearly revenue under the occupancy model.

Expected yearly revenue at asking rent r is r x expected_occupancy(r) x periods_per_year (12 for
monthly rents; 365 for nightly prices, whose occupancy is the calendar PROXY — see
`insights.ml.occupancy`). The search runs over a grid of asking/market ratios (0.70 .. 1.40 by
default), then a finer grid around the best point; every unit of a batch is priced in a few
vectorised `predict` calls. The occupancy model only ever sees the ratio to the market rent the caller
passes, so the optimal rent scales with the market rent.

The optimum is only as good as the price response behind it. When it sits on the grid's edge
(`at_grid_edge`), revenue was still rising (or falling) at the boundary: the honest answer is "at
least/at most this", not a precise optimum.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import pandas as pd

from insights.errors import InvalidInput
from insights.ml.features import Inputs, numbers

#: Asking/market ratios searched by default.
DEFAULT_RATIOS: np.ndarray = np.round(np.linspace(0.70, 1.40, 71), 4)

#: Relative move around the optimum whose revenue effect is reported.
SENSITIVITY_STEP = 0.05

#: Rows per `predict` call: bounds memory when thousands of units are priced at once.
CHUNK_ROWS = 400_000


class OccupancyPredictor(Protocol):
    """Anything that maps units at an asking rent to `let_probability_30d` and `expected_occupancy`.

    `OccupancyModel` and the registry's loaded models both qualify.
    """

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame: ...


@dataclass(frozen=True)
class PricingResult:
    """Per-unit pricing (`units`, indexed like the input) and, on request, the long revenue `curves`.

    Held as arrays: the frames are built on first use, and one unit's figures (`unit`, `curve`) are
    read without them (answering one question prices one unit).
    """

    index: pd.Index
    columns: dict[str, np.ndarray | str]  # the columns of `units`, in order (a str is the same on every row)
    curve_columns: dict[str, np.ndarray] | None = None  # the columns of `curves`, in order

    @cached_property
    def units(self) -> pd.DataFrame:
        """One row per unit, indexed like the input (columns: see `price_units`)."""
        return pd.DataFrame(self.columns).set_axis(self.index)

    @cached_property
    def curves(self) -> pd.DataFrame | None:
        """Long frame: one row per (unit, ratio searched) with rent, occupancy, let probability and revenue."""
        return None if self.curve_columns is None else pd.DataFrame(self.curve_columns)

    def unit(self, position: int) -> dict[str, Any]:
        """The figures of the unit at `position` (0 for the first), as `units` has them."""
        return {name: values if isinstance(values, str) else values[position] for name, values in self.columns.items()}

    def curve(self, unit: Hashable) -> list[dict[str, float]]:
        """The revenue curve of one unit (by input index): points with ratio, rent, occupancy, revenue."""
        if self.curve_columns is None:
            raise InvalidInput("curves were not computed: call price_units(..., with_curves=True)")
        rows = np.flatnonzero(self.curve_columns["unit"] == unit)
        columns = {c: np.asarray(v, dtype=float)[rows].tolist() for c, v in self.curve_columns.items() if c != "unit"}
        return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def price_units(
    model: OccupancyPredictor,
    units: Inputs,
    *,
    ratios: Sequence[float] | np.ndarray = DEFAULT_RATIOS,
    periods_per_year: int = 12,
    with_curves: bool = False,
) -> PricingResult:
    """Optimal asking rent, and occupancy at the current rent, for every unit of a batch.

    `units` (a frame, or `Rows` for a few units) carries the property features, `market_rent` (e.g.
    the rent model's estimate), `month` or `date`, and optionally `asking_rent` (the rent asked
    today; the market rent where missing). Results are indexed like a frame's rows, or 0..n-1.
    Columns of `PricingResult.units`: `market_rent`, `asking_rent`, `expected_occupancy`,
    `let_probability_30d`, `expected_revenue` (all at the asking rent), `optimal_rent`,
    `optimal_ratio`, `optimal_occupancy`, `optimal_let_probability_30d`, `optimal_revenue`,
    `revenue_change_up_5pct` / `revenue_change_down_5pct` (relative change of revenue when asking 5%
    above / below the optimal rent), `at_grid_edge` and `basis` (what "occupancy" means).
    """
    grid = _validated_ratios(ratios)
    if "market_rent" not in units.columns:
        raise InvalidInput("units need a market_rent column (the rent model's estimate)")
    index = units.index
    base = units.reset_index(drop=True) if isinstance(units, pd.DataFrame) else units
    market = numbers(base, "market_rent")
    asking = _current_asking(base, market)

    respond = _response(model, base)
    occupancy, let_p = respond(grid[None, :] * market[:, None])
    revenue = grid[None, :] * market[:, None] * occupancy * periods_per_year
    best = revenue.argmax(axis=1)
    best_ratio = _refine(respond, market, grid, best, periods_per_year)
    optimal = best_ratio * market

    now = respond(asking[:, None])
    at_opt = respond(optimal[:, None])
    around = respond(np.c_[optimal * (1 + SENSITIVITY_STEP), optimal * (1 - SENSITIVITY_STEP)])
    optimal_revenue = optimal * at_opt[0][:, 0] * periods_per_year
    up = optimal * (1 + SENSITIVITY_STEP) * around[0][:, 0] * periods_per_year
    down = optimal * (1 - SENSITIVITY_STEP) * around[0][:, 1] * periods_per_year

    columns = {
        "market_rent": market,
        "asking_rent": asking,
        "expected_occupancy": now[0][:, 0],
        "let_probability_30d": now[1][:, 0],
        "expected_revenue": asking * now[0][:, 0] * periods_per_year,
        "optimal_rent": optimal,
        "optimal_ratio": best_ratio,
        "optimal_occupancy": at_opt[0][:, 0],
        "optimal_let_probability_30d": at_opt[1][:, 0],
        "optimal_revenue": optimal_revenue,
        "revenue_change_up_5pct": up / optimal_revenue - 1.0,
        "revenue_change_down_5pct": down / optimal_revenue - 1.0,
        "at_grid_edge": (best == 0) | (best == len(grid) - 1),
        "basis": _basis(model),
    }
    curves = _curves(index, grid, market, occupancy, let_p, revenue) if with_curves else None
    return PricingResult(index=index, columns=columns, curve_columns=curves)


def revenue_curve(
    model: OccupancyPredictor,
    unit: pd.Series | pd.DataFrame,
    *,
    ratios: Sequence[float] | np.ndarray = DEFAULT_RATIOS,
    periods_per_year: int = 12,
) -> list[dict[str, float]]:
    """Points (ratio, rent, occupancy, let_probability_30d, revenue) of one unit's revenue curve."""
    frame = unit.to_frame().T if isinstance(unit, pd.Series) else unit.head(1)
    frame = frame.infer_objects()
    result = price_units(model, frame, ratios=ratios, periods_per_year=periods_per_year, with_curves=True)
    return result.curve(frame.index[0])


def _validated_ratios(ratios: Sequence[float] | np.ndarray) -> np.ndarray:
    grid = np.unique(np.asarray(ratios, dtype=float))
    if len(grid) < 3 or not np.all(grid > 0):
        raise InvalidInput("the ratio grid needs at least 3 positive values")
    return grid


def _current_asking(frame: Inputs, market: np.ndarray) -> np.ndarray:
    if "asking_rent" not in frame.columns:
        return market.copy()
    asking = numbers(frame, "asking_rent")
    return np.where(np.isfinite(asking) & (asking > 0), asking, market)


Response = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _response(model: OccupancyPredictor, base: Inputs) -> Response:
    """rents (units, k) -> occupancy and let probability (units, k), unit i asking rents[i, j] in column j.

    From the model's own `price_response` when it has one (the units' features become model inputs
    once for the whole search); else from `predict` on the units repeated at each rent.
    """
    respond = getattr(model, "price_response", None)
    found = respond(base) if respond is not None else None
    if found is not None:
        return found
    frame = base if isinstance(base, pd.DataFrame) else pd.DataFrame(base.rows)
    return lambda rents: _predict_at(model, frame, rents)


def _predict_at(model: OccupancyPredictor, base: pd.DataFrame, rents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy and let probability, shape (units, k), with unit i asking rents[i, j] in column j."""
    n, k = rents.shape
    occupancy, let_p = np.empty(n * k), np.empty(n * k)
    units_per_chunk = max(1, CHUNK_ROWS // k)
    for start in range(0, n, units_per_chunk):
        stop = min(n, start + units_per_chunk)
        chunk = base.iloc[np.repeat(np.arange(start, stop), k)].reset_index(drop=True)
        chunk["asking_rent"] = rents[start:stop].ravel()
        predicted = model.predict(chunk)
        occupancy[start * k : stop * k] = predicted["expected_occupancy"].to_numpy(dtype=float)
        let_p[start * k : stop * k] = predicted["let_probability_30d"].to_numpy(dtype=float)
    return occupancy.reshape(n, k), let_p.reshape(n, k)


def _refine(respond: Response, market: np.ndarray, grid: np.ndarray, best: np.ndarray, periods: int) -> np.ndarray:
    """Best ratio on a 21-point grid spanning the neighbours of each unit's coarse optimum."""
    low = grid[np.maximum(best - 1, 0)]
    high = grid[np.minimum(best + 1, len(grid) - 1)]
    fine = low[:, None] + (high - low)[:, None] * np.linspace(0.0, 1.0, 21)[None, :]
    occupancy, _ = respond(fine * market[:, None])
    revenue = fine * market[:, None] * occupancy * periods
    return fine[np.arange(len(fine)), revenue.argmax(axis=1)]


def _curves(
    index: pd.Index, grid: np.ndarray, market: np.ndarray, occupancy: np.ndarray, let_p: np.ndarray, revenue: np.ndarray
) -> dict[str, np.ndarray]:
    n, k = occupancy.shape
    return {
        "unit": np.repeat(index.to_numpy(), k),
        "ratio": np.tile(grid, n),
        "rent": (grid[None, :] * market[:, None]).ravel(),
        "occupancy": occupancy.ravel(),
        "let_probability_30d": let_p.ravel(),
        "revenue": revenue.ravel(),
    }


def _basis(model: OccupancyPredictor) -> str:
    basis = getattr(model, "basis", None) or getattr(getattr(model, "model", None), "basis", None)
    return str(basis) if basis else "unknown"

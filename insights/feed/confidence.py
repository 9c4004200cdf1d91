"""Confidence scores: the calibrated probability that an insight's claim is true.

Each kind of claim gets a *raw* probability from the sampling distribution of its estimate, then a
monotone recalibration fitted on simulated markets with known truth (`fit_calibrator`, isotonic):

- growth (`up` / `down` / `flat`): the cluster-bootstrap spread of the index growth gives a standard
  error; `P(true growth > +band)`, `< -band` or within the band follows from a Student t around the
  estimate (degrees of freedom from the thinner of the two periods, so thin data is never confident).
- level (the true market median lies in `low..high`): the share of the market below `low` and below
  `high` have Beta posteriors (Bayesian bootstrap of the distinct units), which give
  `P(F(low) < 0.5 <= F(high))` in closed form.
- ranking (a market is the fastest riser or faller): the share of joint draws of every market's
  growth in which it ranks first.

The shipped calibrators (`CALIBRATORS`) were fitted with `fit_calibrator` on claims from markets drawn
by `pipelines.demo_data.random_markets` (seeds 1000-1099; the recipe is `tests/feed/calibration.py`),
and are checked on fresh seeds by `tests/feed/test_confidence.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

#: Largest Student-t degrees of freedom used: beyond this the t is a normal for our purposes.
MAX_DOF = 200
#: Smallest bootstrap replicates a growth claim needs before a standard error is trusted.
MIN_DRAWS = 50
#: Fewest markets from which the spread of true growth across markets is estimated.
MIN_PRIOR_MARKETS = 5


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from raw to calibrated probability, piecewise linear through (x, y)."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def __call__(self, raw: float | np.ndarray) -> np.ndarray:
        """Calibrated probabilities for `raw` (clipped to 0..1)."""
        if not self.x:
            return np.clip(np.asarray(raw, dtype=float), 0.0, 1.0)
        return np.interp(np.asarray(raw, dtype=float), self.x, self.y)


IDENTITY = Calibrator((), ())


def fit_calibrator(raw: np.ndarray, outcome: np.ndarray, *, knots: int = 20) -> Calibrator:
    """Isotonic fit of `outcome` (0/1, claim true) on `raw`, thinned to at most `knots` points.

    The thinning keeps the shipped table short and the map smooth between the fitted steps.
    """
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, outcome)
    grid = np.unique(np.quantile(raw, np.linspace(0.0, 1.0, knots)))
    values = model.predict(grid)
    return Calibrator(tuple(round(float(v), 4) for v in grid), tuple(round(float(v), 4) for v in values))


@dataclass(frozen=True)
class Prior:
    """Normal distribution of true log growth across the markets of one run and horizon."""

    mean: float
    sd: float
    markets: int = 0


def fit_prior(estimates: np.ndarray, ses: np.ndarray, *, floor: float, fallback: float) -> Prior:
    """Random-effects (DerSimonian-Laird) prior of true growth from the markets' estimates.

    How much true growth varies across markets is what turns a noisy estimate into a probability: a
    +5% month measured with a 3% standard error is strong evidence only if markets really do move
    that much. With fewer than MIN_PRIOR_MARKETS markets the spread cannot be estimated and a wide
    `fallback` sd around zero is used; `floor` keeps the prior from claiming markets never differ,
    so a thin market's claim rests on its own data, never on the prior alone.
    """
    ok = np.isfinite(estimates) & np.isfinite(ses) & (ses > 0)
    x, se = estimates[ok], ses[ok]
    if x.size < MIN_PRIOR_MARKETS:
        return Prior(0.0, fallback, int(x.size))
    w = 1.0 / se**2
    fixed = float(np.sum(w * x) / np.sum(w))
    q = float(np.sum(w * (x - fixed) ** 2))
    tau2 = max(0.0, (q - (x.size - 1)) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    w_random = 1.0 / (se**2 + tau2)
    return Prior(float(np.sum(w_random * x) / np.sum(w_random)), max(float(np.sqrt(tau2)), floor), int(x.size))


def posterior(estimate: float, se: float, prior: Prior) -> tuple[float, float]:
    """Mean and sd of true log growth given an estimate with standard error `se` (normal-normal)."""
    shrink = prior.sd**2 / (prior.sd**2 + se**2)
    return prior.mean + shrink * (estimate - prior.mean), float(np.sqrt(shrink) * se)


def growth_band_probabilities(mean: float, sd: float, band: float) -> dict[str, float]:
    """P(up), P(flat), P(down) of true log growth ~ Normal(mean, sd).

    `band` is the relative growth within which a market counts as flat (0.005: +-0.5%); in log space
    the band is asymmetric, `log(1 - band) .. log(1 + band)`.
    """
    if not (np.isfinite(mean) and np.isfinite(sd)):
        return {"up": 1 / 3, "flat": 1 / 3, "down": 1 / 3}
    dist = stats.norm(loc=mean, scale=max(sd, 1e-9))
    up = float(dist.sf(np.log1p(band)))
    down = float(dist.cdf(np.log1p(-band)))
    return {"up": up, "flat": max(0.0, 1.0 - up - down), "down": down}


def median_band_probability(values: np.ndarray, low: float, high: float) -> float:
    """Raw P(the market median lies in [low, high]) from one value per distinct unit.

    With `a` of `n` values below `low` and `b` below `high`, the market's share below each bound has a
    Beta posterior (Jeffreys prior); the median is in the interval exactly when the share below `low`
    is under one half and the share below `high` is at least one half.
    """
    n = values.size
    if n == 0:
        return 0.0
    # Counts below each bound, interpolated between order statistics: a bound between two values
    # counts as part of each, so an interval that happens to hold no observation is not impossible.
    ordered = np.sort(values)
    positions = np.arange(n) + 0.5
    below_low = float(np.interp(low, ordered, positions, left=0.0, right=float(n)))
    upto_high = float(np.interp(high, ordered, positions, left=0.0, right=float(n)))
    p_low_too_high = stats.beta.sf(0.5, below_low + 0.5, n - below_low + 0.5)  # P(F(low) >= 0.5)
    p_high_too_low = stats.beta.cdf(0.5, upto_high + 0.5, n - upto_high + 0.5)  # P(F(high) < 0.5)
    return float(max(0.0, 1.0 - p_low_too_high - p_high_too_low))


def rank_first_probabilities(estimates: np.ndarray, ses: np.ndarray, *, draws: int = 4000, seed: int = 0) -> np.ndarray:
    """P(each market truly has the highest growth), from independent normal draws around estimates."""
    rng = np.random.default_rng(seed)
    sample = estimates[None, :] + ses[None, :] * rng.standard_normal((draws, estimates.size))
    winners = np.bincount(sample.argmax(axis=1), minlength=estimates.size)
    return winners / draws


def reliability_table(confidence: np.ndarray, outcome: np.ndarray, *, bins: int = 10) -> pd.DataFrame:
    """Claims per confidence bin, their mean confidence and the share that held (a reliability diagram)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    frame = pd.DataFrame({"bin": which, "confidence": confidence, "held": outcome.astype(float)})
    table = frame.groupby("bin").agg(claims=("held", "size"), confidence=("confidence", "mean"), held=("held", "mean"))
    table.index = [f"{edges[i]:.1f}-{edges[i + 1]:.1f}" for i in table.index]
    return table


#: Fitted calibrators per claim family (see the module docstring for how they were fitted).
CALIBRATORS: dict[str, Calibrator] = {
    **{f"growth_{kind}_{h}": IDENTITY for kind in ("direction", "flat") for h in ("mom", "qoq", "yoy")},
    "level": IDENTITY,
    "rank": IDENTITY,
    "seasonal": IDENTITY,
    "occupancy": IDENTITY,
}

#: Thin-data cap: a claim resting on `n` distinct units scores at most `n / (n + THIN_DATA_UNITS)`
#: (0.75 at the privacy threshold of 10, 0.9 at 30, 0.97 at 100), so thin data is never confident.
THIN_DATA_UNITS = 10 / 3


def calibrated(family: str, raw: float, *, n: int | None = None) -> float:
    """Calibrated probability of a claim of `family` with raw probability `raw`, capped for `n` units."""
    if _RAW.get():
        return float(raw)
    value = float(CALIBRATORS.get(family, IDENTITY)(raw))
    if n is not None:
        value = min(value, n / (n + THIN_DATA_UNITS))
    return round(value, 3)


_RAW: ContextVar[bool] = ContextVar("raw_confidence_scores", default=False)


@contextmanager
def raw_scores() -> Iterator[None]:
    """Within the block, `calibrated` returns raw probabilities (no calibrator, no cap): for fitting calibrators."""
    token = _RAW.set(True)
    try:
        yield
    finally:
        _RAW.reset(token)

"""Confidence scores: the calibrated probability that an insight's claim is true.

Each kind of claim gets a *raw* probability from the sampling distribution of its estimate, then a
monotone recalibration fitted on simulated markets with known truth, then a thin-data cap:

- growth (`up` / `down` / `flat`, also the seasonal gap): the cluster-bootstrap standard error of the
  index growth, combined with how much true growth varies across the markets of the same run (an
  empirical-Bayes normal prior, `fit_prior`), gives a posterior of the market's true growth and so
  `P(true growth > +band)`, `< -band` or within the band. Without the prior, a +5% month measured
  with a 3% standard error would look like strong evidence even where markets barely move monthly.
- level (the true market median lies in `low..high`): the share of the market below `low` and below
  `high` have Beta posteriors (Bayesian bootstrap of the distinct units), which give
  `P(F(low) < 0.5 <= F(high))` in closed form.
- ranking (a city is the fastest riser or faller): the share of joint draws from every city's
  posterior in which it ranks first (posteriors, not raw estimates, against the winner's curse).

`CALIBRATORS` were fitted with `fit_calibrator` (isotonic) on raw scores of claims about markets drawn
by `pipelines.demo_data.random_markets` (seeds 1000-1019, thin and thick markets, with and without
index volatility, 15 and 36 months, plus repeated samples of single markets for levels); the recipe is
`python -m tests.feed.test_confidence`, and `tests/feed/test_confidence.py` checks the result on
seeds never used for fitting. Families without a fitted table (occupancy, seasonal) use the raw
probability. Finally a claim resting on `n` distinct units scores at most `n / (n + 10/3)`.
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
    """Isotonic fit of `outcome` (0/1, claim true) on `raw`, summarised as `knots` (x, y) points.

    Each point is one quantile bin of the raw scores: its mean raw score and mean isotonic fit. Bin
    means, unlike the fit at the extreme scores, do not jump to 0 or 1 on a handful of claims, and
    beyond the outer bins the map stays flat (a conservative extrapolation).
    """
    from sklearn.isotonic import IsotonicRegression

    raw = np.asarray(raw, dtype=float)
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, outcome).predict(raw)
    order = np.argsort(raw, kind="stable")
    bins = np.array_split(order, min(knots, raw.size))
    x = [float(raw[b].mean()) for b in bins if b.size]
    y = [float(fitted[b].mean()) for b in bins if b.size]
    return Calibrator(tuple(round(v, 4) for v in x), tuple(round(v, 4) for v in y))


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
    # Fitted by `python -m tests.feed.test_confidence` (x: raw probability, y: share of claims that held).
"growth_direction_mom": Calibrator((0.0179, 0.0617, 0.0942, 0.1198, 0.1388, 0.1636, 0.1872, 0.2158, 0.242, 0.2713, 0.3065, 0.3364, 0.3728, 0.4174, 0.4591, 0.5007, 0.5519, 0.6307, 0.742, 0.8764), (0.0676, 0.0741, 0.0868, 0.0868, 0.0868, 0.1177, 0.1302, 0.1382, 0.1382, 0.1382, 0.1382, 0.1382, 0.1382, 0.1382, 0.1382, 0.1382, 0.1382, 0.1383, 0.1389, 0.1422)),
    "growth_direction_mom_nsa": Calibrator((0.0, 0.0005, 0.0016, 0.0056, 0.0377, 0.1516, 0.2279, 0.3185, 0.4519, 0.5307, 0.5997, 0.688, 0.7395, 0.7805, 0.8484, 0.8818, 0.9198, 0.9658, 0.9858, 0.9911), (0.0, 0.0, 0.0, 0.0, 0.0023, 0.2481, 0.3036, 0.3036, 0.4301, 0.5079, 0.5079, 0.6104, 0.7407, 0.7407, 0.7952, 0.8322, 0.9398, 0.9517, 0.9645, 0.9906)),
    "growth_direction_qoq": Calibrator((0.0726, 0.2019, 0.2569, 0.3044, 0.3327, 0.3458, 0.3819, 0.4129, 0.4449, 0.4727, 0.5021, 0.5326, 0.5644, 0.5961, 0.6323, 0.6722, 0.7192, 0.7717, 0.8406, 0.9341), (0.3482, 0.3612, 0.4048, 0.4217, 0.4217, 0.4217, 0.4285, 0.4698, 0.5111, 0.5256, 0.5292, 0.5296, 0.54, 0.555, 0.5992, 0.6094, 0.6423, 0.683, 0.7336, 0.7751)),
    "growth_direction_qoq_nsa": Calibrator((0.0006, 0.0082, 0.046, 0.2173, 0.4736, 0.6743, 0.8383, 0.9226, 0.9511, 0.9696, 0.981, 0.9896, 0.9966, 0.9995, 0.9999, 1.0, 1.0, 1.0, 1.0, 1.0), (0.0017, 0.0759, 0.1285, 0.1474, 0.6477, 0.6944, 0.7432, 0.8038, 0.8557, 0.8839, 0.9374, 0.9943, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)),
    "growth_direction_yoy": Calibrator((0.3082, 0.4219, 0.4856, 0.534, 0.5724, 0.6085, 0.6403, 0.6703, 0.7021, 0.7336, 0.766, 0.7982, 0.8309, 0.8617, 0.8919, 0.9222, 0.95, 0.9741, 0.9898, 0.9987), (0.4249, 0.4305, 0.4892, 0.5427, 0.5499, 0.5698, 0.6062, 0.6622, 0.7069, 0.7194, 0.7399, 0.7797, 0.806, 0.8694, 0.8758, 0.879, 0.9017, 0.934, 0.9621, 0.9975)),
    "growth_flat_mom": Calibrator((0.1552, 0.2346, 0.2952, 0.3265, 0.3466, 0.3873, 0.4486, 0.5209, 0.5647, 0.5997, 0.6299, 0.6454, 0.6553, 0.6683, 0.6765, 0.6808, 0.6846, 0.688, 0.6925, 0.7045), (0.75, 0.7811, 0.8164, 0.8164, 0.8164, 0.8164, 0.8164, 0.8164, 0.8164, 0.8164, 0.8164, 0.8164, 0.8164, 0.8164, 0.8164, 0.8164, 0.8164, 0.8164, 0.8164, 0.8289)),
    "growth_flat_mom_nsa": Calibrator((0.0154, 0.0191, 0.0205, 0.0587, 0.0738, 0.1058, 0.1445, 0.1684, 0.2032, 0.2305, 0.2467, 0.2616, 0.274, 0.2808, 0.2887, 0.3077, 0.4169, 0.5533, 0.6797, 0.6834), (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2258, 0.2258, 0.2258, 0.2746, 0.28, 0.28, 0.28, 0.28, 0.28, 0.28, 0.28, 0.28, 0.28, 0.528)),
    "growth_flat_qoq": Calibrator((0.2035, 0.2952, 0.3204, 0.3336, 0.3442, 0.358, 0.3713, 0.3838, 0.3978, 0.4133, 0.4237, 0.4346, 0.45, 0.463, 0.4742, 0.4893, 0.5135, 0.5557, 0.6501, 0.6957), (0.3333, 0.3333, 0.3333, 0.3333, 0.3362, 0.3625, 0.3625, 0.3625, 0.3625, 0.3625, 0.3625, 0.3625, 0.3625, 0.3625, 0.3953, 0.3983, 0.4428, 0.4575, 0.4575, 0.4725)),
    "growth_flat_qoq_nsa": Calibrator((0.0, 0.0, 0.0008, 0.0198, 0.0324, 0.042, 0.0613, 0.0774, 0.1031, 0.1108, 0.121, 0.1648, 0.2001, 0.2448, 0.3022, 0.3301, 0.4151, 0.4624, 0.5671, 0.5917), (0.0, 0.0, 0.0, 0.0, 0.1711, 0.2353, 0.2353, 0.2807, 0.3066, 0.3066, 0.3066, 0.3066, 0.3066, 0.3066, 0.3066, 0.3066, 0.3066, 0.3066, 0.3066, 0.3066)),
    "growth_flat_yoy": Calibrator((0.197, 0.2207, 0.2311, 0.2406, 0.2481, 0.2549, 0.2615, 0.2682, 0.2751, 0.2834, 0.2912, 0.298, 0.3063, 0.3169, 0.3283, 0.3412, 0.3597, 0.3786, 0.4066, 0.4881), (0.3478, 0.3552, 0.3552, 0.3552, 0.3552, 0.3552, 0.3552, 0.3552, 0.3552, 0.3552, 0.3605, 0.3861, 0.3873, 0.4404, 0.4404, 0.4404, 0.4404, 0.5458, 0.5714, 0.7075)),
    "level": Calibrator((0.346, 0.5325, 0.6137, 0.6788, 0.7365, 0.7855, 0.8307, 0.8647, 0.8954, 0.9105, 0.9231, 0.935, 0.9469, 0.9584, 0.9692, 0.9786, 0.9857, 0.9912, 0.9949, 0.9982), (0.5195, 0.5975, 0.6031, 0.6479, 0.7359, 0.8273, 0.8546, 0.8557, 0.8557, 0.8557, 0.8577, 0.8935, 0.9272, 0.9353, 0.9585, 0.96, 0.9721, 0.9811, 0.9939, 1.0)),
    "rank": Calibrator((0.1588, 0.1912, 0.2355, 0.2628, 0.2811, 0.2978, 0.3196, 0.3477, 0.3684, 0.3757, 0.3904, 0.4136, 0.4362, 0.4591, 0.489, 0.5164, 0.5638, 0.6108, 0.6739, 0.804), (0.25, 0.3511, 0.3617, 0.3617, 0.3617, 0.3617, 0.3617, 0.3617, 0.3617, 0.3617, 0.3617, 0.3617, 0.3617, 0.4491, 0.485, 0.5556, 0.5556, 0.6667, 0.6667, 0.6667)),
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

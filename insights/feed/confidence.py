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
"growth_direction_mom": Calibrator((0.0162, 0.0435, 0.0813, 0.1156, 0.1408, 0.1687, 0.1945, 0.2317, 0.2655, 0.294, 0.3284, 0.3489, 0.402, 0.4739, 0.5288, 0.5707, 0.6172, 0.6745, 0.764, 0.8894), (0.098, 0.1072, 0.1072, 0.1072, 0.1072, 0.1072, 0.1072, 0.1072, 0.1072, 0.1072, 0.1183, 0.1423, 0.1463, 0.1463, 0.1463, 0.1463, 0.1463, 0.1463, 0.1463, 0.1549)),
    "growth_direction_mom_nsa": Calibrator((0.0, 0.0002, 0.0019, 0.0099, 0.072, 0.2171, 0.4045, 0.58, 0.65, 0.7213, 0.7554, 0.7992, 0.8639, 0.9105, 0.9314, 0.944, 0.9653, 0.9861, 0.9931, 0.9977), (0.0, 0.0, 0.0, 0.0, 0.0046, 0.0067, 0.0351, 0.8508, 0.9074, 0.964, 0.9932, 0.9932, 0.995, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)),
    "growth_direction_qoq": Calibrator((0.0976, 0.1878, 0.2293, 0.2749, 0.3199, 0.3333, 0.3467, 0.3883, 0.4271, 0.4614, 0.4908, 0.5188, 0.5457, 0.5754, 0.6077, 0.6439, 0.6863, 0.7358, 0.805, 0.9197), (0.3473, 0.3567, 0.3579, 0.3795, 0.407, 0.4521, 0.4566, 0.471, 0.4783, 0.5131, 0.5267, 0.537, 0.5487, 0.5852, 0.6267, 0.6424, 0.6573, 0.7153, 0.7363, 0.8311)),
    "growth_direction_qoq_nsa": Calibrator((0.0007, 0.0091, 0.0477, 0.1157, 0.1981, 0.3866, 0.6747, 0.7198, 0.7491, 0.7829, 0.8154, 0.8418, 0.8656, 0.8865, 0.9076, 0.9277, 0.9474, 0.9665, 0.9883, 0.9944), (0.0542, 0.0561, 0.0561, 0.0561, 0.0561, 0.1526, 0.77, 0.7884, 0.8268, 0.8268, 0.8268, 0.8409, 0.8439, 0.8467, 0.8517, 0.8517, 0.8517, 0.8517, 0.8517, 0.9016)),
    "growth_direction_yoy": Calibrator((0.3011, 0.3987, 0.4719, 0.5264, 0.5675, 0.6038, 0.6361, 0.6683, 0.7028, 0.7373, 0.769, 0.8012, 0.8343, 0.8655, 0.8954, 0.9253, 0.9506, 0.973, 0.9898, 0.9986), (0.3671, 0.4663, 0.4852, 0.531, 0.563, 0.5731, 0.5868, 0.6548, 0.6593, 0.6979, 0.7521, 0.7863, 0.803, 0.8246, 0.8703, 0.8824, 0.9004, 0.9492, 0.9666, 0.9782)),
    "growth_flat_mom": Calibrator((0.1432, 0.2316, 0.2682, 0.3037, 0.3493, 0.4024, 0.434, 0.4829, 0.4987, 0.5137, 0.5317, 0.6036, 0.631, 0.6509, 0.6622, 0.6719, 0.6804, 0.6861, 0.6916, 0.7052), (0.7941, 0.7941, 0.7941, 0.7941, 0.7941, 0.7941, 0.7941, 0.7941, 0.8022, 0.8103, 0.8103, 0.8192, 0.8212, 0.8212, 0.8219, 0.8412, 0.843, 0.8488, 0.9057, 0.9171)),
    "growth_flat_mom_nsa": Calibrator((0.0034, 0.0099, 0.0176, 0.0437, 0.061, 0.0764, 0.0794, 0.0898, 0.1213, 0.1359, 0.1632, 0.1756, 0.2015, 0.2149, 0.242, 0.2747, 0.2905, 0.3024, 0.3256, 0.4222), (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)),
    "growth_flat_qoq": Calibrator((0.2567, 0.3183, 0.3371, 0.3561, 0.3715, 0.3855, 0.397, 0.408, 0.4189, 0.4327, 0.4457, 0.461, 0.4752, 0.4885, 0.5055, 0.5279, 0.565, 0.6019, 0.6336, 0.6807), (0.3315, 0.3426, 0.3426, 0.3426, 0.3426, 0.3426, 0.3426, 0.3516, 0.3516, 0.353, 0.3731, 0.3731, 0.3731, 0.3731, 0.3731, 0.4078, 0.4527, 0.4563, 0.4563, 0.4649)),
    "growth_flat_qoq_nsa": Calibrator((0.0121, 0.0146, 0.0376, 0.0756, 0.1092, 0.1349, 0.156, 0.173, 0.188, 0.2028, 0.2232, 0.2403, 0.2543, 0.2728, 0.294, 0.3068, 0.3152, 0.3276, 0.3428, 0.3963), (0.1437, 0.2156, 0.2156, 0.2156, 0.2156, 0.2156, 0.2156, 0.2156, 0.2156, 0.2425, 0.2849, 0.2849, 0.2849, 0.2849, 0.2849, 0.2849, 0.2849, 0.2849, 0.2849, 0.2852)),
    "growth_flat_yoy": Calibrator((0.1886, 0.2265, 0.2356, 0.2421, 0.2483, 0.2553, 0.2622, 0.2685, 0.2753, 0.2812, 0.2889, 0.297, 0.3058, 0.3164, 0.3273, 0.3381, 0.353, 0.3744, 0.4078, 0.4823), (0.28, 0.2906, 0.3163, 0.3207, 0.3383, 0.3383, 0.3383, 0.3403, 0.358, 0.358, 0.358, 0.3752, 0.399, 0.399, 0.399, 0.4136, 0.4799, 0.5704, 0.6407, 0.7436)),
    "level": Calibrator((0.346, 0.5325, 0.6137, 0.6788, 0.7365, 0.7855, 0.8307, 0.8647, 0.8954, 0.9105, 0.9231, 0.935, 0.9469, 0.9584, 0.9692, 0.9786, 0.9857, 0.9912, 0.9949, 0.9982), (0.5195, 0.5975, 0.6031, 0.6479, 0.7359, 0.8273, 0.8546, 0.8557, 0.8557, 0.8557, 0.8577, 0.8935, 0.9272, 0.9353, 0.9585, 0.96, 0.9721, 0.9811, 0.9939, 1.0)),
    "rank": Calibrator((0.1343, 0.1647, 0.1849, 0.2138, 0.238, 0.2564, 0.2768, 0.296, 0.3211, 0.3436, 0.3574, 0.3795, 0.4204, 0.4554, 0.4869, 0.52, 0.5522, 0.6365, 0.7161, 0.8198), (0.0417, 0.0833, 0.125, 0.25, 0.3448, 0.3793, 0.3793, 0.3793, 0.3826, 0.3846, 0.4, 0.4, 0.45, 0.5417, 0.5556, 0.5556, 0.5556, 0.5573, 0.5625, 0.6719)),
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

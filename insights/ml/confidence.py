"""`confidence_score`: the calibrated probability that the true rent is within ±10% of the estimate.

Two steps, both fitted on out-of-sample (calibration) rows:
1. a raw probability from the city's empirical distribution of signed normalised residuals
   z = (log y - log ŷ) / σ̂: P(log 0.9 ≤ z σ̂ ≤ log 1.1) = F(log 1.1 / σ̂) - F(log 0.9 / σ̂);
2. isotonic regression of the observed indicator |y/ŷ - 1| ≤ 0.1 on that raw probability, which
   fixes what the location-scale assumption of step 1 gets wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from sklearn.isotonic import IsotonicRegression

from insights.defaults import CONFIDENCE_BAND
from insights.ml.intervals import MondrianScores


@dataclass
class ConfidenceCalibrator:
    """Maps (σ̂, city) to the calibrated probability of landing within ±band of the estimate."""

    band: float = CONFIDENCE_BAND
    signed: MondrianScores = field(default_factory=MondrianScores)
    isotonic: IsotonicRegression | None = None

    def _raw(self, sigma: np.ndarray, group: np.ndarray) -> np.ndarray:
        upper = self.signed.cdf(math.log1p(self.band) / sigma, group)
        # Strictly below the lower edge: the CDF at the largest value that is still outside the band.
        lower = self.signed.cdf(np.nextafter(math.log1p(-self.band) / sigma, -np.inf), group)
        return upper - lower

    def fit(self, z: np.ndarray, sigma: np.ndarray, group: np.ndarray, inside: np.ndarray, *, seed: int = 0) -> ConfidenceCalibrator:
        """Fit on calibration rows: signed normalised residuals z, σ̂, city, and the ±band indicator."""
        self.signed = MondrianScores(min_group_size=self.signed.min_group_size).fit(z, group, seed=seed)
        raw = self._raw(sigma, group)
        self.isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, inside.astype(float))
        return self

    def predict(self, sigma: np.ndarray, group: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for new rows."""
        raw = self._raw(sigma, group)
        if self.isotonic is None:
            return raw
        # IsotonicRegression.predict (out_of_bounds="clip"), without its per-call input validation,
        # which costs ten times the interpolation for the one row of a query's answer.
        iso = self.isotonic
        return np.interp(np.clip(raw, iso.X_min_, iso.X_max_), iso.X_thresholds_, iso.y_thresholds_)

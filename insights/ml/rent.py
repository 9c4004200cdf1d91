"""The rent model: LightGBM on log rent relative to a per-city trend, with calibrated intervals.

Training (`RentModel.fit`), in short:
1. group the rows by listing (`splits.group_labels`) and deal the groups into K folds;
2. build features (`features.FeatureBuilder`), target encodings and neighbourhood rents out of fold;
3. fit one LightGBM per fold on log rent minus the city trend (early stopping on a group split
   *inside* the fold's training rows) to get out-of-fold residuals for every row, then one final
   model on all rows with the folds' average number of trees (+10% for the extra data); with
   `ensemble="folds"` the K fold models predict instead (measured: no better, and K times slower);
4. fit a small LightGBM σ̂(x) of the absolute residual the same way (out of fold);
5. calibrate the conformal intervals (per city) and the confidence score on the out-of-fold rows.
Above `split_above` rows one group split replaces the K folds (train 80%, calibrate on 20%, no
refit), because then 20% less training data costs little and K+1 fits cost a lot.

Choices measured on held-out group splits (benchmarks/bench_rent_model.py and ad-hoc runs):
- Huber loss (alpha 0.2) on log rent beat L2 on log rent: Poland 8.73% vs 9.01% MdAPE (one split,
  both with the k-NN feature), Brazil and Munich about 0.5 points better as well;
- target encoding out of fold vs LightGBM categoricals for district/postcode: equal on Munich
  (17.4% vs 17.3%, 3 splits), better on generated data (error to the true rent 1.2% vs 1.9%);
- the k-NN neighbourhood rent feature (`use_knn`) did not help: Poland 8.93% with, 8.73% without
  (mean of 3 splits), no change on generated data; off by default, kept as an option;
- a monotone constraint on size only: constraining size per room too cost 2% MdAPE on Brazil;
- the per-city linear trend: on generated data trained on 24 months and scored 3-12 months later,
  the mean per-city bias is 2.1% with it and 3.4% without;
- predicting with the fold ensemble instead of one refitted model: no better, 5x slower to score.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from insights.defaults import INTERVAL_LEVEL
from insights.errors import InvalidInput, SchemaMismatch
from insights.ml import explain as explain_module
from insights.ml.comparables import ComparablesIndex
from insights.ml.confidence import ConfidenceCalibrator
from insights.ml.features import TARGET, FeatureBuilder, Inputs, Rows, check_schema, strings
from insights.ml.intervals import MondrianScores, interval_bounds
from insights.ml.metrics import expected_calibration_error, mape, mdape
from insights.ml.splits import group_folds, group_labels, group_split

log = logging.getLogger(__name__)

#: LightGBM settings of the rent model, chosen by measurement on the shared data sets
#: (benchmarks/bench_rent_model.py): smaller steps and more leaves than the defaults, row and column
#: subsampling against overfitting, many trees cut by early stopping.
DEFAULT_PARAMS: dict[str, Any] = {
    # Huber in log space: squared loss for errors under ~20%, absolute beyond, so that a few odd
    # listings do not pull the fit; measured lower MdAPE than L2 on all three real data sets.
    "objective": "huber",
    "alpha": 0.2,
    "learning_rate": 0.05,
    "num_leaves": 63,
    "min_child_samples": 10,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 255,
    "verbose": -1,
}
#: The σ̂ model only has to rank rows by difficulty: small and quick.
SIGMA_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.15,
    "num_leaves": 15,
    "min_child_samples": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "verbose": -1,
}
SIGMA_ROUNDS = 60
MAX_ROUNDS = 5000
EARLY_STOPPING = 100
#: Columns of `RentModel.predict`.
PREDICTION_COLUMNS = ("rent_estimate", "rent_low", "rent_high", "confidence_score")
#: With this much data, bigger steps and bigger leaves lose almost nothing (generated 400k rows:
#: MdAPE 8.19% vs 8.14% at lr 0.1/63 leaves) and need a third of the trees, so training and batch
#: scoring stay fast (1M rows: about a minute to train, over 100k rows/s to score on 2 cores).
LARGE_DATA_PARAMS: dict[str, Any] = {"learning_rate": 0.2, "num_leaves": 127, "min_child_samples": 50}
#: The fold models are kept as the predicting ensemble while they hold at most this many trees in all.
ENSEMBLE_MAX_TREES = 3000


#: Below this many rows LightGBM runs on one thread: with so little work per iteration, thread
#: synchronisation costs more than it saves, and on a busy machine it can cost 10-50x.
SMALL_DATA_ROWS = 50_000


def _threads(n_jobs: int | None, rows: int | None = None) -> int:
    if n_jobs and n_jobs > 0:
        return n_jobs
    if rows is not None and rows < SMALL_DATA_ROWS:
        return 1
    return os.cpu_count() or 1


@dataclass
class _Fitted:
    """Everything a trained model needs at prediction time (kept apart from the settings)."""

    builder: FeatureBuilder
    boosters: list[lgb.Booster]
    sigma_booster: lgb.Booster
    sigma_floor: float
    scores: MondrianScores
    confidence: ConfidenceCalibrator
    comparables: ComparablesIndex
    currencies: dict[str, str]


@dataclass
class RentModel:
    """LightGBM rent model with per-city conformal intervals, confidence, comparables and explanations.

    Settings are plain fields so that a registry can pickle the model with joblib; `feature_schema`
    and `check_schema` let it verify inputs before predicting. After `fit`, `metrics` holds held-out
    figures from the out-of-fold rows (MdAPE, MAPE, interval coverage, confidence ECE; see
    `_holdout_metrics`) plus rows, trees, feature names and training time. `n_jobs=None` uses one
    thread below 50k rows and all cores above.
    """

    level: float = INTERVAL_LEVEL
    params: dict[str, Any] = field(default_factory=dict)
    folds: int = 5
    split_above: int = 300_000
    knn_k: int = 10
    use_knn: bool = False  # measured: Poland MdAPE 8.93% with, 8.73% without (3 splits); generated data: no change
    use_target_encoding: bool = True
    use_trend: bool = True
    monotone_size: bool = True
    monotone_features: tuple[str, ...] = ("size_sqm",)
    min_city_rows: int = 100
    ensemble: str = "refit"
    seed: int = 0
    n_jobs: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    _fitted: _Fitted | None = field(default=None, repr=False)

    # ----- public API ----------------------------------------------------------------------------
    @property
    def feature_schema(self) -> dict[str, str]:
        """Input columns the model reads, with their kind ('float', 'bool', 'str', 'datetime')."""
        return dict(self._require().builder.schema)

    def check_schema(self, frame: pd.DataFrame) -> None:
        """Raise SchemaMismatch naming missing or mistyped columns of `frame`."""
        check_schema(frame, self.feature_schema)

    def fit(self, frame: pd.DataFrame, *, level: float | None = None) -> RentModel:
        """Train on a canonical listing frame (needs `city` and `monthly_rent`); returns self."""
        started = time.perf_counter()
        if level is not None:
            self.level = level
        frame = self._usable(frame)
        y = np.log(frame[TARGET].to_numpy(dtype=float))
        groups = group_labels(frame)
        folds = group_folds(groups, n_splits=self.folds, seed=self.seed)
        builder = FeatureBuilder(
            knn_k=self.knn_k, use_knn=self.use_knn, use_target_encoding=self.use_target_encoding, use_trend=self.use_trend
        )
        X = builder.fit_transform(frame, y, folds)
        r = y - builder.offset(frame)
        if len(frame) > self.split_above:
            boosters, oof, calibration = self._fit_split(X, r, groups, builder)
        else:
            boosters, oof, calibration = self._fit_cross(X, r, groups, folds, builder)
        residual = r[calibration] - oof[calibration]
        sigma_booster, sigma = self._fit_sigma(X[calibration], residual, groups[calibration])
        floor = float(np.quantile(sigma, 0.02))
        sigma = np.maximum(sigma, floor)
        cities = self._cities(frame)[calibration]
        scores = MondrianScores(min_group_size=self.min_city_rows).fit(np.abs(residual) / sigma, cities, seed=self.seed)
        inside = np.abs(np.expm1(residual)) <= ConfidenceCalibrator.band
        calibrator = ConfidenceCalibrator(signed=MondrianScores(min_group_size=self.min_city_rows))
        calibrator.fit(residual / sigma, sigma, cities, inside, seed=self.seed)
        self._fitted = _Fitted(
            builder, boosters, sigma_booster, floor, scores, calibrator,
            ComparablesIndex().fit(frame, seed=self.seed), self._currencies(frame),
        )
        self.metrics = self._holdout_metrics(y[calibration], oof[calibration] + (y - r)[calibration], residual, sigma, cities, groups[calibration])
        self.metrics.update(rows=int(len(frame)), calibration_rows=int(len(residual)), trees=int(sum(b.num_trees() for b in boosters)), models=len(boosters),
                            features=list(builder.names), train_seconds=round(time.perf_counter() - started, 2))
        log.info("rent model trained on %d rows in %.1f s: out-of-fold MdAPE %.2f%%, coverage %.1f%%",
                 len(frame), self.metrics["train_seconds"], 100 * self.metrics["mdape"], 100 * self.metrics["coverage"])
        return self

    def predict(self, frame: pd.DataFrame, *, level: float | None = None) -> pd.DataFrame:
        """`rent_estimate`, `rent_low`, `rent_high` (interval at `level`, default the model's) and `confidence_score`."""
        self._require()
        self.check_schema(frame)
        if len(frame) == 0:
            self._level(level)
            return pd.DataFrame({c: pd.Series(dtype=float) for c in PREDICTION_COLUMNS}, index=frame.index)
        return pd.DataFrame(self._estimates(frame, level), index=frame.index)

    def predict_rows(self, rows: Sequence[Mapping[str, Any]], *, level: float | None = None) -> dict[str, np.ndarray]:
        """`predict` for a few units given as mappings (column -> value, see `features.Rows`): the same
        figures as arrays, without pandas (for one unit, a fraction of a millisecond instead of several)."""
        data = self._rows(rows)
        if len(data) == 0:
            self._level(level)
            return {c: np.empty(0) for c in PREDICTION_COLUMNS}
        return self._estimates(data, level)

    def _level(self, level: float | None) -> float:
        level = self.level if level is None else level
        if not 0.0 < level < 1.0:
            raise InvalidInput(f"level must be between 0 and 1, got {level}")
        return level

    def _estimates(self, data: Inputs, level: float | None) -> dict[str, np.ndarray]:
        fitted = self._require()
        level = self._level(level)
        X = fitted.builder.transform(data)
        threads = _threads(self.n_jobs, len(data))
        log_estimate = fitted.builder.offset(data) + self._mean_prediction(fitted.boosters, X, threads=threads)
        sigma = np.maximum(fitted.sigma_booster.predict(X, num_threads=threads), fitted.sigma_floor)
        cities = self._cities(data)
        low, high = interval_bounds(log_estimate, sigma, fitted.scores.quantile(level, cities))
        return {
            "rent_estimate": np.exp(log_estimate),
            "rent_low": low,
            "rent_high": high,
            "confidence_score": fitted.confidence.predict(sigma, cities),
        }

    def _rows(self, rows: Sequence[Mapping[str, Any]]) -> Rows:
        """`Rows` that carry every column of the input schema (values are checked as they are read)."""
        data = Rows(rows)
        missing = [column for column in self.feature_schema if column not in data.columns]
        if missing and len(data):
            raise SchemaMismatch(f"input does not match the schema of the rent model; missing columns: {', '.join(missing)}",
                                 details={"missing": missing, "mistyped": {}, "expected": self.feature_schema})
        return data

    def comparables(self, frame: pd.DataFrame | Sequence[Mapping[str, Any]], k: int = 5) -> pd.DataFrame:
        """The k most similar training listings of the same city for each row of a frame or of rows
        (mappings, see `features.Rows`); long format, `query_row` = position."""
        fitted = self._require()
        return fitted.comparables.query(frame if isinstance(frame, pd.DataFrame) else self._rows(frame), k)

    def comparable_rows(self, rows: Sequence[Mapping[str, Any]], k: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`comparables` of a few rows without a frame: arrays of query row, row of the model's copy of
        its training listings (`comparables_table`) and distance, in (query row, rank) order."""
        return self._require().comparables.neighbours(self._rows(rows), k)

    @property
    def comparables_table(self) -> pd.DataFrame:
        """The model's compact copy of its training listings (what comparables show)."""
        return self._require().comparables.table

    def explain(self, frame: pd.DataFrame | Sequence[Mapping[str, Any]], top: int = 3) -> pd.DataFrame:
        """Per row: baseline rent (a typical listing of the city and month), the `top` drivers with
        money amounts, and a sentence ('size +310 PLN, location -120 PLN').

        See `insights.ml.explain` for how log-space SHAP values become money (sequentially).
        """
        fitted = self._require()
        if isinstance(frame, pd.DataFrame):
            self.check_schema(frame)
            data = frame
        else:
            data = self._rows(frame)
        builder = fitted.builder
        # SHAP values are linear in the model: the ensemble's are the mean of its members'.
        contributions = self._mean_prediction(fitted.boosters, builder.transform(data), threads=_threads(self.n_jobs, len(data)), pred_contrib=True)
        labels, grouped = explain_module.group_contributions(contributions[:, :-1], builder.names)
        # Baseline: the city's trend level at the listing date plus the trees' mean, i.e. a typical
        # listing of that city and month; the drivers say how this one differs from it.
        baselines = np.exp(builder.offset(data) + contributions[:, -1])
        cities = self._cities(data)
        if "currency" in data.columns:
            currencies = strings(data, "currency")
        else:
            currencies = np.array([fitted.currencies.get(c, "") for c in cities], dtype=object)
        return explain_module.describe(labels, baselines, grouped, currencies, top).set_index(data.index)

    # ----- training steps --------------------------------------------------------------------------
    def _params(self, builder: FeatureBuilder, rows: int) -> dict[str, Any]:
        large = LARGE_DATA_PARAMS if rows > 0.5 * self.split_above else {}
        params = {**DEFAULT_PARAMS, **large, **self.params, "seed": self.seed, "num_threads": _threads(self.n_jobs, rows)}
        if self.monotone_size:
            # More space in the same place never lowers the estimate. Only `size_sqm` is constrained:
            # constraining size per room as well cost 2% MdAPE on Brazil (odd areas in the data).
            params["monotone_constraints"] = [1 if name in self.monotone_features else 0 for name in builder.names]
            params.setdefault("monotone_constraints_method", "intermediate")
        return params

    def _train(self, X: np.ndarray, r: np.ndarray, groups: np.ndarray, builder: FeatureBuilder, rounds: int | None = None) -> lgb.Booster:
        """One LightGBM; without `rounds`, early stopping on a 10% group split of these rows."""
        params = self._params(builder, len(r))
        cats = builder.categorical
        if rounds is not None:
            return lgb.train(params, lgb.Dataset(X, r, categorical_feature=cats, free_raw_data=True), num_boost_round=rounds)
        fit_rows, stop_rows = group_split(groups, test_size=0.1, seed=self.seed + 1)
        train_set = lgb.Dataset(X[fit_rows], r[fit_rows], categorical_feature=cats, free_raw_data=True)
        valid_set = lgb.Dataset(X[stop_rows], r[stop_rows], reference=train_set, categorical_feature=cats)
        booster = lgb.train(params, train_set, num_boost_round=MAX_ROUNDS, valid_sets=[valid_set],
                            callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)])
        # Keep only the trees up to the best iteration: smaller, faster, and predict() needs no argument.
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))

    @staticmethod
    def _mean_prediction(boosters: list[lgb.Booster], X: np.ndarray, *, threads: int, pred_contrib: bool = False) -> np.ndarray:
        total = boosters[0].predict(X, num_threads=threads, pred_contrib=pred_contrib)
        for booster in boosters[1:]:
            total = total + booster.predict(X, num_threads=threads, pred_contrib=pred_contrib)
        return total / len(boosters)

    def _fit_cross(self, X, r, groups, folds, builder) -> tuple[list[lgb.Booster], np.ndarray, np.ndarray]:
        """K fold models for out-of-fold predictions; predictions from their mean (`ensemble="folds"`)
        or from one model refitted on all rows (`"refit"`). "auto" keeps the fold ensemble while it
        stays small enough to score fast (at most `ENSEMBLE_MAX_TREES` trees in all)."""
        oof = np.empty(len(r))
        boosters = []
        for fold in range(self.folds):
            held, kept = folds == fold, folds != fold
            booster = self._train(X[kept], r[kept], groups[kept], builder)
            oof[held] = booster.predict(X[held], num_threads=_threads(self.n_jobs, len(r)))
            boosters.append(booster)
        rounds = [b.num_trees() for b in boosters]
        mode = self.ensemble
        if mode == "auto":
            mode = "folds" if sum(rounds) <= ENSEMBLE_MAX_TREES else "refit"
        if mode == "refit":
            boosters = [self._train(X, r, groups, builder, rounds=int(np.mean(rounds) * 1.1) + 1)]
        return boosters, oof, np.ones(len(r), dtype=bool)

    def _fit_split(self, X, r, groups, builder) -> tuple[list[lgb.Booster], np.ndarray, np.ndarray]:
        """One model on 80% of the groups; the other 20% calibrate."""
        train_rows, calibration_rows = group_split(groups, test_size=0.2, seed=self.seed)
        booster = self._train(X[train_rows], r[train_rows], groups[train_rows], builder)
        oof = np.full(len(r), np.nan)
        oof[calibration_rows] = booster.predict(X[calibration_rows], num_threads=_threads(self.n_jobs, len(r)))
        calibration = np.zeros(len(r), dtype=bool)
        calibration[calibration_rows] = True
        return [booster], oof, calibration

    def _fit_sigma(self, X: np.ndarray, residual: np.ndarray, groups: np.ndarray) -> tuple[lgb.Booster, np.ndarray]:
        """σ̂(x) ≈ E|residual|: out-of-fold values for the calibration rows, and one model on all of them."""
        params = {**SIGMA_PARAMS, "seed": self.seed, "num_threads": _threads(self.n_jobs, len(residual))}
        target = np.abs(residual)
        folds = group_folds(groups, n_splits=min(self.folds, 3) if len(target) > self.split_above // 5 else self.folds, seed=self.seed + 2)
        sigma = np.empty(len(target))
        for fold in np.unique(folds):
            held = folds == fold
            booster = lgb.train(params, lgb.Dataset(X[~held], target[~held]), num_boost_round=SIGMA_ROUNDS)
            sigma[held] = booster.predict(X[held], num_threads=params["num_threads"])
        final = lgb.train(params, lgb.Dataset(X, target), num_boost_round=SIGMA_ROUNDS)
        return final, sigma

    def _holdout_metrics(self, y, log_oof, residual, sigma, cities, groups) -> dict[str, Any]:
        """Held-out figures from the out-of-fold rows; intervals and confidence cross-checked by calibrating
        on four fifths of the groups and scoring the fifth, so no row is scored by its own calibration."""
        rent, estimate = np.exp(y), np.exp(log_oof)
        folds = group_folds(groups, n_splits=5, seed=self.seed + 3)
        inside = np.zeros(len(y), dtype=bool)
        confidence = np.zeros(len(y))
        within = np.abs(np.expm1(residual)) <= ConfidenceCalibrator.band
        for fold in range(5):
            held = folds == fold
            scores = MondrianScores(min_group_size=self.min_city_rows).fit(np.abs(residual[~held]) / sigma[~held], cities[~held])
            q = scores.quantile(self.level, cities[held])
            inside[held] = np.abs(residual[held]) <= q * sigma[held]
            calibrator = ConfidenceCalibrator(signed=MondrianScores(min_group_size=self.min_city_rows))
            calibrator.fit(residual[~held] / sigma[~held], sigma[~held], cities[~held], within[~held])
            confidence[held] = calibrator.predict(sigma[held], cities[held])
        return {
            "mdape": mdape(rent, estimate),
            "mape": mape(rent, estimate),
            "coverage": float(inside.mean()),
            "confidence_ece": expected_calibration_error(confidence, within),
            "level": self.level,
        }

    # ----- helpers ------------------------------------------------------------------------------------
    def _require(self) -> _Fitted:
        if self._fitted is None:
            raise InvalidInput("the rent model is not trained yet: call fit() first")
        return self._fitted

    @staticmethod
    def _cities(data: Inputs) -> np.ndarray:
        return strings(data, "city")

    @staticmethod
    def _currencies(frame: pd.DataFrame) -> dict[str, str]:
        if "currency" not in frame.columns:
            return {}
        pairs = frame[["city", "currency"]].dropna().astype("string")
        return {str(k): str(v) for k, v in pairs.groupby("city")["currency"].agg(lambda s: s.mode().iat[0]).items()}

    @staticmethod
    def _usable(frame: pd.DataFrame) -> pd.DataFrame:
        """Rows with a city and a positive rent; raises if none are left."""
        for column in ("city", TARGET):
            if column not in frame.columns:
                raise InvalidInput(f"training data needs a '{column}' column")
        rent = pd.to_numeric(frame[TARGET], errors="coerce")
        keep = (rent > 0) & frame["city"].notna()
        if keep.sum() < 50:
            raise InvalidInput(f"too few usable training rows ({int(keep.sum())}); need at least 50 with a city and a positive rent")
        return frame[keep.to_numpy()].reset_index(drop=True)

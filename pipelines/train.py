"""The training stage: rent model and occupancy model from the database, evaluated, gated and registered.

Rent: listings are split by listing group (80/20); the model is fitted on the 80% and evaluated on
the 20%, where the current champion is scored too, so that the gate compares both on the same rows.
Occupancy: vacancy spells between leases (with the rent model's estimate as the market rent), or,
when there are no leases, the availability-calendar proxy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from insights.config import Settings
from insights.errors import InvalidInput
from insights.ml import occupancy as occupancy_module
from insights.ml import registry
from insights.ml.metrics import city_median_baseline, evaluate, mdape
from insights.ml.occupancy import OccupancyModel
from insights.ml.rent import RentModel
from insights.ml.schema import conform
from insights.ml.splits import group_labels, group_split, split_frame
from insights.storage import ingest_repo

log = logging.getLogger(__name__)

RENT = "rent"
OCCUPANCY = "occupancy"

#: Fewest listings a rent model is trained on; below this the estimates would mean little.
MIN_TRAIN_ROWS = 200

#: Fewest labelled vacancy spells (or calendar months) for an occupancy model.
MIN_OCCUPANCY_ROWS = 100

Progress = Callable[[str], None]


@dataclass
class TrainOutcome:
    """What one training run did, for the CLI, the nightly run record and the report."""

    rent: registry.Registration | None = None
    occupancy: registry.Registration | None = None
    rent_metrics: dict[str, Any] = field(default_factory=dict)
    occupancy_metrics: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict, repr=False)

    def summary(self) -> dict[str, Any]:
        """A JSON-safe summary."""
        def reg(r: registry.Registration | None) -> dict[str, Any] | None:
            return None if r is None else {"version": r.version, "status": r.status, "reason": r.reason}

        return {"rent": reg(self.rent), "occupancy": reg(self.occupancy), "rows": self.rows,
                "skipped": self.skipped, "rent_metrics": _headline(self.rent_metrics),
                "occupancy_metrics": _headline(self.occupancy_metrics), "baseline": self.baseline}


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, int | float | str)}


def rent_gate(settings: Settings) -> registry.Gate:
    """Promotion needs a median absolute percentage error no worse than the champion's (within tolerance)."""
    return registry.Gate({"mdape": "min"}, tolerance=settings.promotion_tolerance)


def occupancy_gate(settings: Settings) -> registry.Gate:
    """Promotion needs a held-out log loss no worse than the champion's (within tolerance)."""
    return registry.Gate({"log_loss": "min"}, tolerance=settings.promotion_tolerance)


def train_rent(
    listings: pd.DataFrame, *, settings: Settings, level: float | None = None, seed: int = 0,
    progress: Progress = log.info, model: RentModel | None = None,
) -> tuple[registry.Registration, RentModel, dict[str, Any], dict[str, Any]]:
    """Fit, evaluate against the champion on the same held-out rows, and register the rent model.

    `model` is an unfitted `RentModel` with other settings (default: the tuned defaults).
    """
    if len(listings) < MIN_TRAIN_ROWS:
        raise InvalidInput(f"only {len(listings)} listings: at least {MIN_TRAIN_ROWS} are needed to train a rent model")
    train, test = split_frame(listings, test_size=0.2, seed=seed)
    progress(f"rent: training on {len(train):,} listings, evaluating on {len(test):,} held-out listings")
    model = (model or RentModel(seed=seed)).fit(train, level=level or settings.interval_level)
    metrics = evaluate(model, test)
    baseline = {"city_median_mdape": mdape(test["monthly_rent"].to_numpy(float), city_median_baseline(train, test))}
    progress(f"rent: MdAPE {metrics['mdape']:.1%} (city-median baseline {baseline['city_median_mdape']:.1%}), "
             f"coverage {metrics['coverage']:.1%}, confidence ECE {metrics['confidence_ece']:.3f}")
    registration = registry.register(
        settings.models_dir, RENT, model, train_frame=train, metrics=_headline(metrics), gate=rent_gate(settings),
        eval_frame=test, champion_metrics=lambda champion: _score_champion_rent(champion, test),
        params={"level": model.level, "seed": seed, "lightgbm": model.params or "defaults"},
    )
    progress(f"rent: version {registration.version} {registration.status} ({registration.reason})")
    return registration, model, {**metrics, "test_rows": len(test)}, baseline | {"test_frame": test}


def _score_champion_rent(champion: registry.LoadedModel, test: pd.DataFrame) -> dict[str, float]:
    """The champion's headline metrics on the challenger's held-out rows (new columns it never saw are dropped)."""
    frame = conform(test, champion.feature_schema)
    return _headline(evaluate(champion.model, frame))


def occupancy_training_frame(
    rent_model: RentModel, *, leases: pd.DataFrame, properties: pd.DataFrame, listings: pd.DataFrame,
    calendar: pd.DataFrame,
) -> tuple[pd.DataFrame, str]:
    """Labelled rows for the occupancy model and their basis ('let_30d' or 'occupancy')."""
    if not leases.empty:
        spells = occupancy_module.vacancy_spells(leases, properties, listings)
        spells = spells[spells["let_within_30d"].notna() & spells["asking_rent"].notna()].copy()
        if len(spells) >= MIN_OCCUPANCY_ROWS:
            features = spells.assign(listed_at=pd.to_datetime(spells["vacated_at"]))
            spells["market_rent"] = rent_model.predict(conform(features, rent_model.feature_schema))["rent_estimate"].to_numpy()
            return spells.reset_index(drop=True), "let_30d"
    if not calendar.empty:
        monthly = occupancy_module.calendar_occupancy(calendar, properties)
        return monthly, "occupancy"
    return pd.DataFrame(), "none"


def train_occupancy(
    frame: pd.DataFrame, target: str, *, settings: Settings, seed: int = 0, progress: Progress = log.info,
) -> tuple[registry.Registration, OccupancyModel, dict[str, Any]]:
    """Fit on 80% of the units, evaluate on the other 20% (the champion too), and register."""
    unit = frame["unit_id"] if "unit_id" in frame.columns else frame["listing_id"]
    train_idx, test_idx = group_split(group_labels(frame.assign(listing_id=unit.astype("string"))), test_size=0.2, seed=seed)
    train, test = frame.iloc[train_idx].reset_index(drop=True), frame.iloc[test_idx].reset_index(drop=True)
    progress(f"occupancy: training on {len(train):,} rows ({target}), evaluating on {len(test):,}")
    model = OccupancyModel(target=target)  # type: ignore[arg-type]
    model.fit(train)
    metrics = occupancy_module.evaluate(model, test)
    progress(f"occupancy: log loss {metrics['log_loss']:.4f} (constant baseline {metrics['baseline_log_loss']:.4f})")
    registration = registry.register(
        settings.models_dir, OCCUPANCY, model, train_frame=train, metrics=_headline(metrics), gate=occupancy_gate(settings),
        eval_frame=test, champion_metrics=lambda champion: _score_champion_occupancy(champion, test, target),
    )
    progress(f"occupancy: version {registration.version} {registration.status} ({registration.reason})")
    return registration, model, {**metrics, "test_rows": len(test)}


def _score_champion_occupancy(champion: registry.LoadedModel, test: pd.DataFrame, target: str) -> dict[str, float]:
    if getattr(champion.model, "target", None) != target:
        return {"log_loss": float("inf")}  # a champion of another basis cannot be compared: the new basis wins
    return _headline(occupancy_module.evaluate(champion.model, test))


def train_all(
    session_factory: sessionmaker[Session], *, settings: Settings, level: float | None = None, seed: int = 0,
    progress: Progress = log.info,
) -> TrainOutcome:
    """Train both models from the database and write the evaluation report."""
    outcome = TrainOutcome()
    with session_factory() as session:
        listings = ingest_repo.load_listings(session)
        leases = ingest_repo.load_leases(session)
        properties = ingest_repo.load_properties(session)
        calendar = ingest_repo.load_calendar(session)
    outcome.rows = {"listings": len(listings), "leases": len(leases), "properties": len(properties), "calendar_days": len(calendar)}
    registration, rent_model, metrics, extra = train_rent(listings, settings=settings, level=level, seed=seed, progress=progress)
    outcome.rent, outcome.rent_metrics = registration, metrics
    outcome.baseline = {k: v for k, v in extra.items() if k != "test_frame"}
    outcome.artifacts["rent_model"], outcome.artifacts["rent_test"] = rent_model, extra["test_frame"]
    frame, target = occupancy_training_frame(rent_model, leases=leases, properties=properties, listings=listings, calendar=calendar)
    if len(frame) >= MIN_OCCUPANCY_ROWS:
        occ_registration, occ_model, occ_metrics = train_occupancy(frame, target, settings=settings, seed=seed, progress=progress)
        outcome.occupancy, outcome.occupancy_metrics = occ_registration, occ_metrics
        outcome.artifacts["occupancy_model"], outcome.artifacts["occupancy_frame"] = occ_model, frame
    else:
        outcome.skipped.append(f"occupancy: only {len(frame)} labelled rows (need {MIN_OCCUPANCY_ROWS})")
        progress(outcome.skipped[-1])
    from pipelines.report import write_training_report

    outcome.artifacts["report"] = write_training_report(outcome, settings.reports_dir)
    progress(f"report: {outcome.artifacts['report']['markdown']}")
    return outcome

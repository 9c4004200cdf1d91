"""The prediction-refresh stage: the champion's estimate for every stored property, for instant answers."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from sqlalchemy import delete, insert, select

from insights.ml import registry
from insights.ml.scoring import score
from insights.runtime import Runtime
from insights.storage import ingest_repo
from insights.storage.tables import PropertyPrediction, PropertyRow

PAYLOAD_COLUMNS = ("rent_estimate", "rent_low", "rent_high", "confidence_score", "expected_occupancy", "optimal_rent")


def refresh_predictions(runtime: Runtime) -> dict[str, Any]:
    """Score every stored property (market data and every account's portfolio) with the champions and replace the stored predictions in one transaction."""
    models_dir = runtime.settings.models_dir
    if registry.champion_version(models_dir, "rent") is None:
        return {"scored": 0, "reason": "no rent champion"}
    rent = registry.load_champion(models_dir, "rent")
    occupancy = registry.load_champion(models_dir, "occupancy") if registry.champion_version(models_dir, "occupancy") else None
    with runtime.session_factory() as session:
        owners = session.scalars(select(PropertyRow.account_id).distinct()).all()
        frames = [ingest_repo.load_properties(session, account_id=owner) for owner in owners]
    properties = pd.concat([f for f in frames if len(f)]) if any(len(f) for f in frames) else pd.DataFrame()
    if properties.empty:
        return {"scored": 0}
    scored = score(properties.drop(columns=["listed_at"], errors="ignore"), rent, occupancy=occupancy)
    rows = [
        {"property_pk": int(pk), "model_version": rent.version, "payload": _payload(record)}
        for pk, record in zip(properties.index, scored.to_dict("records"), strict=True)
    ]
    with runtime.session_factory.begin() as session:
        session.execute(delete(PropertyPrediction))
        for start in range(0, len(rows), 5000):
            session.execute(insert(PropertyPrediction), rows[start:start + 5000])
    return {"scored": int(scored["error"].isna().sum()), "failed": int(scored["error"].notna().sum()), "model_version": rent.version}


def _payload(record: dict[str, Any]) -> dict[str, Any]:
    payload = {c: (None if record.get(c) is None or (isinstance(record[c], float) and math.isnan(record[c])) else float(record[c]))
               for c in PAYLOAD_COLUMNS}
    payload["error"] = record.get("error")
    return payload

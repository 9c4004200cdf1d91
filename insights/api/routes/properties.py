"""The caller's portfolio: store properties and read their predictions."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query

from insights.api.deps import AuthFirstRoute, RuntimeDep, requires
from insights.api.schemas import ERROR_RESPONSES, PropertiesIn
from insights.errors import ModelNotAvailable
from insights.ml.scoring import score
from insights.services.keys import Principal
from insights.storage import properties_repo
from insights.worker.context import model_cache

#: Up to 1,000 properties of a few hundred bytes each, with room for their `extra` fields.
MAX_BODY_BYTES = 8 * 1024 * 1024

router = APIRouter(prefix="/ai/properties", tags=["properties"], route_class=AuthFirstRoute)
Reader = Annotated[Principal, requires("properties:read")]
Writer = Annotated[Principal, requires("properties:write")]


@router.post("", status_code=200, responses=ERROR_RESPONSES, summary="Create or update properties of your portfolio")
def put_properties(body: PropertiesIn, caller: Writer, runtime: RuntimeDep) -> dict[str, Any]:
    """Upsert by `property_id`; the nightly run scores them, and answers about `prop_...` use them."""
    rows = [p.model_dump() for p in body.properties]
    with runtime.session_factory() as session:
        return {"success": True, **properties_repo.upsert_properties(session, account_id=caller.account_id, rows=rows)}


@router.get("", responses=ERROR_RESPONSES, summary="Your properties, a page at a time")
def get_properties(
    caller: Reader, runtime: RuntimeDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1, limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Properties ordered by id, with the platform's meta block."""
    with runtime.session_factory() as session:
        rows, total = properties_repo.list_properties(session, account_id=caller.account_id, offset=(page - 1) * limit, limit=limit)
    return {
        "success": True,
        "data": [properties_repo.property_to_dict(r) for r in rows],
        "meta": {"current_page": page, "total_pages": max(1, -(-total // limit)), "total_count": total, "limit": limit},
    }


@router.get("/{property_id}/prediction", responses={**ERROR_RESPONSES, 404: {"description": "No such property"}},
            summary="Rent estimate, interval, confidence, occupancy and optimal rent of one property")
def get_prediction(property_id: str, caller: Reader, runtime: RuntimeDep) -> dict[str, Any]:
    """The champion's prediction: the nightly stored one when it is from the current champion, else computed now."""
    with runtime.session_factory() as session:
        row = properties_repo.get_property(session, account_id=caller.account_id, property_id=property_id)
        stored = properties_repo.stored_prediction(session, property_pk=row.id)
    cache = model_cache(runtime.settings.models_dir)
    rent = cache.get("rent")
    if rent is None:
        raise ModelNotAvailable("no rent model has been trained yet")
    if stored is not None and stored.model_version == rent.version:
        prediction, computed = stored.payload, False
    else:
        frame = pd.DataFrame([properties_repo.property_to_dict(row)]).drop(columns=["extra"])
        scored = score(frame, rent, occupancy=cache.get("occupancy")).iloc[0]
        prediction = {k: (None if pd.isna(scored[k]) else float(scored[k])) for k in
                      ("rent_estimate", "rent_low", "rent_high", "confidence_score", "expected_occupancy", "optimal_rent")}
        prediction["error"], computed = scored["error"], True
    return {"success": True, "property": properties_repo.property_to_dict(row), "prediction": prediction,
            "model_version": rent.version, "computed_now": computed}

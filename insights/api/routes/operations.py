"""Operations: the models in service and the batch runs (authenticated, any permission)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from insights.api.deps import AnyCallerDep, RuntimeDep
from insights.api.schemas import ERROR_RESPONSES
from insights.ml import registry
from insights.storage.runs_repo import recent_runs, run_to_dict

router = APIRouter(prefix="/ai", tags=["operations"])


Caller = AnyCallerDep


@router.get("/models", responses=ERROR_RESPONSES, summary="Champion and recent versions of each model, with metrics")
def get_models(caller: Caller, runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=50)] = 10) -> dict[str, Any]:
    """For `rent` and `occupancy`: the champion version and the newest versions with status, reason and held-out metrics."""
    models_dir = runtime.settings.models_dir
    body: dict[str, Any] = {}
    for name in ("rent", "occupancy"):
        versions = registry.list_versions(models_dir, name)[:limit]
        body[name] = {
            "champion": registry.champion_version(models_dir, name),
            "versions": [{k: v.get(k) for k in ("version", "status", "reason", "created_at", "metrics", "rows")} for v in versions],
        }
    return {"success": True, "models": body}


@router.get("/pipeline-runs", responses=ERROR_RESPONSES, summary="Recent batch runs, stage by stage")
def get_pipeline_runs(caller: Caller, runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """Stage records, newest first: status, row counts, metrics (drift, live error), warnings and errors."""
    with runtime.session_factory() as session:
        return {"success": True, "data": [run_to_dict(r) for r in recent_runs(session, limit=limit)]}

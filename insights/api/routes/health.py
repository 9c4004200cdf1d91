"""`GET /health`: is the service able to answer? Redis, the database and the models, each with a status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from insights.api.deps import RuntimeDep
from insights.services.health import check_health

router = APIRouter(tags=["health"])


@router.get("/health", summary="Service health: Redis, database and model status")
def health(runtime: RuntimeDep) -> JSONResponse:
    """200 when Redis and the database answer (models may still be training), else 503."""
    report: dict[str, Any] = check_health(runtime)
    return JSONResponse(report, status_code=200 if report["status"] != "down" else 503)

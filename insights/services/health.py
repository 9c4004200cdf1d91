"""Health of one process's backing services and models."""

from __future__ import annotations

import logging
import time
from typing import Any

from insights.ml import registry
from insights.runtime import Runtime
from insights.storage.session import ping

log = logging.getLogger(__name__)


def _timed(check: Any, name: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # health reports every failure, whatever its type
        # The report is public: it names the kind of failure; the message (hosts, ports, users) goes to the log.
        log.warning("health check: %s is down: %s: %s", name, type(exc).__name__, exc)
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def model_status(runtime: Runtime) -> dict[str, Any]:
    """The champion of each model, or 'missing' before the first training."""
    models: dict[str, Any] = {}
    for name in ("rent", "occupancy"):
        version = registry.champion_version(runtime.settings.models_dir, name)
        models[name] = {"status": "ready" if version else "missing", "champion": version}
    return models


def check_health(runtime: Runtime) -> dict[str, Any]:
    """`status` is `ok`, `degraded` (no model yet) or `down` (Redis or the database unreachable)."""
    redis_state = _timed(runtime.redis.ping, "redis")
    database_state = _timed(lambda: ping(runtime.engine), "database")
    models = model_status(runtime)
    if "down" in (redis_state["status"], database_state["status"]):
        status = "down"
    elif any(m["status"] != "ready" for m in models.values()):
        status = "degraded"
    else:
        status = "ok"
    return {"status": status, "redis": redis_state, "database": database_state, "models": models}

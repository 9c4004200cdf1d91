"""Repository functions for pipeline runs (one row per stage of a batch run)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from insights.storage.tables import PipelineRun, iso_utc, utcnow


def new_run_id() -> str:
    """An id shared by the stages of one batch run."""
    return f"run_{utcnow().strftime('%Y%m%dT%H%M%S')}_{uuid.uuid4().hex[:6]}"


def start_stage(session: Session, *, run_id: str, stage: str) -> int:
    """Record that a stage started; returns the row id."""
    row = PipelineRun(run_id=run_id, stage=stage, status="running")
    session.add(row)
    session.commit()
    return row.id


def finish_stage(
    session: Session, *, stage_id: int, status: str, rows: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None, warnings: list[str] | None = None, error: str | None = None,
) -> None:
    """Record how a stage ended (`succeeded`, `failed` or `skipped`)."""
    row = session.get(PipelineRun, stage_id)
    if row is None:
        return
    row.status = status
    row.finished_at = utcnow()
    row.rows = rows or {}
    row.metrics = metrics or {}
    row.warnings = warnings or []
    row.error = error
    session.commit()


def recent_runs(session: Session, *, limit: int = 50) -> list[PipelineRun]:
    """The most recent stage records, newest first."""
    return list(session.scalars(select(PipelineRun).order_by(PipelineRun.started_at.desc(), PipelineRun.id.desc()).limit(limit)))


def mark_abandoned(session: Session, *, older_than_hours: float) -> int:
    """Stages left `running` by a crashed process are marked `failed` (so a new run can start clean)."""
    from datetime import timedelta

    cutoff = utcnow() - timedelta(hours=older_than_hours)
    rows = session.scalars(select(PipelineRun).where(PipelineRun.status == "running", PipelineRun.started_at < cutoff)).all()
    for row in rows:
        row.status, row.finished_at, row.error = "failed", utcnow(), "abandoned: the process running it stopped"
    session.commit()
    return len(rows)


def run_to_dict(row: PipelineRun) -> dict[str, Any]:
    """The public shape of a stage record."""
    return {
        "run_id": row.run_id, "stage": row.stage, "status": row.status,
        "started_at": iso_utc(row.started_at), "finished_at": iso_utc(row.finished_at),
        "rows": row.rows, "metrics": row.metrics, "warnings": row.warnings, "error": row.error,
    }

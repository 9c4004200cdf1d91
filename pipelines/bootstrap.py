"""First start of `leaseora up`: an empty database gets demo data, trained models and insights."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import func, select

from insights.data.schema import Kind
from insights.runtime import Runtime
from insights.storage.tables import Listing

#: Demo files in the order they are ingested (properties before the leases and calendar that refer to them).
DEMO_FILES: tuple[tuple[str, Kind], ...] = (
    ("properties", Kind.PROPERTIES),
    ("listings", Kind.LISTINGS),
    ("leases", Kind.LEASES),
    ("calendar", Kind.CALENDAR),
)


def database_is_empty(runtime: Runtime) -> bool:
    """True when no listing has been ingested yet."""
    with runtime.session_factory() as session:
        return not session.scalar(select(func.count()).select_from(Listing))


def load_demo_data(runtime: Runtime, *, seed: int = 7, n_properties: int = 4000, say: Callable[[str], Any] = print) -> dict[str, Any]:
    """Generate the demo portfolio under `var/demo` and ingest it; returns the ingest summaries."""
    from pipelines.demo_data import write_demo_data
    from pipelines.ingest import ingest_file

    paths = write_demo_data(runtime.settings.var_dir / "demo", seed=seed, n_properties=n_properties, end=date.today())
    summaries = {}
    for name, kind in DEMO_FILES:
        if name not in paths:
            continue
        summary = ingest_file(paths[name], kind=kind, settings=runtime.settings, session_factory=runtime.session_factory)
        say(f"  ingested {name}: {summary.stored:,} stored, {summary.rejected} rejected, {summary.duplicates} duplicates")
        summaries[name] = summary
    return summaries


def bootstrap(runtime: Runtime, *, say: Callable[[str], Any] = print) -> bool:
    """On an empty database: demo data, both models and the first insights. Returns whether it ran."""
    if not database_is_empty(runtime):
        return False
    say("Empty database: generating and ingesting demo data (first start only)...")
    load_demo_data(runtime, say=say)
    from pipelines.nightly import refresh_all

    refresh_all(runtime, say=say)
    return True

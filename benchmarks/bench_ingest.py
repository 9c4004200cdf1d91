"""Ingest of every shared data set with its preset: counts, and speed of a first ingest and an idempotent re-ingest.

    .venv/bin/python -m benchmarks.bench_ingest [DATABASE_URL]

Each data set goes twice into a throwaway home (and, with a PostgreSQL URL, a private schema that is
dropped afterwards): the first run stores, the second finds every row a duplicate. Writes
benchmarks/results/ingest.json (SQLite) or ingest_postgresql.json.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from insights.config import Settings
from insights.data.presets import PRESETS
from insights.storage.session import make_engine, make_session_factory, migrate
from pipelines.ingest import IngestSummary, ingest_file

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("LEASEORA_SHARED_DATA", HERE.parent.parent / "shared" / "data"))


def measure(preset: str, *, data_dir: Path, database_url: str | None = None) -> list[tuple[IngestSummary, float]]:
    """Ingest one shared data set twice into a throwaway home (and PostgreSQL schema): summaries and seconds."""
    chosen = PRESETS[preset]
    with tempfile.TemporaryDirectory() as home:
        url, admin, schema = database_url, None, None
        if database_url and database_url.startswith(("postgresql", "postgres")):
            schema = f"ingest_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(Settings(DATABASE_URL=database_url).sqlalchemy_url)
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = f"{database_url}{'&' if '?' in database_url else '?'}options=-csearch_path%3D{schema}"
        settings = Settings(LEASEORA_HOME=home, DATABASE_URL=url)
        settings.ensure_dirs()
        engine = make_engine(settings.sqlalchemy_url)
        try:
            migrate(engine)
            factory = make_session_factory(engine)
            results = []
            for _ in range(2):
                started = time.perf_counter()
                summary = ingest_file(data_dir / chosen.filename, kind=chosen.kind, mapping=chosen.mapping, drop=chosen.drop,
                                      constants=chosen.constants, settings=settings, session_factory=factory)
                results.append((summary, time.perf_counter() - started))
            return results
        finally:
            engine.dispose()
            if admin is not None:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                admin.dispose()


def main(argv: list[str]) -> dict:
    """Measure every preset and write the results file."""
    database_url = argv[0] if argv else None
    report: dict = {"database": "postgresql" if database_url else "sqlite", "data_sets": {}}
    for name in PRESETS:
        runs = []
        for run, (summary, seconds) in enumerate(measure(name, data_dir=DATA, database_url=database_url), start=1):
            runs.append({"read": summary.read, "stored": summary.stored, "rejected": summary.rejected,
                         "duplicates": summary.duplicates, "seconds": round(seconds, 2), "rows_per_s": round(summary.read / seconds)})
            print(f"{name:16} run {run}: read {summary.read:>7} stored {summary.stored:>7} rejected {summary.rejected:>3} "
                  f"duplicates {summary.duplicates:>7}  {seconds:6.2f} s  {summary.read / seconds:>9,.0f} rows/s")
        report["data_sets"][name] = runs
    out = HERE / "results" / ("ingest_postgresql.json" if database_url else "ingest.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])

"""The `leaseora` command: set-up, serving, workers and the batch pipelines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from insights import defaults
from insights.config import get_settings
from insights.runtime import Runtime

app = typer.Typer(help="Leaseora insights: rent models, market insights and natural-language queries.", no_args_is_help=True)
console = Console()

HostOpt = Annotated[str, typer.Option(help="Interface to listen on.")]
PortOpt = Annotated[int, typer.Option(help="Port to listen on.")]


def _exit_on_sigterm() -> None:
    """Let SIGTERM end this process as Ctrl-C does, running its `finally` blocks (stopping children and
    the embedded Redis). uvicorn shuts down gracefully on SIGTERM and then raises the signal again;
    with the default handler that would kill the process before it cleans up."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def _serve(runtime: Runtime, host: str, port: int) -> None:
    import uvicorn

    from insights.api.app import create_app

    uvicorn.run(create_app(runtime.settings, runtime=runtime), host=host, port=port, log_level="info")


@app.command()
def serve(host: HostOpt = defaults.API_HOST, port: PortOpt = defaults.API_PORT) -> None:
    """Run the API alone (workers and cron run elsewhere, sharing Redis and the database)."""
    _exit_on_sigterm()
    runtime = Runtime.open(get_settings())
    try:
        _serve(runtime, host, port)
    finally:
        runtime.close()


@app.command()
def worker(burst: Annotated[bool, typer.Option(help="Exit when the queues are empty.")] = False) -> None:
    """Run one RQ worker on the query, webhook and pipeline queues."""
    from insights.worker.context import prepare_worker_process
    from insights.worker.queues import run_worker

    runtime = Runtime.open(get_settings())
    # Load the interpreter and the champions now, so the first query does not wait seconds for them.
    prepare_worker_process(runtime)
    try:
        run_worker(runtime.redis, burst=burst)
    finally:
        runtime.close()


def _child(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "ab")
    # Own process group: Ctrl-C reaches the parent, which then stops the children in order.
    return subprocess.Popen([sys.executable, "-m", "insights.cli", *args], env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


@app.command()
def up(host: HostOpt = defaults.API_HOST, port: PortOpt = defaults.API_PORT) -> None:
    """Bring the whole service up on embedded defaults: demo data on first start, API, a worker and the cron scheduler."""
    _exit_on_sigterm()
    settings = get_settings()
    runtime = Runtime.open(settings)
    from pipelines.bootstrap import bootstrap

    bootstrap(runtime, say=lambda message: console.print(message, markup=False))
    env = {**os.environ, "REDIS_URL": runtime.redis_url, "LEASEORA_HOME": str(settings.home)}
    children = [
        _child(["worker"], env, settings.logs_dir / "worker.log"),
        _child(["cron"], env, settings.logs_dir / "cron.log"),
    ]
    console.print(f"[bold green]Leaseora is up[/] at http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    console.print(f"  health: http://{host}:{port}/health   public feed: http://{host}:{port}/ai/insights")
    console.print("  an API key: .venv/bin/leaseora keys create --account demo --plan standard")
    console.print(f"  logs: {settings.logs_dir}   Ctrl-C stops everything")
    try:
        _serve(runtime, host, port)
    finally:
        _stop(children)
        runtime.close()


@app.command("demo-data")
def demo_data(
    out: Annotated[Path | None, typer.Option(help="Folder for the CSV files (default: LEASEORA_HOME/var/demo).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 7,
    properties: Annotated[int, typer.Option(help="Properties in the managed portfolio.")] = 4000,
) -> None:
    """Generate a realistic demo portfolio (listings, leases, properties, calendar) with its true parameters."""
    from pipelines.demo_data import write_demo_data

    settings = get_settings()
    folder = out or settings.var_dir / "demo"
    paths = write_demo_data(folder, seed=seed, n_properties=properties)
    for kind, path in paths.items():
        console.print(f"{kind:>10}: {path}")


@app.command()
def cron(
    schedule: Annotated[str | None, typer.Option(help="Cron string for the nightly run (default: LEASEORA_NIGHTLY_CRON or 0 2 * * *).")] = None,
) -> None:
    """Run RQ's cron scheduler: it enqueues the nightly chain on the pipeline queue, where workers run it."""
    import logging

    from insights.worker.cron import build_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s cron %(levelname)s %(message)s")
    settings = get_settings()
    runtime = Runtime.open(settings)
    try:
        build_scheduler(runtime.redis, settings, schedule=schedule).start()
    finally:
        runtime.close()


keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option(help="Account name (created when new).")],
    plan: Annotated[str | None, typer.Option(help="standard, professional or enterprise (new accounts: standard).")] = None,
    permission: Annotated[list[str] | None, typer.Option("--permission", help="ai:query, properties:read, properties:write, admin (repeatable; default all but admin).")] = None,
) -> None:
    """Create a key. The key is printed once and stored only as a hash: keep it."""
    from insights.services.keys import create_key

    runtime = Runtime.open(get_settings())
    try:
        with runtime.session_factory() as session:
            created = create_key(session, secret=runtime.settings.resolved_secret(), account_name=account, plan=plan, permissions=permission)
    finally:
        runtime.close()
    console.print(f"account {account} (plan {created.plan}), permissions {', '.join(created.permissions)}")
    console.print("API key (shown once):")
    print(created.key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys: prefix, account, plan, permissions, created, revoked, last used (never the key)."""
    from rich.table import Table

    from insights.services.keys import format_key_table, list_keys

    runtime = Runtime.open(get_settings())
    try:
        with runtime.session_factory() as session:
            rows = format_key_table(list_keys(session))
    finally:
        runtime.close()
    table = Table(*(rows[0].keys() if rows else ["prefix"]))
    for row in rows:
        table.add_row(*row.values())
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="The key's prefix, as `keys list` shows it.")]) -> None:
    """Revoke a key: it stops authenticating within 5 seconds (API processes cache verified keys that long)."""
    from insights.services.keys import revoke_key

    runtime = Runtime.open(get_settings())
    try:
        with runtime.session_factory() as session:
            found = revoke_key(session, prefix=prefix)
    finally:
        runtime.close()
    if not found:
        console.print(f"[red]no key with prefix {prefix}[/]")
        raise typer.Exit(1)
    console.print(f"revoked {prefix}")


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="CSV (plain or .gz) or Parquet file.")],
    kind: Annotated[str | None, typer.Option(help="listings, leases, properties or calendar (default listings, or the preset's).")] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="CANONICAL=SOURCE column mapping (repeatable).")] = None,
    drop: Annotated[list[str] | None, typer.Option("--drop", help="Source column to ignore (repeatable).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="CANONICAL=VALUE constant for a column the file lacks (repeatable).")] = None,
    preset: Annotated[str | None, typer.Option(help="A documented mapping: poland, brazil, munich, albany-listings, albany-calendar.")] = None,
) -> None:
    """Validate and store a file; rejected rows go to var/rejects with their reasons. Re-ingesting stores nothing twice."""
    from pipelines.ingest import ingest_command

    text, code = ingest_command(file, kind=kind, maps=map_ or [], drops=drop or [], sets=set_ or [], preset=preset,
                                settings=get_settings())
    console.print(text, markup=False)
    raise typer.Exit(code)


@app.command()
def train(
    level: Annotated[float | None, typer.Option(help="Prediction-interval level (default LEASEORA_INTERVAL_LEVEL, 0.9).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the split and the models.")] = 0,
) -> None:
    """Train the rent and occupancy models from the database, write the evaluation report, register and gate them."""
    from pipelines.train import train_all

    runtime = Runtime.open(get_settings())
    try:
        with console.status("training...") as status:
            def progress(message: str) -> None:
                status.update(message)
                console.print(message, markup=False)

            outcome = train_all(runtime.session_factory, settings=runtime.settings, level=level, seed=seed, progress=progress)
    finally:
        runtime.close()
    console.print_json(data=outcome.summary())


@app.command()
def predict(
    file: Annotated[Path, typer.Argument(help="Portfolio to score: CSV (plain or .gz) or Parquet.")],
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet).")],
    map_: Annotated[list[str] | None, typer.Option("--map", help="CANONICAL=SOURCE (repeatable).")] = None,
    drop: Annotated[list[str] | None, typer.Option("--drop", help="Source column to ignore (repeatable).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="CANONICAL=VALUE (repeatable).")] = None,
    level: Annotated[float | None, typer.Option(help="Prediction-interval level, e.g. 0.9.")] = None,
) -> None:
    """Score a portfolio with the champion: estimate, interval, confidence, occupancy and optimal rent per row."""
    from pipelines.score import score_file

    counts = score_file(file, out, settings=get_settings(), maps=map_ or [], drops=drop or [], sets=set_ or [], level=level)
    console.print(f"scored {counts['scored']:,} rows, {counts['failed']:,} with an error column; wrote {out}")


models_app = typer.Typer(help="The model registry: list versions, promote, roll back.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(name: Annotated[str | None, typer.Argument(help="rent or occupancy (default both).")] = None) -> None:
    """Versions with their status and held-out metrics; the champion is marked."""
    from rich.table import Table

    from insights.ml import registry

    settings = get_settings()
    table = Table("model", "version", "status", "mdape / log loss", "created", "reason")
    for model in [name] if name else ["rent", "occupancy"]:
        for meta in registry.list_versions(settings.models_dir, model):
            metrics = meta.get("metrics") or {}
            score = metrics.get("mdape", metrics.get("log_loss"))
            table.add_row(model, meta["version"], meta.get("status", ""), f"{score:.4f}" if isinstance(score, float) else "",
                          str(meta.get("created_at", ""))[:19], str(meta.get("reason", ""))[:60])
    console.print(table)


@models_app.command("promote")
def models_promote(version: Annotated[str, typer.Argument()], name: Annotated[str, typer.Option(help="rent or occupancy")] = "rent") -> None:
    """Make VERSION the champion (manual override of the gate)."""
    from insights.ml import registry

    registry.promote(get_settings().models_dir, name, version)
    console.print(f"{name}: {version} is now the champion")


@models_app.command("rollback")
def models_rollback(name: Annotated[str, typer.Option(help="rent or occupancy")] = "rent") -> None:
    """Restore the previous champion."""
    from insights.ml import registry

    version = registry.rollback(get_settings().models_dir, name)
    console.print(f"{name}: rolled back to {version}")


@app.command()
def insights() -> None:
    """Generate market insights from the database and publish those that pass the privacy and confidence gates."""
    from insights.storage.runs_repo import new_run_id
    from pipelines.publish_insights import publish_insights

    runtime = Runtime.open(get_settings())
    try:
        publish_insights(runtime, run_id=new_run_id(), say=lambda m: console.print(m, markup=False))
    finally:
        runtime.close()


@app.command()
def nightly() -> None:
    """Run the nightly chain now: ingest the inbox, monitor, train and gate, publish insights, refresh predictions."""
    from insights.errors import Conflict
    from pipelines.nightly import run_nightly

    runtime = Runtime.open(get_settings())
    try:
        result = run_nightly(runtime, say=lambda m: console.print(m, markup=False))
    except Conflict as exc:
        console.print(f"[yellow]{exc.message}[/]")
        raise typer.Exit(3) from None
    finally:
        runtime.close()
    console.print(f"nightly {result['run_id']}: {result['status']}")
    raise typer.Exit(0 if result["status"] == "succeeded" else 1)


@app.command()
def runs(limit: Annotated[int, typer.Option(help="How many stage records.")] = 30) -> None:
    """Recent pipeline runs, stage by stage, with warnings (drift, live error, rejected challengers)."""
    from rich.table import Table

    from insights.storage.runs_repo import recent_runs, run_to_dict

    runtime = Runtime.open(get_settings())
    try:
        with runtime.session_factory() as session:
            rows = [run_to_dict(r) for r in recent_runs(session, limit=limit)]
    finally:
        runtime.close()
    table = Table("run", "stage", "status", "started", "finished", "warnings / error")
    for row in rows:
        note = row["error"] or "; ".join(row["warnings"] or [])
        style = "red" if row["status"] == "failed" else "yellow" if row["warnings"] else None
        table.add_row(row["run_id"], row["stage"], row["status"], (row["started_at"] or "")[:19],
                      (row["finished_at"] or "")[:19], ("WARNING " if row["warnings"] and not row["error"] else "") + note[:120], style=style)
    console.print(table)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A question, e.g. \"What is the optimal rent for a 2-bedroom apartment in Berlin?\"")],
    json_: Annotated[bool, typer.Option("--json", help="Print exactly the object a completed query holds.")] = False,
) -> None:
    """Answer a question synchronously with the same interpreter and models as POST /ai/query."""
    import json

    from insights.errors import LeaseoraError
    from insights.query.ask import ask as answer, format_answer

    try:
        payload = answer(question, settings=get_settings())
    except LeaseoraError as exc:
        if json_:
            print(json.dumps({"status": "failed", "error": {"code": exc.code, "message": exc.message}}))
        else:
            console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1) from None
    if json_:
        print(json.dumps(payload, ensure_ascii=False, allow_nan=False))
    else:
        console.print(format_answer(payload), markup=False)


def main() -> None:
    """Entry point for `python -m insights.cli`."""
    app()


if __name__ == "__main__":
    main()

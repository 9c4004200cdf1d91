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
from insights.config import Settings, get_settings
from insights.runtime import Runtime

app = typer.Typer(help="Leaseora insights: rent models, market insights and natural-language queries.", no_args_is_help=True)
console = Console()

HostOpt = Annotated[str, typer.Option(help="Interface to listen on.")]
PortOpt = Annotated[int, typer.Option(help="Port to listen on.")]


def _serve(runtime: Runtime, host: str, port: int) -> None:
    import uvicorn

    from insights.api.app import create_app

    uvicorn.run(create_app(runtime.settings, runtime=runtime), host=host, port=port, log_level="info")


@app.command()
def serve(host: HostOpt = defaults.API_HOST, port: PortOpt = defaults.API_PORT) -> None:
    """Run the API alone (workers and cron run elsewhere, sharing Redis and the database)."""
    runtime = Runtime.open(get_settings())
    try:
        _serve(runtime, host, port)
    finally:
        runtime.close()


@app.command()
def worker(burst: Annotated[bool, typer.Option(help="Exit when the queues are empty.")] = False) -> None:
    """Run one RQ worker on the query, webhook and pipeline queues."""
    from insights.worker.queues import run_worker

    runtime = Runtime.open(get_settings())
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
    settings = get_settings()
    runtime = Runtime.open(settings)
    from pipelines.bootstrap import bootstrap

    bootstrap(runtime, say=console.print)
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

    from rq.cron import CronScheduler

    from insights.worker.tasks import requeue_stale_queries, run_nightly

    logging.basicConfig(level=logging.INFO, format="%(asctime)s cron %(levelname)s %(message)s")
    settings = get_settings()
    runtime = Runtime.open(settings)
    try:
        scheduler = CronScheduler(connection=runtime.redis, name=f"leaseora-{os.getpid()}")
        scheduler.register(run_nightly, queue_name=defaults.PIPELINE_QUEUE, cron=schedule or settings.nightly_cron,
                           job_timeout=defaults.NIGHTLY_JOB_TIMEOUT, name="nightly")
        # Queries recorded while Redis was down are put back on the queue once it answers again.
        scheduler.register(requeue_stale_queries, queue_name=defaults.QUERY_QUEUE, interval=60, job_timeout=60,
                           name="requeue-stale-queries")
        scheduler.start()
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
    """Revoke a key: it stops authenticating at once."""
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


def main() -> None:
    """Entry point for `python -m insights.cli`."""
    app()


if __name__ == "__main__":
    main()

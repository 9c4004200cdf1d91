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


def main() -> None:
    """Entry point for `python -m insights.cli`."""
    app()


if __name__ == "__main__":
    main()

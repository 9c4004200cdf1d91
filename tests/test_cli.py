"""The `leaseora` command end to end in-process: ingest a real data set, train, predict a portfolio, the registry."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from insights.cli import app
from insights.config import get_settings

runner = CliRunner()


@pytest.fixture
def home(settings, engine, monkeypatch) -> Path:
    """The CLI reads its settings from the environment: point it at the test's home and databases."""
    monkeypatch.setenv("LEASEORA_HOME", str(settings.home))
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("LEASEORA_SECRET_KEY", "test-secret-not-for-production")
    get_settings.cache_clear()
    yield settings.home
    get_settings.cache_clear()


def invoke(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result


def test_ingest_train_predict_and_models(home: Path, shared_data: Path, tmp_path: Path) -> None:
    first = invoke("ingest", str(shared_data / "munich_rent99.csv"), "--preset", "munich")
    assert first.exit_code == 0, first.output
    assert "stored" in first.output and "3082" in first.output.replace(",", "")
    again = invoke("ingest", str(shared_data / "munich_rent99.csv"), "--preset", "munich")
    assert again.exit_code == 0 and "duplicates" in again.output

    trained = invoke("train")
    assert trained.exit_code == 0, trained.output
    assert '"status": "champion"' in trained.output
    assert list((home / "var" / "reports").glob("train-*/report.md"))

    portfolio = tmp_path / "portfolio.csv"
    pd.DataFrame({
        "unit": ["a", "b", "c"], "town": ["Munich", "Munich", ""], "area": [45, 90, 60], "built": [1960, 1995, 1970],
    }).to_csv(portfolio, index=False)
    out = tmp_path / "scored.csv"
    scored = invoke("predict", str(portfolio), "--out", str(out), "--map", "city=town", "--map", "size_sqm=area",
                    "--map", "year_built=built", "--level", "0.8")
    assert scored.exit_code == 0, scored.output
    table = pd.read_csv(out)
    assert list(table.columns[:4]) == ["unit", "town", "area", "built"]  # the input columns, then the outputs
    assert {"rent_estimate", "rent_low", "rent_high", "confidence_score", "model_version", "error"} <= set(table.columns)
    ok = table[table["unit"] != "c"]
    assert (ok["rent_low"] < ok["rent_estimate"]).all() and (ok["rent_estimate"] < ok["rent_high"]).all()
    assert ok["rent_estimate"].iloc[1] > ok["rent_estimate"].iloc[0]  # twice the space, same city
    assert table.loc[table["unit"] == "c", "error"].iloc[0] == "missing city"

    listed = invoke("models", "list")
    assert listed.exit_code == 0 and "champion" in listed.output


def test_ingest_reports_an_unusable_file_with_exit_code_1(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = invoke("ingest", str(empty))
    assert result.exit_code == 1
    assert "empty" in result.output


def test_demo_data_writes_files_with_their_truth(home: Path, tmp_path: Path) -> None:
    result = invoke("demo-data", "--out", str(tmp_path / "demo"), "--properties", "200")
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "demo").iterdir()} >= {"listings.csv", "leases.csv", "properties.csv", "truth.json"}


def test_serve_stops_its_embedded_redis_on_sigterm(tmp_path: Path) -> None:
    """`leaseora serve` (and `up`, which shares the handling) runs its clean-up when stopped with SIGTERM:
    uvicorn re-raises the signal after its graceful shutdown, which used to kill the process first and
    leave the embedded redis-server it had started running."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(LEASEORA_HOME=str(tmp_path), LEASEORA_SECRET_KEY="test-secret-not-for-production")
    process = subprocess.Popen([sys.executable, "-m", "insights.cli", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        redis_pid = int((tmp_path / "var" / "redis" / "redis.pid").read_text())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10
        while Path(f"/proc/{redis_pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{redis_pid}").exists(), "the embedded redis-server outlived the API"
        assert not (tmp_path / "var" / "redis" / "redis.url").exists()
    finally:
        if process.poll() is None:
            process.kill()
        pid_file = tmp_path / "var" / "redis" / "redis.pid"
        if pid_file.exists() and Path(f"/proc/{pid_file.read_text().strip()}").exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)  # never leave a server behind, even on failure

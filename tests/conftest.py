"""Shared fixtures: every test gets its own LEASEORA_HOME, database and a clean Redis.

With `TEST_DATABASE_URL` (PostgreSQL) each test gets a private schema in that database; without
it, a SQLite file under the test's home. With `TEST_REDIS_URL` tests use that Redis (flushed per
test); without it, one embedded redis-server for the session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from insights.config import Settings
from insights.runtime import Runtime
from insights.services.redis_server import EmbeddedRedis
from insights.storage.session import make_engine, make_session_factory, migrate

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LEASEORA_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data sets (../shared/data)."""
    if not SHARED_DATA.exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set LEASEORA_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: the machine's (TEST_REDIS_URL) or an embedded server for this session."""
    configured = os.environ.get("TEST_REDIS_URL")
    if configured:
        yield configured
        return
    embedded = EmbeddedRedis(tmp_path_factory.mktemp("redis") / "var" / "redis")
    yield embedded.ensure()
    embedded.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a flushed Redis database."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _postgres_url_with_schema(base: str, schema: str) -> str:
    url = base
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A private, empty database: a PostgreSQL schema (TEST_DATABASE_URL) or a SQLite file."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if not configured:
        yield f"sqlite:///{tmp_path / 'var' / 'leaseora.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_postgres_url_with_schema(configured, "public"))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_url_with_schema(configured, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str, redis_client: redis.Redis) -> Settings:
    """Settings for a private home, database and (flushed) Redis."""
    home = tmp_path
    value = Settings(
        LEASEORA_HOME=str(home),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        LEASEORA_SECRET_KEY="test-secret-not-for-production",
    )
    value.ensure_dirs()
    return value


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """A migrated engine on the test's database."""
    value = make_engine(settings.sqlalchemy_url)
    migrate(value)
    yield value
    value.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Session factory on the test's database."""
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session, closed after the test."""
    with session_factory() as value:
        yield value


@pytest.fixture
def runtime(settings: Settings, engine: Engine, session_factory: sessionmaker[Session], redis_url: str) -> Iterator[Runtime]:
    """A process runtime on the test's database and Redis (the test owns the connections)."""
    value = Runtime(settings=settings, engine=engine, session_factory=session_factory, redis_url=redis_url)
    yield value
    if value._redis is not None:
        value._redis.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    """Real HTTP through the app (in-process ASGI transport) on the test's runtime."""
    from insights.api.app import create_app

    with TestClient(create_app(runtime.settings, runtime=runtime), raise_server_exceptions=False) as value:
        yield value


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Champion models trained once per session on a small generated portfolio (their own home and SQLite).

    Tests copy the folder into their own home: `shutil.copytree(trained_models, settings.models_dir, dirs_exist_ok=True)`.
    """
    from insights.data.schema import Kind
    from pipelines.demo_data import write_demo_data
    from pipelines.ingest import ingest_file
    from pipelines.train import train_all

    home = tmp_path_factory.mktemp("trained")
    settings = Settings(LEASEORA_HOME=str(home), LEASEORA_SECRET_KEY="x")
    settings.ensure_dirs()
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    factory = make_session_factory(engine)
    files = write_demo_data(home / "demo", seed=5, n_properties=500)
    for name, kind in (("properties", Kind.PROPERTIES), ("listings", Kind.LISTINGS), ("leases", Kind.LEASES)):
        ingest_file(files[name], kind=kind, settings=settings, session_factory=factory)
    train_all(factory, settings=settings, progress=lambda _: None)
    engine.dispose()
    return settings.models_dir

"""One `Settings` object, read from the environment once per process and passed down.

`LEASEORA_HOME` holds everything a run writes: the model registry in `models/` and the database,
Redis files, reports, rejects and logs in `var/`. Two homes never share state.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from insights import defaults


class Settings(BaseSettings):
    """Configuration of every Leaseora process (API, worker, cron, CLI)."""

    model_config = SettingsConfigDict(env_prefix="LEASEORA_UNUSED_", extra="ignore")

    home: Path = Field(default_factory=Path.cwd, validation_alias="LEASEORA_HOME")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    secret_key: str | None = Field(default=None, validation_alias="LEASEORA_SECRET_KEY")
    nightly_cron: str = Field(default=defaults.NIGHTLY_CRON, validation_alias="LEASEORA_NIGHTLY_CRON")
    interval_level: float = Field(default=defaults.INTERVAL_LEVEL, gt=0.5, lt=1.0, validation_alias="LEASEORA_INTERVAL_LEVEL")
    promotion_tolerance: float = Field(
        default=defaults.PROMOTION_TOLERANCE, ge=0.0, lt=1.0, validation_alias="LEASEORA_PROMOTION_TOLERANCE"
    )
    min_market_size: int = Field(default=defaults.MIN_MARKET_SIZE, validation_alias="LEASEORA_MIN_MARKET_SIZE")
    publish_confidence_floor: float = Field(
        default=defaults.PUBLISH_CONFIDENCE_FLOOR, ge=0.0, le=1.0, validation_alias="LEASEORA_PUBLISH_CONFIDENCE_FLOOR"
    )
    drift_psi_threshold: float = Field(default=0.2, gt=0, validation_alias="LEASEORA_DRIFT_PSI_THRESHOLD")
    live_error_threshold: float = Field(default=0.15, gt=0, validation_alias="LEASEORA_LIVE_ERROR_THRESHOLD")

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("min_market_size", mode="after")
    @classmethod
    def _privacy_floor(cls, value: int) -> int:
        if value < defaults.MIN_MARKET_SIZE_FLOOR:
            raise ValueError(f"LEASEORA_MIN_MARKET_SIZE must be at least {defaults.MIN_MARKET_SIZE_FLOOR}")
        return value

    @property
    def models_dir(self) -> Path:
        """The model registry: `<model>/<version>/{model.joblib, metadata.json}`."""
        return self.home / "models"

    @property
    def var_dir(self) -> Path:
        """Everything else a run writes: database, Redis files, reports, rejects, logs."""
        return self.home / "var"

    @property
    def inbox_dir(self) -> Path:
        """Files dropped here are ingested by the next nightly run."""
        return self.var_dir / "inbox"

    @property
    def reports_dir(self) -> Path:
        """Evaluation and ingest reports."""
        return self.var_dir / "reports"

    @property
    def rejects_dir(self) -> Path:
        """Rejected rows of each ingest, with their reasons."""
        return self.var_dir / "rejects"

    @property
    def logs_dir(self) -> Path:
        """Logs of the processes `leaseora up` starts."""
        return self.var_dir / "logs"

    @property
    def redis_dir(self) -> Path:
        """Socket, append-only file and pid file of the embedded Redis server."""
        return self.var_dir / "redis"

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, with SQLite under `var/` when `DATABASE_URL` is not set."""
        if not self.database_url:
            return f"sqlite:///{self.var_dir / 'leaseora.db'}"
        url = self.database_url
        # psycopg 3 is the driver we ship; plain postgresql:// URLs would ask SQLAlchemy for psycopg2.
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url

    def ensure_dirs(self) -> None:
        """Create the home's folders (idempotent)."""
        for path in (self.models_dir, self.var_dir, self.inbox_dir, self.reports_dir, self.rejects_dir, self.logs_dir):
            path.mkdir(parents=True, exist_ok=True)

    def resolved_secret(self) -> str:
        """The server-side secret for key hashing and webhook signing.

        `LEASEORA_SECRET_KEY` when set; otherwise a random secret created once in `var/secret.key`,
        so that a demo home keeps working across restarts without configuration.
        """
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret.key"
        known = _FILE_SECRETS.get(path)
        if known is not None:  # read once per process: every authenticated request asks for it
            return known
        if not path.exists():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_hex(32))
            tmp.chmod(0o600)
            try:
                path.hardlink_to(tmp)  # fails if another process won the race; keep theirs
            except FileExistsError:
                pass
            tmp.unlink(missing_ok=True)
        _FILE_SECRETS[path] = value = path.read_text().strip()
        return value


#: Secrets read from `var/secret.key`, per path (the file is written once and never changes).
_FILE_SECRETS: dict[Path, str] = {}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()

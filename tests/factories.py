"""Factories for tests: accounts with keys, demo data in a database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from insights.config import Settings
from insights.services.keys import create_key


@dataclass(frozen=True)
class KeyFactoryResult:
    """A created key and the headers that use it."""

    key: str
    prefix: str
    account_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_key(session: Session, settings: Settings, *, account: str = "acme", plan: str | None = None,
             permissions: list[str] | None = None) -> KeyFactoryResult:
    """Create an account (when new) and an API key for it."""
    created = create_key(session, secret=settings.resolved_secret(), account_name=account, plan=plan, permissions=permissions)
    return KeyFactoryResult(key=created.key, prefix=created.prefix, account_id=created.account_id)

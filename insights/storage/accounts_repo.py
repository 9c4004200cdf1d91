"""Repository functions for accounts and API keys: keyword-only, typed, no business rules.

They add, flush and query; committing is the caller's decision (the services in
`insights.services.keys` commit once per unit of work).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from insights.storage.tables import Account, ApiKey


def get_account_by_name(session: Session, *, name: str) -> Account | None:
    """The account called `name`, or None."""
    return session.scalar(select(Account).where(Account.name == name))


def create_account(session: Session, *, name: str, plan: str) -> Account:
    """Add a new account and flush it so that it has an id."""
    account = Account(name=name, plan=plan)
    session.add(account)
    session.flush()
    return account


def prefix_exists(session: Session, *, prefix: str) -> bool:
    """Whether any key (active or revoked) already uses `prefix`."""
    return session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is not None


def add_api_key(
    session: Session, *, account_id: int, prefix: str, key_hash: str, permissions: Sequence[str]
) -> ApiKey:
    """Add a key row (hash only; the plain key never reaches this layer) and flush it."""
    row = ApiKey(account_id=account_id, prefix=prefix, key_hash=key_hash, permissions=list(permissions))
    session.add(row)
    session.flush()
    return row


def find_key_with_account(session: Session, *, prefix: str) -> tuple[ApiKey, Account] | None:
    """The key with public `prefix` and its account, in one query on the unique prefix index.

    Revoked keys are returned too: the caller first checks the hash, so that only the owner of a
    key learns that it was revoked.
    """
    statement = (
        select(ApiKey, Account)
        .join(Account, Account.id == ApiKey.account_id)
        .where(ApiKey.prefix == prefix)
        # A long-lived session must still see a revocation committed elsewhere.
        .execution_options(populate_existing=True)
    )
    row = session.execute(statement).first()
    return (row[0], row[1]) if row is not None else None


def list_keys_with_accounts(session: Session) -> list[tuple[ApiKey, Account]]:
    """Every key with its account, oldest first."""
    statement = select(ApiKey, Account).join(Account, Account.id == ApiKey.account_id).order_by(ApiKey.id)
    return [(key, account) for key, account in session.execute(statement).all()]


def revoke_key(session: Session, *, prefix: str, at: datetime) -> bool:
    """Mark the active key with `prefix` revoked at `at`; False when no such active key exists."""
    statement = (
        update(ApiKey)
        .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
        .values(revoked_at=at)
        .execution_options(synchronize_session=False)
    )
    result = session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


def touch_key(session: Session, *, key_id: int, at: datetime) -> None:
    """Record that key `key_id` was used at `at` (a single UPDATE, no read)."""
    statement = (
        update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at).execution_options(synchronize_session=False)
    )
    session.execute(statement)

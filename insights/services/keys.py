"""API keys: creation, authentication, permissions, listing and revocation.

A key looks like `lsk_live_<id>_<secret>`:

    lsk_live_      recognisable prefix (secret scanners, humans)
    <id>           8 characters [a-z0-9], public; `lsk_live_<id>` is the key's `prefix` in listings
    <secret>       `secrets.token_urlsafe(32)`: 32 random bytes (256 bits), 43 characters

The plain key is returned once by `create_key` and never stored: the database keeps
HMAC-SHA-256(server secret, whole key) in hex. `authenticate` finds the row by its unique prefix
(one indexed query joined with the account), recomputes the HMAC and compares it with
`hmac.compare_digest`.

Nothing is cached: a revocation takes effect on the very next request, and the one query on a
unique index costs well under a millisecond. `last_used_at` is written at most once per
`LAST_USED_RESOLUTION` seconds per key, so authentication does not turn every request into a write.

Permissions: `ai:query`, `properties:read`, `properties:write`, `admin`; `admin` implies all others.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from insights.errors import AuthenticationFailed, Conflict, InvalidInput, PermissionDenied
from insights.services.ratelimit import plan_limit
from insights.storage import accounts_repo
from insights.storage.tables import Account, ApiKey, utcnow

KEY_PREFIX = "lsk_live_"
"""Start of every key; makes leaked keys recognisable to secret scanners."""

PUBLIC_ID_LENGTH = 8
"""Length of the public id after `KEY_PREFIX` (36**8 ≈ 2.8e12 ids)."""

SECRET_BYTES = 32
"""Random bytes in the secret part of a key (256 bits of entropy)."""

PERMISSIONS: tuple[str, ...] = ("ai:query", "properties:read", "properties:write", "admin")
"""Every permission a key can carry."""

ADMIN = "admin"
"""The permission that implies every other one."""

DEFAULT_PERMISSIONS: tuple[str, ...] = ("ai:query", "properties:read", "properties:write")
"""Permissions of a key created without an explicit list: everything but `admin`."""

DEFAULT_PLAN = "standard"
"""Plan of an account created without an explicit plan."""

LAST_USED_RESOLUTION = 60
"""Seconds: `last_used_at` is refreshed only when older than this, to keep authentication read-only."""

VERIFIED_KEY_TTL = 5.0
"""Seconds an API process trusts a key it verified (`VerifiedKeyCache`): a revocation takes effect within this."""

MAX_HEADER_LENGTH = 512
"""Longer Authorization headers are rejected before any parsing or database work."""

_ID_ALPHABET = string.ascii_lowercase + string.digits
_KEY_PATTERN = re.compile(
    rf"^(?P<prefix>{re.escape(KEY_PREFIX)}[a-z0-9]{{{PUBLIC_ID_LENGTH}}})_(?P<secret>[A-Za-z0-9_-]{{43}})$"
)
# Compared against when the prefix is unknown, so unknown and wrong keys take the same path.
_DUMMY_HASH = "0" * 64


@dataclass(frozen=True)
class CreatedKey:
    """A freshly created key. `key` is the only copy of the plain key: show it once."""

    key: str
    prefix: str
    account_id: int
    plan: str
    permissions: tuple[str, ...]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the authenticated key's account, plan and permissions."""

    account_id: int
    account_name: str
    plan: str
    permissions: frozenset[str]
    key_prefix: str


@dataclass(frozen=True)
class KeyInfo:
    """One key as listings show it; never the hash."""

    prefix: str
    account_id: int
    account_name: str
    plan: str
    permissions: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        """Whether the key still authenticates."""
        return self.revoked_at is None


def hash_key(secret: str, key: str) -> str:
    """HMAC-SHA-256 of the whole plain `key` under the server `secret`, in hex (what the DB stores)."""
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def validate_permissions(permissions: Iterable[str] | None) -> tuple[str, ...]:
    """The permissions, deduplicated in canonical order; None means `DEFAULT_PERMISSIONS`."""
    if permissions is None:
        return DEFAULT_PERMISSIONS
    wanted = set(permissions)
    unknown = sorted(wanted - set(PERMISSIONS))
    if unknown:
        raise InvalidInput(
            f"unknown permission(s) {', '.join(unknown)}; expected some of {', '.join(PERMISSIONS)}",
            details={"field": "permissions"},
        )
    return tuple(p for p in PERMISSIONS if p in wanted)


def create_key(
    session: Session,
    *,
    secret: str,
    account_name: str,
    plan: str | None = None,
    permissions: Sequence[str] | None = None,
) -> CreatedKey:
    """Create a key for `account_name` (creating the account when missing) and commit.

    `plan` applies to a new account (default `standard`). For an existing account it must be None
    or the account's current plan: a key never silently changes what an account pays for
    (Conflict otherwise). Unknown plans and permissions are InvalidInput.
    """
    name = _validate_account_name(account_name)
    if plan is not None:
        plan_limit(plan)
    granted = validate_permissions(permissions)
    account = _account_for_key(session, name=name, plan=plan)
    prefix = _new_prefix(session)
    key = f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    accounts_repo.add_api_key(
        session, account_id=account.id, prefix=prefix, key_hash=hash_key(secret, key), permissions=granted
    )
    session.commit()
    return CreatedKey(key=key, prefix=prefix, account_id=account.id, plan=account.plan, permissions=granted)


def authenticate(session: Session, *, secret: str, authorization_header: str | None) -> Principal:
    """The principal of `Authorization: Bearer <key>`; AuthenticationFailed for anything else.

    Missing, malformed, unknown, wrong and revoked keys all raise AuthenticationFailed; only a
    caller who holds the right key is told that it was revoked.
    """
    key = _key_from_header(authorization_header)
    match = _KEY_PATTERN.fullmatch(key)
    if match is None:
        raise AuthenticationFailed("malformed API key")
    found = accounts_repo.find_key_with_account(session, prefix=match["prefix"])
    expected = found[0].key_hash if found is not None else _DUMMY_HASH
    # Compare in constant time even for unknown prefixes, so timing does not reveal which exist.
    if not hmac.compare_digest(hash_key(secret, key), expected) or found is None:
        raise AuthenticationFailed("invalid API key")
    row, account = found
    if row.revoked_at is not None:
        raise AuthenticationFailed("API key has been revoked")
    _touch(session, row)
    return Principal(
        account_id=account.id,
        account_name=account.name,
        plan=account.plan,
        permissions=frozenset(row.permissions),
        key_prefix=row.prefix,
    )


def require(principal: Principal, permission: str) -> None:
    """Raise PermissionDenied unless `principal` holds `permission` (or `admin`)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")  # a bug in the caller, not the client
    if permission in principal.permissions or ADMIN in principal.permissions:
        return
    raise PermissionDenied(
        f"this API key lacks the {permission!r} permission", details={"required": permission}
    )


def list_keys(session: Session) -> list[KeyInfo]:
    """Every key (active and revoked), oldest first, without hashes."""
    return [_info(row, account) for row, account in accounts_repo.list_keys_with_accounts(session)]


def revoke_key(session: Session, *, prefix: str) -> bool:
    """Revoke the key with `prefix` (`lsk_live_<id>` or just `<id>`) and commit.

    True when an active key was revoked now; False when no key has that prefix or it was already
    revoked.
    """
    value = prefix.strip()
    if not value.startswith(KEY_PREFIX):
        value = KEY_PREFIX + value
    revoked = accounts_repo.revoke_key(session, prefix=value, at=utcnow())
    session.commit()
    return revoked


def format_key_table(rows: Iterable[KeyInfo]) -> list[dict[str, str]]:
    """Rows of `list_keys` as flat string dicts for a CLI table (stable column order)."""
    return [
        {
            "prefix": row.prefix,
            "account": row.account_name,
            "plan": row.plan,
            "permissions": ",".join(row.permissions),
            "status": "active" if row.active else "revoked",
            "created": _display(row.created_at),
            "revoked": _display(row.revoked_at),
            "last_used": _display(row.last_used_at) if row.last_used_at else "never",
        }
        for row in rows
    ]


def _validate_account_name(name: str) -> str:
    value = name.strip()
    if not value or len(value) > 200:  # accounts.name is String(200)
        raise InvalidInput("account name must be 1 to 200 characters", details={"field": "account_name"})
    return value


def _account_for_key(session: Session, *, name: str, plan: str | None) -> Account:
    account = accounts_repo.get_account_by_name(session, name=name)
    if account is None:
        return accounts_repo.create_account(session, name=name, plan=plan or DEFAULT_PLAN)
    if plan is not None and plan != account.plan:
        raise Conflict(
            f"account {name!r} is on plan {account.plan!r}, not {plan!r}; change the plan explicitly",
            details={"account": name, "plan": account.plan},
        )
    return account


def _new_prefix(session: Session) -> str:
    # 2.8e12 ids make a clash improbable; checking keeps the unique constraint from ever firing.
    while True:
        public_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(PUBLIC_ID_LENGTH))
        prefix = KEY_PREFIX + public_id
        if not accounts_repo.prefix_exists(session, prefix=prefix):
            return prefix


def _key_from_header(header: str | None) -> str:
    if not header or not header.strip():
        raise AuthenticationFailed("missing API key: send 'Authorization: Bearer <key>'")
    if len(header) > MAX_HEADER_LENGTH:
        raise AuthenticationFailed("malformed Authorization header")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("malformed Authorization header: expected 'Bearer <key>'")
    return token.strip()


def _touch(session: Session, row: ApiKey) -> None:
    now = utcnow()
    last = _aware(row.last_used_at)
    if last is not None and now - last < timedelta(seconds=LAST_USED_RESOLUTION):
        return
    accounts_repo.touch_key(session, key_id=row.id, at=now)
    session.commit()


def _info(row: ApiKey, account: Account) -> KeyInfo:
    return KeyInfo(
        prefix=row.prefix,
        account_id=account.id,
        account_name=account.name,
        plan=account.plan,
        permissions=tuple(p for p in PERMISSIONS if p in set(row.permissions)),
        created_at=_aware(row.created_at) or utcnow(),
        revoked_at=_aware(row.revoked_at),
        last_used_at=_aware(row.last_used_at),
    )


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes although we store UTC; PostgreSQL returns aware ones.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _display(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else ""


class VerifiedKeyCache:
    """Principals of recently verified keys, held for `ttl` seconds by one API process.

    Authentication is a database read per request; on the hot path (`POST /ai/query`) that read is
    most of the cost. A key verified less than `ttl` seconds ago is trusted again without it, so a
    revocation takes effect within `ttl` seconds in every API process. The cache is keyed by the
    HMAC of the key, never the key itself, and bounded in size.
    """

    def __init__(self, *, ttl: float = VERIFIED_KEY_TTL, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def cached(self, *, secret: str, authorization_header: str | None) -> Principal | None:
        """The principal of a key verified within `ttl` seconds, else None (no I/O: safe on the event loop)."""
        return self._fresh(hash_key(secret, authorization_header or ""))

    def authenticate(self, session_factory: Callable[[], Session], *, secret: str, authorization_header: str | None) -> Principal:
        """Like `authenticate`, answered from the cache when the same key was verified within `ttl` seconds."""
        digest = hash_key(secret, authorization_header or "")
        found = self._fresh(digest)
        if found is not None:
            return found
        now = time.monotonic()
        with session_factory() as session:
            principal = authenticate(session, secret=secret, authorization_header=authorization_header)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # rare: bounded memory beats an LRU's bookkeeping on the hot path
            self._entries[digest] = (now, principal)
        return principal

    def _fresh(self, digest: str) -> Principal | None:
        hit = self._entries.get(digest)
        return hit[1] if hit is not None and time.monotonic() - hit[0] < self.ttl else None

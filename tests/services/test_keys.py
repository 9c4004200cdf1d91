"""API keys against the real database: format, hash-only storage, authentication, permissions."""

from __future__ import annotations

import hmac
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from insights.config import Settings
from insights.errors import AuthenticationFailed, Conflict, InvalidInput, PermissionDenied
from insights.services import keys
from insights.storage.tables import Account, ApiKey, utcnow

KEY_RE = re.compile(r"^lsk_live_[a-z0-9]{8}_[A-Za-z0-9_-]{43}$")


@pytest.fixture
def secret(settings: Settings) -> str:
    return settings.resolved_secret()


def bearer(key: str) -> str:
    return f"Bearer {key}"


def test_key_format_and_entropy(session: Session, secret: str) -> None:
    created = [keys.create_key(session, secret=secret, account_name="acme") for _ in range(20)]
    assert all(KEY_RE.fullmatch(c.key) for c in created)
    assert all(c.key.startswith(c.prefix + "_") and len(c.prefix) == 17 for c in created)
    assert len({c.key for c in created}) == 20 and len({c.prefix for c in created}) == 20
    # token_urlsafe(32): 43 characters of a 64-symbol alphabet = 256 bits.
    assert all(len(c.key[len(c.prefix) + 1 :]) >= 43 for c in created)
    assert created[0].plan == "standard"
    assert created[0].permissions == ("ai:query", "properties:read", "properties:write")


def test_only_the_hash_is_stored(session: Session, secret: str) -> None:
    created = keys.create_key(session, secret=secret, account_name="acme")
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == created.prefix))
    assert row is not None
    assert row.key_hash == hmac.new(secret.encode(), created.key.encode(), "sha256").hexdigest()
    secret_part = created.key[len(created.prefix) + 1 :]
    for table in ("api_keys", "accounts"):
        for record in session.execute(text(f"SELECT * FROM {table}")).all():
            dumped = " ".join(str(value) for value in record)
            assert created.key not in dumped and secret_part[:20] not in dumped


def test_authenticate_returns_principal_and_uses_constant_time_compare(
    session: Session, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = keys.create_key(session, secret=secret, account_name="acme", plan="professional")
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    principal = keys.authenticate(session, secret=secret, authorization_header=bearer(created.key))
    assert calls, "authentication must compare hashes with hmac.compare_digest"
    assert principal == keys.Principal(
        account_id=created.account_id,
        account_name="acme",
        plan="professional",
        permissions=frozenset(created.permissions),
        key_prefix=created.prefix,
    )
    assert keys.authenticate(session, secret=secret, authorization_header=f"bearer   {created.key} ").key_prefix


@pytest.mark.parametrize(
    "header",
    [None, "", "   ", "Basic abc", "Bearer", "Bearer not-a-key", "lsk_live_abc", "Bearer " + "x" * 600],
)
def test_missing_or_malformed_header_fails(session: Session, secret: str, header: str | None) -> None:
    with pytest.raises(AuthenticationFailed):
        keys.authenticate(session, secret=secret, authorization_header=header)


def test_unknown_wrong_and_foreign_secret_keys_fail(session: Session, secret: str) -> None:
    created = keys.create_key(session, secret=secret, account_name="acme")
    last = created.key[-1]
    tampered = created.key[:-1] + ("A" if last != "A" else "B")
    unknown = "lsk_live_zzzzzzzz" + created.key[len(created.prefix):]
    for key in (tampered, unknown):
        with pytest.raises(AuthenticationFailed):
            keys.authenticate(session, secret=secret, authorization_header=bearer(key))
    with pytest.raises(AuthenticationFailed):
        keys.authenticate(session, secret="another-server-secret", authorization_header=bearer(created.key))


def test_revoked_key_fails_immediately(session: Session, session_factory: sessionmaker[Session], secret: str) -> None:
    created = keys.create_key(session, secret=secret, account_name="acme")
    keys.authenticate(session, secret=secret, authorization_header=bearer(created.key))
    with session_factory() as other:  # revoked by another process, e.g. the CLI
        assert keys.revoke_key(other, prefix=created.prefix) is True
        assert keys.revoke_key(other, prefix=created.prefix) is False
    with pytest.raises(AuthenticationFailed, match="revoked"):
        keys.authenticate(session, secret=secret, authorization_header=bearer(created.key))
    assert keys.revoke_key(session, prefix="lsk_live_00000000") is False


def test_revoke_accepts_bare_public_id(session: Session, secret: str) -> None:
    created = keys.create_key(session, secret=secret, account_name="acme")
    assert keys.revoke_key(session, prefix=created.prefix.removeprefix("lsk_live_")) is True


def test_plans_and_accounts(session: Session, secret: str) -> None:
    first = keys.create_key(session, secret=secret, account_name="acme", plan="enterprise")
    second = keys.create_key(session, secret=secret, account_name="acme")
    assert first.account_id == second.account_id and second.plan == "enterprise"
    assert session.scalar(select(Account).where(Account.name == "acme")).plan == "enterprise"  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        keys.create_key(session, secret=secret, account_name="acme", plan="standard")
    with pytest.raises(InvalidInput):
        keys.create_key(session, secret=secret, account_name="other", plan="platinum")
    with pytest.raises(InvalidInput):
        keys.create_key(session, secret=secret, account_name="  ")
    assert session.scalar(select(Account).where(Account.name == "other")) is None


def test_permissions(session: Session, secret: str) -> None:
    reader = keys.create_key(session, secret=secret, account_name="acme", permissions=["properties:read"])
    admin = keys.create_key(session, secret=secret, account_name="root", permissions=["admin", "admin"])
    assert admin.permissions == ("admin",)
    with pytest.raises(InvalidInput):
        keys.create_key(session, secret=secret, account_name="acme", permissions=["ai:query", "delete:all"])

    principal = keys.authenticate(session, secret=secret, authorization_header=bearer(reader.key))
    keys.require(principal, "properties:read")
    with pytest.raises(PermissionDenied):
        keys.require(principal, "ai:query")
    with pytest.raises(PermissionDenied):
        keys.require(principal, "admin")
    boss = keys.authenticate(session, secret=secret, authorization_header=bearer(admin.key))
    for permission in keys.PERMISSIONS:
        keys.require(boss, permission)
    with pytest.raises(ValueError):
        keys.require(boss, "typo:permission")


def test_last_used_is_recorded_but_throttled(session: Session, secret: str) -> None:
    created = keys.create_key(session, secret=secret, account_name="acme")
    assert keys.list_keys(session)[0].last_used_at is None
    keys.authenticate(session, secret=secret, authorization_header=bearer(created.key))
    first = keys.list_keys(session)[0].last_used_at
    assert first is not None and abs(utcnow() - first) < timedelta(minutes=1)
    keys.authenticate(session, secret=secret, authorization_header=bearer(created.key))
    session.expire_all()
    assert keys.list_keys(session)[0].last_used_at == first  # within LAST_USED_RESOLUTION: no write
    session.execute(update(ApiKey).values(last_used_at=first - timedelta(hours=1)))
    session.commit()
    keys.authenticate(session, secret=secret, authorization_header=bearer(created.key))
    session.expire_all()
    assert keys.list_keys(session)[0].last_used_at > first  # type: ignore[operator]


def test_list_and_format_key_table(session: Session, secret: str) -> None:
    a = keys.create_key(session, secret=secret, account_name="acme", permissions=["ai:query"])
    b = keys.create_key(session, secret=secret, account_name="beta", plan="professional")
    keys.revoke_key(session, prefix=b.prefix)
    listed = keys.list_keys(session)
    assert [k.prefix for k in listed] == [a.prefix, b.prefix]
    assert [k.active for k in listed] == [True, False]
    assert all(not hasattr(k, "key_hash") for k in listed)
    table = keys.format_key_table(listed)
    assert list(table[0]) == ["prefix", "account", "plan", "permissions", "status", "created", "revoked", "last_used"]
    assert table[0]["permissions"] == "ai:query" and table[0]["last_used"] == "never" and table[0]["revoked"] == ""
    assert table[1]["status"] == "revoked" and table[1]["plan"] == "professional" and table[1]["revoked"].endswith("Z")
    dumped = repr(table) + repr(listed)
    assert a.key not in dumped and b.key not in dumped

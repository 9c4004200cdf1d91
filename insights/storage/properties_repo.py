"""Repository functions for an account's properties and their stored predictions (keyword-only, typed)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from insights.data.schema import PROPERTY_FEATURES
from insights.errors import NotFound
from insights.storage.tables import PropertyPrediction, PropertyRow, utcnow


#: Attempts of one batch whose new properties other requests keep creating at the same moment.
UPSERT_ATTEMPTS = 10


def upsert_properties(session: Session, *, account_id: int, rows: list[dict[str, Any]], source: str = "api") -> dict[str, int]:
    """Create or update the account's properties by `property_id` in one transaction; returns counts.

    Each `property_id` comes once (`PropertiesIn` refuses a batch naming one twice). When another
    request creates one of the same new properties at the same moment, the unique key stops this insert; the batch is then
    applied again over what is stored (those rows as updates). Each such clash means another request
    stored a row this one will find, so a few attempts settle even heavy overlap.
    """
    for _ in range(UPSERT_ATTEMPTS - 1):
        try:
            return _upsert(session, account_id=account_id, rows=rows, source=source)
        except IntegrityError:
            session.rollback()
    return _upsert(session, account_id=account_id, rows=rows, source=source)


def _upsert(session: Session, *, account_id: int, rows: list[dict[str, Any]], source: str) -> dict[str, int]:
    ids = [row["property_id"] for row in rows]
    existing = {
        p.property_id: p
        for p in session.scalars(select(PropertyRow).where(PropertyRow.account_id == account_id, PropertyRow.property_id.in_(ids)))
    }
    created = updated = unchanged = 0
    for row in rows:
        values = {name: row.get(name) for name in PROPERTY_FEATURES}
        extra = row.get("extra") or {}
        digest = hashlib.sha256(json.dumps([values, extra], sort_keys=True, default=str).encode()).hexdigest()
        current = existing.get(row["property_id"])
        if current is None:
            session.add(PropertyRow(property_id=row["property_id"], account_id=account_id, extra=extra, row_hash=digest, source=source, **values))
            created += 1
        elif current.row_hash != digest:
            for name, value in values.items():
                setattr(current, name, value)
            current.extra, current.row_hash, current.updated_at = extra, digest, utcnow()
            updated += 1
        else:
            unchanged += 1
    session.commit()
    return {"created": created, "updated": updated, "unchanged": unchanged}


def get_property(session: Session, *, account_id: int, property_id: str) -> PropertyRow:
    """The account's property; another account's is `NotFound`, never revealed."""
    row = None if "\x00" in property_id else session.scalar(  # no stored id has a NUL, and PostgreSQL refuses one
        select(PropertyRow).where(PropertyRow.account_id == account_id, PropertyRow.property_id == property_id))
    if row is None:
        raise NotFound(f"property {property_id!r} not found")
    return row


def list_properties(session: Session, *, account_id: int, offset: int, limit: int) -> tuple[list[PropertyRow], int]:
    """A page of the account's properties (by property_id) and the total count."""
    where = PropertyRow.account_id == account_id
    total = session.scalar(select(func.count()).select_from(PropertyRow).where(where)) or 0
    rows = session.scalars(select(PropertyRow).where(where).order_by(PropertyRow.property_id).offset(offset).limit(limit))
    return list(rows), int(total)


def stored_prediction(session: Session, *, property_pk: int) -> PropertyPrediction | None:
    """The nightly run's stored prediction of a property, if any."""
    return session.scalar(select(PropertyPrediction).where(PropertyPrediction.property_pk == property_pk))


def property_to_dict(row: PropertyRow) -> dict[str, Any]:
    """The public shape of a property: id, canonical features, extra features."""
    return {"property_id": row.property_id, **{name: getattr(row, name) for name in PROPERTY_FEATURES}, "extra": row.extra or {}}

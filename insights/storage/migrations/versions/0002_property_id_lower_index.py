"""index properties by lower(property_id)

A question names a property in any case ("PROP_12345"); the case-insensitive lookup used to scan the
whole table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 03:05:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_properties_property_id_lower', 'properties', [sa.text('lower(property_id)')], unique=False)


def downgrade() -> None:
    op.drop_index('ix_properties_property_id_lower', table_name='properties')

"""client_requests (Idempotency-Key answers); version of org_units, users (If-Match)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 00:45:00
"""
from alembic import op

from shared.migrations import (
    add_version_columns,
    create_idempotency_table,
    drop_version_columns,
)

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table()
    add_version_columns('org_units', 'users')


def downgrade() -> None:
    drop_version_columns('org_units', 'users')
    op.drop_table('client_requests')

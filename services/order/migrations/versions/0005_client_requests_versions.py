"""client_requests (Idempotency-Key answers); dealer_accounts.version (If-Match)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 00:45:00
"""
from alembic import op

from shared.migrations import (
    add_version_columns,
    create_idempotency_table,
    drop_version_columns,
)

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table()
    add_version_columns('dealer_accounts')


def downgrade() -> None:
    drop_version_columns('dealer_accounts')
    op.drop_table('client_requests')

"""client_requests (Idempotency-Key answers); version of customers (If-Match)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 00:45:00
"""
from alembic import op

from shared.migrations import (
    add_version_columns,
    create_idempotency_table,
    drop_version_columns,
)

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table()
    add_version_columns('customers')


def downgrade() -> None:
    drop_version_columns('customers')
    op.drop_table('client_requests')

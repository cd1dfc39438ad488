"""client_requests (Idempotency-Key answers); version of sop_rules (If-Match)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 00:45:00
"""
from alembic import op

from shared.migrations import (
    add_version_columns,
    create_idempotency_table,
    drop_version_columns,
)

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table()
    add_version_columns('sop_rules')


def downgrade() -> None:
    drop_version_columns('sop_rules')
    op.drop_table('client_requests')

"""client_requests (Idempotency-Key answers)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 00:45:00
"""
from alembic import op

from shared.migrations import create_idempotency_table

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table()


def downgrade() -> None:
    op.drop_table('client_requests')

"""client_requests (Idempotency-Key answers); dealer_accounts.version (If-Match)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 00:45:00
"""
import sqlalchemy as sa
from alembic import op

from shared.migrations import create_idempotency_table

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table()
    with op.batch_alter_table('dealer_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False,
                                      server_default='1'))


def downgrade() -> None:
    with op.batch_alter_table('dealer_accounts', schema=None) as batch_op:
        batch_op.drop_column('version')
    op.drop_table('client_requests')

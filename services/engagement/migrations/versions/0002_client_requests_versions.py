"""client_requests (Idempotency-Key answers); version of sop_rules (If-Match)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 00:45:00
"""
import sqlalchemy as sa
from alembic import op

from shared.migrations import create_idempotency_table

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table()
    with op.batch_alter_table('sop_rules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False,
                                      server_default='1'))


def downgrade() -> None:
    with op.batch_alter_table('sop_rules', schema=None) as batch_op:
        batch_op.drop_column('version')
    op.drop_table('client_requests')

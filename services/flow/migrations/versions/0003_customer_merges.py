"""customers merged into another keep a tombstone (merged_into)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 00:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into', sa.String(length=36), nullable=False,
                                      server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('merged_into')

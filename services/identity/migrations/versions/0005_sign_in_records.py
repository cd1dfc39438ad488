"""sign-in attempts kept in the database, shared by every replica

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 01:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sign_in_sources',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('failed_attempts', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('trusted', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source', 'account', name=op.f('pk_sign_in_sources'))
    )
    with op.batch_alter_table('sign_in_sources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_sources_updated_at'), ['updated_at'],
                              unique=False)
    op.create_table('sign_in_windows',
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('checks', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('account', 'window_start', name=op.f('pk_sign_in_windows'))
    )
    with op.batch_alter_table('sign_in_windows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_windows_window_start'), ['window_start'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('sign_in_windows')
    op.drop_table('sign_in_sources')

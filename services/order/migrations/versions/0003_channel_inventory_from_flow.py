"""channel inventory from accepted flow: parts applied, their stock moves, superseded
uploads

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'flow_parts',
        sa.Column('upload_id', sa.String(length=36), nullable=False),
        sa.Column('part_index', sa.Integer(), nullable=False),
        sa.Column('dealer_id', sa.String(length=36), nullable=False),
        sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('undone_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('upload_id', 'part_index', name=op.f('pk_flow_parts')))
    op.create_table(
        'flow_stock_moves',
        sa.Column('upload_id', sa.String(length=36), nullable=False),
        sa.Column('part_index', sa.Integer(), nullable=False),
        sa.Column('dealer_id', sa.String(length=36), nullable=False),
        sa.Column('product_code', sa.String(length=64), nullable=False),
        sa.Column('batch', sa.String(length=64), nullable=False),
        sa.Column('gtin', sa.String(length=14), nullable=False),
        sa.Column('product_line', sa.String(length=64), nullable=False),
        sa.Column('expiry_date', sa.String(length=10), nullable=False),
        sa.Column('received', sa.BigInteger(), nullable=False),
        sa.Column('sold', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('upload_id', 'part_index', 'dealer_id', 'product_code',
                                'batch', name=op.f('pk_flow_stock_moves')))
    op.create_table(
        'flow_superseded',
        sa.Column('upload_id', sa.String(length=36), nullable=False),
        sa.Column('superseded_by', sa.String(length=36), nullable=False),
        sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('upload_id', name=op.f('pk_flow_superseded')))


def downgrade() -> None:
    op.drop_table('flow_superseded')
    op.drop_table('flow_stock_moves')
    op.drop_table('flow_parts')

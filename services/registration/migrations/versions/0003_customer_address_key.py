"""customers.address_key (the duplicate check's address evidence), backfilled from each
customer's address and division; customer_aliases.source (where an alias came from)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 21:30:00
"""
import sqlalchemy as sa
from alembic import op

from shared.names.address import address_key

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

BATCH = 10_000


def upgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address_key', sa.String(length=80), nullable=False,
                                      server_default=''))
        batch_op.create_index(batch_op.f('ix_customers_address_key'), ['address_key'],
                              unique=False)
    with op.batch_alter_table('customer_aliases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=80), nullable=False,
                                      server_default=''))
    customers = sa.table('customers', sa.column('id', sa.String), sa.column('address', sa.String),
                         sa.column('division_code', sa.String),
                         sa.column('address_key', sa.String))
    connection = op.get_bind()
    last_id = ''
    while True:
        rows = connection.execute(
            sa.select(customers.c.id, customers.c.address, customers.c.division_code)
            .where(customers.c.id > last_id, customers.c.address != '')
            .order_by(customers.c.id).limit(BATCH)).all()
        keys = [{'key_id': row.id, 'key': address_key(row.address, row.division_code)}
                for row in rows]
        keys = [k for k in keys if k['key']]
        if keys:
            connection.execute(
                customers.update().where(customers.c.id == sa.bindparam('key_id'))
                .values(address_key=sa.bindparam('key')), keys)
        if len(rows) < BATCH:
            break
        last_id = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table('customer_aliases', schema=None) as batch_op:
        batch_op.drop_column('source')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customers_address_key'))
        batch_op.drop_column('address_key')

"""running credit exposure per dealer account, and what each order contributes;
backfilled from the ledger and the open orders

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

OPEN = "('submitted', 'approved', 'partially_shipped', 'shipped')"


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('open_value_minor', sa.BigInteger(), server_default='0',
                                      nullable=False))
    op.create_table(
        'credit_exposure',
        sa.Column('dealer_id', sa.String(length=36), nullable=False),
        sa.Column('selling_company', sa.String(length=64), nullable=False),
        sa.Column('outstanding_minor', sa.BigInteger(), nullable=False),
        sa.Column('open_orders_minor', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('dealer_id', 'selling_company',
                                name=op.f('pk_credit_exposure')))
    remaining = "(l.quantity_ordered - l.quantity_closed - l.quantity_invoiced)"
    op.execute(
        f"UPDATE orders SET open_value_minor = COALESCE((SELECT SUM(CASE WHEN {remaining} > 0 "
        f"THEN {remaining} * l.unit_price_minor ELSE 0 END) FROM order_lines l "
        f"WHERE l.order_id = orders.id), 0) WHERE status IN {OPEN}")
    op.execute(
        "INSERT INTO credit_exposure (dealer_id, selling_company, outstanding_minor, "
        "open_orders_minor) "
        "SELECT dealer_id, selling_company, SUM(owed), SUM(pending) FROM ("
        " SELECT dealer_id, selling_company, CASE WHEN kind = 2 THEN -amount_minor "
        "   ELSE amount_minor END AS owed, 0 AS pending FROM invoices"
        " UNION ALL SELECT dealer_id, selling_company, -amount_minor, 0 FROM payments"
        " UNION ALL SELECT dealer_id, selling_company, -amount_minor, 0 FROM rebate_credits"
        " UNION ALL SELECT dealer_id, selling_company, 0, open_value_minor FROM orders"
        ") AS ledger GROUP BY dealer_id, selling_company")


def downgrade() -> None:
    op.drop_table('credit_exposure')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('open_value_minor')

"""What every service's Alembic ``env.py`` runs: online migrations over the service's
async engine, batch mode on SQLite so ALTER TABLE works there too."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine

MIGRATION_LOCK_ID = 7_277_001


def run_migrations(target_metadata: MetaData) -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def do_run(connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Replicas starting together migrate one at a time; the others then find
                # nothing left to do instead of failing on half-created tables.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await engine.dispose()

    asyncio.run(run_async())


def create_bus_tables() -> None:
    """The ``outbox`` and ``inbox`` tables (as ``shared.bus.outbox.bus_tables`` declares
    them), for a service's first migration."""
    import sqlalchemy as sa
    from alembic import op

    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
    )
    op.create_table(
        "outbox",
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("aggregate_id", sa.String(length=64), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("position", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_published_at", ["published_at"], unique=False)
        batch_op.create_index("ix_outbox_unpublished", ["position"], unique=False,
                              postgresql_where=sa.text("published_at IS NULL"),
                              sqlite_where=sa.text("published_at IS NULL"))


def drop_bus_tables() -> None:
    from alembic import op

    op.drop_table("outbox")
    op.drop_table("inbox")


def create_idempotency_table() -> None:
    """The ``client_requests`` table (as ``shared.idempotency.idempotency_table``
    declares it)."""
    import sqlalchemy as sa
    from alembic import op

    op.create_table(
        "client_requests",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name="pk_client_requests"),
    )


def add_version_columns(*tables: str) -> None:
    """A ``version`` column (1 for the rows there are) on each of ``tables``: the updates
    that can race compare it (``shared.versioning``)."""
    import sqlalchemy as sa
    from alembic import op

    for table in tables:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False,
                                          server_default="1"))


def drop_version_columns(*tables: str) -> None:
    from alembic import op

    for table in reversed(tables):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("version")

"""One async SQLAlchemy engine per service (aiosqlite in WAL mode, or asyncpg), a unit
of work that rolls back unless committed, and Alembic migrations per service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from prometheus_client import Counter
from sqlalchemy import ColumnElement, Select, UnaryExpression, and_, event, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import operators

from shared import sqlite_driver
from shared.pagination import Page, PageRequest, decode_cursor, encode_cursor, page_of

# Every service's MetaData uses these names, so migrations name constraints the same way
# on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


DB_STATEMENTS = Counter(
    "qudao_db_statements_total",
    "SQL statements this process sent to its database (BEGIN and savepoints included; "
    "a driver's commit is not a statement)")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def dialect_insert(session: AsyncSession, table):
    """An ``INSERT`` that can say ``ON CONFLICT`` (and ``RETURNING``), in the dialect of
    the session's database."""
    return insert_in(session.get_bind().dialect.name, table)


def insert_in(dialect_name: str, table):
    """``dialect_insert`` for a statement built once, before any session."""
    return (postgresql if dialect_name == "postgresql" else sqlite).insert(table)


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    engine = _create_engine(url, echo=echo)
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda *_statement: DB_STATEMENTS.inc())
    return engine


def _create_engine(url: str, *, echo: bool) -> AsyncEngine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            make_url(url).set(drivername=f"sqlite+{sqlite_driver.DRIVER}"), echo=echo,
            connect_args={"timeout": 30}, pool_size=8, max_overflow=8
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # SQLAlchemy emits BEGIN itself (below), so a write transaction can take the
            # write lock up front and a read transaction never does.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(connection):
            writing = connection.get_execution_options().get(_WRITE_OPTION, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

        return engine
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)


_WRITE_OPTION = "qudao_write"


class Database:
    """A service's database. Every transaction is either a write (``write()`` /
    ``transaction(write=True)``) or a read-only snapshot (``read()``).

    On SQLite the database takes one writer at a time, and a writer that finds the lock
    taken polls with growing sleeps inside SQLite's busy handler (a long latency tail).
    So every write transaction of this process queues in order (FIFO) for its turn
    before it begins, and takes the lock up front (BEGIN IMMEDIATE); reads are deferred
    transactions on WAL snapshots and never wait for a writer. PostgreSQL keeps its own
    concurrency: no queue, row locks where the adapters ask for them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.is_sqlite = is_sqlite(url)
        self._readers = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writers = async_sessionmaker(
            self.engine.execution_options(**{_WRITE_OPTION: True}), expire_on_commit=False)
        self._turns = asyncio.Lock() if self.is_sqlite else None

    @contextlib.asynccontextmanager
    async def transaction(self, *, write: bool) -> AsyncIterator[AsyncSession]:
        """A transaction the caller commits (``await session.commit()``); rolled back
        when the block ends without a commit."""
        if write and self._turns is not None:
            async with self._turns, self._writers() as session:
                yield session
            return
        async with (self._writers if write else self._readers)() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed when the block ends normally, rolled back
        otherwise."""
        async with self.transaction(write=True) as session:
            yield session
            await session.commit()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only snapshot; never waits for a writer."""
        async with self.transaction(write=False) as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()


async def retry_serialization(operation, attempts: int = 5):
    """Run ``operation()`` again when the database aborts it for a write conflict."""
    for attempt in range(attempts):
        try:
            return await operation()
        except DBAPIError as exc:
            text = str(exc.orig).lower() if exc.orig else str(exc).lower()
            retryable = "could not serialize" in text or "deadlock" in text or "locked" in text
            if not retryable or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.01 * 2**attempt)


def alembic_config(migrations_dir: Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


# Held while a process migrates a PostgreSQL database: the replicas of a release that
# start together (or a migration Job and a pod) take turns instead of racing; the ones
# after the first find the schema current and do nothing.
MIGRATION_LOCK_KEY = 0x71756461  # "quda"


def migrate(migrations_dir: Path, url: str, revision: str = "head") -> None:
    """Upgrade the service's database to ``revision`` (blocking; run before serving). On
    PostgreSQL under a session advisory lock, so concurrent migrators run one at a time."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        command.upgrade(alembic_config(migrations_dir, url), revision)
        return
    with _migration_lock(url):
        command.upgrade(alembic_config(migrations_dir, url), revision)


@contextlib.contextmanager
def _migration_lock(url: str):
    """A PostgreSQL session advisory lock, on a connection of its own made from the same
    URL as the service's (in a private event loop: Alembic runs synchronously here)."""
    engine = create_async_engine(url, poolclass=NullPool)
    loop = asyncio.new_event_loop()
    try:
        connection = loop.run_until_complete(engine.connect())
        try:
            loop.run_until_complete(connection.exec_driver_sql(
                f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
            yield
        finally:
            loop.run_until_complete(connection.close())  # the lock goes with the session
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()


async def fetch_page(session: AsyncSession, query: Select, request: PageRequest, *,
                     count: bool = False, scalars: bool = True, keyset: bool = False) -> Page:
    """One page of ``query`` (which must be ordered): ORM objects when ``scalars``, rows
    otherwise; with ``count``, the total number of matches too. With ``keyset`` the
    token is a cursor after the last item's sort key (``query``'s ORDER BY, columns
    ending in a unique one), so inserts between pages neither skip nor repeat items."""
    order = _sort_columns(query) if keyset else []
    if keyset:
        after = decode_cursor(request.token, len(order))
        paged = query.where(_after(order, after)) if after is not None else query
    else:
        paged = query.offset(request.offset)
    result = await session.execute(paged.limit(request.size + 1))
    items = list(result.scalars().all() if scalars else result.all())
    total = None
    if count:
        counted = select(func.count()).select_from(query.order_by(None).subquery())
        total = (await session.execute(counted)).scalar_one()
    if not keyset:
        return page_of(items, request, total)
    more = len(items) > request.size
    items = items[:request.size]
    token = encode_cursor(_sort_key(items[-1], order, scalars)) if more else ""
    return Page(items, token, total)


def _sort_columns(query: Select) -> list[tuple[ColumnElement, bool]]:
    """(column, descending) of each ORDER BY term."""
    order = []
    for term in query._order_by_clauses:
        descending = getattr(term, "modifier", None) is operators.desc_op
        column = term.element if isinstance(term, UnaryExpression) else term
        order.append((column, descending))
    return order


def _after(order: list[tuple[ColumnElement, bool]], values: list) -> ColumnElement:
    """Rows past ``values`` in ``order``: beyond on the first key, or equal on it and
    past on the rest."""
    (column, descending), value = order[0], values[0]
    beyond = column < value if descending else column > value
    if len(order) == 1:
        return beyond
    return or_(beyond, and_(column == value, _after(order[1:], values[1:])))


def _sort_key(item, order: list[tuple[ColumnElement, bool]], scalars: bool) -> list:
    if scalars:
        return [getattr(item, column.key) for column, _ in order]
    mapping = item._mapping
    return [mapping[column] if column in mapping else getattr(item[0], column.key)
            for column, _ in order]

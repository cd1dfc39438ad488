"""SQLAlchemy's aiosqlite dialect with one trip to the connection's worker thread per
statement.

aiosqlite runs each sqlite3 call on its own thread and wakes the event loop for every
answer. SQLAlchemy's adapter makes four such calls per statement (open a cursor, execute,
fetch the rows, close), and each wake-up costs more CPU than the small statement itself:
an order submission took 30 hops for 8 statements. Here a statement's execute, fetch and
close run together in one call on the worker thread, so a statement is one hop.

Server-side cursors (``session.stream``) keep SQLAlchemy's cursor, which fetches in
batches as the caller reads. Registered as ``sqlite+qudao_aiosqlite``; ``shared.db``
rewrites ``sqlite+aiosqlite`` URLs to it."""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util.concurrency import await_

DRIVER = "qudao_aiosqlite"


def _execute(connection: sqlite3.Connection, operation: str, parameters) -> tuple:
    cursor = connection.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else ()
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _executemany(connection: sqlite3.Connection, operation: str, parameters) -> tuple:
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, parameters)
        return cursor.description, (), cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor:
    """A DB-API cursor whose rows arrive with the statement's one hop."""

    server_side = False
    __slots__ = ("_adapt_connection", "_rows", "arraysize", "description", "lastrowid",
                 "rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        self._adapt_connection = adapt_connection
        self._rows: collections.deque = collections.deque()
        self.arraysize = 1
        self.description = None
        self.rowcount = -1
        self.lastrowid = None

    def _run(self, function, operation: str, parameters) -> Any:
        aiosqlite_connection = self._adapt_connection._connection
        try:
            self.description, rows, self.rowcount, self.lastrowid = await_(
                aiosqlite_connection._execute(function, aiosqlite_connection._conn,
                                              operation, parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._rows = collections.deque(rows)

    def execute(self, operation: str, parameters=None) -> None:
        self._run(_execute, operation, parameters)

    def executemany(self, operation: str, seq_of_parameters) -> None:
        self._run(_executemany, operation, seq_of_parameters)

    async def _async_soft_close(self) -> None:
        """Nothing to close: the sqlite3 cursor closed on the worker thread."""

    def close(self) -> None:
        self._rows.clear()

    def setinputsizes(self, *inputsizes) -> None:
        pass

    def nextset(self) -> None:
        return None

    def __enter__(self) -> OneHopCursor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __iter__(self):
        while self._rows:
            yield self._rows.popleft()

    def fetchone(self) -> Any | None:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        rows = self._rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    def fetchall(self) -> Sequence[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


class OneHopDialect(SQLiteDialect_aiosqlite):
    driver = DRIVER
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> OneHopDBAPI:
        return OneHopDBAPI(__import__("aiosqlite"), __import__("sqlite3"))


registry.register(f"sqlite.{DRIVER}", __name__, "OneHopDialect")

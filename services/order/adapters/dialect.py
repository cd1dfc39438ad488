"""What differs between the order service's SQLite and PostgreSQL statements."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_insert(session: AsyncSession, table):
    """An INSERT that can say ON CONFLICT, in the session's dialect."""
    if session.bind.dialect.name == "sqlite":
        return sqlite.insert(table)
    return postgresql.insert(table)

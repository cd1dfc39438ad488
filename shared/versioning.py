"""The version column of resources whose updates can race: the owning service compares
and increments it in the updating statement itself, so of two edits of the same version
only one lands (the other is StaleVersion, the gateway's 412)."""

from __future__ import annotations

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import StaleVersion


async def update_versioned(session: AsyncSession, table: Table, row_id: str, version: int,
                           values: dict, what: str) -> int:
    """Store ``values`` in the row ``row_id`` if it is still at ``version``; the row's
    new version."""
    result = await session.execute(
        update(table).where(table.c.id == row_id, table.c.version == version)
        .values(**values, version=table.c.version + 1))
    if result.rowcount != 1:
        current = await session.scalar(select(table.c.version).where(table.c.id == row_id))
        raise StaleVersion(what, version, current or 0)
    return version + 1

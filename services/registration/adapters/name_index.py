"""Loading registration's customers into the shared name index behind the duplicate
check. Each replica keeps its own copy: loaded at start, updated after its own commits,
and refreshed from the customers table every few seconds (``refresh_index``) so
customers created by another replica are found too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from services.registration.adapters.orm import CustomerRow
from shared.names.index import NameIndex
from shared.text import normalize_name


def put_row(index: NameIndex, row) -> None:
    aliases = [normalize_name(a) for a in (row.aliases or [])]
    index.put(row.id, row.city_code, row.normalized_name, aliases)


async def load_index(index: NameIndex, db, batch: int = 50_000) -> int:
    """Read every customer (streamed in batches) into the index."""
    started = datetime.now(UTC)
    count = 0
    last_id = ""
    while True:
        async with db.read() as session:
            rows = (await session.execute(
                select(CustomerRow.id, CustomerRow.city_code, CustomerRow.normalized_name,
                       CustomerRow.aliases)
                .where(CustomerRow.id > last_id).order_by(CustomerRow.id).limit(batch)
            )).all()
        for row in rows:
            put_row(index, row)
        count += len(rows)
        if len(rows) < batch:
            break
        last_id = rows[-1].id
    index.watermark = started - timedelta(seconds=5)
    return count


async def refresh_index(index: NameIndex, db) -> int:
    """Pick up customers changed since the last look (by any replica)."""
    since = index.watermark or datetime(2000, 1, 1, tzinfo=UTC)
    started = datetime.now(UTC)
    async with db.read() as session:
        rows = (await session.execute(
            select(CustomerRow.id, CustomerRow.city_code, CustomerRow.normalized_name,
                   CustomerRow.aliases).where(CustomerRow.updated_at >= since)
        )).all()
    for row in rows:
        put_row(index, row)
    index.watermark = started - timedelta(seconds=5)
    return len(rows)

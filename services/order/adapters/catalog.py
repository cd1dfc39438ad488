"""The catalog's bulk statements: a product file of up to 100,000 rows is looked up and
written in a handful of statements per few thousand rows, not one round trip (and ORM
flush) per product. Between parts the event loop gets its turn, so the service's other
calls keep their latency while a large file is stored."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters.orm import ProductRow

# Rows per statement: well under SQLite's 32,766 bound parameters for an IN list, and
# short enough between event-loop turns (a few milliseconds of Python each).
PART_ROWS = 1_000
PRODUCT_FIELDS = ("name", "spec", "gtin", "product_line", "unit", "list_price_minor",
                  "currency", "serial_tracked")

products = ProductRow.__table__


def parts(items: Sequence, size: int = PART_ROWS) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def stored_products(session: AsyncSession, codes: Iterable[str]
                          ) -> dict[str, dict[str, Any]]:
    """The stored fields of the products with these codes, by code."""
    found: dict[str, dict[str, Any]] = {}
    columns = [products.c.code] + [products.c[name] for name in PRODUCT_FIELDS]
    for part in parts(sorted(set(codes))):
        for row in (await session.execute(select(*columns).where(
                products.c.code.in_(part)))).mappings():
            found[row["code"]] = dict(row)
        await asyncio.sleep(0)
    return found


async def gtin_holders(session: AsyncSession, gtins: Iterable[str]) -> dict[str, str]:
    """The code of the stored product holding each of these GTINs (14 digits), by GTIN."""
    holders: dict[str, str] = {}
    for part in parts(sorted(set(gtins))):
        holders.update((await session.execute(select(products.c.gtin, products.c.code).where(
            products.c.gtin.in_(part)))).all())
        await asyncio.sleep(0)
    return holders


async def insert_products(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """New products (every column), one executemany per part."""
    for part in parts(rows):
        await session.execute(products.insert(), list(part))
        await asyncio.sleep(0)


UPDATE_PRODUCT = (update(products).where(products.c.code == bindparam("key"))
                  .values({name: bindparam(name) for name in (*PRODUCT_FIELDS, "updated_at")}))


async def update_products(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Changed products (every column, the code as ``key``), one executemany per part."""
    for part in parts(rows):
        await session.execute(UPDATE_PRODUCT, [
            {"key": row["code"], **{name: row[name] for name in (*PRODUCT_FIELDS, "updated_at")}}
            for row in part])
        await asyncio.sleep(0)

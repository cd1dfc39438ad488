"""Product returns over SQL."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters.orm import ReturnRow
from services.order.domain.ingest import ReturnToCredit
from services.order.domain.returns import ReturnStatus


class SqlReturns:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def to_credit(self, return_ids: Iterable[str]) -> dict[str, ReturnToCredit]:
        return {row.id: ReturnToCredit(row.id, row.dealer_id, row.status)
                for row in (await self.session.execute(
                    select(ReturnRow.id, ReturnRow.dealer_id, ReturnRow.status)
                    .where(ReturnRow.id.in_(list(return_ids))))).all()}

    async def mark_credited(self, return_id: str, invoice_id: str) -> None:
        await self.session.execute(
            update(ReturnRow).where(ReturnRow.id == return_id)
            .values(status=ReturnStatus.CREDITED, credit_note_invoice_id=invoice_id))

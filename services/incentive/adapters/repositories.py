"""The incentive repositories over SQL: domain objects in, domain objects out."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.incentive.adapters.orm import AccrualRow
from services.incentive.domain.accruals import Accrual, AccrualFilter, AccrualKind
from shared.clock import aware
from shared.db import fetch_page
from shared.money import Money
from shared.pagination import Page, PageRequest


def _accrual(row: AccrualRow) -> Accrual:
    return Accrual(
        id=row.id, dealer_id=row.dealer_id, kind=AccrualKind(row.kind),
        source_type=row.source_type, source_id=row.source_id,
        source_event_id=row.source_event_id, base=Money(row.base_minor, row.currency),
        rate_bps=row.rate_bps, amount=Money(row.amount_minor, row.currency),
        recorded_at=aware(row.recorded_at))


class SqlAccruals:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, accrual: Accrual) -> None:
        await self.session.execute(insert(AccrualRow).values(
            id=accrual.id, dealer_id=accrual.dealer_id, kind=accrual.kind.value,
            source_type=accrual.source_type, source_id=accrual.source_id,
            source_event_id=accrual.source_event_id, base_minor=accrual.base.amount_minor,
            currency=accrual.base.currency, rate_bps=accrual.rate_bps,
            amount_minor=accrual.amount.amount_minor, recorded_at=accrual.recorded_at))

    async def get(self, accrual_id: str) -> Accrual | None:
        row = await self.session.get(AccrualRow, accrual_id)
        return _accrual(row) if row else None

    async def for_source(self, kind: AccrualKind, source_type: str,
                         source_id: str) -> Accrual | None:
        row = (await self.session.scalars(select(AccrualRow).where(
            AccrualRow.kind == kind.value, AccrualRow.source_type == source_type,
            AccrualRow.source_id == source_id))).first()
        return _accrual(row) if row else None

    async def page(self, which: AccrualFilter, page: PageRequest) -> Page[Accrual]:
        query = select(AccrualRow).order_by(AccrualRow.recorded_at.desc(), AccrualRow.id)
        if which.dealer_ids is not None:
            query = query.where(AccrualRow.dealer_id.in_(which.dealer_ids))
        if which.source_id:
            query = query.where(AccrualRow.source_id == which.source_id)
        return (await fetch_page(self.session, query, page, count=True)).map(_accrual)

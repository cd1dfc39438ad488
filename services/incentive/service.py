"""Incentive use cases: accrue commissions from order events, read accruals in scope."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from qudao.incentive.v1 import events_pb2, incentive_pb2
from qudao.order.v1 import events_pb2 as order_events
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.incentive.adapters.orm import AccrualRow
from services.incentive.domain.commission import CommissionRule
from shared.bus.envelope import Event
from shared.bus.outbox import Outbox
from shared.context import current_principal
from shared.convert import money_from_proto, money_to_proto
from shared.db import Database
from shared.errors import NotFound
from shared.events.incentive import ACCRUAL_RECORDED
from shared.money import Money
from shared.pagination import decode_page_token, encode_page_token
from shared.scope import ScopeResolver

KIND_TO_PROTO = {
    "commission": incentive_pb2.ACCRUAL_KIND_COMMISSION,
    "rebate": incentive_pb2.ACCRUAL_KIND_REBATE,
}


def accrual_to_proto(row: AccrualRow) -> incentive_pb2.Accrual:
    accrual = incentive_pb2.Accrual(
        id=row.id, dealer_id=row.dealer_id, kind=KIND_TO_PROTO[row.kind],
        source_type=row.source_type, source_id=row.source_id,
        base_amount=money_to_proto(Money(row.base_minor, row.currency)), rate_bps=row.rate_bps,
        amount=money_to_proto(Money(row.amount_minor, row.currency)),
        source_event_id=row.source_event_id,
    )
    recorded = row.recorded_at if row.recorded_at.tzinfo else row.recorded_at.replace(tzinfo=UTC)
    accrual.recorded_at.FromDatetime(recorded)
    return accrual


class IncentiveService:
    def __init__(self, db: Database, outbox: Outbox, scopes: ScopeResolver,
                 rule: CommissionRule) -> None:
        self.db = db
        self.outbox = outbox
        self.scopes = scopes
        self.rule = rule

    async def on_order_submitted(self, session: AsyncSession, event: Event) -> None:
        """Accrue the commission on a submitted order (runs inside the consumer's
        transaction, together with its inbox row)."""
        payload: order_events.OrderSubmitted = event.payload
        order = payload.order
        base = money_from_proto(order.total)
        row = AccrualRow(
            id=str(uuid.uuid4()), dealer_id=order.dealer_id, kind="commission",
            source_type="order", source_id=order.id, source_event_id=event.event_id,
            base_minor=base.amount_minor, currency=base.currency, rate_bps=self.rule.rate_bps,
            amount_minor=self.rule.commission_on(base).amount_minor,
            recorded_at=datetime.now(UTC),
        )
        session.add(row)
        await session.flush()
        await self.outbox.record(session, ACCRUAL_RECORDED,
                                 events_pb2.AccrualRecorded(accrual=accrual_to_proto(row)), row.id)

    async def list_accruals(self, dealer_id: str, source_id: str, size: int, token: str):
        scope = await self.scopes.resolve(current_principal(), "incentive.read")
        offset = decode_page_token(token)
        query = select(AccrualRow).order_by(AccrualRow.recorded_at.desc(), AccrualRow.id)
        if dealer_id:
            if not scope.allows(dealer_id):
                return [], ""
            query = query.where(AccrualRow.dealer_id == dealer_id)
        elif not scope.all_dealers:
            query = query.where(AccrualRow.dealer_id.in_(scope.dealer_ids))
        if source_id:
            query = query.where(AccrualRow.source_id == source_id)
        async with self.db.read() as session:
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        more = len(rows) > size
        return [accrual_to_proto(r) for r in rows[:size]], (
            encode_page_token(offset + size) if more else "")

    async def get_accrual(self, accrual_id: str) -> incentive_pb2.Accrual:
        scope = await self.scopes.resolve(current_principal(), "incentive.read")
        async with self.db.read() as session:
            row = await session.get(AccrualRow, accrual_id)
        if row is None or not scope.allows(row.dealer_id):
            raise NotFound(f"accrual {accrual_id} not found")
        return accrual_to_proto(row)

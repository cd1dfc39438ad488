"""Accruals: booked from events exactly once per source, read within the viewer's
scope."""

from __future__ import annotations

from dataclasses import dataclass

from qudao.incentive.v1 import events_pb2

from services.incentive.domain.accruals import Accrual, AccrualFilter, AccrualKind
from services.incentive.domain.commission import CommissionRule
from services.incentive.messages import accrual_to_proto
from services.incentive.usecases.ports import IncentiveUnitOfWork
from shared.clock import Clock
from shared.context import Principal
from shared.errors import NotFound
from shared.events.incentive import ACCRUAL_RECORDED
from shared.ids import IdSource
from shared.money import Money
from shared.pagination import Page, PageRequest
from shared.scope import Scopes


@dataclass(frozen=True)
class OrderFacts:
    """What an order event says that commission needs."""

    order_id: str
    dealer_id: str
    total: Money


async def accrue_commission(order: OrderFacts, *, event_id: str, uow: IncentiveUnitOfWork,
                            rule: CommissionRule, clock: Clock, ids: IdSource) -> Accrual:
    """Book the commission on an order, once: a second event about the same order
    returns the accrual already booked."""
    async with uow:
        booked = await uow.accruals.for_source(AccrualKind.COMMISSION, "order", order.order_id)
        if booked is not None:
            return booked
        accrual = Accrual(
            id=ids.new_id(), dealer_id=order.dealer_id, kind=AccrualKind.COMMISSION,
            source_type="order", source_id=order.order_id, source_event_id=event_id,
            base=order.total, rate_bps=rule.rate_bps, amount=rule.commission_on(order.total),
            recorded_at=clock.now())
        await uow.accruals.add(accrual)
        uow.events.record(ACCRUAL_RECORDED,
                          events_pb2.AccrualRecorded(accrual=accrual_to_proto(accrual)),
                          accrual.id)
        await uow.commit()
    return accrual


async def list_accruals(dealer_id: str, source_id: str, page: PageRequest, *,
                        who: Principal, uow: IncentiveUnitOfWork,
                        scopes: Scopes) -> Page[Accrual]:
    """The accruals of the dealers the viewer may see; a dealer outside that scope
    shows an empty list, never an error that would confirm it exists."""
    scope = await scopes.resolve(who, "incentive.read")
    if dealer_id:
        if not scope.allows(dealer_id):
            return Page([])
        dealers = frozenset({dealer_id})
    else:
        dealers = None if scope.all_dealers else scope.dealer_ids
    async with uow.read():
        return await uow.accruals.page(AccrualFilter(dealers, source_id), page)


async def get_accrual(accrual_id: str, *, who: Principal, uow: IncentiveUnitOfWork,
                      scopes: Scopes) -> Accrual:
    scope = await scopes.resolve(who, "incentive.read")
    async with uow.read():
        accrual = await uow.accruals.get(accrual_id)
    if accrual is None or not scope.allows(accrual.dealer_id):
        raise NotFound(f"accrual {accrual_id} not found")
    return accrual

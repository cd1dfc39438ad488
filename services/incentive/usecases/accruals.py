"""Accruals read within the viewer's scope, and reports per dealer, channel manager,
region or month."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from services.incentive.domain.accruals import Accrual, AccrualFilter, AccrualKind
from services.incentive.usecases.access import scope_of, visible
from services.incentive.usecases.ports import IncentiveUnitOfWork
from shared.context import Principal
from shared.errors import InvalidArgument, NotFound
from shared.pagination import Page, PageRequest
from shared.scope import Scopes


async def list_accruals(which: AccrualFilter, dealer_id: str, page: PageRequest, *,
                        who: Principal, uow: IncentiveUnitOfWork,
                        scopes: Scopes) -> Page[Accrual]:
    """The accruals of the dealers the viewer may see; a dealer outside that scope
    shows an empty list, never an error that would confirm it exists."""
    dealers = visible(await scope_of(who, scopes), dealer_id)
    if dealers is not None and not dealers:
        return Page([])
    which = AccrualFilter(dealers, which.source_id, which.kind, which.scheme_id,
                          which.settlement_id, which.period_start, which.period_end,
                          which.recorded_after, which.recorded_before)
    async with uow.read():
        return await uow.accruals.page(which, page)


async def get_accrual(accrual_id: str, *, who: Principal, uow: IncentiveUnitOfWork,
                      scopes: Scopes) -> Accrual:
    scope = await scope_of(who, scopes)
    async with uow.read():
        accrual = await uow.accruals.get(accrual_id)
    if accrual is None or not scope.allows(accrual.dealer_id):
        raise NotFound(f"accrual {accrual_id} not found")
    return accrual


GROUPINGS = ("dealer", "channel_manager", "region", "period")


@dataclass
class ReportRow:
    key: str
    commission_minor: int = 0
    rebate_minor: int = 0
    settled_minor: int = 0
    dealers: set[str] = field(default_factory=set)
    accruals: int = 0

    def add(self, dealer_id: str, kind: str, amount: int, settled: int, count: int) -> None:
        if kind == AccrualKind.REBATE.value:
            self.rebate_minor += amount
        else:
            self.commission_minor += amount
        self.settled_minor += settled
        self.dealers.add(dealer_id)
        self.accruals += count


async def report(group_by: str, start: date | None, end: date | None, *, who: Principal,
                 uow: IncentiveUnitOfWork, scopes: Scopes) -> tuple[list[ReportRow], ReportRow]:
    """Accrued commission and rebates (and what of them is settled) summed per dealer,
    channel manager (of the dealer's product lines), region or month, over the dealers
    the viewer may see."""
    if group_by not in GROUPINGS:
        raise InvalidArgument.field("group_by", f"one of {', '.join(GROUPINGS)}")
    dealers = visible(await scope_of(who, scopes))
    async with uow.read():
        totals = await uow.accruals.totals(dealers, start, end)
        regions = {d.id: d.region_code for d in await uow.dealers.all()}
        managers = await uow.dealers.managers() if group_by == "channel_manager" else {}
    rows: dict[str, ReportRow] = {}
    total = ReportRow("total")
    for dealer_id, month, kind, amount, settled, count in totals:
        if group_by == "dealer":
            keys = [dealer_id]
        elif group_by == "region":
            keys = [regions.get(dealer_id) or "-"]
        elif group_by == "period":
            keys = [month]
        else:
            keys = sorted(managers.get(dealer_id, set())) or ["-"]
        for key in keys:
            rows.setdefault(key, ReportRow(key)).add(dealer_id, kind, amount, settled, count)
        total.add(dealer_id, kind, amount, settled, count)
    return sorted(rows.values(), key=lambda r: r.key), total

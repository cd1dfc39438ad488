"""In-memory incentive repositories and unit of work for the service-layer tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.incentive.domain.accruals import Accrual, AccrualFilter, AccrualKind
from services.incentive.domain.commission import CommissionRule
from services.incentive.usecases.ports import Deps
from shared.pagination import Page, PageRequest, page_of
from shared.testing import FakeClock, FakeScopes, FakeUnitOfWork, SequentialIds


@dataclass
class FakeAccruals:
    rows: dict[str, Accrual] = field(default_factory=dict)

    async def add(self, accrual: Accrual) -> None:
        self.rows[accrual.id] = accrual

    async def get(self, accrual_id: str) -> Accrual | None:
        return self.rows.get(accrual_id)

    async def for_source(self, kind: AccrualKind, source_type: str,
                         source_id: str) -> Accrual | None:
        return next((a for a in self.rows.values() if (a.kind, a.source_type, a.source_id)
                     == (kind, source_type, source_id)), None)

    async def page(self, which: AccrualFilter, page: PageRequest) -> Page[Accrual]:
        matching = sorted(
            (a for a in self.rows.values()
             if (which.dealer_ids is None or a.dealer_id in which.dealer_ids)
             and (not which.source_id or a.source_id == which.source_id)),
            key=lambda a: (-a.recorded_at.timestamp(), a.id))
        return page_of(matching[page.offset:page.offset + page.size + 1], page, len(matching))


class FakeIncentiveUnitOfWork(FakeUnitOfWork):
    repositories = ("accruals",)

    def __init__(self) -> None:
        super().__init__()
        self.accruals = FakeAccruals()


def fake_deps(rate_bps: int = 200) -> tuple[Deps, FakeIncentiveUnitOfWork]:
    uow = FakeIncentiveUnitOfWork()
    deps = Deps(uow=lambda: uow, uow_in=lambda _transaction: uow, clock=FakeClock(),
                ids=SequentialIds("accrual"), scopes=FakeScopes(),
                commission=CommissionRule(rate_bps))
    return deps, uow

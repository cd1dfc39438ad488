"""In-memory order repositories and unit of work for the service-layer tests. The stores
refuse what the database refuses: a part of an accepted upload recorded twice, an upload
superseded twice, a rebate credit booked twice."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from services.order.domain.accounts import Account, AccountFilter, RebateCredit
from services.order.domain.inventory import Stock, StockKey, StockMove, apply_moves
from services.order.domain.statements import DueItem
from shared.testing import FakeUnitOfWork


@dataclass
class FakeStock:
    positions: dict[StockKey, Stock] = field(default_factory=dict)

    async def move(self, moves: Iterable[StockMove], moment: datetime) -> None:
        apply_moves(self.positions, moves)

    async def get_many(self, keys: Iterable[StockKey]) -> dict[StockKey, Stock]:
        return {k: self.positions[k] for k in keys if k in self.positions}


@dataclass
class FakeAcceptedFlow:
    # (upload id, part index) → (moves, undone)
    parts: dict[tuple[str, int], tuple[list[StockMove], bool]] = field(default_factory=dict)
    superseded: dict[str, str] = field(default_factory=dict)

    async def record_part(self, upload_id: str, part_index: int, dealer_id: str,
                          moves: list[StockMove], moment: datetime) -> bool:
        if (upload_id, part_index) in self.parts:
            return False
        self.parts[(upload_id, part_index)] = (list(moves), False)
        return True

    async def is_superseded(self, upload_id: str) -> bool:
        return upload_id in self.superseded

    async def supersede(self, upload_id: str, superseded_by: str,
                        moment: datetime) -> list[StockMove]:
        if upload_id in self.superseded:
            return []
        self.superseded[upload_id] = superseded_by
        given_back: list[StockMove] = []
        for (uid, index), (moves, undone) in list(self.parts.items()):
            if uid == upload_id and not undone:
                given_back.extend(moves)
                self.parts[(uid, index)] = (moves, True)
        return given_back


@dataclass
class FakeAccounts:
    rows: dict[tuple[str, str], Account] = field(default_factory=dict)
    # (dealer, company) → [outstanding, open orders]
    exposures: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    # (dealer, company) → (invoices, everything settling them)
    due: dict[tuple[str, str], tuple[list[DueItem], int]] = field(default_factory=dict)

    async def get(self, dealer_id: str, company: str, *,
                  for_update: bool = False) -> Account | None:
        return self.rows.get((dealer_id, company))

    async def save(self, account: Account) -> None:
        self.rows[(account.dealer_id, account.selling_company)] = account

    async def matching(self, which: AccountFilter) -> list[Account]:
        return [a for key, a in sorted(self.rows.items())
                if (not which.dealer_id or a.dealer_id == which.dealer_id)
                and (which.dealer_ids is None or a.dealer_id in which.dealer_ids)
                and (not which.selling_company or a.selling_company == which.selling_company)]

    async def exposure(self, dealer_id: str, company: str) -> tuple[int, int]:
        owed, pending = self.exposures.get((dealer_id, company), [0, 0])
        return owed, pending

    async def add_outstanding(self, dealer_id: str, company: str, amount_minor: int) -> None:
        self.exposures.setdefault((dealer_id, company), [0, 0])[0] += amount_minor

    async def dues(self, dealer_id: str, company: str) -> tuple[list[DueItem], int]:
        return self.due.get((dealer_id, company), ([], 0))


@dataclass
class FakeRebateCredits:
    rows: dict[str, RebateCredit] = field(default_factory=dict)

    async def add(self, credit: RebateCredit, moment: datetime) -> bool:
        if credit.credit_id in self.rows:
            return False
        self.rows[credit.credit_id] = credit
        return True


class FakeOrderUnitOfWork(FakeUnitOfWork):
    repositories = ("stock", "accepted_flow", "accounts", "rebate_credits")

    def __init__(self) -> None:
        super().__init__()
        self.stock = FakeStock()
        self.accepted_flow = FakeAcceptedFlow()
        self.accounts = FakeAccounts()
        self.rebate_credits = FakeRebateCredits()

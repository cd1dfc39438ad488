"""Small builders for the service-layer tests: facts as the consumers hand them over, and
the use cases called with the fake collaborators."""

from __future__ import annotations

from datetime import date

from services.incentive.domain.accruals import Accrual, AccrualFilter, Lines, add_to
from services.incentive.domain.commission import CustomerSource
from services.incentive.domain.facts import Order, OrderLine, Registration, Sale, UploadPart
from services.incentive.usecases import facts
from shared.context import Principal

ADMIN = Principal(subject="user:admin", user_id="admin", roles=frozenset({"hq_admin"}))
FINANCE = Principal(subject="user:fin", user_id="fin", roles=frozenset({"finance"}))


def sale(upload: str, row: int, dealer: str, customer: str, quantity: int, amount: int,
         day: date, product: str = "A-001", line: str = "A系列", batch: str = "B1",
         part: int = 0, transfer: str = "") -> Sale:
    return Sale(upload, part, row, dealer, "" if transfer else customer, product, line, batch,
                day, quantity, amount, "CNY", transfer)


async def accept(deps, upload: str, dealer: str, rows: list[Sale], part: int = 0,
                 replaces: str = "", parts: int = 1):
    return await facts.accept_flow_part(
        UploadPart(upload, part, dealer, parts, f"ev-{upload}-{part}", replaces), rows,
        uow=deps.uow(), clock=deps.clock, ids=deps.ids, policy=deps.policy)


async def register(deps, reg: str, dealer: str, customer: str, source: CustomerSource,
                   approved: date | None = None, ended: date | None = None,
                   line: str = "A系列"):
    return await facts.record_registration(
        Registration(reg, dealer, customer, line, source, approved, ended), "registration",
        uow=deps.uow(), clock=deps.clock, ids=deps.ids, policy=deps.policy)


def order(order_id: str, dealer: str, amount: int, approved: date | None = None,
          voided: bool = False, quantity: int = 10, line: str = "A系列") -> Order:
    return Order(order_id, dealer, "default",
                 (OrderLine(1, "A-001", line, quantity, amount),), approved, voided)


async def order_event(deps, seen: Order, cause: str = "order"):
    return await facts.record_order(seen, cause, uow=deps.uow(), clock=deps.clock,
                                    ids=deps.ids, policy=deps.policy)


def ledger(uow, **filters) -> Lines:
    """The ledger's net lines (zero lines left out)."""
    lines: Lines = {}
    for row in uow.accruals.rows:
        if AccrualFilter(**filters).matches(row):
            add_to(lines, row.key, row.amounts)
    return {k: v for k, v in lines.items() if not v.is_zero}


def total(uow, **filters) -> int:
    return sum(v.amount_minor for v in ledger(uow, **filters).values())


def amounts(rows: list[Accrual]) -> list[int]:
    return [row.amounts.amount_minor for row in rows]

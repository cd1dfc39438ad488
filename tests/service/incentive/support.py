"""Small builders for the service-layer tests: facts as the consumers hand them over, and
the use cases called with the fake collaborators."""

from __future__ import annotations

from datetime import date

from qudao.identity.v1 import identity_pb2

from services.incentive.domain.accruals import Accrual, AccrualFilter, Lines, add_to
from services.incentive.domain.commission import CustomerSource
from services.incentive.domain.facts import Order, OrderLine, Registration, Sale, UploadPart
from services.incentive.domain.periods import Period
from services.incentive.domain.programs import Program
from services.incentive.domain.tiers import Basis, Mode, Scheme, Threshold, Tier
from services.incentive.usecases import facts, programs, settlement
from shared.context import Principal

ADMIN = Principal(subject="user:admin", user_id="admin", roles=frozenset({"hq_admin"}))
FINANCE = Principal(subject="user:fin", user_id="fin", roles=frozenset({"finance"}))
# A second person in finance: approves what FINANCE closed.
CONTROLLER = Principal(subject="user:ctl", user_id="ctl", roles=frozenset({"finance"}))


def dealer_staff(dealer_id: str) -> Principal:
    return Principal(subject=f"user:{dealer_id}-staff", user_id=f"{dealer_id}-staff",
                     roles=frozenset({"dealer_sales"}), dealer_id=dealer_id)


def hq_sees_everything(deps, *principals: Principal) -> None:
    for who in principals or (ADMIN, FINANCE, CONTROLLER):
        deps.scopes.allow(who, all_dealers=True)


def writes(deps) -> dict:
    """The collaborators of a writing use case."""
    return {"uow": deps.uow(), "clock": deps.clock, "ids": deps.ids, "policy": deps.policy}


def configures(deps) -> dict:
    """The collaborators of a configuring use case (it checks the dealers it names)."""
    return {"scopes": deps.scopes, **writes(deps)}


def sale(upload: str, row: int, dealer: str, customer: str, quantity: int, amount: int,
         day: date, product: str = "A-001", line: str = "A系列", batch: str = "B1",
         part: int = 0, transfer: str = "", gtin: str = "") -> Sale:
    return Sale(upload, part, row, dealer, "" if transfer else customer, product, line, batch,
                day, quantity, amount, "CNY", transfer, gtin)


def audience_tag(tag: str) -> bytes:
    return identity_pb2.AudienceExpression(
        term=identity_pb2.AudienceTerm(tag=tag)).SerializeToString()


def program(name: str, tiers: tuple[Tier, ...], *, basis: Basis = Basis.QUANTITY,
            threshold: Threshold = Threshold.QUANTITY, mode: Mode = Mode.RETROACTIVE,
            period: str = "2026-Q1", cap: int | None = None, lines: tuple[str, ...] = ("A系列",),
            codes: tuple[str, ...] = (), audience: bytes = b"") -> Program:
    """A program over one period (a month, quarter or year, settled as such)."""
    span = Period.parse(period)
    return Program("", 0, name, lines, codes, span.kind, span.start, span.end, span.start,
                   basis, Scheme(mode, threshold, tiers, cap), audience=audience)


async def create(deps, draft: Program, who: Principal = ADMIN) -> Program:
    created, _ = await programs.create_program(draft, who=who, audiences=deps.audiences,
                                               **writes(deps))
    return created


async def close(deps, period: str, who: Principal = FINANCE, company: str = ""):
    return await settlement.close_period(Period.parse(period), company, who=who,
                                         **writes(deps))


async def approve(deps, period_id: str, who: Principal = CONTROLLER):
    return await settlement.settle_period(period_id, who=who, **writes(deps))


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

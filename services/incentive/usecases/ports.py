"""What the incentive use cases need from the world, as protocols: the unit of work with
its repositories, identity's audience query, the statement renderer, and ``Deps``, the
collaborators bootstrap.py wires. The adapters implement them over SQL;
tests/service/incentive/fakes.py implements them in memory."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date
from typing import Protocol, Self

from services.incentive.domain.accruals import Accrual, AccrualFilter, Lines, UnitType
from services.incentive.domain.commission import CommissionRule
from services.incentive.domain.dealers import Dealer
from services.incentive.domain.facts import (
    Diversion,
    LeadEvent,
    Order,
    Ownership,
    Registration,
    Return,
    Sale,
    ShippedLine,
    UploadPart,
)
from services.incentive.domain.periods import Period
from services.incentive.domain.programs import Program
from services.incentive.domain.settlement import Settlement, SettlementPeriod
from services.incentive.domain.targets import Target
from services.incentive.domain.tiers import Volume
from shared.clock import Clock
from shared.ids import IdSource
from shared.pagination import Page, PageRequest
from shared.scope import Scopes
from shared.uow import EventLog


class SalesRepository(Protocol):
    """Accepted sell-through: upload parts and their rows, replaced uploads, diversions."""

    async def add_part(self, part: UploadPart, rows: list[Sale]) -> bool: ...

    async def rows_of(self, upload_id: str, part_index: int) -> list[Sale]: ...

    async def parts_of(self, upload_id: str) -> list[UploadPart]: ...

    async def supersede(self, upload_id: str, by_upload_id: str) -> bool: ...

    async def is_superseded(self, upload_id: str) -> bool: ...

    async def put_diversion(self, diversion: Diversion) -> None: ...

    async def diversion(self, diversion_id: str) -> Diversion | None: ...

    async def diversions_of(self, dealer_ids: frozenset[str]) -> list[Diversion]:
        """The diversions these dealers are the selling dealer of."""
        ...

    async def parts_with_batch(self, dealer_id: str, batch: str) -> list[tuple[str, int]]: ...

    async def parts_selling(self, dealer_id: str, customer_id: str,
                            since: date) -> list[tuple[str, int]]: ...

    async def parts_between(self, start: date, end: date) -> list[tuple[str, int]]: ...

    async def counted(self, dealer_ids: frozenset[str] | None, product_lines: tuple[str, ...],
                      product_codes: tuple[str, ...], start: date, end: date,
                      currency: str) -> dict[str, dict[str, Volume]]:
        """The accepted sales a rebate or target counts (not transfers, not replaced, not
        diverted) of the measured products in start..end: per dealer, the volume of each
        upload part ("flow_upload:<upload>#<part>")."""
        ...


class OrderRepository(Protocol):
    """Orders (counted once fully approved, never once rejected or cancelled), returns,
    which order line a shipped product came from, and the catalog's product lines."""

    async def get(self, order_id: str) -> Order | None: ...

    async def put(self, order: Order) -> None: ...

    async def counted(self, dealer_ids: frozenset[str] | None, start: date,
                      end: date) -> list[Order]: ...

    async def of_dealer(self, dealer_id: str) -> list[Order]: ...

    async def get_return(self, return_id: str) -> Return | None: ...

    async def put_return(self, returned: Return) -> None: ...

    async def returns(self, dealer_ids: frozenset[str] | None, start: date,
                      end: date) -> list[Return]: ...

    async def link_shipment(self, lines: list[ShippedLine]) -> None: ...

    async def shipped_lines(self, shipment_id: str) -> list[ShippedLine]: ...

    async def put_product(self, code: str, product_line: str, list_price_minor: int) -> None: ...

    async def product(self, code: str) -> tuple[str, int] | None: ...

    async def units_between(self, start: date, end: date) -> tuple[list[str], list[str]]: ...


class OwnershipRepository(Protocol):
    """Who brought a customer to a dealer: registrations and HQ lead assignments."""

    async def registration(self, registration_id: str) -> Registration | None: ...

    async def put_registration(self, registration: Registration) -> None: ...

    async def add_lead_event(self, event: LeadEvent) -> bool: ...

    async def spans(self, dealer_id: str, customer_ids: set[str]) -> list[Ownership]: ...

    async def move_customer(self, from_id: str, to_id: str) -> list[Registration]:
        """Registrations and lead assignments of ``from_id`` now name ``to_id``; returns
        the registrations moved."""


class DealerRepository(Protocol):
    """Identity's dealers as incentive needs them (region, tags, managers)."""

    async def get(self, dealer_id: str) -> Dealer | None: ...

    async def put(self, dealer: Dealer) -> None: ...

    async def by_credit_code(self, credit_code: str) -> Dealer | None: ...

    async def all(self) -> list[Dealer]: ...

    async def assign(self, manager_user_id: str, dealer_id: str, product_line: str,
                     assigned: bool) -> None: ...

    async def managers(self) -> dict[str, set[str]]: ...


class RuleRepository(Protocol):
    async def all(self) -> list[CommissionRule]: ...

    async def get(self, rule_id: str) -> CommissionRule | None: ...

    async def put(self, rule: CommissionRule) -> None: ...


class ProgramRepository(Protocol):
    async def add_version(self, program: Program) -> None: ...

    async def versions(self, program_id: str) -> list[Program]: ...

    async def all(self) -> dict[str, list[Program]]: ...

    async def members(self, program_id: str) -> set[str]: ...

    async def set_member(self, program_id: str, dealer_id: str, member: bool) -> None: ...

    async def add_members(self, program_id: str, dealer_ids: set[str]) -> None: ...

    async def programs_of(self, dealer_id: str) -> set[str]: ...


class TargetRepository(Protocol):
    async def put(self, target: Target) -> bool: ...

    async def of(self, dealer_ids: frozenset[str] | None, period: Period | None = None,
                 product_line: str = "") -> list[Target]: ...


class AccrualRepository(Protocol):
    """The ledger: appended, never updated, except for freezing into settlements."""

    async def add_all(self, accruals: list[Accrual]) -> None: ...

    async def get(self, accrual_id: str) -> Accrual | None: ...

    async def booked(self, unit_type: UnitType, unit_ids: list[str]) -> dict[str, Lines]: ...

    async def booked_rebates(self, program_id: str, period_start: date) -> Lines: ...

    async def page(self, which: AccrualFilter, page: PageRequest) -> Page[Accrual]: ...

    async def matching(self, which: AccrualFilter) -> list[Accrual]: ...

    async def unfrozen_periods(self, company: str) -> list[tuple[date, date]]: ...

    async def freeze(self, company: str, periods: list[tuple[date, date]], period_id: str,
                     adjustment: bool) -> None: ...

    async def frozen(self, period_id: str) -> list[Accrual]: ...

    async def totals(self, dealer_ids: frozenset[str] | None, start: date | None,
                     end: date | None) -> list[tuple[str, str, str, int, int, int]]: ...


class SettlementRepository(Protocol):
    async def closed_months(self, company: str | None = None) -> set[str]: ...

    async def close_months(self, company: str, months: list[str], period_id: str) -> None: ...

    async def add_period(self, period: SettlementPeriod) -> None: ...

    async def put_period(self, period: SettlementPeriod) -> None: ...

    async def get_period(self, period_id: str) -> SettlementPeriod | None: ...

    async def periods(self, company: str, page: PageRequest) -> Page[SettlementPeriod]: ...

    async def add_settlements(self, settlements: list[Settlement]) -> None: ...

    async def put_settlement(self, settlement: Settlement) -> None: ...

    async def get(self, settlement_id: str) -> Settlement | None: ...

    async def of_period(self, period_id: str) -> list[Settlement]: ...

    async def page(self, period_id: str, dealer_ids: frozenset[str] | None, status: str,
                   page: PageRequest) -> Page[Settlement]: ...

    async def find(self, dealer_id: str, start: date, end: date) -> Settlement | None: ...


class IncentiveUnitOfWork(Protocol):
    sales: SalesRepository
    orders: OrderRepository
    ownership: OwnershipRepository
    dealers: DealerRepository
    rules: RuleRepository
    programs: ProgramRepository
    targets: TargetRepository
    accruals: AccrualRepository
    settlements: SettlementRepository
    events: EventLog

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc) -> None: ...

    def read(self) -> AbstractAsyncContextManager[Self]: ...

    async def commit(self) -> None: ...


class Audiences(Protocol):
    """Identity's QueryAudience, asked as the calling user: the active dealers matching
    an audience expression (identity's AudienceExpression bytes; empty: every dealer
    carrying one of the product lines)."""

    async def members(self, expression: bytes, product_lines: tuple[str, ...]) -> set[str]: ...


class StatementRenderer(Protocol):
    def render(self, settlement: Settlement, dealer: Dealer | None) -> tuple[str, bytes]: ...


@dataclass(frozen=True)
class Policy:
    """The service's options (settings.py)."""

    default_rate_bps: int = 200
    default_company: str = "default"
    grace_days: int = 10
    currency: str = "CNY"


@dataclass(frozen=True)
class Deps:
    """The collaborators bootstrap.py wires, for the api and consumers to pass on."""

    uow: Callable[[], IncentiveUnitOfWork]
    # A unit of work inside a consumer's transaction (the one holding its inbox row).
    uow_in: Callable[[object], IncentiveUnitOfWork]
    clock: Clock
    ids: IdSource
    scopes: Scopes
    policy: Policy
    audiences: Audiences
    renderer: StatementRenderer

"""Statements (对账单) and account balances. Pure Python, no I/O.

The ledger of a dealer's account with one selling company is its invoices (debit),
payments, credit notes and rebate credits (credit). Orders and shipments appear on a
statement for information only: they carry amounts but never move the balance.

outstanding = invoices − credit notes − payments − rebate credits, always computed from
those records (never stored). A statement for [start, end] has
opening = balance of every ledger entry dated before start, the period's entries in date
order with a running balance, and closing = opening + debits − credits.

An issued statement is a snapshot. A record dated inside an already issued period (a late
shipment or invoice the ERP pushed afterwards) does not change it; issuing the period
again supersedes the old statement with one that includes the late record, and the
opening balance of every later statement includes it either way (it is computed from the
ledger, not carried over from the previous statement).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class LineKind(enum.IntEnum):
    """Numbers as in the proto's StatementLineKind."""

    ORDER = 1
    SHIPMENT = 2
    INVOICE = 3
    PAYMENT = 4
    CREDIT_NOTE = 5
    REBATE_CREDIT = 6
    ADJUSTMENT = 7


INFORMATIONAL = frozenset({LineKind.ORDER, LineKind.SHIPMENT})
ORDER_OF_KINDS = {LineKind.ORDER: 0, LineKind.SHIPMENT: 1, LineKind.INVOICE: 2,
                  LineKind.CREDIT_NOTE: 3, LineKind.PAYMENT: 4, LineKind.REBATE_CREDIT: 5,
                  LineKind.ADJUSTMENT: 6}


@dataclass(frozen=True)
class Entry:
    """One dated item of the account: amount is positive; its kind says which side."""

    kind: LineKind
    ref_id: str
    day: str  # "YYYY-MM-DD"
    amount: int
    description: str

    @property
    def debit(self) -> int:
        return self.amount if self.kind in (LineKind.INVOICE,) else 0

    @property
    def credit(self) -> int:
        if self.kind in (LineKind.PAYMENT, LineKind.CREDIT_NOTE, LineKind.REBATE_CREDIT):
            return self.amount
        return 0


@dataclass(frozen=True)
class StatementLine:
    line_no: int
    entry: Entry
    debit: int
    credit: int
    balance: int


@dataclass(frozen=True)
class ComputedStatement:
    opening: int
    lines: list[StatementLine]
    total_debit: int
    total_credit: int
    closing: int


def balance(entries: list[Entry]) -> int:
    return sum(e.debit - e.credit for e in entries)


def compute_statement(entries: list[Entry], start: str, end: str) -> ComputedStatement:
    """The statement of [start, end] from every entry of the account (any date)."""
    if start > end:
        raise ValueError("period_start after period_end")
    opening = balance([e for e in entries if e.day < start and e.kind not in INFORMATIONAL])
    in_period = sorted((e for e in entries if start <= e.day <= end),
                       key=lambda e: (e.day, ORDER_OF_KINDS[e.kind], e.ref_id))
    running = opening
    lines: list[StatementLine] = []
    total_debit = total_credit = 0
    for number, entry in enumerate(in_period, start=1):
        if entry.kind in INFORMATIONAL:
            lines.append(StatementLine(number, entry, 0, 0, running))
            continue
        running += entry.debit - entry.credit
        total_debit += entry.debit
        total_credit += entry.credit
        lines.append(StatementLine(number, entry, entry.debit, entry.credit, running))
    return ComputedStatement(opening, lines, total_debit, total_credit,
                             opening + total_debit - total_credit)


@dataclass(frozen=True)
class DueItem:
    due_on: str
    amount: int


def overdue(invoices: list[DueItem], credits_total: int, today: str) -> int:
    """Outstanding past due: credits (payments, notes, rebates) settle the oldest
    invoices first; whatever of an invoice due before today is left is overdue."""
    remaining_credit = credits_total
    late = 0
    for item in sorted(invoices, key=lambda i: i.due_on):
        settled = min(item.amount, max(remaining_credit, 0))
        remaining_credit -= settled
        if item.due_on < today:
            late += item.amount - settled
    return late


ISSUED, CONFIRMED, DISPUTED, SUPERSEDED = 1, 2, 3, 4
# Who issues statements; who confirms or disputes them (the dealer's side).
STATEMENT_ISSUERS = ("finance", "hq_admin")
DEALER_STAFF = ("dealer_admin", "dealer_sales")
KIND_LABELS = {
    LineKind.ORDER: "订单 order", LineKind.SHIPMENT: "发货 shipment",
    LineKind.INVOICE: "发票 invoice", LineKind.PAYMENT: "回款 payment",
    LineKind.CREDIT_NOTE: "红字发票 credit note", LineKind.REBATE_CREDIT: "返利 rebate",
    LineKind.ADJUSTMENT: "调整 adjustment",
}


@dataclass
class IssuedLine:
    line_no: int
    kind: int
    ref_id: str
    date: str
    description: str
    debit_minor: int
    credit_minor: int
    balance_minor: int
    disputed: bool = False
    dispute_reason: str = ""
    disputed_amount_minor: int | None = None


@dataclass
class Statement:
    id: str
    dealer_id: str
    selling_company: str
    period_start: str
    period_end: str
    status: int
    currency: str
    opening_minor: int
    total_debit_minor: int
    total_credit_minor: int
    closing_minor: int
    issued_at: datetime
    issued_by: str
    confirmed_at: datetime | None = None
    confirmed_by: str = ""
    supersedes_statement_id: str = ""
    lines: list[IssuedLine] = field(default_factory=list)

    def line(self, line_no: int) -> IssuedLine | None:
        return next((line for line in self.lines if line.line_no == line_no), None)


@dataclass(frozen=True)
class StatementQuery:
    dealer_id: str = ""
    dealer_ids: frozenset[str] | None = None
    selling_company: str = ""
    statuses: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Dispute:
    statement_id: str
    line_no: int
    reason: str
    # None: the whole line.
    amount_minor: int | None = None


@dataclass(frozen=True)
class LedgerQuery:
    """Invoices or payments: of a dealer (or the dealers in scope), a company, a
    statement's lines, a period ("YYYY-MM-DD", inclusive)."""

    dealer_id: str = ""
    dealer_ids: frozenset[str] | None = None
    selling_company: str = ""
    statement_id: str = ""
    day_from: str = ""
    day_to: str = ""


@dataclass(frozen=True)
class ExportedFile:
    filename: str
    content_type: str
    content: bytes

"""Dealer accounts (per dealer × selling company): the credit limit and payment terms HQ
sets, what the dealer owes and has on order (the running exposure), and rebate credits
booked from incentive. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from shared.errors import FieldViolation, collect

DEFAULT_TERMS_DAYS = 30
MAX_TERMS_DAYS = 365
# Who may set credit limits and terms.
CREDIT_WRITERS = ("finance", "hq_admin")


@dataclass(frozen=True)
class Account:
    dealer_id: str
    selling_company: str
    credit_limit_minor: int
    currency: str
    payment_terms_days: int = DEFAULT_TERMS_DAYS
    # None: no account stored yet (a limit of 0, the default terms).
    updated_at: datetime | None = None
    # Increases with every change of limit or terms (the REST API's ETag); 0: unstored.
    version: int = 0

    @classmethod
    def unset(cls, dealer_id: str, company: str, currency: str) -> Account:
        return cls(dealer_id, company, 0, currency)


@dataclass(frozen=True)
class AccountView:
    account: Account
    outstanding_minor: int
    open_orders_minor: int
    overdue_minor: int

    @property
    def available_minor(self) -> int:
        return self.account.credit_limit_minor - self.outstanding_minor - self.open_orders_minor


@dataclass(frozen=True)
class AccountFilter:
    dealer_id: str = ""
    selling_company: str = ""
    # None: every dealer (the caller's scope is all dealers).
    dealer_ids: frozenset[str] | None = None


@dataclass(frozen=True)
class LimitChange:
    dealer_id: str
    selling_company: str
    credit_limit_minor: int
    currency: str
    # None: keep the terms as they are.
    payment_terms_days: int | None = None
    reason: str = ""
    # The version the change was made against (If-Match); 0: whatever is current.
    expected_version: int = 0

    def check(self) -> None:
        """Raise naming every bad field."""
        violations = []
        if not self.dealer_id:
            violations.append(FieldViolation("dealer_id", "is required"))
        if self.credit_limit_minor < 0:
            violations.append(FieldViolation("credit_limit.amount_minor", "must not be negative"))
        if self.payment_terms_days is not None and not (
                0 <= self.payment_terms_days <= MAX_TERMS_DAYS):
            violations.append(FieldViolation("payment_terms_days", f"must be 0..{MAX_TERMS_DAYS}"))
        collect(violations)

    def applied_to(self, account: Account, moment: datetime) -> Account:
        return Account(
            account.dealer_id, account.selling_company, self.credit_limit_minor,
            self.currency or account.currency,
            account.payment_terms_days if self.payment_terms_days is None
            else self.payment_terms_days, moment, account.version + 1)


@dataclass(frozen=True)
class RebateCredit:
    """A settled rebate or commission credited to the account (incentive's
    rebate.credited); ``credit_id`` makes it count once."""

    credit_id: str
    dealer_id: str
    selling_company: str
    amount_minor: int
    currency: str
    credited_on: str
    description: str


def due_date(issued_on: str, terms_days: int) -> str:
    return (date.fromisoformat(issued_on) + timedelta(days=terms_days)).isoformat()


# Invoice kinds (as the proto numbers them).
INVOICE = 1
CREDIT_NOTE = 2

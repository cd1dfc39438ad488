"""Dealer accounts: credit limit and terms, with what the dealer owes (invoices − credit
notes − payments − rebate credits) and its open orders read from the running exposure
(adapters/exposure.py); what is overdue is derived from the ledger."""

from __future__ import annotations

from datetime import date, timedelta

from qudao.order.v1 import events_pb2, order_pb2
from sqlalchemy import and_, func, select

from services.order.adapters import exposure
from services.order.adapters.orm import (
    DealerAccountRow,
    InvoiceRow,
    PaymentRow,
    RebateCreditRow,
)
from services.order.domain.statements import DueItem, overdue
from services.order.usecases.common import (
    CREDIT_WRITERS,
    UseCaseBase,
    now,
    today,
    ts,
)
from shared.convert import money_to_proto
from shared.errors import FieldViolation, InvalidArgument, NotFound, collect
from shared.events.order import DEALER_ACCOUNT_UPDATED
from shared.money import Money
from shared.pagination import decode_page_token, encode_page_token

INVOICE = 1
CREDIT_NOTE = 2
DEFAULT_TERMS_DAYS = 30


async def overdue_amount(session, dealer_id: str, company: str) -> int:
    rows = (await session.execute(
        select(InvoiceRow.due_on, InvoiceRow.amount_minor)
        .where(InvoiceRow.dealer_id == dealer_id, InvoiceRow.selling_company == company,
               InvoiceRow.kind == INVOICE))).all()
    notes = await session.scalar(
        select(func.coalesce(func.sum(InvoiceRow.amount_minor), 0))
        .where(InvoiceRow.dealer_id == dealer_id, InvoiceRow.selling_company == company,
               InvoiceRow.kind == CREDIT_NOTE))
    paid = await session.scalar(
        select(func.coalesce(func.sum(PaymentRow.amount_minor), 0))
        .where(PaymentRow.dealer_id == dealer_id, PaymentRow.selling_company == company))
    credited = await session.scalar(
        select(func.coalesce(func.sum(RebateCreditRow.amount_minor), 0))
        .where(RebateCreditRow.dealer_id == dealer_id,
               RebateCreditRow.selling_company == company))
    return overdue([DueItem(r.due_on, r.amount_minor) for r in rows],
                   int(notes) + int(paid) + int(credited), today())


async def payment_terms(session, dealer_id: str, company: str) -> int:
    row = await session.get(DealerAccountRow, (dealer_id, company))
    return row.payment_terms_days if row else DEFAULT_TERMS_DAYS


def due_date(issued_on: str, terms_days: int) -> str:
    return (date.fromisoformat(issued_on) + timedelta(days=terms_days)).isoformat()


class AccountUseCases(UseCaseBase):
    async def account_proto(self, session, dealer_id: str, company: str,
                            row: DealerAccountRow | None = None) -> order_pb2.DealerAccount:
        row = row or await session.get(DealerAccountRow, (dealer_id, company))
        currency = row.currency if row else self.currency
        limit = row.credit_limit_minor if row else 0
        owed, pending, _ = await exposure.figures(session, dealer_id, company)
        late = await overdue_amount(session, dealer_id, company)
        account = order_pb2.DealerAccount(
            dealer_id=dealer_id, selling_company=company,
            credit_limit=money_to_proto(Money(limit, currency)),
            payment_terms_days=row.payment_terms_days if row else DEFAULT_TERMS_DAYS,
            outstanding=money_to_proto(Money(owed, currency)),
            open_orders=money_to_proto(Money(pending, currency)),
            available_credit=money_to_proto(Money(limit - owed - pending, currency)),
            overdue=money_to_proto(Money(late, currency)))
        if row is not None:
            account.updated_at.CopyFrom(ts(row.updated_at))
        return account

    async def get_dealer_account(self, dealer_id: str, company: str) -> order_pb2.DealerAccount:
        if not dealer_id:
            raise InvalidArgument.field("dealer_id", "is required")
        scope = await self.scope("order.read")
        if not scope.allows(dealer_id):
            raise NotFound(f"dealer account {dealer_id} not found")
        async with self.db.read() as session:
            return await self.account_proto(session, dealer_id, self.company(company))

    async def list_dealer_accounts(self, dealer_id: str, company: str, overdue_only: bool,
                                   size: int, token: str):
        scope = await self.scope("order.read")
        offset = decode_page_token(token)
        query = select(DealerAccountRow).order_by(DealerAccountRow.dealer_id,
                                                  DealerAccountRow.selling_company)
        if dealer_id:
            if not scope.allows(dealer_id):
                return [], ""
            query = query.where(DealerAccountRow.dealer_id == dealer_id)
        elif not scope.all_dealers:
            query = query.where(DealerAccountRow.dealer_id.in_(scope.dealer_ids))
        if company:
            query = query.where(DealerAccountRow.selling_company == company)
        async with self.db.read() as session:
            rows = (await session.scalars(query)).all()
            accounts = []
            for row in rows:
                account = await self.account_proto(session, row.dealer_id, row.selling_company,
                                                   row)
                if overdue_only and account.overdue.amount_minor <= 0:
                    continue
                accounts.append(account)
        page = accounts[offset:offset + size]
        more = len(accounts) > offset + size
        return page, encode_page_token(offset + size) if more else ""

    async def set_credit_limit(self, request: order_pb2.SetCreditLimitRequest):
        if request.dealer_id:
            (await self.scope("account.credit")).require(request.dealer_id, "dealer account")
        self.require_role(*CREDIT_WRITERS, what="set credit limits")
        violations = []
        if not request.dealer_id:
            violations.append(FieldViolation("dealer_id", "is required"))
        if request.credit_limit.amount_minor < 0:
            violations.append(FieldViolation("credit_limit.amount_minor", "must not be negative"))
        if request.HasField("payment_terms_days") and not 0 <= request.payment_terms_days <= 365:
            violations.append(FieldViolation("payment_terms_days", "must be 0..365"))
        collect(violations)
        company = self.company(request.selling_company)
        async with self.db.write() as session:
            row = await session.get(DealerAccountRow, (request.dealer_id, company),
                                    with_for_update=True)
            previous = Money(row.credit_limit_minor if row else 0,
                             row.currency if row else self.currency)
            if row is None:
                row = DealerAccountRow(dealer_id=request.dealer_id, selling_company=company,
                                       payment_terms_days=DEFAULT_TERMS_DAYS,
                                       credit_limit_minor=0, currency=self.currency,
                                       updated_at=now())
                session.add(row)
            row.credit_limit_minor = request.credit_limit.amount_minor
            row.currency = request.credit_limit.currency or self.currency
            if request.HasField("payment_terms_days"):
                row.payment_terms_days = request.payment_terms_days
            row.updated_at = now()
            await session.flush()
            account = await self.account_proto(session, request.dealer_id, company, row)
            await self.outbox.record(session, DEALER_ACCOUNT_UPDATED,
                                     events_pb2.DealerAccountUpdated(
                                         account=account,
                                         previous_credit_limit=money_to_proto(previous),
                                         reason=request.reason),
                                     request.dealer_id)
        return account


def account_filter(model, dealer_id: str, company: str):
    return and_(model.dealer_id == dealer_id, model.selling_company == company)

"""Dealer accounts, as handlers: read one or a list (with what the dealer owes and has on
order, from the running exposure, and what is overdue), set the credit limit and terms,
book a rebate credit from incentive. Each names its collaborators; out of the caller's
scope an account is NOT_FOUND."""

from __future__ import annotations

from services.order import messages
from services.order.domain.accounts import (
    CREDIT_WRITERS,
    Account,
    AccountFilter,
    AccountView,
    LimitChange,
    RebateCredit,
)
from services.order.domain.statements import overdue
from services.order.usecases.ports import OrderUnitOfWork
from shared.clock import Clock
from shared.context import Principal
from shared.errors import InvalidArgument, NotFound, PermissionDenied, check_version
from shared.events.order import CREDIT_APPLIED, DEALER_ACCOUNT_UPDATED
from shared.pagination import Page, PageRequest, page_of_all
from shared.scope import Scopes


async def _views(uow: OrderUnitOfWork, accounts: list[Account],
                 clock: Clock) -> list[AccountView]:
    """Each account with what it owes, has on order and has overdue: two reads for all
    of them, however many (a region's list is thousands of accounts)."""
    keys = [(a.dealer_id, a.selling_company) for a in accounts]
    exposures = await uow.accounts.exposures(keys)
    dues = await uow.accounts.dues(keys)
    today = clock.now().date().isoformat()
    views = []
    for account, key in zip(accounts, keys, strict=True):
        owed, pending = exposures.get(key, (0, 0))
        items, settled = dues.get(key, ([], 0))
        views.append(AccountView(account, owed, pending, overdue(items, settled, today)))
    return views


async def _view(uow: OrderUnitOfWork, account: Account, clock: Clock) -> AccountView:
    return (await _views(uow, [account], clock))[0]


async def get_dealer_account(dealer_id: str, company: str, *, who: Principal,
                             uow: OrderUnitOfWork, scopes: Scopes, clock: Clock,
                             currency: str) -> AccountView:
    if not dealer_id:
        raise InvalidArgument.field("dealer_id", "is required")
    if not (await scopes.resolve(who, "order.read")).allows(dealer_id):
        raise NotFound(f"dealer account {dealer_id} not found")
    async with uow.read():
        account = await uow.accounts.get(dealer_id, company) or Account.unset(
            dealer_id, company, currency)
        return await _view(uow, account, clock)


async def list_dealer_accounts(which: AccountFilter, overdue_only: bool, page: PageRequest,
                               *, who: Principal, uow: OrderUnitOfWork, scopes: Scopes,
                               clock: Clock) -> Page[AccountView]:
    scope = await scopes.resolve(who, "order.read")
    if which.dealer_id and not scope.allows(which.dealer_id):
        return Page([])
    if not scope.all_dealers:
        which = AccountFilter(which.dealer_id, which.selling_company, scope.dealer_ids)
    async with uow.read():
        accounts = await uow.accounts.matching(which)
        if overdue_only:
            views = [v for v in await _views(uow, accounts, clock) if v.overdue_minor > 0]
            return page_of_all(views, page)
        # Only the page's accounts get their figures.
        listed = page_of_all(accounts, page)
        return Page(await _views(uow, listed.items, clock), listed.next_token, listed.total)


async def set_credit_limit(change: LimitChange, *, who: Principal, uow: OrderUnitOfWork,
                           scopes: Scopes, clock: Clock) -> AccountView:
    if change.dealer_id:
        (await scopes.resolve(who, "account.credit")).require(change.dealer_id,
                                                              "dealer account")
    if not who.has_role(*CREDIT_WRITERS):
        raise PermissionDenied(f"only {', '.join(CREDIT_WRITERS)} may set credit limits")
    change.check()
    async with uow:
        before = await uow.accounts.get(change.dealer_id, change.selling_company,
                                        for_update=True) or Account.unset(
            change.dealer_id, change.selling_company, change.currency)
        # Compared under the row's lock: a change made meanwhile cannot slip between.
        check_version(f"dealer account {change.dealer_id}", change.expected_version,
                      before.version)
        account = change.applied_to(before, clock.now())
        await uow.accounts.save(account)
        view = await _view(uow, account, clock)
        uow.events.record(DEALER_ACCOUNT_UPDATED, messages.account_updated(view, before,
                                                                           change.reason),
                          change.dealer_id)
        await uow.commit()
    return view


async def book_rebate_credit(credit: RebateCredit, *, uow: OrderUnitOfWork,
                             clock: Clock) -> bool:
    """Credit the account once per credit id (less owed, more headroom); False when it
    was booked before or is not a positive amount."""
    if credit.amount_minor <= 0:
        return False
    async with uow:
        if not await uow.rebate_credits.add(credit, clock.now()):
            return False
        await uow.accounts.add_outstanding(credit.dealer_id, credit.selling_company,
                                           -credit.amount_minor)
        uow.events.record(CREDIT_APPLIED, messages.credit_applied(credit), credit.dealer_id)
        await uow.commit()
    return True

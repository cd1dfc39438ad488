"""Dealer accounts on in-memory fakes: who may read and set them (out of scope is
NOT_FOUND), bad limits named field by field and leaving nothing, available credit and
overdue, a rebate credit booked once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.order.domain.accounts import Account, AccountFilter, LimitChange, RebateCredit
from services.order.domain.statements import DueItem
from services.order.usecases.accounts import (
    book_rebate_credit,
    get_dealer_account,
    list_dealer_accounts,
    set_credit_limit,
)
from shared.context import Principal
from shared.errors import InvalidArgument, NotFound, PermissionDenied
from shared.events.order import CREDIT_APPLIED, DEALER_ACCOUNT_UPDATED
from shared.pagination import PageRequest
from shared.testing import FakeClock, FakeScopes
from tests.service.order.fakes import FakeOrderUnitOfWork

FINANCE = Principal(subject="user:finance", roles=frozenset({"finance"}))
MANAGER = Principal(subject="user:cm", roles=frozenset({"channel_manager"}))
DEALER = Principal(subject="user:d1", roles=frozenset({"dealer_admin"}), dealer_id="d1")
COMPANY = "default"


@pytest.fixture
def world():
    uow, scopes = FakeOrderUnitOfWork(), FakeScopes()
    scopes.allow(FINANCE, all_dealers=True)
    scopes.allow(MANAGER, ["d1", "d2"])
    scopes.allow(DEALER, ["d1"])
    return uow, scopes, FakeClock(datetime(2026, 11, 20, tzinfo=UTC))


async def test_finance_sets_a_limit_and_the_view_shows_the_headroom(world):
    uow, scopes, clock = world
    uow.accounts.running[("d1", COMPANY)] = [3_000, 2_000]
    view = await set_credit_limit(LimitChange("d1", COMPANY, 10_000, "CNY", 45, "annual"),
                                  who=FINANCE, uow=uow, scopes=scopes, clock=clock)
    assert view.available_minor == 5_000
    assert view.account.payment_terms_days == 45
    [event] = uow.published_of(DEALER_ACCOUNT_UPDATED)
    assert event.previous_credit_limit.amount_minor == 0
    assert event.account.credit_limit.amount_minor == 10_000 and event.reason == "annual"
    # Terms not given stay as they are.
    again = await set_credit_limit(LimitChange("d1", COMPANY, 20_000, "CNY"), who=FINANCE,
                                   uow=uow, scopes=scopes, clock=clock)
    assert again.account.payment_terms_days == 45


async def test_bad_limits_name_every_field_and_store_nothing(world):
    uow, scopes, clock = world
    with pytest.raises(InvalidArgument) as refused:
        await set_credit_limit(LimitChange("d1", COMPANY, -1, "CNY", 400), who=FINANCE,
                               uow=uow, scopes=scopes, clock=clock)
    assert {v.field for v in refused.value.violations} == {"credit_limit.amount_minor",
                                                           "payment_terms_days"}
    assert uow.accounts.rows == {} and uow.published == []


async def test_only_finance_and_hq_set_limits_and_out_of_scope_is_not_found(world):
    uow, scopes, clock = world
    with pytest.raises(PermissionDenied):
        await set_credit_limit(LimitChange("d1", COMPANY, 1, "CNY"), who=MANAGER, uow=uow,
                               scopes=scopes, clock=clock)
    with pytest.raises(NotFound):
        await set_credit_limit(LimitChange("d9", COMPANY, 1, "CNY"), who=MANAGER, uow=uow,
                               scopes=scopes, clock=clock)


async def test_a_dealer_reads_its_own_account_only(world):
    uow, scopes, clock = world
    await uow.accounts.save(Account("d1", COMPANY, 5_000, "CNY"))
    await uow.accounts.save(Account("d2", COMPANY, 7_000, "CNY"))
    mine = await get_dealer_account("d1", COMPANY, who=DEALER, uow=uow, scopes=scopes,
                                    clock=clock, currency="CNY")
    assert mine.account.credit_limit_minor == 5_000
    with pytest.raises(NotFound):
        await get_dealer_account("d2", COMPANY, who=DEALER, uow=uow, scopes=scopes,
                                 clock=clock, currency="CNY")
    listed = await list_dealer_accounts(AccountFilter(), False, PageRequest(), who=DEALER,
                                        uow=uow, scopes=scopes, clock=clock)
    assert [v.account.dealer_id for v in listed.items] == ["d1"]
    other = await list_dealer_accounts(AccountFilter(dealer_id="d2"), False, PageRequest(),
                                       who=DEALER, uow=uow, scopes=scopes, clock=clock)
    assert other.items == []
    # No account stored: a limit of 0 with the default terms, not an error.
    unset = await get_dealer_account("d1", "other-co", who=DEALER, uow=uow, scopes=scopes,
                                     clock=clock, currency="CNY")
    assert unset.account.credit_limit_minor == 0 and unset.account.updated_at is None


async def test_overdue_settles_the_oldest_invoices_first_and_filters_the_list(world):
    uow, scopes, clock = world
    await uow.accounts.save(Account("d1", COMPANY, 5_000, "CNY"))
    await uow.accounts.save(Account("d2", COMPANY, 5_000, "CNY"))
    uow.accounts.due[("d1", COMPANY)] = ([DueItem("2026-10-01", 1_000),
                                          DueItem("2026-11-01", 2_000),
                                          DueItem("2026-12-31", 4_000)], 1_500)
    listed = await list_dealer_accounts(AccountFilter(), True, PageRequest(), who=FINANCE,
                                        uow=uow, scopes=scopes, clock=clock)
    assert [(v.account.dealer_id, v.overdue_minor) for v in listed.items] == [("d1", 1_500)]


async def test_a_rebate_credit_is_booked_once_and_lowers_what_is_owed(world):
    uow, _, clock = world
    credit = RebateCredit("c-1", "d1", COMPANY, 800, "CNY", "2026-11-15", "返利")
    assert await book_rebate_credit(credit, uow=uow, clock=clock)
    assert not await book_rebate_credit(credit, uow=uow, clock=clock)
    assert not await book_rebate_credit(
        RebateCredit("c-2", "d1", COMPANY, 0, "CNY", "2026-11-15", ""), uow=uow, clock=clock)
    assert uow.accounts.running[("d1", COMPANY)] == [-800, 0]
    assert [e.credit_id for e in uow.published_of(CREDIT_APPLIED)] == ["c-1"]

"""The inbox on in-memory fakes: a notice reaches each recipient once, everyone reads
only their own items, and marking read changes nobody else's."""

from __future__ import annotations

import pytest

from services.engagement.domain.inbox import Notice
from services.engagement.usecases import inbox
from shared.context import Principal
from shared.errors import InvalidArgument, NotFound, Unauthenticated
from shared.pagination import PageRequest
from tests.service.engagement.support import EAST_STAFF, SOUTH_STAFF, build_world

PAGE = PageRequest(size=50)
SHIPPED = Notice("shipment.recorded", "货物已发出", "发货单 S1 共 10 件", "shipment", "S1", "east")


async def test_a_dealer_notice_reaches_each_of_its_staff_once():
    deps = await build_world()
    for _ in range(2):  # a redelivered event
        await inbox.notify(SHIPPED, "dealer", "event-1:dealer", uow=deps.uow(),
                           clock=deps.clock, ids=deps.ids)
    page, unread = await inbox.list_inbox(False, PAGE, who=EAST_STAFF, uow=deps.uow())
    assert [(i.kind, i.ref_id, i.read) for i in page.items] == [("shipment.recorded", "S1",
                                                                 False)]
    assert unread == 1
    assert sorted(i.user_id for i in deps.uow().inbox.items.values()) == ["east-1", "east-2"]
    page, unread = await inbox.list_inbox(False, PAGE, who=SOUTH_STAFF, uow=deps.uow())
    assert (page.items, unread) == ([], 0)


async def test_managers_hear_of_their_dealers():
    deps = await build_world()
    held = Notice("order.held", "订单待审批", "订单 PO-1 需要渠道经理审批。", "order", "o1", "east")
    await inbox.notify(held, "managers", "event-2:managers", uow=deps.uow(), clock=deps.clock,
                       ids=deps.ids)
    assert [i.user_id for i in deps.uow().inbox.items.values()] == ["cm"]


async def test_marking_read_touches_only_the_callers_items():
    deps = await build_world()
    await inbox.notify(SHIPPED, "dealer", "event-1:dealer", uow=deps.uow(), clock=deps.clock,
                       ids=deps.ids)
    mine = (await inbox.list_inbox(False, PAGE, who=EAST_STAFF, uow=deps.uow()))[0].items[0]
    other = next(i for i in deps.uow().inbox.items.values() if i.user_id == "east-2")
    # A colleague's item is not the caller's: not found, and nothing is marked.
    with pytest.raises(NotFound):
        await inbox.mark_read([mine.id, other.id], False, who=EAST_STAFF, uow=deps.uow(),
                              clock=deps.clock)
    assert (await inbox.list_inbox(True, PAGE, who=EAST_STAFF, uow=deps.uow()))[1] == 1
    assert await inbox.mark_read([mine.id], False, who=EAST_STAFF, uow=deps.uow(),
                                 clock=deps.clock) == (1, 0)
    page, unread = await inbox.list_inbox(True, PAGE, who=EAST_STAFF, uow=deps.uow())
    assert (page.items, unread) == ([], 0)
    colleague = Principal(subject="user:east-2", user_id="east-2", dealer_id="east",
                          roles=frozenset({"dealer_admin"}))
    assert await inbox.mark_read([], True, who=colleague, uow=deps.uow(),
                                 clock=deps.clock) == (1, 0)


async def test_bad_mark_requests_are_named():
    deps = await build_world()
    for ids, every, field in (([], False, "ids"), (["a"], True, "ids"), ([""], False, "ids[0]")):
        with pytest.raises(InvalidArgument) as refused:
            await inbox.mark_read(ids, every, who=EAST_STAFF, uow=deps.uow(), clock=deps.clock)
        assert refused.value.violations[0].field == field
    with pytest.raises(Unauthenticated):
        await inbox.list_inbox(False, PAGE, who=Principal(subject="service:erp"),
                               uow=deps.uow())

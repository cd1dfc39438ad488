"""Notices with read receipts on in-memory collaborators: who a notice reaches (tag
expression, named dealers, a region's limits, dealers joining later), reading and
confirming, receipts, their export and reminders, and bad input."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from services.identity.domain.audience import Node
from services.identity.domain.notices import (
    Category,
    NewAttachment,
    NewNotice,
    ReceiptState,
)
from services.identity.domain.rules import Role
from services.identity.usecases import notices, tags
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shared.events.identity import (
    NOTICE_CONFIRMED,
    NOTICE_PUBLISHED,
    NOTICE_READ,
    NOTICE_REMINDED,
)
from shared.pagination import PageRequest
from tests.service.identity.fakes import Org

PDF = b"%PDF-1.4 price list"


def tag_term(value: str) -> Node:
    return Node("term", kind="tag", value=value)


def new_notice(expression: Node | None = None, dealer_ids=(), **fields) -> NewNotice:
    values = dict(title="五一假期发货安排", body="5月1日至5日暂停发货。", category=Category.HOLIDAY,
                  must_confirm=True, in_force_until=None, expression=expression,
                  dealer_ids=tuple(dealer_ids), attachments=())
    values.update(fields)
    return NewNotice(**values)


class World:
    """HQ, regions 华东 and 华南, a dealer in each (two users in Shanghai) and a region
    manager of 华东."""

    @classmethod
    async def start(cls) -> World:
        self = cls()
        self.org = org = await Org.start()
        east = await org.region("east", "华东")
        south = await org.region("south", "华南")
        self.shanghai = await org.dealer(east)
        self.shenzhen = await org.dealer(south, division_codes=("440305",))
        await org.user("sh.admin", (Role.DEALER_ADMIN,), self.shanghai)
        await org.user("sh.sales", (Role.DEALER_SALES,), self.shanghai)
        await org.user("sz.sales", (Role.DEALER_SALES,), self.shenzhen)
        await org.user("east.manager", (Role.REGION_MANAGER,), east)
        return self

    async def who(self, username: str):
        return await self.org.as_user(username)

    def kw(self, who) -> dict:
        deps = self.org.deps
        return dict(who=who, uow=self.org.uow, clock=deps.clock,
                    scope_cache=deps.scope_cache)

    async def publish(self, new: NewNotice, who=None):
        deps = self.org.deps
        return await notices.publish_notice(new, ids=deps.ids,
                                            **self.kw(who or self.org.admin))

    async def listing(self, username: str, unread_only=False):
        return await notices.list_notices(unread_only, None, PageRequest(),
                                          **self.kw(await self.who(username)))

    async def read(self, username: str, notice_id: str):
        return await notices.get_notice(notice_id, **self.kw(await self.who(username)))

    async def receipts(self, notice_id: str, who=None, state=None):
        page = await notices.list_receipts(notice_id, state, PageRequest(),
                                           **self.kw(who or self.org.admin))
        return {row.username: row.state for row in page.items}


async def test_a_dealer_in_the_audience_reads_and_confirms_one_outside_never_sees_it():
    world = await World.start()
    notice, reached = await world.publish(new_notice(tag_term("华东-上海-一级-A系列")))
    assert reached == 1
    [published] = world.org.uow.published_of(NOTICE_PUBLISHED)
    assert list(published.dealer_ids) == [world.shanghai.id]

    listing = await world.listing("sh.sales")
    assert [view.notice.id for view in listing.page.items] == [notice.id]
    assert listing.unread == 1 and listing.page.items[0].receipt is None

    view = await world.read("sh.sales", notice.id)
    assert view.receipt.read_at == world.org.deps.clock.now()
    await world.read("sh.sales", notice.id)  # a second read records nothing new
    assert len(world.org.uow.published_of(NOTICE_READ)) == 1
    assert (await world.listing("sh.sales")).unread == 0

    confirmed = await notices.confirm_notice(notice.id, **world.kw(await world.who("sh.sales")))
    assert confirmed.receipt.confirmed_at is not None
    [event] = world.org.uow.published_of(NOTICE_CONFIRMED)
    assert event.user_id == (await world.who("sh.sales")).user_id

    assert (await world.listing("sz.sales")).page.items == []
    with pytest.raises(NotFound):
        await world.read("sz.sales", notice.id)
    with pytest.raises(NotFound):
        await notices.confirm_notice(notice.id, **world.kw(await world.who("sz.sales")))


async def test_newest_first_and_unread_only():
    world = await World.start()
    first, _ = await world.publish(new_notice(dealer_ids=[world.shanghai.id], title="一"))
    world.org.deps.clock.advance(minutes=1)
    second, _ = await world.publish(new_notice(dealer_ids=[world.shanghai.id], title="二"))
    assert [v.notice.id for v in (await world.listing("sh.admin")).page.items] == [
        second.id, first.id]
    await world.read("sh.admin", second.id)
    unread = await world.listing("sh.admin", unread_only=True)
    assert [v.notice.id for v in unread.page.items] == [first.id] and unread.unread == 1


async def test_a_dealer_joining_the_audience_later_sees_notices_still_in_force():
    world = await World.start()
    clock = world.org.deps.clock
    lasting, reached = await world.publish(new_notice(
        tag_term("重点客户"), in_force_until=clock.now() + timedelta(days=30)))
    brief, _ = await world.publish(new_notice(
        tag_term("重点客户"), title="限时", in_force_until=clock.now() + timedelta(hours=1)))
    assert reached == 0
    clock.advance(hours=2)  # the brief notice is no longer in force
    await tags.change_dealer_tags([world.shenzhen.id], ["重点客户"], True, **world.org.kw)
    assert [v.notice.id for v in (await world.listing("sz.sales")).page.items] == [lasting.id]
    with pytest.raises(NotFound):
        await world.read("sz.sales", brief.id)
    # HQ's receipts count the newcomer's users.
    assert await world.receipts(lasting.id) == {"sz.sales": ReceiptState.UNREAD}


async def test_a_dealer_reached_at_publication_keeps_the_notice_after_it_expires():
    world = await World.start()
    clock = world.org.deps.clock
    notice, _ = await world.publish(new_notice(
        dealer_ids=[world.shanghai.id], in_force_until=clock.now() + timedelta(days=1)))
    clock.advance(days=3)
    assert (await world.read("sh.sales", notice.id)).notice.id == notice.id


async def test_receipts_per_user_only_in_scope_and_never_for_dealers():
    world = await World.start()
    notice, reached = await world.publish(new_notice(
        Node("term", kind="product_line", value="A系列")))
    assert reached == 2
    await world.read("sh.sales", notice.id)
    await notices.confirm_notice(notice.id, **world.kw(await world.who("sz.sales")))
    assert await world.receipts(notice.id) == {
        "sh.admin": ReceiptState.UNREAD, "sh.sales": ReceiptState.READ,
        "sz.sales": ReceiptState.CONFIRMED}
    assert await world.receipts(notice.id, state=ReceiptState.UNREAD) == {
        "sh.admin": ReceiptState.UNREAD}
    manager = await world.who("east.manager")
    assert set(await world.receipts(notice.id, manager)) == {"sh.admin", "sh.sales"}
    with pytest.raises(PermissionDenied):
        await world.receipts(notice.id, await world.who("sh.admin"))
    # Counts in HQ's list.
    [view] = (await notices.list_notices(False, None, PageRequest(),
                                         **world.kw(world.org.admin))).page.items
    assert (view.recipients, view.read, view.confirmed) == (3, 2, 1)


async def test_the_export_is_formula_safe():
    world = await World.start()
    await world.org.user("formula", (Role.DEALER_SALES,), world.shanghai)
    user = await world.org.uow.users.by_username("formula")
    await world.org.uow.users.update(user.__class__(**{**user.__dict__,
                                                       "display_name": "=HYPERLINK(1)"}))
    notice, _ = await world.publish(new_notice(dealer_ids=[world.shanghai.id]))
    await world.read("formula", notice.id)
    sheet = await notices.export_receipts(notice.id, sheets=world.org.deps.sheets,
                                          **world.kw(world.org.admin))
    assert sheet.filename == "阅读回执-五一假期发货安排.xlsx"
    rows = list(load_workbook(io.BytesIO(sheet.content)).active.iter_rows(values_only=True))
    assert rows[0] == tuple(notices.RECEIPT_HEADER)
    by_user = {row[1]: row for row in rows[1:]}
    assert by_user["formula"][2] == "'=HYPERLINK(1)" and by_user["formula"][3] == "已读"
    assert by_user["sh.admin"][3] == "未读"


async def test_remind_those_who_have_not_read_or_confirmed():
    world = await World.start()
    notice, _ = await world.publish(new_notice(dealer_ids=[world.shanghai.id,
                                                          world.shenzhen.id]))
    await world.read("sh.sales", notice.id)  # read, but a must-confirm notice
    await notices.confirm_notice(notice.id, **world.kw(await world.who("sz.sales")))
    manager = await world.who("east.manager")
    reminder = await notices.remind(notice.id, **world.kw(manager))
    assert (reminder.users, reminder.dealers) == (2, 1)
    [event] = world.org.uow.published_of(NOTICE_REMINDED)
    assert {r.dealer_id for r in event.recipients} == {world.shanghai.id}
    await notices.confirm_notice(notice.id, **world.kw(await world.who("sh.sales")))
    await notices.confirm_notice(notice.id, **world.kw(await world.who("sh.admin")))
    assert (await notices.remind(notice.id, **world.kw(manager))).users == 0
    assert len(world.org.uow.published_of(NOTICE_REMINDED)) == 1


async def test_a_region_manager_publishes_only_to_their_region():
    world = await World.start()
    manager = await world.who("east.manager")
    with pytest.raises(NotFound) as error:
        await world.publish(new_notice(dealer_ids=[world.shenzhen.id]), manager)
    assert [v.field for v in error.value.violations] == ["dealer_ids[0]"]
    _, reached = await world.publish(
        new_notice(Node("term", kind="product_line", value="A系列")), manager)
    assert reached == 1
    assert (await world.listing("sz.sales")).page.items == []
    with pytest.raises(PermissionDenied):
        await world.publish(new_notice(dealer_ids=[world.shanghai.id]),
                            await world.who("sh.admin"))


async def test_confirming_a_notice_that_asks_for_none_is_refused():
    world = await World.start()
    notice, _ = await world.publish(new_notice(dealer_ids=[world.shanghai.id],
                                               must_confirm=False))
    with pytest.raises(FailedPrecondition):
        await notices.confirm_notice(notice.id, **world.kw(await world.who("sh.sales")))
    with pytest.raises(PermissionDenied):
        await notices.confirm_notice(notice.id, **world.kw(world.org.admin))


async def test_attachments_are_kept_and_served_to_the_audience_only():
    world = await World.start()
    notice, _ = await world.publish(new_notice(dealer_ids=[world.shanghai.id], attachments=(
        NewAttachment("价格表.pdf", "application/pdf", PDF),)))
    [attached] = notice.attachments
    described, content = await notices.attachment(notice.id, attached.id,
                                                   **world.kw(await world.who("sh.sales")))
    assert content == PDF and described.size_bytes == len(PDF)
    with pytest.raises(NotFound):
        await notices.attachment(notice.id, attached.id, **world.kw(await world.who("sz.sales")))


async def test_bad_input_names_each_field_and_stores_nothing():
    world = await World.start()
    clock = world.org.deps.clock
    with pytest.raises(InvalidArgument) as error:
        await world.publish(new_notice(
            title=" ", body="", category=None, in_force_until=clock.now() - timedelta(days=1),
            attachments=(NewAttachment("x.exe", "application/x-msdownload", b"MZ"),
                         NewAttachment("假.pdf", "application/pdf", b"not a pdf"),
                         NewAttachment("big.png", "image/png", b"\x89PNG" + b"0" * 6_000_000))))
    assert [v.field for v in error.value.violations] == [
        "title", "body", "category", "in_force_until", "audience",
        "attachments[0].content_type", "attachments[1].content_type", "attachments[2].content"]
    with pytest.raises(InvalidArgument) as error:
        await world.publish(new_notice(Node("all")))
    assert error.value.violations[0].field == "audience.all_of"
    assert world.org.uow.notices.notices == {}
    assert world.org.uow.published_of(NOTICE_PUBLISHED) == []

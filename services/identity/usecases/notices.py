"""Notices (通知公告) with read receipts. HQ admins publish to any dealers, region
managers to their region's; the audience is a tag expression over the dealers as they are
now, explicit dealers, or both. A dealer's users see the notices that reach their dealer
(newest first, unread marked), read them (the first read is recorded) and confirm the
must-confirm ones. HQ and managers see who in their scope has read or confirmed, export
it and remind the others.

Who a notice reaches is judged when it is read: the dealers it reached at publication
keep it, and while it is in force a dealer that has joined the audience since (a tag
added) sees it too."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from services.identity import messages
from services.identity.domain.audience import DealerFacts
from services.identity.domain.model import Visibility
from services.identity.domain.notices import (
    Attachment,
    Category,
    NewNotice,
    Notice,
    NoticeView,
    Receipt,
    ReceiptRow,
    ReceiptState,
    formula_safe,
    notice_violations,
)
from services.identity.domain.rules import HQ_ROLES
from services.identity.usecases.access import as_now, visibility
from services.identity.usecases.ports import IdentityUnitOfWork, ScopeCache, Sheets
from services.identity.usecases.reach import dealer_facts, is_dealer_user, publishers_audience
from services.identity.usecases.tags import dealer_summaries
from shared.audience import compile_expression
from shared.clock import Clock
from shared.context import Principal
from shared.errors import FailedPrecondition, NotFound, PermissionDenied, collect
from shared.events.identity import (
    NOTICE_CONFIRMED,
    NOTICE_PUBLISHED,
    NOTICE_READ,
    NOTICE_REMINDED,
)
from shared.ids import IdSource
from shared.pagination import Page, PageRequest, page_of_all

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RECEIPT_HEADER = ["经销商", "用户名", "姓名", "状态", "阅读时间", "确认时间"]
STATE_NAMES = {ReceiptState.UNREAD: "未读", ReceiptState.READ: "已读",
               ReceiptState.CONFIRMED: "已确认"}


@dataclass(frozen=True)
class NoticeList:
    page: Page[NoticeView]
    # For a dealer user: their notices not read yet.
    unread: int = 0


@dataclass(frozen=True)
class ExportedSheet:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Reminder:
    users: int
    dealers: int


def _in_scope(notice: Notice, facts: dict[str, DealerFacts], seen: Visibility,
              now: datetime) -> set[str]:
    """The dealers the notice reaches that the viewer may see."""
    reached = notice.dealers_reached(facts.values(), now)
    return reached if seen.everything else reached & seen.dealer_ids


async def publish_notice(new: NewNotice, *, who: Principal, uow: IdentityUnitOfWork,
                         clock: Clock, ids: IdSource,
                         scope_cache: ScopeCache) -> tuple[Notice, int]:
    """Publish the notice; returns it and how many dealers it reaches now."""
    now = clock.now()
    collect(notice_violations(new, now))
    if new.expression is not None:
        compile_expression(new.expression, "audience")  # names the faulty part
    async with uow:
        audience = await publishers_audience(new.expression, new.dealer_ids, "notices",
                                             who=who, uow=uow)
        reaches = audience.predicate()
        reached = frozenset(summary.facts.id for summary in await dealer_summaries(
            uow, scope_cache) if summary.status == "active" and reaches(summary.facts))
        contents: dict[str, bytes] = {}
        attachments = []
        for given in new.attachments:
            attachment = Attachment(ids.new_id(), given.filename.strip(), given.content_type,
                                    len(given.content))
            contents[attachment.id] = given.content
            attachments.append(attachment)
        notice = Notice(
            id=ids.new_id(), title=new.title.strip(), body=new.body, category=new.category,
            must_confirm=new.must_confirm, in_force_until=new.in_force_until,
            audience=audience, reached_dealer_ids=reached, attachments=tuple(attachments),
            published_by=who.subject, published_at=now)
        await uow.notices.add(notice, contents)
        uow.events.record(NOTICE_PUBLISHED, messages.notice_published(notice), notice.id)
        await uow.commit()
    return notice, len(reached)


def _counted(notice: Notice, dealer_ids: set[str], users: dict[str, int],
             receipts: dict[str, tuple[int, int]]) -> NoticeView:
    """The notice with its active recipients among ``dealer_ids`` and their receipts
    (counted by the database: a notice to every dealer reaches ten thousand users)."""
    mine = [receipts[dealer] for dealer in dealer_ids if dealer in receipts]
    return NoticeView(notice, recipients=sum(users.get(dealer, 0) for dealer in dealer_ids),
                      read=sum(read for read, _ in mine),
                      confirmed=sum(confirmed for _, confirmed in mine))


async def list_notices(unread_only: bool, category: Category | None, page: PageRequest, *,
                       who: Principal, uow: IdentityUnitOfWork, clock: Clock,
                       scope_cache: ScopeCache) -> NoticeList:
    """A dealer user's notices (newest first, each with their receipt), or, for HQ and
    managers, the notices reaching a dealer in their scope with its read counts."""
    now = clock.now()
    async with uow.read():
        reader = await as_now(uow, who)
        notices = [notice for notice in await uow.notices.newest_first()
                   if category is None or notice.category == category]
        facts = await dealer_facts(uow, scope_cache)
        if is_dealer_user(reader):
            dealer = facts.get(reader.dealer_id)
            receipts = await uow.notices.receipts_of_user(reader.user_id)
            mine = [NoticeView(notice, receipts.get(notice.id))
                    for notice in notices if notice.reaches(dealer, now)]
            unread = sum(1 for view in mine if view.receipt is None)
            if unread_only:
                mine = [view for view in mine if view.receipt is None]
            return NoticeList(page_of_all(mine, page), unread)
        if not reader.roles & HQ_ROLES:
            raise PermissionDenied("notices are for dealers' users, HQ and managers")
        seen = await visibility(uow, reader)
        scoped = [(notice, dealers) for notice in notices
                  if (dealers := _in_scope(notice, facts, seen, now))
                  or notice.published_by == reader.subject]
        chunk = page_of_all(scoped, page)
        users = await uow.users.active_per_dealer()
        receipts = await uow.notices.receipt_counts(notice.id for notice, _ in chunk.items)
        views = [_counted(notice, dealers, users, receipts.get(notice.id, {}))
                 for notice, dealers in chunk.items]
    return NoticeList(Page(views, chunk.next_token, chunk.total))


async def _readable(uow: IdentityUnitOfWork, reader: Principal, notice_id: str,
                    cache: ScopeCache, now: datetime) -> tuple[Notice, set[str]]:
    """The notice, if it reaches the reader's dealer (a dealer user) or a dealer in the
    reader's scope (HQ and managers), with those dealers; NOT_FOUND otherwise."""
    notice = await uow.notices.get(notice_id) if notice_id else None
    if notice is not None:
        facts = await dealer_facts(uow, cache)
        if is_dealer_user(reader):
            if notice.reaches(facts.get(reader.dealer_id), now):
                return notice, {reader.dealer_id}
        elif reader.roles & HQ_ROLES:
            dealers = _in_scope(notice, facts, await visibility(uow, reader), now)
            if dealers or notice.published_by == reader.subject:
                return notice, dealers
    raise NotFound(f"notice {notice_id} not found")


async def get_notice(notice_id: str, *, who: Principal, uow: IdentityUnitOfWork,
                     clock: Clock, scope_cache: ScopeCache) -> NoticeView:
    """The notice; a dealer user's first read of it is recorded (NoticeRead)."""
    now = clock.now()
    async with uow.read():
        reader = await as_now(uow, who)
        notice, dealers = await _readable(uow, reader, notice_id, scope_cache, now)
        if not is_dealer_user(reader):
            return _counted(notice, dealers, await uow.users.active_per_dealer(),
                            (await uow.notices.receipt_counts([notice.id])).get(notice.id, {}))
        receipt = await uow.notices.receipt(notice.id, reader.user_id)
    if receipt is None:
        receipt = await _record(notice.id, reader, uow=uow, clock=clock, confirm=False)
    return NoticeView(notice, receipt)


async def _record(notice_id: str, reader: Principal, *, uow: IdentityUnitOfWork,
                  clock: Clock, confirm: bool) -> Receipt:
    """Record the reader's read (and confirmation) unless already recorded."""
    now = clock.now()
    async with uow:
        receipt = await uow.notices.receipt(notice_id, reader.user_id)
        if receipt is None:
            receipt = Receipt(notice_id, reader.user_id, reader.dealer_id, read_at=now)
            uow.events.record(NOTICE_READ, messages.notice_read(receipt), notice_id)
        elif not confirm or receipt.confirmed_at:
            return receipt
        if confirm:
            receipt = replace(receipt, confirmed_at=now)
            uow.events.record(NOTICE_CONFIRMED, messages.notice_confirmed(receipt), notice_id)
        await uow.notices.save_receipt(receipt)
        await uow.commit()
    return receipt


async def confirm_notice(notice_id: str, *, who: Principal, uow: IdentityUnitOfWork,
                         clock: Clock, scope_cache: ScopeCache) -> NoticeView:
    """A dealer user confirms a must-confirm notice (reading it, if not yet). Again is a
    no-op."""
    async with uow.read():
        reader = await as_now(uow, who)
        notice, _ = await _readable(uow, reader, notice_id, scope_cache, clock.now())
    if not is_dealer_user(reader):
        raise PermissionDenied("only dealers' users confirm notices")
    if not notice.must_confirm:
        raise FailedPrecondition("this notice asks for no confirmation", reason="NO_CONFIRM")
    receipt = await _record(notice.id, reader, uow=uow, clock=clock, confirm=True)
    return NoticeView(notice, receipt)


async def attachment(notice_id: str, attachment_id: str, *, who: Principal,
                     uow: IdentityUnitOfWork, clock: Clock,
                     scope_cache: ScopeCache) -> tuple[Attachment, bytes]:
    async with uow.read():
        reader = await as_now(uow, who)
        notice, _ = await _readable(uow, reader, notice_id, scope_cache, clock.now())
        described = next((a for a in notice.attachments if a.id == attachment_id), None)
        content = await uow.notices.attachment(notice.id, attachment_id) if described else None
    if described is None or content is None:
        raise NotFound(f"attachment {attachment_id} not found")
    return described, content


async def _receipt_rows(notice_id: str, who: Principal, uow: IdentityUnitOfWork,
                        clock: Clock, cache: ScopeCache) -> tuple[Notice, list[ReceiptRow]]:
    """Every active user of the dealers the notice reaches in ``who``'s scope, with their
    receipt, by dealer name and username. HQ and managers only."""
    reader = await as_now(uow, who)
    notice, dealers = await _readable(uow, reader, notice_id, cache, clock.now())
    if is_dealer_user(reader):
        raise PermissionDenied("read receipts are for HQ and managers")
    units = await uow.org_units.get_many(dealers)
    receipts = {receipt.user_id: receipt
                for receipt in await uow.notices.receipts_of([notice.id])}
    rows = []
    for user in await uow.users.active_of_dealers(dealers):
        receipt = receipts.get(user.id)
        rows.append(ReceiptRow(
            dealer_id=user.dealer_id, dealer_name=units[user.dealer_id].name, user_id=user.id,
            username=user.username, display_name=user.display_name,
            read_at=receipt.read_at if receipt else None,
            confirmed_at=receipt.confirmed_at if receipt else None))
    rows.sort(key=lambda row: (row.dealer_name, row.dealer_id, row.username))
    return notice, rows


async def list_receipts(notice_id: str, state: ReceiptState | None, page: PageRequest, *,
                        who: Principal, uow: IdentityUnitOfWork, clock: Clock,
                        scope_cache: ScopeCache) -> Page[ReceiptRow]:
    async with uow.read():
        _, rows = await _receipt_rows(notice_id, who, uow, clock, scope_cache)
    return page_of_all([row for row in rows if state is None or row.state == state], page)


def _moment(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


async def export_receipts(notice_id: str, *, who: Principal, uow: IdentityUnitOfWork,
                          clock: Clock, scope_cache: ScopeCache,
                          sheets: Sheets) -> ExportedSheet:
    """The receipts table as XLSX; no cell is ever a formula."""
    async with uow.read():
        notice, rows = await _receipt_rows(notice_id, who, uow, clock, scope_cache)
    content = sheets.xlsx(RECEIPT_HEADER, [
        [formula_safe(text) for text in (row.dealer_name, row.username, row.display_name,
                                         STATE_NAMES[row.state], _moment(row.read_at),
                                         _moment(row.confirmed_at))] for row in rows])
    title = re.sub(r'[\\/:*?"<>|\r\n\t]', "_", notice.title)[:60]
    return ExportedSheet(f"阅读回执-{title}.xlsx", XLSX_TYPE, content)


async def remind(notice_id: str, *, who: Principal, uow: IdentityUnitOfWork, clock: Clock,
                 scope_cache: ScopeCache) -> Reminder:
    """NoticeReminded for the users in scope who have not read the notice (or, when it
    must be confirmed, not confirmed it); nothing when everyone has."""
    async with uow:
        notice, rows = await _receipt_rows(notice_id, who, uow, clock, scope_cache)
        pending = [row for row in rows if row.needs_reminder(notice.must_confirm)]
        if pending:
            uow.events.record(NOTICE_REMINDED, messages.notice_reminded(
                notice, pending, who.subject), notice.id)
            await uow.commit()
    return Reminder(len(pending), len({row.dealer_id for row in pending}))

"""The inbox: notices addressed to people (delivered inside the transaction of the
event that caused them), listed and marked read by their recipient only."""

from __future__ import annotations

from collections.abc import Iterable

from services.engagement.domain.inbox import InboxItem, Notice
from services.engagement.usecases.ports import EngagementUnitOfWork
from shared.clock import Clock
from shared.context import Principal
from shared.errors import FieldViolation, NotFound, Unauthenticated, collect
from shared.ids import IdSource
from shared.pagination import Page, PageRequest

MAX_MARK = 500


async def deliver(notice: Notice, recipients: Iterable[str], source_key: str, *,
                  uow: EngagementUnitOfWork, clock: Clock, ids: IdSource) -> int:
    """Add the notice to each recipient's inbox (once per source); runs inside the
    caller's transaction. How many items were new."""
    return await _deliver_to(notice, [(user_id, notice.dealer_id) for user_id in recipients],
                             source_key, uow=uow, clock=clock, ids=ids)


async def _deliver_to(notice: Notice, recipients: Iterable[tuple[str, str]], source_key: str,
                      *, uow: EngagementUnitOfWork, clock: Clock, ids: IdSource) -> int:
    """(user, dealer) pairs: each item names the dealer its recipient works for. One
    insert for them all, however many (a notice reaches thousands of dealers)."""
    now = clock.now()
    items = [InboxItem(ids.new_id(), user_id, notice.kind, notice.title, notice.body,
                       notice.ref_type, notice.ref_id, dealer_id, source_key, now)
             for user_id, dealer_id in dict(recipients).items() if user_id]
    return await uow.inbox.add_many(items) if items else 0


def _recipient(who: Principal) -> str:
    if not who.user_id:
        raise Unauthenticated("the inbox is a signed-in user's", reason="USER_REQUIRED")
    return who.user_id


async def list_inbox(unread_only: bool, page: PageRequest, *, who: Principal,
                     uow: EngagementUnitOfWork) -> tuple[Page[InboxItem], int]:
    user_id = _recipient(who)
    async with uow.read():
        return (await uow.inbox.list(user_id, unread_only, page),
                await uow.inbox.unread_count(user_id))


async def mark_read(ids: list[str], every: bool, *, who: Principal, uow: EngagementUnitOfWork,
                    clock: Clock) -> tuple[int, int]:
    """Mark the caller's items read; (how many changed, how many are still unread). An
    id that is not one of the caller's items is NOT_FOUND, and nothing is marked."""
    user_id = _recipient(who)
    problems = []
    if every and ids:
        problems.append(FieldViolation("ids", "must be empty when all is set"))
    if not every and not ids:
        problems.append(FieldViolation("ids", "name at least one item, or set all"))
    if len(ids) > MAX_MARK:
        problems.append(FieldViolation("ids", f"at most {MAX_MARK} at once"))
    for index, item_id in enumerate(ids):
        if not item_id or len(item_id) > 64:
            problems.append(FieldViolation(f"ids[{index}]", "is not an inbox item id"))
    collect(problems)
    async with uow:
        if ids:
            owned = await uow.inbox.owned(user_id, list(ids))
            missing = next((item_id for item_id in ids if item_id not in owned), None)
            if missing is not None:
                raise NotFound(f"inbox item {missing} not found")
        marked = await uow.inbox.mark_read(user_id, None if every else list(ids), clock.now())
        unread = await uow.inbox.unread_count(user_id)
        await uow.commit()
    return marked, unread


async def notify(notice: Notice, audience: str, source_key: str, *,
                 uow: EngagementUnitOfWork, clock: Clock, ids: IdSource) -> int:
    """Deliver a notice about ``notice.dealer_id`` to its ``audience``: "dealer" (the
    dealer's active staff) or "managers" (its channel managers), in a transaction of
    its own (joined to the consumer's)."""
    async with uow:
        if audience == "dealer":
            recipients = await uow.directory.staff_of(notice.dealer_id)
        else:
            recipients = await uow.directory.managers_of(notice.dealer_id)
        added = await deliver(notice, recipients, source_key, uow=uow, clock=clock, ids=ids)
        await uow.commit()
    return added


async def notify_dealers(notice: Notice, dealer_ids: Iterable[str], source_key: str, *,
                         uow: EngagementUnitOfWork, clock: Clock, ids: IdSource) -> int:
    """Deliver a notice to the active staff of every dealer named (identity resolved the
    audience into dealers; who works there is known here): one read of the directory
    and one insert, in a transaction of its own (joined to the consumer's)."""
    async with uow:
        staff = await uow.directory.staff_of_dealers(frozenset(filter(None, dealer_ids)))
        added = await _deliver_to(notice, [(user_id, dealer_id) for dealer_id, users
                                           in sorted(staff.items()) for user_id in users],
                                  source_key, uow=uow, clock=clock, ids=ids)
        await uow.commit()
    return added


async def notify_people(notice: Notice, recipients: Iterable[tuple[str, str]], source_key: str,
                        *, uow: EngagementUnitOfWork, clock: Clock, ids: IdSource) -> int:
    """Deliver a notice to the (user, dealer) pairs the event named, in a transaction of
    its own (joined to the consumer's)."""
    async with uow:
        added = await _deliver_to(notice, recipients, source_key, uow=uow, clock=clock, ids=ids)
        await uow.commit()
    return added

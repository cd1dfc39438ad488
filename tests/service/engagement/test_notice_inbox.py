"""Identity's notices in the inbox (through the consumer's handler, on fakes): a published
notice reaches every active user of the dealers it names, once; a reminder reaches the
users it names; nobody else's inbox changes."""

from __future__ import annotations

from qudao.common.v1 import envelope_pb2
from qudao.identity.v1 import events_pb2, identity_pb2

from services.engagement.consumers import on_notice
from services.engagement.domain.people import Person
from services.engagement.usecases import directory, inbox
from shared.bus.envelope import Event
from shared.events.identity import NOTICE_PUBLISHED, NOTICE_REMINDED
from shared.pagination import PageRequest
from tests.service.engagement.support import EAST_STAFF, SOUTH_STAFF, build_world

PAGE = PageRequest(size=50)


def _event(declared, payload, event_id: str) -> Event:
    return Event(declared.subject, envelope_pb2.EventEnvelope(event_id=event_id), payload)


def _published(dealer_ids, event_id="published-1", must_confirm=True) -> Event:
    return _event(NOTICE_PUBLISHED, events_pb2.NoticePublished(
        notice=identity_pb2.Notice(id="n1", title="五一假期发货安排", body="5月1日至5日暂停发货。",
                                   must_confirm=must_confirm),
        dealer_ids=dealer_ids), event_id)


def _inboxes(deps) -> dict[str, list[tuple[str, str, str]]]:
    found: dict[str, list[tuple[str, str, str]]] = {}
    for item in deps.uow().inbox.items.values():
        found.setdefault(item.user_id, []).append((item.kind, item.ref_id, item.dealer_id))
    return found


async def test_a_published_notice_lands_once_in_each_reached_dealer_users_inbox():
    deps = await build_world()
    await directory.record_person(Person("east-3", "离职销售", frozenset({"dealer_sales"}),
                                         "east", "east", active=False), uow=deps.uow())
    for _ in range(2):  # a redelivered event
        await on_notice(deps, None, _published(["east", "south"]))
    assert _inboxes(deps) == {user: [("notice.published", "n1", dealer)] for user, dealer in (
        ("east-1", "east"), ("east-2", "east"), ("south-1", "south"))}
    page, unread = await inbox.list_inbox(False, PAGE, who=EAST_STAFF, uow=deps.uow())
    assert unread == 1
    assert page.items[0].title == "五一假期发货安排"
    assert page.items[0].body.startswith("【请确认阅读】5月1日")


async def test_a_notice_reaches_only_the_dealers_identity_resolved():
    deps = await build_world()
    await on_notice(deps, None, _published(["south", "dealer-without-staff"],
                                           must_confirm=False))
    assert set(_inboxes(deps)) == {"south-1"}
    page, _ = await inbox.list_inbox(False, PAGE, who=EAST_STAFF, uow=deps.uow())
    assert page.items == []
    page, _ = await inbox.list_inbox(False, PAGE, who=SOUTH_STAFF, uow=deps.uow())
    assert page.items[0].body == "5月1日至5日暂停发货。"


async def test_a_reminder_reaches_the_users_it_names_each_time_it_is_sent():
    deps = await build_world()
    await on_notice(deps, None, _published(["east", "south"]))
    reminder = events_pb2.NoticeReminded(notice_id="n1", title="五一假期发货安排", recipients=[
        events_pb2.NoticeRecipient(dealer_id="east", user_id="east-2")])
    await on_notice(deps, None, _event(NOTICE_REMINDED, reminder, "reminded-1"))
    await on_notice(deps, None, _event(NOTICE_REMINDED, reminder, "reminded-1"))  # redelivered
    await on_notice(deps, None, _event(NOTICE_REMINDED, reminder, "reminded-2"))  # reminded again
    inboxes = _inboxes(deps)
    assert inboxes["east-2"].count(("notice.reminded", "n1", "east")) == 2
    assert [kind for kind, _, _ in inboxes["east-1"]] == ["notice.published"]
    assert [kind for kind, _, _ in inboxes["south-1"]] == ["notice.published"]


async def test_a_notice_to_thousands_of_dealers_reads_the_directory_once():
    deps = await build_world()
    uow = deps.uow()
    dealers = [f"d{number:04d}" for number in range(3000)]
    for dealer in dealers:
        for role in ("admin", "sales"):
            await uow.directory.put_person(Person(f"{dealer}-{role}", "", frozenset(
                {f"dealer_{role}"}), dealer, dealer))
    asked = []
    staff_of_dealers = uow.directory.staff_of_dealers

    async def counted(dealer_ids):
        asked.append(len(dealer_ids))
        return await staff_of_dealers(dealer_ids)

    uow.directory.staff_of_dealers = counted
    uow.directory.staff_of = None  # one dealer at a time would fail here
    await on_notice(deps, None, _published(dealers))
    assert asked == [3000]
    assert len(uow.inbox.items) == 6000

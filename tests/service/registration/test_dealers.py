"""The dealer projection from identity's events (through the consumers' handlers) and
the name index loaded and refreshed from the customers."""

from __future__ import annotations

from dataclasses import replace

from qudao.identity.v1 import events_pb2 as identity_events
from qudao.identity.v1 import identity_pb2

from services.registration.consumers import SUBSCRIPTIONS, on_assignment_changed, on_org_unit
from services.registration.domain.customers import CustomerInput
from services.registration.usecases import customers, names
from shared.bus.envelope import Event
from shared.names.index import NameIndex
from tests.service.registration.world import HQ, run, world


def event(payload) -> Event:
    return Event(subject="", envelope=None, payload=payload)


async def test_identity_events_keep_the_dealer_projection():
    deps, uow = await world()
    assert {s.durable for s in SUBSCRIPTIONS} == {"registration-dealers",
                                                  "registration-assignments"}
    unit = identity_pb2.OrgUnit(id="d-new", kind=identity_pb2.ORG_UNIT_KIND_DEALER,
                                name="上海新医疗器械有限公司", tier=identity_pb2.DEALER_TIER_TWO,
                                region_code="east", division_codes=["310104"],
                                product_lines=["A系列"])
    await on_org_unit(deps, None, event(identity_events.OrgUnitCreated(org_unit=unit)))
    dealer = await uow.dealers.get("d-new")
    assert (dealer.tier, dealer.division_codes, dealer.active) == (3, ("310104",), True)
    await uow.dealers.lead_assigned("d-new", deps.clock.now())
    unit.status = identity_pb2.ORG_UNIT_STATUS_SUSPENDED
    unit.division_codes.append("310105")
    await on_org_unit(deps, None, event(identity_events.OrgUnitUpdated(org_unit=unit)))
    dealer = await uow.dealers.get("d-new")
    assert (dealer.division_codes, dealer.active) == (("310104", "310105"), False)
    assert dealer.last_lead_assigned_at == deps.clock.now()  # kept across updates
    # A region is no dealer.
    region = identity_pb2.OrgUnit(id="r-1", kind=identity_pb2.ORG_UNIT_KIND_REGION)
    await on_org_unit(deps, None, event(identity_events.OrgUnitCreated(org_unit=region)))
    assert await uow.dealers.get("r-1") is None

    change = identity_events.AssignmentChanged(added=[identity_pb2.Assignment(
        manager_user_id="cm9", dealer_id="d-new", product_line="A系列")])
    await on_assignment_changed(deps, None, event(change))
    assert (await uow.dealers.get("d-new")).managers == {"A系列": "cm9"}
    await on_assignment_changed(deps, None, event(identity_events.AssignmentChanged(
        removed=list(change.added))))
    assert (await uow.dealers.get("d-new")).managers == {}


async def test_the_name_index_loads_in_batches_and_picks_up_later_changes():
    deps, uow = await world()
    for index in range(5):
        await run(deps, customers.create_customer, CustomerInput(
            name=f"上海市第{index + 1}康复医院", address="上海市徐汇区"), who=HQ)
    fresh = NameIndex()
    assert await run(deps, names.load_names, names=fresh, batch=2) == 5
    assert fresh.size == 5 and fresh.watermark < deps.clock.now()
    deps.clock.advance(seconds=10)
    # A look overlaps the previous one by a few seconds (a slow commit is not missed).
    assert await run(deps, names.refresh_names, names=fresh) == 5
    assert await run(deps, names.refresh_names, names=fresh) == 0
    # Another replica renames a customer: the next refresh finds it.
    customer = next(iter(uow.customers.rows.values()))
    deps.clock.advance(seconds=10)
    async with uow:
        await uow.customers.save(replace(customer, name="上海市徐汇区康复中心",
                                         normalized_name="上海徐汇区康复中心",
                                         aliases=("徐汇康复",), updated_at=deps.clock.now()))
        await uow.commit()
    assert await run(deps, names.refresh_names, names=fresh) == 1
    assert [m.customer_id for m in fresh.exact("310100", "上海徐汇区康复中心")] == [customer.id]
    assert fresh.exact("310100", "徐汇康复")[0].customer_id == customer.id

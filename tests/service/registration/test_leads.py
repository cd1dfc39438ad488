"""The HQ lead pool (公海): auto-assignment by territory (lowest tier, then least loaded,
then longest since the last lead), claim within the deadline, release, return to the
pool at the deadline, manual assignment, import with row-level errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.registration.domain.customers import CustomerInput
from services.registration.domain.dealers import DealerFacts
from services.registration.domain.leads import LeadInput, LeadQuery
from services.registration.domain.registrations import Source, SubmitRegistration
from services.registration.domain.rules import LeadStatus, Status
from services.registration.usecases import dealers, leads, registrations, scheduler
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shared.events.registration import (
    DEALER_NOTIFIED,
    LEAD_ASSIGNED,
    LEAD_CLAIMED,
    LEAD_CREATED,
    LEAD_RETURNED,
    REGISTRATION_APPROVED,
)
from shared.pagination import PageRequest
from shared.tabular import read_table
from tests.service.registration.world import (
    DEALER_A,
    DEALER_B,
    HQ,
    SERVICE_DESK,
    A,
    B,
    run,
    world,
)

PLATFORM = DealerFacts("d-p", "上海徐汇平台商有限公司", 1, "east", ("310104",), ("A系列",), True)
JINGAN = LeadInput(customer_name="上海市第十人民医院", address="上海市静安区延长中路301号",
                   product_line="A系列", contact_name="王主任", contact_phone="021-66300588")
JINGAN_2 = LeadInput(customer_name="上海市静安区中心医院", address="上海市静安区西康路259号",
                     product_line="A系列")
XUHUI = LeadInput(customer_name="上海市徐汇区中心医院", address="上海市徐汇区淮海中路966号",
                  product_line="A系列")
GUANGZHOU = LeadInput(customer_name="中山大学附属第一医院",
                      address="广东省广州市越秀区中山二路58号", product_line="A系列")


async def create(deps, lead: LeadInput, who=HQ):
    return await run(deps, leads.create_lead, lead, who=who)


def staff(dealer_id: str):
    return DEALER_A if dealer_id == A else DEALER_B


async def test_auto_assignment_lowest_tier_then_least_loaded_then_round_robin():
    deps, uow = await world(lead_claim_hours=72)
    await dealers.project_dealer(PLATFORM, uow=uow, clock=deps.clock)
    # The platform dealer covers 徐汇: it is first there, whatever its load.
    assert (await create(deps, XUHUI)).assigned_dealer_id == PLATFORM.id
    assert (await create(deps, XUHUI)).assigned_dealer_id == PLATFORM.id
    # 静安 is outside it: the tier-one dealers, least loaded, then round-robin.
    first = await create(deps, JINGAN)
    second = await create(deps, JINGAN_2)
    assert {first.assigned_dealer_id, second.assigned_dealer_id} == {A, B}
    assert first.status == LeadStatus.ASSIGNED
    assert first.claim_deadline == deps.clock.now() + timedelta(hours=72)
    # Nobody covers Guangzhou: it waits in the pool.
    pool = await create(deps, GUANGZHOU)
    assert (pool.status, pool.assigned_dealer_id) == (LeadStatus.POOL, "")
    assert len(uow.published_of(LEAD_CREATED)) == 5
    assert [e.auto_assigned for e in uow.published_of(LEAD_ASSIGNED)] == [True] * 4
    notice = next(n for n in uow.published_of(DEALER_NOTIFIED) if n.lead_id == first.id)
    assert (notice.kind, notice.dealer_id) == ("lead.assigned", first.assigned_dealer_id)


async def test_a_dealer_claims_its_lead_and_gets_an_approved_hq_lead_registration():
    deps, uow = await world()
    lead = await create(deps, JINGAN)
    owner, other = staff(lead.assigned_dealer_id), staff(B if lead.assigned_dealer_id == A
                                                         else A)
    with pytest.raises(NotFound):
        await run(deps, leads.claim_lead, lead.id, "", who=other)
    mine = await run(deps, leads.list_leads, LeadQuery(), PageRequest(), who=owner)
    assert [item.id for item in mine.items] == [lead.id]
    claimed = await run(deps, leads.claim_lead, lead.id, "", who=owner)
    assert (claimed.lead.status, claimed.lead.claimed_by) == (LeadStatus.CLAIMED,
                                                              owner.subject)
    registration = claimed.registration
    assert (registration.status, registration.source, registration.lead_id) == (
        Status.APPROVED, Source.HQ_LEAD, lead.id)
    assert registration.protected_until is not None and registration.holds_slot
    assert claimed.lead.registration_id == registration.id
    assert claimed.lead.customer_id == registration.customer_id
    assert uow.customers.rows[registration.customer_id].name == "上海市第十人民医院"
    [event] = uow.published_of(LEAD_CLAIMED)
    assert event.registration_id == registration.id
    assert uow.published_of(REGISTRATION_APPROVED)[0].auto_approved
    with pytest.raises(FailedPrecondition) as again:
        await run(deps, leads.claim_lead, lead.id, "", who=owner)
    assert again.value.reason == "NOT_ASSIGNED_TO_YOU"


async def test_a_claim_on_a_customer_another_dealer_holds_keeps_the_lead_assigned():
    deps, uow = await world()
    held = await run(deps, registrations.submit_registration,
                     SubmitRegistration("A系列", new_customer=CustomerInput(
                         name=JINGAN.customer_name, address=JINGAN.address)),
                     who=DEALER_B)
    lead = await create(deps, LeadInput(customer_id=held.registration.customer_id,
                                        product_line="A系列"))
    if lead.assigned_dealer_id != A:
        lead = await run(deps, leads.assign_lead, lead.id, A, "", who=HQ)
    with pytest.raises(FailedPrecondition) as refused:
        await run(deps, leads.claim_lead, lead.id, "", who=DEALER_A)
    assert refused.value.reason == "CUSTOMER_ALREADY_REGISTERED"
    assert uow.leads.rows[lead.id].status == LeadStatus.ASSIGNED


async def test_release_and_return_at_the_deadline():
    deps, uow = await world(lead_claim_hours=1)
    released = await create(deps, JINGAN)
    owner = staff(released.assigned_dealer_id)
    back = await run(deps, leads.release_lead, released.id, "没有资源", who=owner)
    assert (back.status, back.assigned_dealer_id, back.return_count) == (LeadStatus.POOL, "",
                                                                         1)
    [event] = uow.published_of(LEAD_RETURNED)
    assert (event.deadline_passed, event.reason, event.previous_dealer_id) == (
        False, "没有资源", owner.dealer_id)
    with pytest.raises(FailedPrecondition):
        await run(deps, leads.release_lead, released.id, "", who=HQ)

    overdue = await create(deps, JINGAN_2)
    owner = staff(overdue.assigned_dealer_id)
    deps.clock.advance(minutes=61)
    with pytest.raises(FailedPrecondition) as late:
        await run(deps, leads.claim_lead, overdue.id, "", who=owner)
    assert late.value.reason == "CLAIM_DEADLINE_PASSED"
    assert (await run(deps, scheduler.run_due))["leads"] == 1
    returned = uow.leads.rows[overdue.id]
    assert (returned.status, returned.return_count) == (LeadStatus.POOL, 1)
    event = uow.published_of(LEAD_RETURNED)[-1]
    assert event.deadline_passed and event.previous_dealer_id == owner.dealer_id
    pool = await run(deps, leads.list_leads, LeadQuery(statuses=frozenset({LeadStatus.POOL})),
                     PageRequest(), who=HQ)
    assert {lead.id for lead in pool.items} == {released.id, overdue.id}


async def test_hq_assigns_by_hand_inside_the_territory_only():
    deps, _ = await world()
    pool = await create(deps, GUANGZHOU)
    with pytest.raises(FailedPrecondition) as outside:
        await run(deps, leads.assign_lead, pool.id, A, "", who=HQ)
    assert outside.value.reason == "OUTSIDE_TERRITORY"
    lead = await create(deps, JINGAN)
    other = B if lead.assigned_dealer_id == A else A
    moved = await run(deps, leads.assign_lead, lead.id, other, "重新分配", who=HQ)
    assert moved.assigned_dealer_id == other
    with pytest.raises(PermissionDenied):
        await run(deps, leads.assign_lead, lead.id, other, "", who=staff(other))
    with pytest.raises(InvalidArgument):
        await run(deps, leads.assign_lead, lead.id, "", "", who=HQ)


async def test_dealers_do_not_enter_leads_and_bad_leads_name_the_field():
    deps, _ = await world()
    with pytest.raises(PermissionDenied):
        await create(deps, JINGAN, who=DEALER_A)
    with pytest.raises(InvalidArgument) as bad:
        await create(deps, LeadInput(customer_name="火星医院", address="火星基地"), who=HQ)
    assert {v.field for v in bad.value.violations} == {"product_line", "division_code"}
    with pytest.raises(NotFound):
        await create(deps, LeadInput(customer_id="nope", product_line="A系列"))
    # The service desk (HQ) sees the unassigned pool too.
    pool = await create(deps, GUANGZHOU, who=SERVICE_DESK)
    listed = await run(deps, leads.list_leads, LeadQuery(), PageRequest(), who=SERVICE_DESK)
    assert pool.id in {lead.id for lead in listed.items}
    mine = await run(deps, leads.list_leads, LeadQuery(), PageRequest(), who=DEALER_A)
    assert pool.id not in {lead.id for lead in mine.items}


async def test_import_is_all_or_nothing_with_row_errors():
    deps, uow = await world()
    bad = read_table(("医院名称,地址,产品线\n"
                      "上海市第一人民医院,上海市虹口区武进路85号,A系列\n"
                      "火星医院,火星基地,A系列\n"
                      "上海市肺科医院,上海市杨浦区政民路507号,\n").encode("gb18030"))
    report = await run(deps, leads.import_leads, bad, dry_run=False, who=HQ)
    assert (report.accepted, report.created) == (False, 0)
    assert [(e.row_number, e.code, e.column) for e in report.errors] == [
        (3, "UNKNOWN_DIVISION", ""), (4, "MISSING_PRODUCT_LINE", "产品线")]
    assert uow.leads.rows == {}
    good = read_table(("customer_name,address,product_line\n"
                       "上海市第一人民医院,上海市虹口区武进路85号,A系列\n"
                       "中山大学附属第一医院,广东省广州市越秀区中山二路58号,A系列\n").encode())
    dry = await run(deps, leads.import_leads, good, dry_run=True, who=HQ)
    assert dry.accepted and uow.leads.rows == {}
    report = await run(deps, leads.import_leads, good, dry_run=False, who=HQ)
    assert (report.accepted, report.created, report.assigned) == (True, 2, 1)
    with pytest.raises(PermissionDenied):
        await run(deps, leads.import_leads, good, dry_run=False, who=DEALER_A)

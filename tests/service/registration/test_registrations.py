"""Registration (报备) on in-memory collaborators: first come wins (the second dealer
loses with the winner's evidence), approval and its checks, recall and resubmission,
idempotent submission, the territory rule, scope checks and bad input."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from services.registration.domain.customers import CustomerInput, DuplicateQuery
from services.registration.domain.dealers import DealerFacts
from services.registration.domain.registrations import (
    Registration,
    RegistrationQuery,
    SlotTaken,
    Source,
    SubmitRegistration,
)
from services.registration.domain.rules import Status
from services.registration.usecases import customers, registrations
from shared.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from shared.events.registration import (
    CONFLICT_RAISED,
    CUSTOMER_CREATED,
    DEALER_NOTIFIED,
    REGISTRATION_APPROVED,
    REGISTRATION_REJECTED,
    REGISTRATION_SUBMITTED,
)
from shared.names.matching import MatchKind, Verdict
from shared.pagination import PageRequest
from tests.service.registration.world import (
    DEALER_A,
    DEALER_B,
    DEALER_C,
    HQ,
    MANAGER,
    ZHONGSHAN,
    A,
    B,
    C,
    hospital_code,
    run,
    world,
)

CODE = hospital_code(1)


def new(customer: CustomerInput = ZHONGSHAN, **fields) -> SubmitRegistration:
    return SubmitRegistration(product_line=fields.pop("product_line", "A系列"),
                              new_customer=customer, **fields)


def existing(customer_id: str, **fields) -> SubmitRegistration:
    return SubmitRegistration(product_line=fields.pop("product_line", "A系列"),
                              customer_id=customer_id, **fields)


async def submit(deps, who, command: SubmitRegistration) -> Registration:
    return (await run(deps, registrations.submit_registration, command, who=who)).registration


async def test_first_come_wins_and_the_second_dealer_loses_with_the_winners_evidence():
    deps, uow = await world()
    first = await submit(deps, DEALER_A, new(replace(ZHONGSHAN, credit_code=CODE),
                                             department="心内科", note="首次拜访"))
    assert (first.status, first.dealer_id, first.source) == (Status.SUBMITTED, A,
                                                             Source.DEALER_SOURCED)
    assert first.stage == "initial_contact" and first.approver_user_id == "cm"
    customer = uow.customers.rows[first.customer_id]
    assert (customer.normalized_name, customer.division_code, customer.city_code) == (
        "复旦大学中山医院", "310104", "310100")
    approved = await run(deps, registrations.approve, first.id, "同意", who=MANAGER)
    assert approved.status == Status.APPROVED
    assert approved.protected_until == deps.clock.now() + timedelta(days=90)

    # Another spelling, the same credit code: the same customer, protected: rejected.
    lost = await submit(deps, DEALER_B, new(CustomerInput(
        name="复旦大学附属中山医院（徐汇院区）", credit_code=CODE.lower(),
        address="上海市徐汇区枫林路180号")))
    assert (lost.status, lost.customer_id, lost.holds_slot) == (Status.REJECTED,
                                                                customer.id, False)
    assert first.id in lost.decision_note and lost.decided_by == "system"
    assert lost.evidence.verdict == Verdict.DUPLICATE
    [claim] = [c for candidate in lost.evidence.candidates for c in candidate.claims]
    assert claim.registration_id == first.id
    assert claim.dealer_id == ""  # who holds it is another dealer's secret
    # HQ reading the same registration sees who.
    seen_by_hq = await run(deps, registrations.get_registration, lost.id, who=HQ)
    assert seen_by_hq.evidence.candidates[0].claims[0].dealer_id == A
    [rejected] = uow.published_of(REGISTRATION_REJECTED)
    assert rejected.registration.id == lost.id and rejected.reason == lost.decision_note
    assert [n.kind for n in uow.published_of(DEALER_NOTIFIED) if n.dealer_id == B] == [
        "registration.rejected"]
    assert len(uow.customers.rows) == 1  # one customer, not two


async def test_the_second_dealer_while_the_first_is_pending_goes_to_hq_with_both_claims():
    deps, uow = await world()
    first = await submit(deps, DEALER_A, new(replace(ZHONGSHAN, credit_code=CODE)))
    second = await submit(deps, DEALER_B, existing(first.customer_id))
    assert second.status == Status.UNDER_REVIEW and not second.holds_slot
    assert second.conflict_id
    [raised] = uow.published_of(CONFLICT_RAISED)
    assert {c.registration.id for c in raised.conflict.claims} == {first.id, second.id}
    assert uow.registrations.rows[first.id].conflict_id == second.conflict_id
    assert {n.dealer_id for n in uow.published_of(DEALER_NOTIFIED)
            if n.kind == "conflict.raised"} == {A, B}
    # The same dealer again is refused, naming the registration it holds.
    with pytest.raises(AlreadyExists) as refused:
        await submit(deps, DEALER_A, existing(first.customer_id))
    assert refused.value.reason == "ALREADY_REGISTERED"
    assert refused.value.metadata["registration_id"] == first.id


async def test_the_store_holds_one_active_registration_per_customer_and_product_line():
    deps, uow = await world()
    first = await submit(deps, DEALER_A, new())
    twin = replace(first, id="other", dealer_id=B, client_request_id="")
    async with uow:
        with pytest.raises(SlotTaken):
            await uow.registrations.add(twin)
    async with uow:
        await uow.registrations.add(replace(twin, product_line="B系列"))  # another slot
        await uow.registrations.add(replace(twin, id="loser", holds_slot=False))
        await uow.commit()


async def test_auto_approval_when_clean_and_inside_the_territory():
    deps, uow = await world(auto_approve="clean")
    submitted = await run(deps, registrations.submit_registration, new(), who=DEALER_A)
    assert submitted.auto_approved
    r = submitted.registration
    assert (r.status, r.decided_by) == (Status.APPROVED, "system")
    assert r.protected_until == deps.clock.now() + timedelta(days=90)
    [approved] = uow.published_of(REGISTRATION_APPROVED)
    assert approved.auto_approved and approved.registration.id == r.id
    assert [p.event_type for p in uow.published] == [
        CUSTOMER_CREATED, REGISTRATION_SUBMITTED, REGISTRATION_APPROVED, DEALER_NOTIFIED]


async def test_a_client_request_id_makes_submission_idempotent():
    deps, uow = await world()
    command = new(client_request_id="reg-1")
    first = await submit(deps, DEALER_A, command)
    again = await submit(deps, DEALER_A, command)
    assert again.id == first.id and len(uow.registrations.rows) == 1
    with pytest.raises(InvalidArgument) as bad:
        await submit(deps, DEALER_A, new(client_request_id="x" * 65))
    assert bad.value.violations[0].field == "client_request_id"


async def test_recall_reject_and_resubmit():
    deps, _ = await world()
    first = await submit(deps, DEALER_A, new())
    recalled = await run(deps, registrations.recall, first.id, "科室写错", who=DEALER_A)
    assert (recalled.status, recalled.holds_slot, recalled.decision_note) == (
        Status.RECALLED, False, "科室写错")
    with pytest.raises(FailedPrecondition) as twice:
        await run(deps, registrations.recall, first.id, "", who=DEALER_A)
    assert twice.value.reason == "ALREADY_RECALLED"
    second = await submit(deps, DEALER_A, existing(first.customer_id, department="骨科"))
    assert second.status == Status.SUBMITTED and second.id != first.id
    with pytest.raises(InvalidArgument) as no_reason:
        await run(deps, registrations.reject, second.id, " ", who=MANAGER)
    assert no_reason.value.violations[0].field == "reason"
    rejected = await run(deps, registrations.reject, second.id, "资料不全", who=MANAGER)
    assert (rejected.status, rejected.decision_note) == (Status.REJECTED, "资料不全")
    third = await submit(deps, DEALER_A, existing(first.customer_id))
    with pytest.raises(PermissionDenied):  # a dealer does not approve its own
        await run(deps, registrations.approve, third.id, "", who=DEALER_A)
    approved = await run(deps, registrations.approve, third.id, "", who=MANAGER)
    with pytest.raises(FailedPrecondition) as again:
        await run(deps, registrations.approve, approved.id, "", who=MANAGER)
    assert again.value.reason == "ALREADY_APPROVED"
    assert again.value.metadata == {"status": "approved"}


async def test_approving_a_losing_claim_directly_is_refused_while_another_holds_it():
    deps, uow = await world()
    first = await submit(deps, DEALER_A, new())
    lost = await submit(deps, DEALER_B, existing(first.customer_id))
    assert lost.status == Status.UNDER_REVIEW
    with pytest.raises(FailedPrecondition) as held:
        await run(deps, registrations.approve, lost.id, "", who=HQ)
    assert held.value.reason == "CUSTOMER_HELD"
    assert uow.registrations.rows[lost.id].status == Status.UNDER_REVIEW


async def test_the_territory_rule_and_product_lines():
    deps, _ = await world()
    with pytest.raises(FailedPrecondition) as outside:
        await submit(deps, DEALER_A, new(CustomerInput(name="北京协和医院",
                                                       address="北京市东城区帅府园1号")))
    assert outside.value.reason == "OUTSIDE_TERRITORY"
    assert outside.value.violations[0].field == "division_code"
    with pytest.raises(InvalidArgument) as line:
        await submit(deps, DEALER_A, new(product_line="B系列"))
    assert line.value.reason == "PRODUCT_LINE_NOT_CARRIED"
    assert line.value.violations[0].field == "product_line"
    # The Beijing dealer registers in Beijing.
    ok = await submit(deps, DEALER_C, new(CustomerInput(name="北京协和医院",
                                                        address="北京市东城区帅府园1号")))
    assert ok.dealer_id == C


async def test_scope_another_dealer_is_not_found_never_forbidden():
    deps, _ = await world()
    with pytest.raises(NotFound):
        await submit(deps, DEALER_A, new(dealer_id=B))
    mine = await submit(deps, DEALER_A, new())
    for call in (registrations.get_registration,):
        with pytest.raises(NotFound):
            await run(deps, call, mine.id, who=DEALER_B)
    with pytest.raises(NotFound):
        await run(deps, registrations.recall, mine.id, "", who=DEALER_B)
    listed = await run(deps, registrations.list_registrations,
                       RegistrationQuery(), PageRequest(),
                       who=DEALER_B)
    assert listed.items == [] and listed.total == 0
    everything = await run(deps, registrations.list_registrations,
                           RegistrationQuery(dealer_id=A),
                           PageRequest(), who=HQ)
    assert [r.id for r in everything.items] == [mine.id]


async def test_an_unprojected_dealer_is_read_through_from_identity_once():
    deps, uow = await world()
    late = DealerFacts("d-late", "上海迟到医疗器械有限公司", 3, "east", ("310104",),
                       ("A系列",), True)
    deps.identity.dealers[late.id] = late
    deps.scopes.allow(HQ, all_dealers=True)
    registration = await submit(deps, HQ, new(dealer_id=late.id))
    assert registration.dealer_id == late.id
    assert uow.dealers.rows[late.id].division_codes == ("310104",)
    await submit(deps, HQ, new(RUIJIN_XUHUI, dealer_id=late.id))
    assert deps.identity.asked == [late.id]
    with pytest.raises(NotFound):
        await submit(deps, HQ, new(dealer_id="d-nobody"))
    deps.identity.dealers["d-closed"] = replace(late, id="d-closed", active=False)
    with pytest.raises(FailedPrecondition) as inactive:
        await submit(deps, HQ, new(dealer_id="d-closed"))
    assert inactive.value.reason == "DEALER_INACTIVE"


RUIJIN_XUHUI = CustomerInput(name="上海市徐汇区中心医院", address="上海市徐汇区淮海中路966号")


async def test_bad_input_names_the_field_and_leaves_nothing():
    deps, uow = await world()
    cases = [
        (CustomerInput(name="某医院", address="上海市徐汇区", credit_code="91310000MA1FL8XQ3X"),
         "new_customer.credit_code"),
        (CustomerInput(name="火星第一医院", address="火星基地1号"), "new_customer.division_code"),
        (CustomerInput(name="朝阳医院", address="朝阳区工体南路8号"), "new_customer.division_code"),
        (CustomerInput(name=" （ ） ", address="上海市徐汇区"), "new_customer.name"),
    ]
    for customer, field_name in cases:
        with pytest.raises(InvalidArgument) as bad:
            await submit(deps, DEALER_A, new(customer))
        assert bad.value.violations[0].field == field_name, customer
    with pytest.raises(InvalidArgument) as missing:
        await submit(deps, DEALER_A, SubmitRegistration(product_line=""))
    assert {v.field for v in missing.value.violations} == {"product_line", "customer_id"}
    with pytest.raises(NotFound):
        await submit(deps, DEALER_A, existing("nope"))
    assert uow.registrations.rows == {} and uow.customers.rows == {}
    # Naming the division places an address that does not.
    placed = await submit(deps, DEALER_A, new(CustomerInput(name="松江区中心医院",
                                                            address="某某路1号",
                                                            division_code="310117")))
    assert uow.customers.rows[placed.customer_id].division_overridden


async def test_a_new_look_alike_is_created_and_sent_to_hq_review():
    deps, _ = await world()
    first = await submit(deps, DEALER_A, new())
    review = await submit(deps, DEALER_B, new(CustomerInput(name="中山医院",
                                                             address="上海市长宁区仙霞路")))
    assert review.status == Status.UNDER_REVIEW and review.holds_slot
    assert review.customer_id != first.customer_id
    assert review.evidence.verdict == Verdict.POSSIBLE_DUPLICATE
    [candidate] = review.evidence.candidates
    assert (candidate.customer.id, candidate.kind) == (first.customer_id, MatchKind.FUZZY_NAME)
    # The name index learnt the new customer at once.
    check = await run(deps, customers.check_duplicates,
                      DuplicateQuery(name="中山医院", address="上海市长宁区"), who=HQ)
    assert review.customer_id in {c.customer.id for c in check.candidates}

"""The HQ conflict queue: raised by a look-alike or a pending slot, decided by HQ only,
the winner approved and protected, the others rejected, every dealer told."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.registration.domain.customers import CustomerInput
from services.registration.domain.registrations import (
    ConflictQuery,
    ConflictStatus,
    SubmitRegistration,
)
from services.registration.domain.rules import Status
from services.registration.usecases import conflicts, registrations
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shared.events.registration import (
    CONFLICT_RESOLVED,
    DEALER_NOTIFIED,
    REGISTRATION_APPROVED,
    REGISTRATION_REJECTED,
)
from shared.pagination import PageRequest
from tests.service.registration.world import (
    DEALER_A,
    DEALER_B,
    HQ,
    MANAGER,
    REGION_NORTH,
    ZHONGSHAN,
    A,
    B,
    run,
    world,
)

LOOK_ALIKE = CustomerInput(name="中山医院", address="上海市长宁区仙霞路")


async def look_alike_conflict(deps):
    first = (await run(deps, registrations.submit_registration,
                       SubmitRegistration("A系列", new_customer=ZHONGSHAN),
                       who=DEALER_A)).registration
    first = await run(deps, registrations.approve, first.id, "", who=MANAGER)
    review = (await run(deps, registrations.submit_registration,
                        SubmitRegistration("A系列", new_customer=LOOK_ALIKE),
                        who=DEALER_B)).registration
    return first, review


async def test_only_hq_sees_and_decides_the_queue():
    deps, _ = await world()
    first, review = await look_alike_conflict(deps)
    assert review.status == Status.UNDER_REVIEW and review.conflict_id
    with pytest.raises(FailedPrecondition) as hq_decides:
        await run(deps, registrations.approve, review.id, "", who=MANAGER)
    assert hq_decides.value.reason == "UNDER_REVIEW"
    with pytest.raises(PermissionDenied):
        await run(deps, conflicts.list_conflicts, ConflictQuery(), PageRequest(),
                  who=DEALER_A)
    page = await run(deps, conflicts.list_conflicts,
                     ConflictQuery(status=ConflictStatus.OPEN), PageRequest(), who=HQ)
    assert page.total == 1
    [view] = page.items
    assert {c.id for c in view.claims} == {first.id, review.id}
    claim = next(c for c in view.claims if c.id == review.id)
    assert claim.evidence.candidates[0].claims[0].dealer_id == A  # HQ sees who
    # A region manager of another region neither lists nor finds it.
    deps.scopes.allow(REGION_NORTH, ["d-c"])
    north = await run(deps, conflicts.list_conflicts, ConflictQuery(), PageRequest(),
                      who=REGION_NORTH)
    assert north.items == []
    with pytest.raises(NotFound):
        await run(deps, conflicts.resolve_conflict, view.conflict.id, first.id, "x",
                  who=REGION_NORTH)


async def test_hq_resolves_the_winner_is_protected_the_other_rejected_both_told():
    deps, uow = await world()
    first, review = await look_alike_conflict(deps)
    conflict_id = review.conflict_id
    uow.published.clear()
    with pytest.raises(InvalidArgument) as bad:
        await run(deps, conflicts.resolve_conflict, conflict_id, "", " ", who=HQ)
    assert {v.field for v in bad.value.violations} == {"winning_registration_id", "note"}
    with pytest.raises(InvalidArgument):
        await run(deps, conflicts.resolve_conflict, conflict_id, "not-a-claim", "x", who=HQ)
    view = await run(deps, conflicts.resolve_conflict, conflict_id, first.id,
                     "同一家医院，先到先得", who=HQ)
    assert view.conflict.status == ConflictStatus.RESOLVED
    assert view.conflict.winning_registration_id == first.id
    assert {c.id for c in view.claims} == {first.id, review.id}
    lost = uow.registrations.rows[review.id]
    assert (lost.status, lost.holds_slot, lost.conflict_id) == (Status.REJECTED, False, "")
    assert "先到先得" in lost.decision_note
    kept = uow.registrations.rows[first.id]
    assert (kept.status, kept.conflict_id) == (Status.APPROVED, "")
    [rejected] = uow.published_of(REGISTRATION_REJECTED)
    assert rejected.registration.id == review.id
    assert uow.published_of(REGISTRATION_APPROVED) == []  # the winner was approved already
    [resolved] = uow.published_of(CONFLICT_RESOLVED)
    assert resolved.conflict.winning_registration_id == first.id
    told = {n.dealer_id: n.message for n in uow.published_of(DEALER_NOTIFIED)
            if n.kind == "conflict.resolved"}
    assert set(told) == {A, B} and "您的报备胜出" in told[A] and "归属其他经销商" in told[B]
    with pytest.raises(FailedPrecondition) as again:
        await run(deps, conflicts.resolve_conflict, conflict_id, review.id, "x", who=HQ)
    assert again.value.reason == "ALREADY_RESOLVED"


async def test_hq_may_give_a_pending_slot_to_the_later_claim():
    deps, uow = await world()
    first = (await run(deps, registrations.submit_registration,
                       SubmitRegistration("A系列", new_customer=ZHONGSHAN),
                       who=DEALER_A)).registration
    second = (await run(deps, registrations.submit_registration,
                        SubmitRegistration("A系列", customer_id=first.customer_id),
                        who=DEALER_B)).registration
    assert second.status == Status.UNDER_REVIEW and not second.holds_slot
    view = await run(deps, conflicts.resolve_conflict, second.conflict_id, second.id,
                     "乙方先签约", who=HQ)
    winner = uow.registrations.rows[second.id]
    assert (winner.status, winner.holds_slot) == (Status.APPROVED, True)
    assert winner.protected_until == deps.clock.now() + timedelta(days=90)
    assert uow.registrations.rows[first.id].status == Status.REJECTED
    [approved] = uow.published_of(REGISTRATION_APPROVED)
    assert approved.registration.id == second.id
    assert view.conflict.resolved_by == HQ.subject

"""The protection period: approval protects for the policy's days, managers renew it,
the scheduler expires it (freeing the customer for the next dealer), and the expiring
list shows what ends soon."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.registration.domain.registrations import SubmitRegistration
from services.registration.domain.rules import Status
from services.registration.usecases import registrations, scheduler
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shared.events.registration import (
    DEALER_NOTIFIED,
    REGISTRATION_EXPIRED,
    REGISTRATION_RENEWED,
)
from shared.pagination import PageRequest
from tests.service.registration.world import (
    DEALER_A,
    DEALER_B,
    MANAGER,
    ZHONGSHAN,
    A,
    run,
    world,
)


async def approved_registration(deps, days: float = 90):
    submitted = await run(deps, registrations.submit_registration,
                          SubmitRegistration("A系列", new_customer=ZHONGSHAN), who=DEALER_A)
    return await run(deps, registrations.approve, submitted.registration.id, "",
                     who=MANAGER)


async def test_managers_renew_protection_dealers_do_not():
    deps, uow = await world(protection_days=30)
    approved = await approved_registration(deps)
    assert approved.protected_until == deps.clock.now() + timedelta(days=30)
    deps.clock.advance(days=10)
    with pytest.raises(PermissionDenied):
        await run(deps, registrations.renew, approved.id, "招标进行中", who=DEALER_A)
    with pytest.raises(NotFound):
        await run(deps, registrations.renew, approved.id, "x", who=DEALER_B)
    renewed = await run(deps, registrations.renew, approved.id, "招标进行中", who=MANAGER)
    assert renewed.previous_protected_until == approved.protected_until
    assert renewed.registration.protected_until == deps.clock.now() + timedelta(days=30)
    assert renewed.registration.renewal_count == 1
    [event] = uow.published_of(REGISTRATION_RENEWED)
    assert event.previous_protected_until.ToDatetime().date() == (
        approved.protected_until.date())


async def test_renewal_never_shortens_and_needs_an_approved_registration():
    deps, _ = await world(protection_days=30)
    approved = await approved_registration(deps)
    renewed = await run(deps, registrations.renew, approved.id, "", who=MANAGER)
    # Renewed at once: a full period from now, which is what was left.
    assert renewed.registration.protected_until == approved.protected_until
    pending = await run(deps, registrations.submit_registration,
                        SubmitRegistration("B系列", dealer_id="d-b",
                                           customer_id=approved.customer_id), who=DEALER_B)
    with pytest.raises(FailedPrecondition) as not_approved:
        await run(deps, registrations.renew, pending.registration.id, "", who=MANAGER)
    assert not_approved.value.reason == "INVALID_STATE"


async def test_protection_expires_and_frees_the_customer():
    deps, uow = await world(protection_days=30)
    approved = await approved_registration(deps)
    assert await run(deps, scheduler.run_due) == {"registrations": 0, "leads": 0,
                                                   "authorizations": 0}
    deps.clock.advance(days=30, seconds=1)
    assert (await run(deps, scheduler.run_due))["registrations"] == 1
    expired = uow.registrations.rows[approved.id]
    assert (expired.status, expired.holds_slot, expired.decided_by) == (
        Status.EXPIRED, False, "system")
    [event] = uow.published_of(REGISTRATION_EXPIRED)
    assert event.registration.id == approved.id
    assert [n.kind for n in uow.published_of(DEALER_NOTIFIED) if n.dealer_id == A][-1] == (
        "registration.expired")
    # Once is enough: a second pass finds nothing due.
    assert (await run(deps, scheduler.run_due))["registrations"] == 0
    # The customer is free: the other dealer wins it now.
    second = await run(deps, registrations.submit_registration,
                       SubmitRegistration("A系列", customer_id=approved.customer_id),
                       who=DEALER_B)
    assert second.registration.status == Status.SUBMITTED


async def test_the_expiring_list_soonest_first_within_scope():
    deps, _ = await world(protection_days=30, expiring_within_days=14)
    approved = await approved_registration(deps)

    async def expiring(who, within_days=0):
        page = await run(deps, registrations.list_expiring, "", within_days, PageRequest(),
                         who=who)
        return [r.id for r in page.items]

    assert await expiring(DEALER_A) == []
    assert await expiring(DEALER_A, 31) == [approved.id]
    deps.clock.advance(days=20)
    assert await expiring(DEALER_A) == [approved.id]
    assert await expiring(DEALER_B) == []
    with pytest.raises(InvalidArgument):
        await expiring(DEALER_A, -1)

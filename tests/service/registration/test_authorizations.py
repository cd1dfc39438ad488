"""Authorizations (授权): granted by a channel manager or HQ within scope, pending until
their first day, revoked with a reason, expired by the scheduler, handed over with the
manager's dealers, and the letter."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.registration.domain.authorizations import (
    AuthorizationQuery,
    ExportFormat,
    GrantInput,
)
from services.registration.domain.dealers import Assignment, AssignmentChange
from services.registration.domain.registrations import SubmitRegistration
from services.registration.domain.rules import AuthStatus, Status
from services.registration.usecases import (
    authorizations,
    customers,
    dealers,
    registrations,
    scheduler,
)
from shared.context import Principal
from shared.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from shared.events.registration import (
    AUTHORIZATION_EXPIRED,
    AUTHORIZATION_GRANTED,
    AUTHORIZATION_OWNER_CHANGED,
    AUTHORIZATION_REVOKED,
)
from shared.pagination import PageRequest
from tests.service.registration.world import (
    DEALER_A,
    DEALER_B,
    HQ,
    MANAGER,
    ZHONGSHAN,
    A,
    B,
    run,
    world,
)

SUCCESSOR = Principal(subject="user:cm2", user_id="cm2", roles=frozenset({"channel_manager"}))


async def setup(**policy):
    deps, uow = await world(**policy)
    customer = (await run(deps, customers.create_customer, ZHONGSHAN, who=HQ)).customer
    today = deps.clock.now().date()
    body = GrantInput(dealer_id=A, product_line="A系列", customer_id=customer.id,
                      department="心内科", valid_from=today.isoformat(),
                      valid_to=(today + timedelta(days=365)).isoformat())
    return deps, uow, customer, body


async def grant(deps, body: GrantInput, who=MANAGER):
    return await run(deps, authorizations.grant, body, who=who)


async def listed(deps, who, **query) -> list[str]:
    page = await run(deps, authorizations.list_authorizations, AuthorizationQuery(**query),
                     PageRequest(), who=who)
    return [g.id for g in page.items]


async def test_grant_within_scope_active_or_pending():
    deps, uow, _, body = await setup()
    granted = await grant(deps, body)
    assert granted.status == AuthStatus.ACTIVE and granted.letter_no.startswith("SQ-2026-")
    assert granted.owner_user_id == "cm"
    [event] = uow.published_of(AUTHORIZATION_GRANTED)
    assert event.authorization.id == granted.id
    later = deps.clock.now().date() + timedelta(days=10)
    future = await grant(deps, GrantInput(**{**body.__dict__, "department": "",
                                             "valid_from": later.isoformat()}))
    assert future.status == AuthStatus.PENDING
    assert set(await listed(deps, DEALER_A)) == {granted.id, future.id}
    assert await listed(deps, DEALER_B) == []
    assert await listed(deps, DEALER_A, valid_on=deps.clock.now().date().isoformat()) == [
        granted.id]
    # The first day comes: the scheduler activates it.
    deps.clock.advance(days=10)
    await run(deps, scheduler.run_due)
    assert uow.authorizations.rows[future.id].status == AuthStatus.ACTIVE


async def test_who_may_grant_and_bad_grants_name_the_field():
    deps, _, _, body = await setup()
    with pytest.raises(NotFound):
        await grant(deps, GrantInput(**{**body.__dict__, "dealer_id": "d-c"}))
    with pytest.raises(PermissionDenied):
        await grant(deps, body, who=DEALER_A)
    yesterday = (deps.clock.now().date() - timedelta(days=1)).isoformat()
    with pytest.raises(InvalidArgument) as bad:
        await grant(deps, GrantInput(**{**body.__dict__, "valid_to": yesterday,
                                        "product_code": "A-001"}))
    assert {v.field for v in bad.value.violations} >= {"valid_to", "product_line"}
    with pytest.raises(InvalidArgument) as department:
        await grant(deps, GrantInput(**{**body.__dict__, "department": "眼科"}))
    assert department.value.violations[0].field == "department"
    with pytest.raises(InvalidArgument) as line:
        await grant(deps, GrantInput(**{**body.__dict__, "product_line": "C系列"}))
    assert line.value.violations[0].field == "product_line"
    with pytest.raises(NotFound):
        await grant(deps, GrantInput(**{**body.__dict__, "customer_id": "nope"}))


async def test_revoke_with_a_reason_once():
    deps, uow, _, body = await setup()
    granted = await grant(deps, body)
    with pytest.raises(InvalidArgument):
        await run(deps, authorizations.revoke, granted.id, " ", who=MANAGER)
    with pytest.raises(NotFound):
        await run(deps, authorizations.revoke, granted.id, "x", who=DEALER_B)
    revoked = await run(deps, authorizations.revoke, granted.id, "合同终止", who=MANAGER)
    assert (revoked.status, revoked.revoke_reason, revoked.revoked_by) == (
        AuthStatus.REVOKED, "合同终止", MANAGER.subject)
    [event] = uow.published_of(AUTHORIZATION_REVOKED)
    assert event.reason == "合同终止"
    with pytest.raises(FailedPrecondition) as again:
        await run(deps, authorizations.revoke, granted.id, "x", who=MANAGER)
    assert again.value.reason == "ALREADY_REVOKED"


async def test_lapsed_grants_expire_with_an_event():
    deps, uow, _, body = await setup()
    granted = await grant(deps, body)
    deps.clock.advance(days=365)
    assert (await run(deps, scheduler.run_due))["authorizations"] == 0
    deps.clock.advance(days=1)
    assert (await run(deps, scheduler.run_due))["authorizations"] == 1
    assert uow.authorizations.rows[granted.id].status == AuthStatus.EXPIRED
    [event] = uow.published_of(AUTHORIZATION_EXPIRED)
    assert event.authorization.id == granted.id


async def test_a_leaving_managers_grants_and_approvals_pass_to_the_successor():
    deps, uow, customer, body = await setup()
    granted = await grant(deps, body)
    other = await grant(deps, GrantInput(**{**body.__dict__, "dealer_id": B}))
    pending = await run(deps, registrations.submit_registration,
                        SubmitRegistration("A系列", customer_id=customer.id), who=DEALER_A)
    assert pending.registration.approver_user_id == "cm"
    await dealers.change_assignments(AssignmentChange(
        added=(Assignment("cm2", A, "A系列"),), removed=(Assignment("cm", A, "A系列"),),
        from_manager_user_id="cm", to_manager_user_id="cm2"), uow=uow)
    assert uow.authorizations.rows[granted.id].owner_user_id == "cm2"
    assert uow.authorizations.rows[other.id].owner_user_id == "cm"  # B was not handed over
    [changed] = uow.published_of(AUTHORIZATION_OWNER_CHANGED)
    assert (changed.authorization.id, changed.previous_owner_user_id) == (granted.id, "cm")
    moved = uow.registrations.rows[pending.registration.id]
    assert (moved.status, moved.approver_user_id) == (Status.SUBMITTED, "cm2")
    assert (await uow.dealers.get(A)).managers == {"A系列": "cm2"}
    deps.scopes.allow(SUCCESSOR, [A])
    assert await listed(deps, SUCCESSOR, owner_user_id="cm2") == [granted.id]


async def test_the_letter_of_a_live_grant():
    deps, _, _, body = await setup()
    granted = await grant(deps, body)
    pdf = await run(deps, authorizations.export_letter, granted.id, ExportFormat.DEFAULT,
                    who=DEALER_A)
    assert (pdf.filename, pdf.content_type) == (f"授权书-{granted.letter_no}.pdf",
                                                "application/pdf")
    xlsx = await run(deps, authorizations.export_letter, granted.id, ExportFormat.XLSX,
                     who=DEALER_A)
    assert xlsx.filename.endswith(".xlsx") and xlsx.content.startswith(b"PK")
    with pytest.raises(InvalidArgument):
        await run(deps, authorizations.export_letter, granted.id, ExportFormat.CSV,
                  who=DEALER_A)
    with pytest.raises(NotFound):
        await run(deps, authorizations.export_letter, granted.id, ExportFormat.PDF,
                  who=DEALER_B)
    await run(deps, authorizations.revoke, granted.id, "x", who=MANAGER)
    with pytest.raises(FailedPrecondition) as revoked:
        await run(deps, authorizations.export_letter, granted.id, ExportFormat.PDF,
                  who=DEALER_A)
    assert revoked.value.reason == "NOT_VALID"

"""What time alone changes (bootstrap runs it as a worker every few seconds): protections
and authorizations lapse, unclaimed leads return to the pool, future authorizations
start. Each change reads its row under a lock and checks it is still due, so two
replicas running this at once never apply one change twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from services.registration import messages
from services.registration.domain.registrations import Notice
from services.registration.domain.rules import AuthStatus, LeadStatus, Status
from services.registration.usecases.leads import return_to_pool
from services.registration.usecases.notices import notify
from services.registration.usecases.ports import RegistrationUnitOfWork
from shared.clock import Clock, today
from shared.events.registration import AUTHORIZATION_EXPIRED, REGISTRATION_EXPIRED

# Changes per kind and pass; the next pass takes the rest.
BATCH = 500


async def _each(uow: RegistrationUnitOfWork, keys: list[str],
                change: Callable[[str], Awaitable[bool]]) -> int:
    """``change(key)`` for each key in a transaction of its own, kept when it says it
    changed something; how many did."""
    changed = 0
    for key in keys:
        async with uow:
            if await change(key):
                await uow.commit()
                changed += 1
    return changed


async def expire_protections(*, uow: RegistrationUnitOfWork, clock: Clock,
                             limit: int = BATCH) -> int:
    """Approved registrations past their protection expire: the customer is free
    again, and the dealer is told."""
    now = clock.now()

    async def expire(registration_id: str) -> bool:
        current = await uow.registrations.get(registration_id, for_update=True)
        if not (current and current.status == Status.APPROVED
                and current.protected_until and current.protected_until < now):
            return False
        registration = replace(current, status=Status.EXPIRED, holds_slot=False,
                               decided_by="system", updated_at=now)
        await uow.registrations.save(registration)
        uow.events.record(REGISTRATION_EXPIRED, messages.registration_expired(registration),
                          registration.id)
        notify(uow, Notice(registration.dealer_id, "registration.expired",
                           f"{registration.customer_name}（{registration.product_line}）"
                           "的保护期已到期，客户已释放", registration_id=registration.id))
        return True

    async with uow.read():
        due = await uow.registrations.due_to_expire(now, limit)
    return await _each(uow, due, expire)


async def return_overdue_leads(*, uow: RegistrationUnitOfWork, clock: Clock,
                               limit: int = BATCH) -> int:
    """Leads not claimed by their deadline go back to the pool."""
    now = clock.now()

    async def give_back(lead_id: str) -> bool:
        lead = await uow.leads.get(lead_id, for_update=True)
        if not (lead and lead.status == LeadStatus.ASSIGNED
                and lead.claim_deadline and lead.claim_deadline < now):
            return False
        await return_to_pool(uow, lead, deadline_passed=True, reason="claim deadline passed")
        return True

    async with uow.read():
        overdue = await uow.leads.overdue(now, limit)
    return await _each(uow, overdue, give_back)


async def start_and_end_authorizations(*, uow: RegistrationUnitOfWork, clock: Clock,
                                       limit: int = BATCH) -> int:
    """Pending grants whose first day came become active; grants past their last day
    expire (with an event). Returns how many expired."""
    day = today(clock).isoformat()

    async def expire(grant_id: str) -> bool:
        current = await uow.authorizations.get(grant_id, for_update=True)
        if not (current and current.status in (AuthStatus.ACTIVE, AuthStatus.PENDING)
                and current.valid_to < day):
            return False
        grant = replace(current, status=AuthStatus.EXPIRED)
        await uow.authorizations.save(grant)
        uow.events.record(AUTHORIZATION_EXPIRED, messages.authorization_expired(grant),
                          grant.id)
        return True

    async with uow:
        await uow.authorizations.activate_started(today(clock))
        await uow.commit()
    async with uow.read():
        lapsed = await uow.authorizations.lapsed(today(clock), limit)
    return await _each(uow, lapsed, expire)


async def run_due(*, uow: RegistrationUnitOfWork, clock: Clock) -> dict[str, int]:
    """One pass of everything due; how many of each changed."""
    return {"registrations": await expire_protections(uow=uow, clock=clock),
            "leads": await return_overdue_leads(uow=uow, clock=clock),
            "authorizations": await start_and_end_authorizations(uow=uow, clock=clock)}

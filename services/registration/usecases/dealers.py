"""Dealers as identity defines them (territory, tier, product lines, managers), kept as
a local projection fed by identity's events, so territory checks and lead assignment
need no remote call; a dealer whose event is still in flight is read through once."""

from __future__ import annotations

from dataclasses import replace

from services.registration import messages
from services.registration.domain.dealers import AssignmentChange, DealerFacts
from services.registration.domain.rules import DealerView
from services.registration.usecases.ports import Identity, RegistrationUnitOfWork
from shared.clock import Clock
from shared.errors import NotFound
from shared.events.registration import AUTHORIZATION_OWNER_CHANGED


def _view(dealer: DealerFacts) -> DealerView:
    return DealerView(dealer.id, dealer.name, dealer.tier, dealer.division_codes,
                      dealer.product_lines, dealer.region_code, dealer.active)


async def dealer_of(dealer_id: str, *, uow: RegistrationUnitOfWork, identity: Identity,
                    clock: Clock) -> DealerView:
    """The dealer from the local projection, or read through from identity (and
    projected) when its event has not arrived yet."""
    async with uow.read():
        dealer = await uow.dealers.get(dealer_id)
    if dealer is not None:
        return dealer
    facts = await identity.dealer(dealer_id)
    if facts is None:
        raise NotFound(f"dealer {dealer_id} not found")
    await project_dealer(facts, uow=uow, clock=clock)
    return _view(facts)


async def project_dealer(dealer: DealerFacts, *, uow: RegistrationUnitOfWork,
                         clock: Clock) -> None:
    """Identity created or changed a dealer."""
    async with uow:
        await uow.dealers.upsert(dealer, clock.now())
        await uow.commit()


async def change_assignments(change: AssignmentChange, *, uow: RegistrationUnitOfWork) -> None:
    """Identity changed which managers look after which dealers. On a hand-over the
    leaving manager's authorizations (of the dealers handed over) pass to the successor,
    and registrations waiting for the leaving manager wait for the successor."""
    async with uow:
        for assignment in change.removed:
            await uow.dealers.unassign(assignment)
        for assignment in change.added:
            await uow.dealers.assign(assignment)
        leaving, successor = change.from_manager_user_id, change.to_manager_user_id
        if leaving and successor:
            dealers = frozenset(a.dealer_id for a in change.added) or None
            for grant in await uow.authorizations.owned_by(leaving, dealers):
                moved = replace(grant, owner_user_id=successor)
                await uow.authorizations.save(moved)
                uow.events.record(AUTHORIZATION_OWNER_CHANGED,
                                  messages.authorization_owner_changed(moved, leaving),
                                  moved.id)
            await uow.registrations.hand_over_approvals(leaving, successor)
        await uow.commit()

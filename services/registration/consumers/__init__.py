"""Every event the registration service reacts to, in one place.

Dealer territories, tiers, product lines and manager assignments come from identity as a
local projection (tables ``dealers`` and ``manager_assignments``) built from its events,
so lead auto-assignment can ask "which dealers cover 310104?" without a remote call. A
dealer not projected yet (its event still in flight) is read through from identity's
GetOrgUnit once and projected then (RegistrationService.dealer)."""

from __future__ import annotations

from services.registration.service import RegistrationService
from shared.bus.consumer import Subscription
from shared.bus.envelope import Event
from shared.events.identity import ASSIGNMENT_CHANGED, ORG_UNIT_CREATED, ORG_UNIT_UPDATED


async def on_org_unit(service: RegistrationService, transaction, event: Event) -> None:
    await service.on_org_unit(transaction, event)


async def on_assignment_changed(service: RegistrationService, transaction,
                                event: Event) -> None:
    await service.on_assignment_changed(transaction, event)


SUBSCRIPTIONS = [
    Subscription("registration-dealers", (ORG_UNIT_CREATED, ORG_UNIT_UPDATED), on_org_unit),
    Subscription("registration-assignments", (ASSIGNMENT_CHANGED,), on_assignment_changed),
]

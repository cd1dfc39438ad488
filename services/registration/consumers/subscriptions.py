"""Every event the registration service reacts to, wired in one place.

Dealer territories, tiers, product lines and manager assignments come from identity as a
local projection (tables ``dealers`` and ``manager_assignments``) built from its events,
so lead auto-assignment can ask "which dealers cover 310104?" without a remote call. A
dealer not projected yet (its event still in flight) is read through from identity's
GetOrgUnit once and projected then (RegistrationService.dealer)."""

from __future__ import annotations

from services.registration.service import RegistrationService
from shared.bus.consumer import Subscription
from shared.events.identity import ASSIGNMENT_CHANGED, ORG_UNIT_CREATED, ORG_UNIT_UPDATED


def subscriptions(service: RegistrationService) -> list[Subscription]:
    return [
        Subscription(
            durable="registration-dealers",
            events=(ORG_UNIT_CREATED, ORG_UNIT_UPDATED),
            handler=service.on_org_unit,
        ),
        Subscription(
            durable="registration-assignments",
            events=(ASSIGNMENT_CHANGED,),
            handler=service.on_assignment_changed,
        ),
    ]

"""Every event the registration service reacts to, in one place: the subscriptions, and
their handlers (thin: event payload → domain facts → use case).

Dealer territories, tiers, product lines and manager assignments come from identity as a
local projection built from its events, so lead auto-assignment can ask "which dealers
cover 310104?" without a remote call. A dealer not projected yet (its event still in
flight) is read through from identity once (usecases/dealers.py)."""

from __future__ import annotations

from services.registration import messages
from services.registration.usecases import dealers
from services.registration.usecases.ports import Deps
from shared.bus.consumer import Subscription
from shared.bus.envelope import Event
from shared.events.identity import ASSIGNMENT_CHANGED, ORG_UNIT_CREATED, ORG_UNIT_UPDATED


async def on_org_unit(deps: Deps, transaction, event: Event) -> None:
    dealer = messages.dealer_facts(event.payload.org_unit)
    if dealer is not None:
        await dealers.project_dealer(dealer, uow=deps.uow_in(transaction), clock=deps.clock)


async def on_assignment_changed(deps: Deps, transaction, event: Event) -> None:
    await dealers.change_assignments(messages.assignment_change(event.payload),
                                     uow=deps.uow_in(transaction))


SUBSCRIPTIONS = [
    Subscription("registration-dealers", (ORG_UNIT_CREATED, ORG_UNIT_UPDATED), on_org_unit),
    Subscription("registration-assignments", (ASSIGNMENT_CHANGED,), on_assignment_changed),
]

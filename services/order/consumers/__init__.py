"""Every event the order service reacts to, in one place: the subscriptions, and their
handlers (thin: event payload → domain terms → use case)."""

from __future__ import annotations

from services.order import messages
from services.order.domain.inventory import AcceptedFlowPart, FlowLine
from services.order.usecases import accounts, inventory
from services.order.usecases.ports import Deps
from shared.bus.consumer import Subscription
from shared.bus.envelope import Event
from shared.events.flow import FLOW_UPLOAD_ACCEPTED, FLOW_UPLOAD_SUPERSEDED
from shared.events.incentive import REBATE_CREDITED


async def on_rebate_credited(deps: Deps, transaction, event: Event) -> None:
    credited_on = event.envelope.occurred_at.ToDatetime().date().isoformat()
    await accounts.book_rebate_credit(
        messages.rebate_credit(event.payload, credited_on, deps.default_company,
                               deps.currency),
        uow=deps.uow_in(transaction), clock=deps.clock)


def accepted_part(payload) -> AcceptedFlowPart:
    """A FlowUploadAccepted in domain terms."""
    return AcceptedFlowPart(
        upload_id=payload.upload_id, part_index=payload.part_index,
        dealer_id=payload.dealer_id,
        lines=tuple(FlowLine(
            dealer_id=row.dealer_id or payload.dealer_id, product_code=row.product_code,
            gtin=row.gtin, product_line=row.product_line, batch=row.batch,
            expiry_date=row.expiry_date, quantity=row.quantity,
            transfer_to_dealer_id=row.transfer_to_dealer_id) for row in payload.rows))


async def on_flow_upload(deps: Deps, transaction, event: Event) -> None:
    uow = deps.uow_in(transaction)
    if event.subject == FLOW_UPLOAD_SUPERSEDED.subject:
        await inventory.undo_superseded(event.payload.upload_id,
                                        event.payload.superseded_by_upload_id,
                                        uow=uow, clock=deps.clock)
    else:
        await inventory.apply_accepted_flow(accepted_part(event.payload), uow=uow,
                                            clock=deps.clock)


SUBSCRIPTIONS = [
    Subscription("order-rebate-credit", (REBATE_CREDITED,), on_rebate_credited),
    # One consumer for both, so an upload's parts are applied before its supersession.
    Subscription("order-channel-flow", (FLOW_UPLOAD_ACCEPTED, FLOW_UPLOAD_SUPERSEDED),
                 on_flow_upload),
]

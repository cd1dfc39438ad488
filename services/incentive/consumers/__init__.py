"""Every event the incentive service reacts to, in one place: the subscriptions, and
their handlers (thin: event payload → domain facts → use case). Business days are the
UTC dates of the events' times, like the rest of the suite."""

from __future__ import annotations

from datetime import UTC, date, datetime

from qudao.common.v1 import customer_source_pb2
from qudao.flow.v1 import flow_pb2
from qudao.identity.v1 import events_pb2 as identity_events
from qudao.identity.v1 import identity_pb2

from services.incentive.domain.commission import CustomerSource
from services.incentive.domain.dealers import Dealer
from services.incentive.domain.facts import (
    Diversion,
    DiversionStatus,
    LeadEvent,
    Order,
    OrderLine,
    Registration,
    Return,
    ReturnLine,
    Sale,
    ShippedLine,
    UploadPart,
)
from services.incentive.messages import TIER_NAMES
from services.incentive.usecases import facts, programs
from services.incentive.usecases.ports import Deps
from shared.bus.consumer import Subscription
from shared.bus.envelope import Event
from shared.convert import from_timestamp
from shared.events.flow import (
    DIVERSION_DETECTED,
    DIVERSION_RESOLVED,
    FLOW_UPLOAD_ACCEPTED,
    FLOW_UPLOAD_SUPERSEDED,
)
from shared.events.identity import (
    ASSIGNMENT_CHANGED,
    ORG_UNIT_CREATED,
    ORG_UNIT_UPDATED,
    TAGS_CHANGED,
)
from shared.events.order import (
    ORDER_APPROVED,
    ORDER_CANCELLED,
    ORDER_LINE_CLOSED,
    ORDER_REJECTED,
    PRODUCT_UPSERTED,
    RETURN_RECEIVED,
    SHIPMENT_RECORDED,
)
from shared.events.registration import (
    CUSTOMER_MERGED,
    LEAD_ASSIGNED,
    LEAD_CLAIMED,
    LEAD_RETURNED,
    REGISTRATION_APPROVED,
    REGISTRATION_EXPIRED,
    REGISTRATION_RECALLED,
    REGISTRATION_REJECTED,
)

SOURCES = {customer_source_pb2.CUSTOMER_SOURCE_DEALER_SOURCED: CustomerSource.DEALER_SOURCED,
           customer_source_pb2.CUSTOMER_SOURCE_HQ_LEAD: CustomerSource.HQ_LEAD}
DIVERSION_STATUS = {flow_pb2.DIVERSION_STATUS_CONFIRMED: DiversionStatus.CONFIRMED,
                    flow_pb2.DIVERSION_STATUS_DISMISSED: DiversionStatus.DISMISSED}


def _when(event: Event) -> datetime:
    return from_timestamp(event.envelope.occurred_at) or datetime.now(UTC)


def _day(event: Event) -> date:
    return _when(event).date()


def _date(text: str, fallback: date | None) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return fallback


def _collaborators(deps: Deps, transaction) -> dict:
    return {"uow": deps.uow_in(transaction), "clock": deps.clock, "ids": deps.ids,
            "policy": deps.policy}


# ----------------------------------------------------------------------------- flow
async def on_flow(deps: Deps, transaction, event: Event) -> None:
    payload = event.payload
    if event.subject == FLOW_UPLOAD_ACCEPTED.subject:
        part = UploadPart(payload.upload_id, payload.part_index, payload.dealer_id,
                          payload.part_count, event.event_id, payload.replaces_upload_id)
        rows = [Sale(payload.upload_id, payload.part_index, row.row_number,
                     row.dealer_id or payload.dealer_id, row.customer_id, row.product_code,
                     row.product_line, row.batch, _date(row.sold_on, _day(event)), row.quantity,
                     row.amount.amount_minor, row.amount.currency or deps.policy.currency,
                     row.transfer_to_dealer_id, row.gtin) for row in payload.rows]
        await facts.accept_flow_part(part, rows, **_collaborators(deps, transaction))
    elif event.subject == FLOW_UPLOAD_SUPERSEDED.subject:
        await facts.supersede_upload(payload.upload_id, payload.superseded_by_upload_id,
                                     **_collaborators(deps, transaction))
    else:
        found = payload.diversion
        detected = (from_timestamp(found.detected_at) or _when(event)).date()
        await facts.record_diversion(Diversion(
            found.id, found.upload_id, found.selling_dealer_id, found.product_code,
            found.gtin, found.batch, found.customer_id,
            _date(found.sold_on, None), detected,
            DIVERSION_STATUS.get(found.status, DiversionStatus.OPEN)),
            **_collaborators(deps, transaction))


# ---------------------------------------------------------------------------- order
def _order(message, event: Event, *, approved: bool = False, voided: bool = False) -> Order:
    return Order(message.id, message.dealer_id, message.selling_company,
                 tuple(OrderLine(ln.line_no, ln.product_code, ln.product_line, ln.quantity_ordered,
                                 ln.amount.amount_minor, ln.quantity_closed)
                       for ln in message.lines),
                 _day(event) if approved else None, voided,
                 message.total.currency or "CNY")


async def on_order(deps: Deps, transaction, event: Event) -> None:
    payload = event.payload
    subject = event.subject
    if subject == ORDER_APPROVED.subject:
        if not payload.fully_approved:
            return
        seen = _order(payload.order, event, approved=True)
    elif subject in (ORDER_REJECTED.subject, ORDER_CANCELLED.subject):
        seen = _order(payload.order, event, voided=True)
    elif subject == ORDER_LINE_CLOSED.subject:
        line = payload.line
        seen = Order(payload.order_id, payload.dealer_id, "", (OrderLine(
            line.line_no, line.product_code, line.product_line, line.quantity_ordered,
            line.amount.amount_minor, line.quantity_closed),))
    elif subject == RETURN_RECEIVED.subject:
        found = payload.product_return
        await facts.record_return(Return(
            found.id, found.dealer_id, found.selling_company,
            _date(found.received_on, _day(event)),
            tuple(ReturnLine(ln.line_no, ln.product_code, ln.quantity_received,
                             ln.shipment_id, ln.batch)
                  for ln in found.lines if ln.quantity_received)),
            **_collaborators(deps, transaction))
        return
    elif subject == SHIPMENT_RECORDED.subject:
        shipment = payload.shipment
        await facts.link_shipment(shipment.dealer_id, [
            ShippedLine(shipment.shipment_id, ln.line_no, ln.product_code, ln.batch,
                        ln.order_id, ln.order_line_no, ln.quantity) for ln in shipment.lines],
            **_collaborators(deps, transaction))
        return
    else:
        product = payload.product
        await facts.record_product(product.code, product.product_line,
                                   product.list_price.amount_minor,
                                   uow=deps.uow_in(transaction))
        return
    await facts.record_order(seen, subject.removeprefix("qudao."),
                             **_collaborators(deps, transaction))


# --------------------------------------------------------------------- registration
async def on_registration(deps: Deps, transaction, event: Event) -> None:
    payload = event.payload
    subject = event.subject
    if subject == CUSTOMER_MERGED.subject:
        await facts.record_customer_merge(payload.customer.id, payload.merged_customer_id,
                                          **_collaborators(deps, transaction))
        return
    if subject in (LEAD_ASSIGNED.subject, LEAD_CLAIMED.subject, LEAD_RETURNED.subject):
        lead = payload.lead
        assigned = subject == LEAD_ASSIGNED.subject
        dealer_id = (lead.assigned_dealer_id if subject != LEAD_RETURNED.subject
                     else payload.previous_dealer_id)
        day = (from_timestamp(lead.assigned_at) or _when(event)).date() if assigned else _day(event)
        await facts.record_lead_event(LeadEvent(lead.id, dealer_id, lead.customer_id,
                                                lead.product_line, day, assigned,
                                                event.event_id),
                                      **_collaborators(deps, transaction))
        return
    found = payload.registration
    source = SOURCES.get(found.source, CustomerSource.DEALER_SOURCED)
    approved = subject == REGISTRATION_APPROVED.subject
    when = (from_timestamp(found.decided_at) or _when(event)).date() if approved else _day(event)
    await facts.record_registration(Registration(
        found.id, found.dealer_id, found.customer_id, found.product_line, source,
        when if approved else None, None if approved else when),
        subject.removeprefix("qudao."), **_collaborators(deps, transaction))


# ------------------------------------------------------------------------- identity
def _dealer(unit: identity_pb2.OrgUnit) -> Dealer:
    return Dealer(unit.id, unit.name, unit.region_code, TIER_NAMES.get(unit.tier, ""),
                  unit.status in (identity_pb2.ORG_UNIT_STATUS_ACTIVE,
                                  identity_pb2.ORG_UNIT_STATUS_UNSPECIFIED),
                  tuple(unit.product_lines), tuple(unit.division_codes),
                  tuple([*unit.derived_tags, *unit.custom_tags]), unit.credit_code,
                  from_timestamp(unit.updated_at) or from_timestamp(unit.created_at))


async def on_identity(deps: Deps, transaction, event: Event) -> None:
    payload = event.payload
    uow = deps.uow_in(transaction)
    if event.subject == ASSIGNMENT_CHANGED.subject:
        message: identity_events.AssignmentChanged = payload
        async with uow:
            for assignment, assigned in ([(a, True) for a in message.added]
                                         + [(a, False) for a in message.removed]):
                await uow.dealers.assign(assignment.manager_user_id, assignment.dealer_id,
                                         assignment.product_line, assigned)
            await uow.commit()
        return
    if event.subject == TAGS_CHANGED.subject:
        async with uow.read():
            known = await uow.dealers.get(payload.dealer_id)
        if known is None:
            return
        dealer = Dealer(known.id, known.name, known.region_code, known.tier, known.active,
                        known.product_lines, known.division_codes,
                        tuple([*payload.derived_tags, *payload.custom_tags]), known.credit_code,
                        _when(event))
    else:
        unit = payload.org_unit
        if unit.kind != identity_pb2.ORG_UNIT_KIND_DEALER:
            return
        dealer = _dealer(unit)
    await programs.reevaluate_dealer(dealer, event.subject.removeprefix("qudao."),
                                     **_collaborators(deps, transaction))


SUBSCRIPTIONS = [
    Subscription("incentive-flow", (FLOW_UPLOAD_ACCEPTED, FLOW_UPLOAD_SUPERSEDED,
                                    DIVERSION_DETECTED, DIVERSION_RESOLVED), on_flow),
    Subscription("incentive-order", (ORDER_APPROVED, ORDER_REJECTED, ORDER_CANCELLED,
                                     ORDER_LINE_CLOSED, RETURN_RECEIVED, SHIPMENT_RECORDED,
                                     PRODUCT_UPSERTED), on_order),
    Subscription("incentive-registration", (REGISTRATION_APPROVED, REGISTRATION_EXPIRED,
                                            REGISTRATION_RECALLED, REGISTRATION_REJECTED,
                                            LEAD_ASSIGNED, LEAD_CLAIMED, LEAD_RETURNED,
                                            CUSTOMER_MERGED),
                 on_registration),
    Subscription("incentive-identity", (ORG_UNIT_CREATED, ORG_UNIT_UPDATED, TAGS_CHANGED,
                                        ASSIGNMENT_CHANGED), on_identity),
]

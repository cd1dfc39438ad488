"""Every event the flow service reacts to, in one place: the subscriptions that feed
its projections, and their handlers (thin: event payload → domain facts → use case).
RebuildProjection replays a projection through the same handlers (``REPLAY``)."""

from __future__ import annotations

from datetime import date

from qudao.identity.v1 import identity_pb2
from qudao.order.v1 import events_pb2 as order_events
from qudao.registration.v1 import events_pb2 as registration_events
from qudao.registration.v1 import registration_pb2

from services.flow.domain.model import Authorization, Customer, Dealer, Product, ShipmentLine
from services.flow.usecases import projections
from services.flow.usecases.ports import Deps
from shared.bus.consumer import Subscription
from shared.bus.envelope import Event
from shared.convert import from_timestamp
from shared.events.identity import ORG_UNIT_CREATED, ORG_UNIT_UPDATED
from shared.events.order import (
    PRODUCT_UPSERTED,
    RECEIPT_CONFIRMED,
    RETURN_RECEIVED,
    SHIPMENT_RECORDED,
)
from shared.events.registration import (
    AUTHORIZATION_EXPIRED,
    AUTHORIZATION_GRANTED,
    AUTHORIZATION_REVOKED,
    CUSTOMER_CREATED,
    CUSTOMER_MERGED,
    CUSTOMER_UPDATED,
)
from shared.text import normalize_name


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


async def on_product(deps: Deps, transaction, event: Event) -> None:
    product = event.payload.product
    if not product.gtin:
        return
    await projections.apply_product(
        Product(product.code, product.gtin, product.name, product.product_line,
                product.serial_tracked), uow=deps.uow_in(transaction))


async def on_shipment_event(deps: Deps, transaction, event: Event) -> None:
    uow = deps.uow_in(transaction)
    payload = event.payload
    if isinstance(payload, order_events.ShipmentRecorded):
        shipment = payload.shipment
        ship_date = _day(shipment.ship_date) or event.envelope.occurred_at.ToDatetime().date()
        await projections.apply_shipment([ShipmentLine(
            shipment.shipment_id, line.line_no, shipment.dealer_id, line.product_code, line.gtin,
            line.batch, _day(line.expiry_date), line.quantity, ship_date, tuple(line.serials))
            for line in shipment.lines if line.gtin], uow=uow)
    elif isinstance(payload, order_events.ReceiptConfirmed):
        receipt = payload.receipt
        confirmed = from_timestamp(receipt.confirmed_at)
        await projections.apply_receipt(
            receipt.shipment_id, {line.shipment_line_no: line.quantity_received
                                  for line in receipt.lines},
            confirmed.date() if confirmed else date.today(), uow=uow)
    elif isinstance(payload, order_events.ReturnReceived):
        returned = payload.product_return
        await projections.apply_return(returned.dealer_id, [projections.ReturnedLine(
            line.gtin, line.batch, line.quantity_received, tuple(line.serials))
            for line in returned.lines if line.gtin], uow=uow)


def _customer(message: registration_pb2.Customer) -> Customer:
    return Customer(message.id, message.name,
                    message.normalized_name or normalize_name(message.name),
                    message.city_code, tuple(message.aliases), tuple(message.departments))


async def on_customer(deps: Deps, transaction, event: Event) -> None:
    payload = event.payload
    if isinstance(payload, registration_events.CustomerMerged):
        await projections.apply_customer_merge(
            _customer(payload.customer), payload.merged_customer_id, deps.clock.now(),
            uow=deps.uow_in(transaction))
        return
    await projections.apply_customer(_customer(payload.customer), deps.clock.now(),
                                     uow=deps.uow_in(transaction))


async def on_authorization(deps: Deps, transaction, event: Event) -> None:
    grant = event.payload.authorization
    active = grant.status in (registration_pb2.AUTHORIZATION_STATUS_ACTIVE,
                              registration_pb2.AUTHORIZATION_STATUS_PENDING) and isinstance(
        event.payload, registration_events.AuthorizationGranted)
    await projections.apply_authorization(Authorization(
        grant.id, grant.dealer_id, grant.customer_id, grant.product_line, grant.product_code,
        grant.department, _day(grant.valid_from), _day(grant.valid_to), active),
        uow=deps.uow_in(transaction))


async def on_org_unit(deps: Deps, transaction, event: Event) -> None:
    unit: identity_pb2.OrgUnit = event.payload.org_unit
    if unit.kind != identity_pb2.ORG_UNIT_KIND_DEALER:
        return
    await projections.apply_dealer(Dealer(
        unit.id, unit.name, unit.platform_dealer_id,
        unit.tier == identity_pb2.DEALER_TIER_PLATFORM, tuple(unit.division_codes),
        unit.city_code, unit.region_code,
        unit.status != identity_pb2.ORG_UNIT_STATUS_CLOSED), uow=deps.uow_in(transaction))


SUBSCRIPTIONS = [
    Subscription("flow-catalog", (PRODUCT_UPSERTED,), on_product),
    Subscription("flow-shipments", (SHIPMENT_RECORDED, RECEIPT_CONFIRMED, RETURN_RECEIVED),
                 on_shipment_event),
    Subscription("flow-customers", (CUSTOMER_CREATED, CUSTOMER_UPDATED, CUSTOMER_MERGED),
                 on_customer),
    Subscription("flow-authorizations", (AUTHORIZATION_GRANTED, AUTHORIZATION_REVOKED,
                                         AUTHORIZATION_EXPIRED), on_authorization),
    Subscription("flow-dealers", (ORG_UNIT_CREATED, ORG_UNIT_UPDATED), on_org_unit),
]

# Which subscription feeds which projection (RebuildProjection).
REPLAY = {
    "products": SUBSCRIPTIONS[0],
    "shipments": SUBSCRIPTIONS[1],
    "customers": SUBSCRIPTIONS[2],
    "authorizations": SUBSCRIPTIONS[3],
    "dealers": SUBSCRIPTIONS[4],
}


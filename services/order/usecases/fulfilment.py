"""After shipping, as handlers: reading shipments, the dealer's receipt (shortage, damage
and over-delivery become discrepancies HQ resolves), and the channel inventory."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from services.order import messages
from services.order.domain.fulfilment import (
    CREDIT,
    DAMAGE,
    DENIED,
    DISCREPANCY_RESOLVERS,
    OPEN,
    RESHIP,
    RESOLVED,
    SHORTAGE,
    WRITE_OFF,
    Discrepancy,
    DiscrepancyQuery,
    Receipt,
    ReceiptLineInput,
    Shipment,
    ShipmentQuery,
    discrepancies_of,
    receipt_violations,
)
from services.order.domain.inventory import Stock, StockQuery
from services.order.usecases.common import day, require_role, visible
from services.order.usecases.ports import OrderUnitOfWork
from shared.clock import Clock
from shared.context import Principal
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, collect
from shared.events.order import DISCREPANCY_RESOLVED, RECEIPT_CONFIRMED
from shared.ids import IdSource
from shared.pagination import Page, PageRequest
from shared.scope import Scopes


async def _shipment_in_scope(uow: OrderUnitOfWork, scopes: Scopes, who: Principal,
                             shipment_id: str, action: str) -> Shipment:
    scope = await scopes.resolve(who, action)
    shipment = await uow.shipments.get(shipment_id)
    if shipment is None or not scope.allows(shipment.dealer_id):
        raise NotFound(f"shipment {shipment_id} not found")
    return shipment


async def get_shipment(shipment_id: str, *, who: Principal, uow: OrderUnitOfWork,
                       scopes: Scopes) -> Shipment:
    async with uow.read():
        return await _shipment_in_scope(uow, scopes, who, shipment_id, "order.read")


async def list_shipments(query: ShipmentQuery, page: PageRequest, *, who: Principal,
                         uow: OrderUnitOfWork, scopes: Scopes) -> Page[Shipment]:
    dealers = visible(await scopes.resolve(who, "order.read"), query.dealer_id)
    if dealers is not None and not dealers:
        return Page([])
    query = replace(query, dealer_ids=dealers,
                    shipped_from=day(query.shipped_from, "shipped_from", required=False),
                    shipped_to=day(query.shipped_to, "shipped_to", required=False))
    async with uow.read():
        return await uow.shipments.page(query, page)


async def confirm_receipt(shipment_id: str, inputs: list[ReceiptLineInput], *,
                          who: Principal, uow: OrderUnitOfWork, clock: Clock, ids: IdSource,
                          scopes: Scopes) -> Receipt:
    """The dealer's count of a shipment, once. A line not listed arrived in full; what
    is short, damaged or over becomes an open discrepancy; what did not arrive comes off
    the dealer's channel inventory."""
    async with uow:
        shipment = await _shipment_in_scope(uow, scopes, who, shipment_id, "order.receive")
        if not (who.is_dealer_staff or who.has_role("hq_admin", "customer_service")):
            raise PermissionDenied("only the dealer's staff (or HQ for them) confirm receipts")
        if await uow.receipts.exists(shipment_id):
            raise FailedPrecondition(f"receipt of shipment {shipment_id} is already confirmed",
                                     reason="ALREADY_CONFIRMED")
        lines = {line.line_no: line for line in shipment.lines}
        collect(receipt_violations(inputs, lines))
        given = {item.shipment_line_no: item for item in inputs}
        moment = clock.now()
        discrepancies: list[Discrepancy] = []
        per_order_line: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
        stock_off: dict[tuple[str, str], int] = defaultdict(int)
        for line_no, line in lines.items():
            item = given.get(line_no)
            received = line.quantity if item is None else item.quantity_received
            damaged = 0 if item is None else item.quantity_damaged
            line.quantity_received = min(received, line.quantity)
            line.quantity_damaged = damaged
            line.receipt_note = "" if item is None else item.note[:500]
            for kind, quantity in discrepancies_of(line, received, damaged):
                discrepancies.append(Discrepancy(
                    ids.new_id(), shipment_id, line_no, shipment.dealer_id, kind, quantity,
                    OPEN, 0, line.receipt_note, moment))
            counts = per_order_line[(line.order_id, line.order_line_no)]
            counts[0] += line.quantity_received
            counts[1] += line.quantity
            stock_off[(line.product_code, line.batch)] += line.quantity - line.quantity_received
        receipt = Receipt(ids.new_id(), shipment_id, shipment.dealer_id, moment, who.subject,
                          list(lines.values()), discrepancies)
        await uow.receipts.add(receipt)
        await uow.shipments.save_receipt(shipment)
        for (order_id, order_line_no), (received, receipted) in per_order_line.items():
            await uow.orders.add_to_line(order_id, order_line_no, quantity_received=received,
                                         quantity_receipted=receipted)
        await uow.stock.adjust(shipment.dealer_id,
                               {key: (-quantity, 0) for key, quantity in stock_off.items()
                                if quantity}, moment)
        touched = {order_id for order_id, _ in per_order_line}
        await _refresh_orders(uow, touched, clock)
        uow.events.record(RECEIPT_CONFIRMED, messages.receipt_confirmed(receipt), receipt.id)
        await uow.commit()
    return receipt


async def _refresh_orders(uow: OrderUnitOfWork, order_ids: set[str], clock: Clock) -> None:
    """The orders' statuses derived afresh from their lines, and their credit exposure."""
    for order_id in sorted(order_ids):
        order = await uow.orders.get(order_id)
        if order is not None and order.refresh_status(clock.now()):
            await uow.orders.set_statuses({order_id: order.status}, clock.now())
    await uow.orders.refresh_exposure(order_ids)


async def list_discrepancies(query: DiscrepancyQuery, page: PageRequest, *, who: Principal,
                             uow: OrderUnitOfWork, scopes: Scopes) -> Page[Discrepancy]:
    dealers = visible(await scopes.resolve(who, "order.read"), query.dealer_id)
    if dealers is not None and not dealers:
        return Page([])
    async with uow.read():
        return await uow.discrepancies.page(replace(query, dealer_ids=dealers), page)


async def resolve_discrepancy(discrepancy_id: str, resolution: int, note: str, *,
                              who: Principal, uow: OrderUnitOfWork, clock: Clock,
                              scopes: Scopes) -> Discrepancy:
    """RESHIP gives the quantity back to the order line (the ERP ships it again);
    CREDIT expects a credit note; WRITE_OFF and DENIED only close the case."""
    if resolution not in (RESHIP, CREDIT, WRITE_OFF, DENIED):
        raise InvalidArgument.field("resolution", "must be reship, credit, write_off or "
                                                  "denied")
    async with uow:
        scope = await scopes.resolve(who, "order.read")
        case = await uow.discrepancies.get(discrepancy_id)
        if case is None or not scope.allows(case.dealer_id):
            raise NotFound(f"discrepancy {discrepancy_id} not found")
        require_role(who, DISCREPANCY_RESOLVERS, "resolve discrepancies")
        resolved = replace(case, status=RESOLVED, resolution=resolution,
                           resolved_at=clock.now(), resolved_by=who.subject,
                           note=(case.note + " | " if case.note else "") + note.strip()[:300])
        if not await uow.discrepancies.resolve(resolved):
            raise FailedPrecondition(f"discrepancy {discrepancy_id} is already resolved")
        if resolution == RESHIP and case.kind in (SHORTAGE, DAMAGE):
            order_id, order_line_no = await uow.shipments.order_line_of(
                case.shipment_id, case.shipment_line_no)
            await uow.orders.add_to_line(order_id, order_line_no,
                                         quantity_shipped=-case.quantity,
                                         quantity_receipted=-case.quantity)
            await _refresh_orders(uow, {order_id}, clock)
        uow.events.record(DISCREPANCY_RESOLVED, messages.discrepancy_resolved(resolved),
                          discrepancy_id)
        await uow.commit()
    return resolved


async def list_channel_inventory(query: StockQuery, page: PageRequest, *, who: Principal,
                                 uow: OrderUnitOfWork, scopes: Scopes) -> Page[Stock]:
    dealers = visible(await scopes.resolve(who, "order.read"), query.dealer_id)
    if dealers is not None and not dealers:
        return Page([])
    async with uow.read():
        return await uow.stock.page(replace(query, dealer_ids=dealers), page)

"""After shipping: reading shipments, receipts with discrepancies that HQ resolves, and
the channel inventory projection."""

from __future__ import annotations

import uuid
from collections import defaultdict

from qudao.order.v1 import events_pb2, order_pb2
from sqlalchemy import select, update

from services.order.adapters import exposure
from services.order.adapters.orm import (
    ChannelInventoryRow,
    DiscrepancyRow,
    OrderLineRow,
    ProductRow,
    ReceiptRow,
    ShipmentLineRow,
    ShipmentRow,
)
from services.order.usecases.common import (
    DISCREPANCY_RESOLVERS,
    UseCaseBase,
    day,
    discrepancy_to_proto,
    inventory_to_proto,
    now,
    receipt_to_proto,
    refresh_status,
    reload_order,
    shipment_to_proto,
)
from shared.context import current_principal
from shared.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    collect,
)
from shared.events.order import DISCREPANCY_RESOLVED, RECEIPT_CONFIRMED
from shared.pagination import decode_page_token, encode_page_token

SHORTAGE, DAMAGE, OVERAGE = 1, 2, 3
OPEN, RESOLVED = 1, 2
RESHIP, CREDIT, WRITE_OFF, DENIED = 1, 2, 3, 4


class FulfilmentUseCases(UseCaseBase):
    async def _shipment_in_scope(self, session, shipment_id: str, action: str) -> ShipmentRow:
        scope = await self.scope(action)
        row = await session.get(ShipmentRow, shipment_id, populate_existing=True)
        if row is None or not scope.allows(row.dealer_id):
            raise NotFound(f"shipment {shipment_id} not found")
        return row

    async def _lines(self, session, shipment_id: str) -> list[ShipmentLineRow]:
        return list((await session.scalars(
            select(ShipmentLineRow).where(ShipmentLineRow.shipment_id == shipment_id)
            .order_by(ShipmentLineRow.line_no))).all())

    async def get_shipment(self, shipment_id: str) -> order_pb2.Shipment:
        async with self.db.read() as session:
            row = await self._shipment_in_scope(session, shipment_id, "order.read")
            return shipment_to_proto(row, await self._lines(session, shipment_id))

    async def list_shipments(self, request: order_pb2.ListShipmentsRequest, size: int,
                             token: str):
        scope = await self.scope("order.read")
        offset = decode_page_token(token)
        query = select(ShipmentRow).order_by(ShipmentRow.ship_date.desc(), ShipmentRow.id)
        if request.dealer_id:
            if not scope.allows(request.dealer_id):
                return [], ""
            query = query.where(ShipmentRow.dealer_id == request.dealer_id)
        elif not scope.all_dealers:
            query = query.where(ShipmentRow.dealer_id.in_(scope.dealer_ids))
        if request.order_id:
            query = query.where(ShipmentRow.id.in_(
                select(ShipmentLineRow.shipment_id)
                .where(ShipmentLineRow.order_id == request.order_id)))
        if request.shipped_from:
            query = query.where(ShipmentRow.ship_date >= day(request.shipped_from,
                                                             "shipped_from"))
        if request.shipped_to:
            query = query.where(ShipmentRow.ship_date <= day(request.shipped_to, "shipped_to"))
        if request.unreceived_only:
            query = query.where(ShipmentRow.received.is_(False))
        async with self.db.read() as session:
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
            shipments = [shipment_to_proto(row, await self._lines(session, row.id))
                         for row in rows[:size]]
        return shipments, encode_page_token(offset + size) if len(rows) > size else ""

    # ---------------------------------------------------------------- receipts
    async def confirm_receipt(self, shipment_id: str, inputs) -> order_pb2.Receipt:
        principal = current_principal()
        async with self.db.write() as session:
            shipment = await self._shipment_in_scope(session, shipment_id, "order.receive")
            if not (principal.is_dealer_staff or principal.has_role("hq_admin",
                                                                    "customer_service")):
                raise PermissionDenied("only the dealer's staff (or HQ for them) confirm "
                                       "receipts")
            if await session.scalar(select(ReceiptRow.id).where(
                    ReceiptRow.shipment_id == shipment_id)):
                raise FailedPrecondition(f"receipt of shipment {shipment_id} is already "
                                         "confirmed", reason="ALREADY_CONFIRMED")
            lines = {line.line_no: line for line in await self._lines(session, shipment_id)}
            given: dict[int, order_pb2.ReceiptLineInput] = {}
            violations: list[FieldViolation] = []
            for index, item in enumerate(inputs):
                where = f"lines[{index}]"
                line = lines.get(item.shipment_line_no)
                if line is None:
                    violations.append(FieldViolation(f"{where}.shipment_line_no",
                                                     f"shipment has no line "
                                                     f"{item.shipment_line_no}"))
                    continue
                if item.shipment_line_no in given:
                    violations.append(FieldViolation(f"{where}.shipment_line_no",
                                                     "listed twice"))
                if item.quantity_received < 0:
                    violations.append(FieldViolation(f"{where}.quantity_received",
                                                     "must not be negative"))
                if item.quantity_damaged < 0:
                    violations.append(FieldViolation(f"{where}.quantity_damaged",
                                                     "must not be negative"))
                if item.quantity_received + item.quantity_damaged > line.quantity * 2:
                    violations.append(FieldViolation(f"{where}.quantity_received",
                                                     "far more than shipped; check the count"))
                given[item.shipment_line_no] = item
            collect(violations)
            moment = now()
            receipt = ReceiptRow(id=str(uuid.uuid4()), shipment_id=shipment_id,
                                 dealer_id=shipment.dealer_id, confirmed_at=moment,
                                 confirmed_by=principal.subject)
            session.add(receipt)
            discrepancies: list[DiscrepancyRow] = []
            per_order_line: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
            stock_off: dict[tuple[str, str], int] = defaultdict(int)
            for line_no, line in lines.items():
                item = given.get(line_no)
                received = line.quantity if item is None else item.quantity_received
                damaged = 0 if item is None else item.quantity_damaged
                line.quantity_received = min(received, line.quantity)
                line.quantity_damaged = damaged
                line.receipt_note = "" if item is None else item.note[:500]
                short = line.quantity - received - damaged
                for kind, quantity in ((SHORTAGE, short), (DAMAGE, damaged),
                                       (OVERAGE, -short)):
                    if quantity > 0:
                        discrepancies.append(DiscrepancyRow(
                            id=str(uuid.uuid4()), shipment_id=shipment_id,
                            shipment_line_no=line_no, dealer_id=shipment.dealer_id, kind=kind,
                            quantity=quantity, status=OPEN, resolution=0,
                            note=line.receipt_note, raised_at=moment, resolved_by=""))
                key = (line.order_id, line.order_line_no)
                per_order_line[key][0] += line.quantity_received
                per_order_line[key][1] += line.quantity
                stock_off[(line.product_code, line.batch)] += line.quantity - min(
                    received, line.quantity)
            session.add_all(discrepancies)
            shipment.received = True
            for (order_id, order_line_no), (received, receipted) in per_order_line.items():
                await session.execute(
                    update(OrderLineRow)
                    .where(OrderLineRow.order_id == order_id,
                           OrderLineRow.line_no == order_line_no)
                    .values(quantity_received=OrderLineRow.quantity_received + received,
                            quantity_receipted=OrderLineRow.quantity_receipted + receipted))
            for (product_code, batch), quantity in stock_off.items():
                if quantity:
                    await session.execute(
                        update(ChannelInventoryRow)
                        .where(ChannelInventoryRow.dealer_id == shipment.dealer_id,
                               ChannelInventoryRow.product_code == product_code,
                               ChannelInventoryRow.batch == batch)
                        .values(quantity_received=ChannelInventoryRow.quantity_received
                                - quantity, updated_at=moment))
            await session.flush()
            touched = {order_id for order_id, _ in per_order_line}
            for order_id in touched:
                refresh_status(await reload_order(session, order_id))
            await exposure.refresh_orders(session, touched)
            message = receipt_to_proto(receipt, list(lines.values()), discrepancies)
            await self.outbox.record(session, RECEIPT_CONFIRMED,
                                     events_pb2.ReceiptConfirmed(receipt=message), receipt.id)
        return message

    async def list_discrepancies(self, dealer_id: str, shipment_id: str, status: int,
                                 size: int, token: str):
        scope = await self.scope("order.read")
        offset = decode_page_token(token)
        query = select(DiscrepancyRow).order_by(DiscrepancyRow.raised_at.desc(),
                                                DiscrepancyRow.id)
        if dealer_id:
            if not scope.allows(dealer_id):
                return [], ""
            query = query.where(DiscrepancyRow.dealer_id == dealer_id)
        elif not scope.all_dealers:
            query = query.where(DiscrepancyRow.dealer_id.in_(scope.dealer_ids))
        if shipment_id:
            query = query.where(DiscrepancyRow.shipment_id == shipment_id)
        if status:
            query = query.where(DiscrepancyRow.status == status)
        async with self.db.read() as session:
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        return ([discrepancy_to_proto(r) for r in rows[:size]],
                encode_page_token(offset + size) if len(rows) > size else "")

    async def resolve_discrepancy(self, discrepancy_id: str, resolution: int,
                                  note: str) -> order_pb2.Discrepancy:
        """RESHIP gives the quantity back to the order line (the ERP ships it again);
        CREDIT expects a credit note; WRITE_OFF and DENIED only close the case."""
        principal = current_principal()
        if resolution not in (RESHIP, CREDIT, WRITE_OFF, DENIED):
            raise InvalidArgument.field("resolution", "must be reship, credit, write_off or "
                                                      "denied")
        async with self.db.write() as session:
            scope = await self.scope("order.read")
            row = await session.get(DiscrepancyRow, discrepancy_id)
            if row is None or not scope.allows(row.dealer_id):
                raise NotFound(f"discrepancy {discrepancy_id} not found")
            self.require_role(*DISCREPANCY_RESOLVERS, what="resolve discrepancies")
            result = await session.execute(
                update(DiscrepancyRow)
                .where(DiscrepancyRow.id == discrepancy_id, DiscrepancyRow.status == OPEN)
                .values(status=RESOLVED, resolution=resolution, resolved_at=now(),
                        resolved_by=principal.subject,
                        note=(row.note + " | " if row.note else "") + note.strip()[:300])
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                raise FailedPrecondition(f"discrepancy {discrepancy_id} is already resolved")
            if resolution == RESHIP and row.kind in (SHORTAGE, DAMAGE):
                line = (await session.scalars(select(ShipmentLineRow).where(
                    ShipmentLineRow.shipment_id == row.shipment_id,
                    ShipmentLineRow.line_no == row.shipment_line_no))).one()
                await session.execute(
                    update(OrderLineRow)
                    .where(OrderLineRow.order_id == line.order_id,
                           OrderLineRow.line_no == line.order_line_no)
                    .values(quantity_shipped=OrderLineRow.quantity_shipped - row.quantity,
                            quantity_receipted=OrderLineRow.quantity_receipted - row.quantity))
                await session.flush()
                refresh_status(await reload_order(session, line.order_id))
                await exposure.refresh_orders(session, [line.order_id])
            row = await session.get(DiscrepancyRow, discrepancy_id, populate_existing=True)
            message = discrepancy_to_proto(row)
            await self.outbox.record(session, DISCREPANCY_RESOLVED,
                                     events_pb2.DiscrepancyResolved(discrepancy=message),
                                     discrepancy_id)
        return message

    # ------------------------------------------------------- channel inventory
    async def list_channel_inventory(self, request: order_pb2.ListChannelInventoryRequest,
                                     size: int, token: str):
        scope = await self.scope("order.read")
        offset = decode_page_token(token)
        table = ChannelInventoryRow
        query = select(table).order_by(table.dealer_id, table.product_code, table.batch)
        if request.dealer_id:
            if not scope.allows(request.dealer_id):
                return [], ""
            query = query.where(table.dealer_id == request.dealer_id)
        elif not scope.all_dealers:
            query = query.where(table.dealer_id.in_(scope.dealer_ids))
        if request.product_code:
            query = query.where(table.product_code == request.product_code)
        if request.gtin:
            query = query.where(table.gtin == request.gtin.zfill(14))
        if request.batch:
            query = query.where(table.batch == request.batch)
        if request.product_line:
            query = query.where(table.product_code.in_(
                select(ProductRow.code).where(ProductRow.product_line == request.product_line)))
        if not request.include_empty:
            query = query.where(table.quantity_received - table.quantity_sold
                                - table.quantity_returned > 0)
        async with self.db.read() as session:
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        return ([inventory_to_proto(r) for r in rows[:size]],
                encode_page_token(offset + size) if len(rows) > size else "")

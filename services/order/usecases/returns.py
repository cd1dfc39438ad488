"""Returns: the dealer requests by batch (and serial), HQ approves or rejects, the ERP
confirms receipt (channel inventory adjusts), a credit note (RecordInvoices with
return_id) closes it."""

from __future__ import annotations

import uuid
from collections import defaultdict

from qudao.order.v1 import events_pb2, order_pb2
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from services.order.adapters.orm import (
    ChannelInventoryRow,
    OrderLineRow,
    ProductRow,
    ReturnLineRow,
    ReturnRow,
    ShipmentLineRow,
    ShipmentRow,
)
from services.order.domain.returns import (
    OPEN_OR_DONE,
    BatchStock,
    ReturnLineInput,
    ReturnStatus,
    check_return_lines,
)
from services.order.usecases.common import (
    ERP,
    RETURN_DECIDERS,
    UseCaseBase,
    day,
    now,
    return_to_proto,
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
from shared.events.order import RETURN_APPROVED, RETURN_RECEIVED, RETURN_REJECTED, RETURN_REQUESTED
from shared.pagination import decode_page_token, encode_page_token


class ReturnUseCases(UseCaseBase):
    async def _return_in_scope(self, session, return_id: str, action: str,
                               lock: bool = False) -> ReturnRow:
        scope = await self.scope(action)
        row = await session.get(ReturnRow, return_id, populate_existing=True,
                                with_for_update=lock or None)
        if row is None or not scope.allows(row.dealer_id):
            raise NotFound(f"return {return_id} not found")
        return row

    async def request_return(self, request: order_pb2.RequestReturnRequest):
        principal = current_principal()
        dealer_id = request.dealer_id or principal.dealer_id
        if dealer_id:
            (await self.scope("order.return")).require(dealer_id)
        if not (principal.is_dealer_staff or principal.has_role("hq_admin",
                                                                "customer_service")):
            raise PermissionDenied("only the dealer's staff (or HQ for them) request returns")
        violations = []
        if not dealer_id:
            violations.append(FieldViolation("dealer_id", "is required"))
        if not request.reason.strip():
            violations.append(FieldViolation("reason", "is required"))
        if len(request.client_request_id) > 64:
            violations.append(FieldViolation("client_request_id", "at most 64 characters"))
        collect(violations)
        (await self.scope("order.return")).require(dealer_id)
        company = self.company(request.selling_company)
        lines = [ReturnLineInput(line.product_code.strip(), line.batch.strip(),
                                 tuple(s.strip() for s in line.serials), line.quantity,
                                 line.shipment_id) for line in request.lines]
        client_id = request.client_request_id or uuid.uuid4().hex
        try:
            async with self.db.write() as session:
                existing = (await session.scalars(select(ReturnRow).where(
                    ReturnRow.dealer_id == dealer_id,
                    ReturnRow.client_request_id == client_id))).first()
                if existing is not None:
                    return return_to_proto(existing)
                stock = await self._stock(session, dealer_id, lines)
                collect(check_return_lines(lines, stock))
                products = {p.code: p for p in (await session.scalars(select(ProductRow).where(
                    ProductRow.code.in_({line.product_code for line in lines})))).all()}
                expiry = await self._expiries(session, dealer_id, lines)
                row = ReturnRow(
                    id=str(uuid.uuid4()), dealer_id=dealer_id, selling_company=company,
                    status=ReturnStatus.REQUESTED, reason=request.reason.strip()[:500],
                    client_request_id=client_id, requested_at=now(),
                    requested_by=principal.subject, decided_by="", decision_note="",
                    received_on="", credit_note_invoice_id="",
                    lines=[ReturnLineRow(
                        line_no=index + 1, product_code=line.product_code,
                        gtin=products[line.product_code].gtin, batch=line.batch,
                        expiry_date=expiry.get((line.product_code, line.batch), ""),
                        serials="\n".join(line.serials), quantity_requested=line.quantity,
                        quantity_received=0, shipment_id=line.shipment_id)
                        for index, line in enumerate(lines)])
                session.add(row)
                await session.flush()
                message = return_to_proto(row)
                await self.outbox.record(session, RETURN_REQUESTED,
                                         events_pb2.ReturnRequested(product_return=message),
                                         row.id)
        except IntegrityError:
            async with self.db.read() as session:
                existing = (await session.scalars(select(ReturnRow).where(
                    ReturnRow.dealer_id == dealer_id,
                    ReturnRow.client_request_id == client_id))).first()
            if existing is None:
                raise
            return return_to_proto(existing)
        return message

    async def _stock(self, session, dealer_id: str,
                     lines: list[ReturnLineInput]) -> dict[tuple[str, str], BatchStock]:
        keys = {(line.product_code, line.batch) for line in lines}
        codes = {code for code, _ in keys}
        inventory = {(r.product_code, r.batch): r for r in (await session.scalars(
            select(ChannelInventoryRow).where(ChannelInventoryRow.dealer_id == dealer_id,
                                              ChannelInventoryRow.product_code.in_(codes))
            .with_for_update())).all()}
        tracked = dict((await session.execute(
            select(ProductRow.code, ProductRow.serial_tracked)
            .where(ProductRow.code.in_(codes)))).all())
        shipped_serials: dict[tuple[str, str], set[str]] = defaultdict(set)
        for code, batch, serials in (await session.execute(
                select(ShipmentLineRow.product_code, ShipmentLineRow.batch,
                       ShipmentLineRow.serials)
                .join(ShipmentRow, ShipmentRow.id == ShipmentLineRow.shipment_id)
                .where(ShipmentRow.dealer_id == dealer_id,
                       ShipmentLineRow.product_code.in_(codes),
                       ShipmentLineRow.serials != ""))).all():
            shipped_serials[(code, batch)].update(s for s in serials.split("\n") if s)
        claimed: dict[tuple[str, str], int] = defaultdict(int)
        claimed_serials: dict[tuple[str, str], set[str]] = defaultdict(set)
        for line in (await session.execute(
                select(ReturnLineRow.product_code, ReturnLineRow.batch,
                       ReturnLineRow.quantity_requested, ReturnLineRow.quantity_received,
                       ReturnLineRow.serials, ReturnRow.status)
                .join(ReturnRow, ReturnRow.id == ReturnLineRow.return_id)
                .where(ReturnRow.dealer_id == dealer_id,
                       ReturnRow.status.in_([int(s) for s in OPEN_OR_DONE]),
                       ReturnLineRow.product_code.in_(codes)))).all():
            key = (line.product_code, line.batch)
            # Received returns are already in the inventory's returned count.
            if line.status in (ReturnStatus.REQUESTED, ReturnStatus.APPROVED):
                claimed[key] += line.quantity_requested
            claimed_serials[key].update(s for s in line.serials.split("\n") if s)
        stock = {}
        for key in keys:
            row = inventory.get(key)
            if row is None:
                continue
            stock[key] = BatchStock(
                received=row.quantity_received - row.quantity_sold - row.quantity_returned,
                claimed=claimed[key], shipped_serials=frozenset(shipped_serials[key]),
                claimed_serials=frozenset(claimed_serials[key]),
                serial_tracked=bool(tracked.get(key[0])))
        return stock

    async def _expiries(self, session, dealer_id: str, lines) -> dict[tuple[str, str], str]:
        rows = (await session.execute(
            select(ChannelInventoryRow.product_code, ChannelInventoryRow.batch,
                   ChannelInventoryRow.expiry_date)
            .where(ChannelInventoryRow.dealer_id == dealer_id))).all()
        return {(r.product_code, r.batch): r.expiry_date for r in rows}

    async def decide_return(self, return_id: str, approve: bool, text: str):
        principal = current_principal()
        if not approve and not text.strip():
            raise InvalidArgument.field("reason", "is required to reject a return")
        async with self.db.write() as session:
            await self._return_in_scope(session, return_id, "return.approve")
            self.require_role(*RETURN_DECIDERS, what="approve or reject returns")
            status = ReturnStatus.APPROVED if approve else ReturnStatus.REJECTED
            result = await session.execute(
                update(ReturnRow)
                .where(ReturnRow.id == return_id, ReturnRow.status == ReturnStatus.REQUESTED)
                .values(status=status, decided_at=now(), decided_by=principal.subject,
                        decision_note=text.strip()[:500])
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                raise FailedPrecondition(f"return {return_id} is not awaiting a decision",
                                         reason="NOT_REQUESTED")
            row = await self._return_in_scope(session, return_id, "return.approve")
            message = return_to_proto(row)
            if approve:
                await self.outbox.record(session, RETURN_APPROVED,
                                         events_pb2.ReturnApproved(product_return=message),
                                         return_id)
            else:
                await self.outbox.record(session, RETURN_REJECTED,
                                         events_pb2.ReturnRejected(product_return=message),
                                         return_id)
        return message

    async def confirm_return_received(self, request: order_pb2.ConfirmReturnReceivedRequest):
        self.require_role(*ERP, what="confirm returned goods")
        received_on = day(request.received_on, "received_on")
        async with self.db.write() as session:
            row = await self._return_in_scope(session, request.return_id, "order.read",
                                              lock=True)
            if row.status != ReturnStatus.APPROVED:
                raise FailedPrecondition(
                    f"return {row.id} is {ReturnStatus(row.status).name.lower()}, not approved",
                    reason="NOT_APPROVED")
            lines = {line.line_no: line for line in row.lines}
            given = {}
            violations = []
            for index, item in enumerate(request.lines):
                line = lines.get(item.line_no)
                if line is None:
                    violations.append(FieldViolation(f"lines[{index}].line_no",
                                                     f"return has no line {item.line_no}"))
                elif not 0 <= item.quantity_received <= line.quantity_requested:
                    violations.append(FieldViolation(
                        f"lines[{index}].quantity_received",
                        f"must be 0..{line.quantity_requested}"))
                given[item.line_no] = item.quantity_received
            collect(violations)
            moment = now()
            for line_no, line in lines.items():
                line.quantity_received = given.get(line_no, line.quantity_requested)
                if line.quantity_received and line.shipment_id:
                    await self._count_returned_on_order(session, row.dealer_id, line)
                if line.quantity_received:
                    await session.execute(
                        update(ChannelInventoryRow)
                        .where(ChannelInventoryRow.dealer_id == row.dealer_id,
                               ChannelInventoryRow.product_code == line.product_code,
                               ChannelInventoryRow.batch == line.batch)
                        .values(quantity_returned=ChannelInventoryRow.quantity_returned
                                + line.quantity_received, updated_at=moment))
            row.status = ReturnStatus.RECEIVED
            row.received_on = received_on
            await session.flush()
            message = return_to_proto(row)
            await self.outbox.record(session, RETURN_RECEIVED,
                                     events_pb2.ReturnReceived(product_return=message), row.id)
        return message

    async def _count_returned_on_order(self, session, dealer_id: str,
                                       line: ReturnLineRow) -> None:
        """A return that names its shipment is counted on the order lines it came from
        (quantity_returned), the earliest lines first."""
        left = line.quantity_received
        for shipped in (await session.scalars(
                select(ShipmentLineRow)
                .join(ShipmentRow, ShipmentRow.id == ShipmentLineRow.shipment_id)
                .where(ShipmentLineRow.shipment_id == line.shipment_id,
                       ShipmentRow.dealer_id == dealer_id,
                       ShipmentLineRow.product_code == line.product_code,
                       ShipmentLineRow.batch == line.batch)
                .order_by(ShipmentLineRow.line_no))).all():
            if left <= 0:
                break
            take = min(left, shipped.quantity)
            await session.execute(
                update(OrderLineRow)
                .where(OrderLineRow.order_id == shipped.order_id,
                       OrderLineRow.line_no == shipped.order_line_no)
                .values(quantity_returned=OrderLineRow.quantity_returned + take))
            left -= take

    async def get_return(self, return_id: str):
        async with self.db.read() as session:
            return return_to_proto(await self._return_in_scope(session, return_id,
                                                               "order.read"))

    async def list_returns(self, dealer_id: str, statuses, size: int, token: str):
        scope = await self.scope("order.read")
        offset = decode_page_token(token)
        query = select(ReturnRow).order_by(ReturnRow.requested_at.desc(), ReturnRow.id)
        if dealer_id:
            if not scope.allows(dealer_id):
                return [], ""
            query = query.where(ReturnRow.dealer_id == dealer_id)
        elif not scope.all_dealers:
            query = query.where(ReturnRow.dealer_id.in_(scope.dealer_ids))
        if statuses:
            query = query.where(ReturnRow.status.in_(list(statuses)))
        async with self.db.read() as session:
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        return ([return_to_proto(r) for r in rows[:size]],
                encode_page_token(offset + size) if len(rows) > size else "")

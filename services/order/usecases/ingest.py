"""ERP ingest: shipments (unary batch and client streaming), invoices and payments,
idempotent and validated line by line. The semantics are in domain/ingest.py."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

from qudao.order.v1 import events_pb2, order_pb2
from sqlalchemy import bindparam, insert, or_, select, update

from services.order.adapters import exposure
from services.order.adapters.dialect import dialect_insert
from services.order.adapters.orm import (
    ChannelInventoryRow,
    DealerAccountRow,
    InvoiceRow,
    OrderLineRow,
    OrderRow,
    PaymentRow,
    ProductRow,
    ReturnRow,
    ShipmentLineRow,
    ShipmentRow,
)
from services.order.domain import ingest as rules
from services.order.domain.accounts import (
    CREDIT_NOTE,
    DEFAULT_TERMS_DAYS,
    INVOICE,
    due_date,
)
from services.order.domain.ingest import LineResult, Mode, Outcome, ShipLine
from services.order.domain.orders import LineQuantities, OrderStatus, derive_status
from services.order.domain.returns import ReturnStatus
from services.order.usecases.common import ERP, UseCaseBase, now, ts
from shared.db import is_sqlite
from shared.events.order import INVOICE_RECORDED, PAYMENT_RECORDED, SHIPMENT_RECORDED


def prepare_lines(shipments: list[order_pb2.Shipment]) -> list[list[ShipLine]]:
    """The lines of each shipment as ShipLines with their content digests (pure)."""
    fingerprint = rules.wire_fingerprint
    prepared = []
    for shipment in shipments:
        sid = shipment.shipment_id.strip()
        dealer_id = shipment.dealer_id
        prepared.append([
            ShipLine(sid, dealer_id, line.line_no, line.order_id, line.order_line_no,
                     line.product_code.strip(), line.gtin, line.batch.strip(),
                     line.expiry_date, line.production_date, tuple(line.serials),
                     line.quantity, fingerprint(line.SerializeToString(deterministic=True)))
            for line in shipment.lines])
    return prepared


async def _read_and_prepare(iterator):
    """The next stream message and its prepared lines, parsed in a worker thread so the
    event loop (and the database work of the current message) goes on meanwhile."""
    message = await anext(iterator, None)
    if message is None:
        return None, None
    return message, await asyncio.to_thread(prepare_lines, list(message.shipments))


SHIPMENT_LINE_COLUMNS = (
    "shipment_id", "line_no", "order_id", "order_line_no", "product_code", "gtin", "batch",
    "expiry_date", "production_date", "serials", "quantity", "content_hash",
    "quantity_received", "quantity_damaged", "receipt_note")


def _result_proto(result: LineResult) -> order_pb2.IngestResult:
    return order_pb2.IngestResult(record_id=result.record_id, line_no=result.line_no,
                                  outcome=int(result.outcome),
                                  reason_code=result.reason_code, message=result.message)


def summary_proto(results: list[LineResult]) -> order_pb2.IngestSummary:
    return order_pb2.IngestSummary(**rules.summarize(results))


def _header_hash(shipment: order_pb2.Shipment) -> str:
    return rules.fingerprint(shipment.dealer_id, shipment.selling_company, shipment.ship_date,
                             shipment.carrier, shipment.waybill_no)


class IngestUseCases(UseCaseBase):
    # --------------------------------------------------------------- shipments
    async def record_shipments(self, shipments, mode_value: int) -> list[LineResult]:
        self.require_role(*ERP, what="push shipments")
        async with self.db.write() as session:
            return await self._ingest_shipments(session, list(shipments),
                                                rules.mode_of(mode_value))

    async def stream_shipments(self, messages) -> tuple[list[LineResult], int]:
        """Each stream message is its own transaction, committed before the next one is
        processed. The server reads and parses at most one message ahead (parsing the
        next while the database works on the current one). If the stream breaks, what was
        committed stays, the message in flight is rolled back and the one read ahead is
        dropped; re-sending the whole stream is safe (DUPLICATE)."""
        self.require_role(*ERP, what="push shipments")
        results: list[LineResult] = []
        committed = 0
        iterator = messages.__aiter__()
        message = await anext(iterator, None)
        prepared = prepare_lines(list(message.shipments)) if message is not None else None
        while message is not None:
            upcoming = asyncio.ensure_future(_read_and_prepare(iterator))
            try:
                async with self.db.write() as session:
                    results.extend(await self._ingest_shipments(
                        session, list(message.shipments), rules.mode_of(message.mode),
                        prepared))
            except BaseException:
                upcoming.cancel()
                raise
            committed += 1
            message, prepared = await upcoming
        return results, committed

    async def _ingest_shipments(self, session, shipments: list[order_pb2.Shipment],
                                mode: Mode, prepared: list[list[ShipLine]] | None = None
                                ) -> list[LineResult]:
        results: list[LineResult] = []
        if prepared is None:
            prepared = prepare_lines(shipments)
        if not shipments:
            return results
        ids = {s.shipment_id for s in shipments}
        existing_headers = dict((await session.execute(
            select(ShipmentRow.id, ShipmentRow.header_hash).where(ShipmentRow.id.in_(ids))))
            .all())
        existing_lines: dict[tuple[str, int], str] = {}
        if existing_headers:
            for shipment_id, line_no, digest in (await session.execute(
                    select(ShipmentLineRow.shipment_id, ShipmentLineRow.line_no,
                           ShipmentLineRow.content_hash)
                    .where(ShipmentLineRow.shipment_id.in_(list(existing_headers))))).all():
                existing_lines[(shipment_id, line_no)] = digest
        order_ids = {line.order_id for s in shipments for line in s.lines}
        codes = {line.product_code for s in shipments for line in s.lines if line.product_code}
        gtins = {line.gtin.zfill(14) for s in shipments for line in s.lines if line.gtin}
        orders = {row.id: row for row in (await session.execute(
            select(OrderRow.id, OrderRow.dealer_id, OrderRow.decision, OrderRow.status)
            .where(OrderRow.id.in_(order_ids)).with_for_update())).all()}
        states: dict[tuple[str, int], rules.OrderLineState] = {}
        line_rows = (await session.execute(
            select(OrderLineRow.order_id, OrderLineRow.line_no, OrderLineRow.product_code,
                   OrderLineRow.gtin, OrderLineRow.quantity_ordered,
                   OrderLineRow.quantity_shipped, OrderLineRow.quantity_closed,
                   OrderLineRow.quantity_receipted)
            .where(OrderLineRow.order_id.in_(order_ids)))).all()
        for row in line_rows:
            order = orders[row.order_id]
            states[(row.order_id, row.line_no)] = rules.OrderLineState(
                row.order_id, row.line_no, order.dealer_id,
                order.decision == OrderStatus.APPROVED, row.product_code, row.gtin,
                row.quantity_ordered, row.quantity_shipped, row.quantity_closed)
        products = (await session.execute(
            select(ProductRow.code, ProductRow.gtin, ProductRow.product_line)
            .where(or_(ProductRow.code.in_(codes), ProductRow.gtin.in_(gtins))))).all()
        by_code = {p.code: p.gtin for p in products}
        by_gtin = {p.gtin: p.code for p in products}
        product_lines = {p.code: p.product_line for p in products}
        check = rules.ShipmentCheck(states, set(orders), by_code, by_gtin)

        accepted_lines: dict[str, list[ShipLine]] = defaultdict(list)
        append = results.append
        check_line = check.check
        ACCEPTED, DUPLICATE, REJECTED = Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.REJECTED
        seen_in_call: dict[tuple[str, int], str] = {}
        new_headers: dict[str, order_pb2.Shipment] = {}
        for shipment, ships in zip(shipments, prepared, strict=True):
            sid = shipment.shipment_id.strip()
            problem = ""
            if not sid:
                problem = "shipment_id is required"
            elif not shipment.dealer_id:
                problem = "dealer_id is required"
            elif rules.parse_day(shipment.ship_date) is None:
                problem = f"ship_date {shipment.ship_date!r} is not YYYY-MM-DD"
            elif not shipment.lines:
                problem = "a shipment needs at least one line"
            if problem:
                results.append(LineResult(sid, 0, Outcome.REJECTED, rules.INVALID_FIELD, problem))
                continue
            header = _header_hash(shipment)
            stored_header = existing_headers.get(sid)
            if stored_header is not None and stored_header != header:
                results.append(LineResult(
                    sid, 0, Outcome.REJECTED, rules.CONFLICTING_REPUSH,
                    "shipment already recorded with another dealer, company, date, carrier "
                    "or waybill"))
                continue
            if stored_header is None:
                if sid in new_headers and _header_hash(new_headers[sid]) != header:
                    results.append(LineResult(sid, 0, Outcome.REJECTED,
                                              rules.CONFLICTING_REPUSH,
                                              "the same shipment twice with different headers"))
                    continue
                new_headers.setdefault(sid, shipment)
            mine: list[ShipLine] = []
            failed = False
            for ship in ships:
                line_no = ship.line_no
                if not ship.product_code and ship.gtin:
                    # Identified by GTIN only: the hash stays that of the line as pushed.
                    ship.product_code = by_gtin.get(ship.gtin.zfill(14), "")
                key = (sid, line_no)
                stored = seen_in_call.get(key)
                if stored is None and existing_lines:
                    stored = existing_lines.get(key)
                if stored is not None:
                    if stored == ship.content_hash:
                        append(LineResult(sid, line_no, DUPLICATE))
                    else:
                        failed = True
                        append(LineResult(sid, line_no, REJECTED, rules.CONFLICTING_REPUSH,
                                          "line already recorded with different content "
                                          "(order line, product, batch, expiry, serials or "
                                          "quantity)"))
                    continue
                if line_no <= 0:
                    failed = True
                    append(LineResult(sid, line_no, REJECTED, rules.INVALID_FIELD,
                                      "line_no must be positive"))
                    continue
                seen_in_call[key] = ship.content_hash
                failure = check_line(ship)
                if failure:
                    failed = True
                    append(LineResult(sid, line_no, REJECTED, *failure))
                else:
                    append(LineResult(sid, line_no, ACCEPTED))
                    mine.append(ship)
            if failed:
                for ship in mine:
                    check.release(ship)
            else:
                accepted_lines[sid].extend(mine)
        store = rules.apply_mode(results, mode)
        if store:
            incoming = {s.shipment_id.strip(): s for s in shipments}
            await self._store_shipments(session, store, new_headers, accepted_lines, states,
                                        orders, product_lines, incoming)
        return results

    async def _store_shipments(self, session, store, new_headers, accepted_lines, states,
                               orders, product_lines, incoming) -> None:
        moment = now()
        headers = [
            dict(id=sid, dealer_id=s.dealer_id, selling_company=self.company(s.selling_company),
                 ship_date=s.ship_date, carrier=s.carrier, waybill_no=s.waybill_no,
                 header_hash=_header_hash(s), recorded_at=moment, received=False)
            for sid, s in new_headers.items() if sid in store]
        if headers:
            await session.execute(insert(ShipmentRow.__table__), headers)
        rows: list[tuple] = []
        stored_lines: dict[str, list[tuple[ShipLine, str]]] = defaultdict(list)
        shipped: dict[tuple[str, int], int] = defaultdict(int)
        stock: dict[tuple[str, str, str], list] = {}
        for sid in store:
            for ship in accepted_lines.get(sid, ()):
                gtin = states[(ship.order_id, ship.order_line_no)].gtin
                rows.append((sid, ship.line_no, ship.order_id, ship.order_line_no,
                             ship.product_code, gtin, ship.batch, ship.expiry_date,
                             ship.production_date, "\n".join(ship.serials), ship.quantity,
                             ship.content_hash, 0, 0, ""))
                stored_lines[sid].append((ship, gtin))
                shipped[(ship.order_id, ship.order_line_no)] += ship.quantity
                key = (ship.dealer_id, ship.product_code, ship.batch)
                entry = stock.get(key)
                if entry is None:
                    stock[key] = [ship.quantity, gtin, ship.expiry_date]
                else:
                    entry[0] += ship.quantity
        if not rows:
            return
        # The hot insert goes straight to the driver's executemany (rows as tuples), which
        # skips SQLAlchemy's per-row parameter processing; the statement is plain SQL.
        connection = await session.connection()
        await connection.exec_driver_sql(self._shipment_line_insert(), rows)
        table = OrderLineRow.__table__
        await session.execute(
            update(table)
            .where(table.c.order_id == bindparam("o"), table.c.line_no == bindparam("n"))
            .values(quantity_shipped=table.c.quantity_shipped + bindparam("q")),
            [dict(o=o, n=n, q=q) for (o, n), q in shipped.items()])
        # The orders' statuses, derived from their lines after this shipment.
        by_order: dict[str, list[LineQuantities]] = defaultdict(list)
        touched = {order_id for order_id, _ in shipped}
        for (order_id, _), state in states.items():
            if order_id in touched:
                extra = shipped.get((order_id, state.line_no), 0)
                by_order[order_id].append(LineQuantities(state.ordered, state.shipped + extra,
                                                          state.closed))
        changes = []
        for order_id, quantities in by_order.items():
            order = orders[order_id]
            status = derive_status(OrderStatus(order.decision), quantities)
            if status != order.status:
                changes.append(dict(i=order_id, s=status.value, u=moment))
        if changes:
            orders_table = OrderRow.__table__
            await session.execute(
                update(orders_table).where(orders_table.c.id == bindparam("i"))
                .values(status=bindparam("s"), updated_at=bindparam("u")), changes)
        await self._add_stock(session, [
            dict(dealer_id=d, product_code=p, batch=b, gtin=g, expiry_date=e,
                 product_line=product_lines.get(p, ""), quantity_received=q, quantity_sold=0,
                 quantity_returned=0, updated_at=moment)
            for (d, p, b), (q, g, e) in stock.items()])
        events = []
        for sid, lines in stored_lines.items():
            shipment = order_pb2.Shipment()
            shipment.CopyFrom(incoming[sid])
            shipment.shipment_id = sid
            shipment.selling_company = self.company(shipment.selling_company)
            shipment.recorded_at.CopyFrom(ts(moment))
            if len(lines) != len(shipment.lines):  # some lines were duplicates: leave them out
                kept_numbers = {ship.line_no for ship, _ in lines}
                kept = [line for line in shipment.lines if line.line_no in kept_numbers]
                del shipment.lines[:]
                shipment.lines.extend(kept)
            for line, (ship, gtin) in zip(shipment.lines, lines, strict=True):
                line.product_code = ship.product_code
                line.gtin = gtin
                line.product_line = product_lines.get(ship.product_code, "")
            events.append((events_pb2.ShipmentRecorded(shipment=shipment), sid))
        await self.outbox.record_many(session, SHIPMENT_RECORDED, events)

    def _shipment_line_insert(self) -> str:
        columns = SHIPMENT_LINE_COLUMNS
        if is_sqlite(self.db.url):
            marks = ", ".join("?" for _ in columns)
        else:  # asyncpg's numeric placeholders
            marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
        return f"INSERT INTO shipment_lines ({', '.join(columns)}) VALUES ({marks})"

    async def _add_stock(self, session, rows: list[dict]) -> None:
        """Upsert channel inventory: add to quantity_received (negative to take off)."""
        if not rows:
            return
        table = ChannelInventoryRow.__table__
        statement = dialect_insert(session, table)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.dealer_id, table.c.product_code, table.c.batch],
            set_=dict(quantity_received=table.c.quantity_received
                      + statement.excluded.quantity_received,
                      quantity_returned=table.c.quantity_returned
                      + statement.excluded.quantity_returned,
                      updated_at=statement.excluded.updated_at))
        await session.execute(statement, rows)

    # ---------------------------------------------------------------- invoices
    async def record_invoices(self, invoices, mode_value: int) -> list[LineResult]:
        self.require_role(*ERP, what="push invoices")
        mode = rules.mode_of(mode_value)
        async with self.db.write() as session:
            ids = {i.invoice_id for i in invoices}
            stored = dict((await session.execute(
                select(InvoiceRow.id, InvoiceRow.content_hash)
                .where(InvoiceRow.id.in_(ids)))).all())
            shipment_ids = {line.shipment_id for i in invoices for line in i.lines}
            shipments = dict((await session.execute(
                select(ShipmentRow.id, ShipmentRow.dealer_id)
                .where(ShipmentRow.id.in_(shipment_ids)))).all())
            return_ids = {i.return_id for i in invoices if i.return_id}
            returns = {r.id: r for r in (await session.scalars(
                select(ReturnRow).where(ReturnRow.id.in_(return_ids)))).all()}
            results: list[LineResult] = []
            seen: dict[str, str] = {}
            for invoice in invoices:
                digest = rules.fingerprint(invoice.SerializeToString(deterministic=True))
                iid = invoice.invoice_id.strip()
                previous = stored.get(iid) or seen.get(iid)
                if previous is not None:
                    results.append(LineResult(iid, 0, Outcome.DUPLICATE) if previous == digest
                                   else LineResult(iid, 0, Outcome.REJECTED,
                                                   rules.CONFLICTING_REPUSH,
                                                   "invoice already recorded with different "
                                                   "content"))
                    continue
                problem = self._invoice_problem(invoice, shipments, returns)
                seen[iid] = digest
                results.append(LineResult(iid, 0, Outcome.REJECTED, *problem) if problem
                               else LineResult(iid, 0, Outcome.ACCEPTED))
            store = rules.apply_mode(results, mode)
            for invoice in invoices:
                if invoice.invoice_id not in store:
                    continue
                store.discard(invoice.invoice_id)
                await self._store_invoice(session, invoice, returns)
        return results

    @staticmethod
    def _invoice_problem(invoice, shipments, returns) -> tuple[str, str] | None:
        if not invoice.invoice_id.strip():
            return rules.INVALID_FIELD, "invoice_id is required"
        if not invoice.dealer_id:
            return rules.INVALID_FIELD, "dealer_id is required"
        if rules.parse_day(invoice.issued_on) is None:
            return rules.INVALID_FIELD, f"issued_on {invoice.issued_on!r} is not YYYY-MM-DD"
        if invoice.due_on and rules.parse_day(invoice.due_on) is None:
            return rules.INVALID_FIELD, f"due_on {invoice.due_on!r} is not YYYY-MM-DD"
        if invoice.amount.amount_minor <= 0:
            return rules.INVALID_QUANTITY, "amount must be positive"
        if invoice.tax.amount_minor < 0:
            return rules.INVALID_QUANTITY, "tax must not be negative"
        for index, line in enumerate(invoice.lines):
            if line.quantity <= 0:
                return rules.INVALID_QUANTITY, f"lines[{index}].quantity must be positive"
            if line.shipment_id:
                owner = shipments.get(line.shipment_id)
                if owner is None:
                    return rules.UNKNOWN_SHIPMENT, (f"lines[{index}]: no shipment "
                                                    f"{line.shipment_id}")
                if owner != invoice.dealer_id:
                    return rules.DEALER_MISMATCH, (f"lines[{index}]: shipment "
                                                   f"{line.shipment_id} went to another dealer")
        if invoice.kind == CREDIT_NOTE and invoice.return_id:
            product_return = returns.get(invoice.return_id)
            if product_return is None or product_return.dealer_id != invoice.dealer_id:
                return rules.UNKNOWN_RETURN, f"no return {invoice.return_id} of this dealer"
            if product_return.status != ReturnStatus.RECEIVED:
                return rules.INVALID_FIELD, (f"return {invoice.return_id} is not awaiting a "
                                             "credit note (the ERP must confirm receipt first)")
        return None

    async def _store_invoice(self, session, invoice, returns) -> None:
        company = self.company(invoice.selling_company)
        kind = CREDIT_NOTE if invoice.kind == CREDIT_NOTE else INVOICE
        if not invoice.due_on:
            account = await session.get(DealerAccountRow, (invoice.dealer_id, company))
            terms = account.payment_terms_days if account else DEFAULT_TERMS_DAYS
        due_on = invoice.due_on or due_date(invoice.issued_on, terms)
        currency = invoice.amount.currency or self.currency
        session.add(InvoiceRow(
            id=invoice.invoice_id.strip(), kind=kind, dealer_id=invoice.dealer_id,
            selling_company=company, invoice_no=invoice.invoice_no, issued_on=invoice.issued_on,
            due_on=due_on, amount_minor=invoice.amount.amount_minor,
            tax_minor=invoice.tax.amount_minor, currency=currency, return_id=invoice.return_id,
            lines=json.dumps([dict(line_no=line.line_no, shipment_id=line.shipment_id,
                                   shipment_line_no=line.shipment_line_no,
                                   product_code=line.product_code, quantity=line.quantity,
                                   amount_minor=line.amount.amount_minor)
                              for line in invoice.lines]),
            content_hash=rules.fingerprint(invoice.SerializeToString(deterministic=True)),
            recorded_at=now()))
        signed = -invoice.amount.amount_minor if kind == CREDIT_NOTE \
            else invoice.amount.amount_minor
        await exposure.add(session, outstanding={(invoice.dealer_id, company): signed})
        invoiced_orders: set[str] = set()
        if kind == INVOICE:
            for line in invoice.lines:
                if not line.shipment_id:
                    continue
                target = (await session.execute(
                    select(ShipmentLineRow.order_id, ShipmentLineRow.order_line_no)
                    .where(ShipmentLineRow.shipment_id == line.shipment_id,
                           ShipmentLineRow.line_no == line.shipment_line_no))).first()
                if target is not None:
                    await session.execute(
                        update(OrderLineRow)
                        .where(OrderLineRow.order_id == target.order_id,
                               OrderLineRow.line_no == target.order_line_no)
                        .values(quantity_invoiced=OrderLineRow.quantity_invoiced
                                + line.quantity))
                    invoiced_orders.add(target.order_id)
            await exposure.refresh_orders(session, invoiced_orders)
        elif invoice.return_id:
            product_return = returns[invoice.return_id]
            product_return.status = ReturnStatus.CREDITED
            product_return.credit_note_invoice_id = invoice.invoice_id.strip()
        stored = order_pb2.Invoice()
        stored.CopyFrom(invoice)
        stored.selling_company = company
        stored.due_on = due_on
        stored.kind = kind
        await session.flush()
        await self.outbox.record(session, INVOICE_RECORDED,
                                 events_pb2.InvoiceRecorded(invoice=stored), invoice.invoice_id)

    # ---------------------------------------------------------------- payments
    async def record_payments(self, payments, mode_value: int) -> list[LineResult]:
        self.require_role(*ERP, what="push payments")
        mode = rules.mode_of(mode_value)
        async with self.db.write() as session:
            ids = {p.payment_id for p in payments}
            stored = dict((await session.execute(
                select(PaymentRow.id, PaymentRow.content_hash)
                .where(PaymentRow.id.in_(ids)))).all())
            invoice_ids = {a.invoice_id for p in payments for a in p.allocations}
            invoices = dict((await session.execute(
                select(InvoiceRow.id, InvoiceRow.dealer_id)
                .where(InvoiceRow.id.in_(invoice_ids)))).all())
            results: list[LineResult] = []
            seen: dict[str, str] = {}
            for payment in payments:
                pid = payment.payment_id.strip()
                digest = rules.fingerprint(payment.SerializeToString(deterministic=True))
                previous = stored.get(pid) or seen.get(pid)
                if previous is not None:
                    results.append(LineResult(pid, 0, Outcome.DUPLICATE) if previous == digest
                                   else LineResult(pid, 0, Outcome.REJECTED,
                                                   rules.CONFLICTING_REPUSH,
                                                   "payment already recorded with different "
                                                   "content"))
                    continue
                seen[pid] = digest
                problem = self._payment_problem(payment, invoices)
                results.append(LineResult(pid, 0, Outcome.REJECTED, *problem) if problem
                               else LineResult(pid, 0, Outcome.ACCEPTED))
            store = rules.apply_mode(results, mode)
            for payment in payments:
                if payment.payment_id not in store:
                    continue
                store.discard(payment.payment_id)
                company = self.company(payment.selling_company)
                session.add(PaymentRow(
                    id=payment.payment_id.strip(), dealer_id=payment.dealer_id,
                    selling_company=company, received_on=payment.received_on,
                    amount_minor=payment.amount.amount_minor,
                    currency=payment.amount.currency or self.currency, method=payment.method,
                    reference=payment.reference,
                    allocations=json.dumps([dict(invoice_id=a.invoice_id,
                                                 amount_minor=a.amount.amount_minor)
                                            for a in payment.allocations]),
                    content_hash=rules.fingerprint(payment.SerializeToString(
                        deterministic=True)),
                    recorded_at=now()))
                await exposure.add(session, outstanding={
                    (payment.dealer_id, company): -payment.amount.amount_minor})
                message = order_pb2.Payment()
                message.CopyFrom(payment)
                message.selling_company = company
                await session.flush()
                await self.outbox.record(session, PAYMENT_RECORDED,
                                         events_pb2.PaymentRecorded(payment=message),
                                         payment.payment_id)
        return results

    @staticmethod
    def _payment_problem(payment, invoices) -> tuple[str, str] | None:
        if not payment.payment_id.strip():
            return rules.INVALID_FIELD, "payment_id is required"
        if not payment.dealer_id:
            return rules.INVALID_FIELD, "dealer_id is required"
        if rules.parse_day(payment.received_on) is None:
            return rules.INVALID_FIELD, f"received_on {payment.received_on!r} is not YYYY-MM-DD"
        if payment.amount.amount_minor <= 0:
            return rules.INVALID_QUANTITY, "amount must be positive"
        allocated = 0
        for index, allocation in enumerate(payment.allocations):
            owner = invoices.get(allocation.invoice_id)
            if owner is None:
                return rules.UNKNOWN_INVOICE, (f"allocations[{index}]: no invoice "
                                               f"{allocation.invoice_id}")
            if owner != payment.dealer_id:
                return rules.DEALER_MISMATCH, (f"allocations[{index}]: invoice "
                                               f"{allocation.invoice_id} is another dealer's")
            if allocation.amount.amount_minor <= 0:
                return rules.INVALID_QUANTITY, f"allocations[{index}].amount must be positive"
            allocated += allocation.amount.amount_minor
        if allocated > payment.amount.amount_minor:
            return rules.INVALID_QUANTITY, "allocations exceed the payment amount"
        return None


def results_proto(results: list[LineResult]) -> list[order_pb2.IngestResult]:
    return [_result_proto(r) for r in results]

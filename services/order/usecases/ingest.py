"""ERP ingest, as handlers: shipments (one call, or a stream of messages each committed on
its own), invoices and payments, idempotent and validated line by line. The semantics are
in domain/ingest.py; what is pushed arrives in domain terms (messages.py converts)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import replace
from datetime import datetime

from services.order import messages
from services.order.domain import ingest as rules
from services.order.domain.accounts import CREDIT_NOTE, DEFAULT_TERMS_DAYS, INVOICE, due_date
from services.order.domain.ingest import (
    ERP,
    InvoiceIn,
    LineResult,
    Mode,
    OrderLineState,
    OrderShipping,
    Outcome,
    PaymentIn,
    RecordedLine,
    RecordedShipment,
    ShipmentBatch,
    ShipmentIn,
    StreamReport,
)
from services.order.domain.inventory import StockKey, StockMove
from services.order.domain.orders import LineQuantities, OrderStatus, derive_status
from services.order.domain.returns import ReturnStatus
from services.order.usecases.common import require_role
from services.order.usecases.ports import OrderUnitOfWork
from shared.clock import Clock
from shared.context import Principal
from shared.events.order import INVOICE_RECORDED, PAYMENT_RECORDED, SHIPMENT_RECORDED

# ------------------------------------------------------------------------ shipments

async def record_shipments(shipments: list[ShipmentIn], mode: Mode, *, who: Principal,
                           uow: OrderUnitOfWork, clock: Clock) -> list[LineResult]:
    require_role(who, ERP, "push shipments")
    async with uow:
        results = await _ingest_shipments(shipments, mode, uow, clock)
        await uow.commit()
    return results


async def stream_shipments(batches: AsyncIterable[ShipmentBatch], *, who: Principal,
                           uow: OrderUnitOfWork, clock: Clock) -> StreamReport:
    """Each stream message is its own transaction, committed before the next one is
    processed. The next message is read (and converted) while the database works on the
    current one. If the stream breaks, what was committed stays, the message in flight
    is rolled back and the one read ahead is dropped; re-sending the whole stream is
    safe (DUPLICATE). Returns the counts of each outcome, the problems and how many
    messages were committed (not every line's result: a stream may carry millions)."""
    require_role(who, ERP, "push shipments")
    report = StreamReport()
    iterator = batches.__aiter__()
    batch = await anext(iterator, None)
    while batch is not None:
        upcoming = asyncio.ensure_future(_next(iterator))
        try:
            async with uow:
                results = await _ingest_shipments(batch.shipments, batch.mode, uow, clock)
                await uow.commit()
        except BaseException:
            upcoming.cancel()
            raise
        report.add(results)
        report.committed += 1
        batch = await upcoming
    return report


async def _next(iterator: AsyncIterator[ShipmentBatch]) -> ShipmentBatch | None:
    return await anext(iterator, None)


async def _ingest_shipments(shipments: list[ShipmentIn], mode: Mode, uow: OrderUnitOfWork,
                            clock: Clock) -> list[LineResult]:
    results: list[LineResult] = []
    if not shipments:
        return results
    existing_headers = await uow.shipments.header_digests({s.shipment_id for s in shipments})
    existing_lines = (await uow.shipments.line_digests(existing_headers)
                      if existing_headers else {})
    orders, states = await uow.orders.shipping(
        {line.order_id for s in shipments for line in s.lines})
    products = await uow.products.identities(
        {line.product_code for s in shipments for line in s.lines if line.product_code},
        {line.gtin.zfill(14) for s in shipments for line in s.lines if line.gtin})
    by_code = {p.code: p.gtin for p in products}
    by_gtin = {p.gtin: p.code for p in products}
    product_lines = {p.code: p.product_line for p in products}
    check = rules.ShipmentCheck(states, set(orders), by_code, by_gtin)

    accepted_lines: dict[str, list[RecordedLine]] = defaultdict(list)
    append = results.append
    check_line = check.check
    ACCEPTED, DUPLICATE, REJECTED = Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.REJECTED
    seen_in_call: dict[tuple[str, int], str] = {}
    new_headers: dict[str, ShipmentIn] = {}
    for shipment in shipments:
        sid = shipment.shipment_id
        problem = shipment.problem()
        if problem:
            append(LineResult(sid, 0, REJECTED, rules.INVALID_FIELD, problem))
            continue
        stored_header = existing_headers.get(sid)
        if stored_header is not None and stored_header != shipment.header_hash:
            append(LineResult(sid, 0, REJECTED, rules.CONFLICTING_REPUSH,
                              "shipment already recorded with another dealer, company, date, "
                              "carrier or waybill"))
            continue
        if stored_header is None:
            if sid in new_headers and new_headers[sid].header_hash != shipment.header_hash:
                append(LineResult(sid, 0, REJECTED, rules.CONFLICTING_REPUSH,
                                  "the same shipment twice with different headers"))
                continue
            new_headers.setdefault(sid, shipment)
        mine: list[RecordedLine] = []
        failed = False
        for ship in shipment.lines:
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
                                      "line already recorded with different content (order "
                                      "line, product, batch, expiry, serials or quantity)"))
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
                mine.append(RecordedLine(ship, states[(ship.order_id, ship.order_line_no)].gtin,
                                         product_lines.get(ship.product_code, "")))
        if failed:
            for stored in mine:
                check.release(stored.line)
        else:
            accepted_lines[sid].extend(mine)
    store = rules.apply_mode(results, mode)
    if store:
        incoming = {s.shipment_id: s for s in shipments}
        recorded = [RecordedShipment(new_headers.get(sid) or incoming[sid],
                                     accepted_lines.get(sid, []), sid in new_headers)
                    for sid in store]
        await _store_shipments(uow, [r for r in recorded if r.lines], orders, states,
                               clock.now())
    return results


async def _store_shipments(uow: OrderUnitOfWork, recorded: list[RecordedShipment],
                           orders: dict[str, OrderShipping],
                           states: dict[tuple[str, int], OrderLineState],
                           moment: datetime) -> None:
    if not recorded:
        return
    await uow.shipments.add(recorded, moment)
    shipped: dict[tuple[str, int], int] = defaultdict(int)
    # Summed per stock position under plain tuple keys first: a dataclass key and a
    # replaced StockMove per line cost more than the rest of this loop together.
    received: dict[tuple[str, str, str], int] = defaultdict(int)
    first_of: dict[tuple[str, str, str], RecordedLine] = {}
    for shipment in recorded:
        for stored in shipment.lines:
            ship = stored.line
            shipped[(ship.order_id, ship.order_line_no)] += ship.quantity
            position = (ship.dealer_id, ship.product_code, ship.batch)
            received[position] += ship.quantity
            first_of.setdefault(position, stored)
    stock = [StockMove(StockKey(*position), first.gtin, first.product_line,
                       first.line.expiry_date, received=received[position])
             for position, first in first_of.items()]
    await uow.orders.add_shipped(shipped)
    # The orders' statuses, derived from their lines after this shipment.
    by_order: dict[str, list[LineQuantities]] = defaultdict(list)
    touched = {order_id for order_id, _ in shipped}
    for (order_id, _), state in states.items():
        if order_id in touched:
            extra = shipped.get((order_id, state.line_no), 0)
            by_order[order_id].append(LineQuantities(state.ordered, state.shipped + extra,
                                                     state.closed))
    statuses = {}
    for order_id, quantities in by_order.items():
        order = orders[order_id]
        status = derive_status(OrderStatus(order.decision), quantities)
        if status != order.status:
            statuses[order_id] = status
    if statuses:
        await uow.orders.set_statuses(statuses, moment)
    await uow.stock.move(stock, moment)
    for shipment in recorded:
        uow.events.record(SHIPMENT_RECORDED, messages.shipment_recorded(shipment, moment),
                          shipment.shipment.shipment_id)


# ------------------------------------------------------------------------- invoices

async def record_invoices(invoices: list[InvoiceIn], mode: Mode, *, who: Principal,
                          uow: OrderUnitOfWork, clock: Clock) -> list[LineResult]:
    require_role(who, ERP, "push invoices")
    async with uow:
        stored = await uow.invoices.digests({i.invoice_id for i in invoices})
        shipment_dealers = await uow.shipments.dealers(
            {line.shipment_id for i in invoices for line in i.lines})
        returns = await uow.returns.to_credit({i.return_id for i in invoices if i.return_id})
        results = rules.judge_records(
            invoices, lambda i: i.invoice_id, stored, "invoice",
            lambda i: rules.invoice_problem(i, shipment_dealers, returns, CREDIT_NOTE,
                                            ReturnStatus.RECEIVED))
        store = rules.apply_mode(results, mode)
        for invoice in invoices:
            if invoice.invoice_id in store:
                store.discard(invoice.invoice_id)
                await _store_invoice(uow, invoice, clock.now())
        await uow.commit()
    return results


async def _store_invoice(uow: OrderUnitOfWork, invoice: InvoiceIn, moment: datetime) -> None:
    dealer, company = invoice.dealer_id, invoice.selling_company
    if not invoice.due_on:
        account = await uow.accounts.get(dealer, company)
        terms = account.payment_terms_days if account else DEFAULT_TERMS_DAYS
        invoice = replace(invoice, due_on=due_date(invoice.issued_on, terms))
    await uow.invoices.add(invoice, moment)
    credit_note = invoice.kind == CREDIT_NOTE
    await uow.accounts.add_outstanding(
        dealer, company, -invoice.amount_minor if credit_note else invoice.amount_minor)
    if invoice.kind == INVOICE:
        invoiced_orders: set[str] = set()
        for line in invoice.lines:
            if not line.shipment_id:
                continue
            target = await uow.shipments.order_line_of(line.shipment_id, line.shipment_line_no)
            if target is not None:
                await uow.orders.add_to_line(*target, quantity_invoiced=line.quantity)
                invoiced_orders.add(target[0])
        await uow.orders.refresh_exposure(invoiced_orders)
    elif invoice.return_id:
        await uow.returns.mark_credited(invoice.return_id, invoice.invoice_id)
    uow.events.record(INVOICE_RECORDED, messages.invoice_recorded(invoice), invoice.invoice_id)


# ------------------------------------------------------------------------- payments

async def record_payments(payments: list[PaymentIn], mode: Mode, *, who: Principal,
                          uow: OrderUnitOfWork, clock: Clock) -> list[LineResult]:
    require_role(who, ERP, "push payments")
    async with uow:
        stored = await uow.payments.digests({p.payment_id for p in payments})
        invoice_dealers = await uow.invoices.dealers(
            {a.invoice_id for p in payments for a in p.allocations})
        results = rules.judge_records(
            payments, lambda p: p.payment_id, stored, "payment",
            lambda p: rules.payment_problem(p, invoice_dealers))
        store = rules.apply_mode(results, mode)
        for payment in payments:
            if payment.payment_id not in store:
                continue
            store.discard(payment.payment_id)
            await uow.payments.add(payment, clock.now())
            await uow.accounts.add_outstanding(payment.dealer_id, payment.selling_company,
                                               -payment.amount_minor)
            uow.events.record(PAYMENT_RECORDED, messages.payment_recorded(payment),
                              payment.payment_id)
        await uow.commit()
    return results

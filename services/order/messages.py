"""Domain ↔ the messages the order service speaks: requests and pushed records in (an
HQ product file's rows too: CSV or XLSX, English or Chinese headers, read by
shared.tabular, with a RowError for each row that is not a product), responses and the
payloads of the events the use cases record out; incentive's rebate credits in. Kept
out of domain/, which imports no generated code."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from qudao.common.v1 import files_pb2, money_pb2
from qudao.order.v1 import events_pb2, order_pb2

from services.order.domain import ingest
from services.order.domain.accounts import (
    CREDIT_NOTE,
    INVOICE,
    Account,
    AccountView,
    LimitChange,
    RebateCredit,
)
from services.order.domain.fulfilment import (
    Discrepancy,
    Receipt,
    ReceiptLineInput,
    Shipment,
)
from services.order.domain.ingest import (
    AllocationIn,
    InvoiceIn,
    InvoiceLineIn,
    LineResult,
    PaymentIn,
    RecordedShipment,
    ShipLine,
    ShipmentBatch,
    ShipmentIn,
)
from services.order.domain.inventory import ProductStock, Stock
from services.order.domain.orders import (
    DealerMonthOrders,
    LineInput,
    Order,
    OrderLine,
    OrderStatus,
    PriceItem,
    PriceList,
    Product,
    ProductImport,
    RowError,
    product_violations,
)
from services.order.domain.returns import ProductReturn, ReturnLineInput, ReturnRequest
from services.order.domain.statements import ExportedFile, IssuedLine, Statement
from shared.clock import aware
from shared.convert import money_from_proto, money_to_proto, to_timestamp
from shared.money import Money
from shared.tabular import Table

# field → the headers a file may give it, English first.
PRODUCT_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("code", "产品编码", "物料编码"),
    "name": ("name", "产品名称", "名称"),
    "spec": ("spec", "规格型号", "规格"),
    "gtin": ("gtin", "udi_di", "UDI-DI", "GTIN", "产品标识"),
    "product_line": ("product_line", "产品线"),
    "unit": ("unit", "单位"),
    "list_price": ("list_price", "目录价", "单价"),
    "currency": ("currency", "币种"),
    "serial_tracked": ("serial_tracked", "序列号管理"),
}
REQUIRED_COLUMNS = ("code", "name", "gtin", "product_line")
TRUE_WORDS = {"1", "true", "yes", "y", "是", "√"}
FALSE_WORDS = {"", "0", "false", "no", "n", "否"}


def products_from_table(table: Table, currency: str
                        ) -> tuple[list[tuple[int, Product]], list[RowError]]:
    """Every row as a product (with its row number), or the reasons it is not one. A code
    given twice in the file is an error on its second row."""
    columns = {name: table.column(*headers) for name, headers in PRODUCT_COLUMNS.items()}
    missing = [PRODUCT_COLUMNS[name][0] for name in REQUIRED_COLUMNS if columns[name] is None]
    if missing:
        return [], [_error(1, "", "MISSING_COLUMN", f"缺少列：{'、'.join(missing)}",
                           f"missing columns: {', '.join(missing)}", "")]
    products: list[tuple[int, Product]] = []
    errors: list[RowError] = []
    first_row_of: dict[str, int] = {}
    gtin_row_of: dict[str, int] = {}
    for number, row in table.rows:
        def value(name: str, row=row) -> str:
            header = columns[name]
            return row.get(header, "") if header else ""

        row_errors = []
        price_text = value("list_price")
        amount = _minor_units(price_text)
        if amount is None:
            row_errors.append(_error(number, columns["list_price"] or "", "INVALID_PRICE",
                                     "目录价应为 0 至 1 亿元之间、最多两位小数的金额",
                                     "list_price must be an amount from 0 to 100,000,000 "
                                     "with at most 2 decimals",
                                     price_text))
        serial_text = value("serial_tracked").lower()
        if serial_text not in TRUE_WORDS | FALSE_WORDS:
            row_errors.append(_error(number, columns["serial_tracked"] or "", "INVALID_VALUE",
                                     "序列号管理应为 是/否", "serial_tracked must be yes or no",
                                     value("serial_tracked")))
        product = Product(
            code=value("code"), name=value("name"), spec=value("spec"), gtin=value("gtin"),
            product_line=value("product_line"), unit=value("unit"),
            list_price_minor=amount or 0, currency=value("currency").upper() or currency,
            serial_tracked=serial_text in TRUE_WORDS)
        for violation in product_violations(0, product):
            field_name = violation.field.split(".")[1]
            header = columns.get(field_name) or field_name
            row_errors.append(_error(number, header, f"INVALID_{field_name.upper()}",
                                     f"{header}：{violation.description}",
                                     f"{field_name}: {violation.description}",
                                     value(field_name) if field_name in columns else ""))
        if product.code in first_row_of:
            row_errors.append(_error(number, columns["code"] or "", "DUPLICATE_ROW",
                                     f"产品编码与第 {first_row_of[product.code]} 行重复",
                                     f"code repeats row {first_row_of[product.code]}",
                                     product.code))
        first_row_of.setdefault(product.code, number)
        gtin = product.gtin.zfill(14)
        if gtin in gtin_row_of and not row_errors:
            row_errors.append(_error(number, columns["gtin"] or "", "DUPLICATE_ROW",
                                     f"产品标识与第 {gtin_row_of[gtin]} 行重复",
                                     f"gtin repeats row {gtin_row_of[gtin]}", product.gtin))
        gtin_row_of.setdefault(gtin, number)
        if row_errors:
            errors.extend(row_errors)
        else:
            products.append((number, product))
    return products, errors


# A unit price in a product file, as at the gateway's edge: far above any device, far
# enough below the int64 limit that order totals cannot overflow.
MAX_LIST_PRICE_MINOR = 10**10


def _minor_units(text: str) -> int | None:
    if not text:
        return 0
    try:
        amount = Decimal(text.replace(",", "").replace("¥", "").replace("￥", ""))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    minor = amount * 100
    if amount < 0 or minor != minor.to_integral_value() or minor > MAX_LIST_PRICE_MINOR:
        return None
    return int(minor)


def _error(number: int, column: str, code: str, zh: str, en: str, value: str) -> RowError:
    return RowError(row_number=number, column=column, code=code, message_zh=zh,
                    message_en=en, value=value)


def row_error_to_proto(error: RowError) -> files_pb2.RowError:
    return files_pb2.RowError(row_number=error.row_number, column=error.column,
                              code=error.code, message_zh=error.message_zh,
                              message_en=error.message_en, value=error.value)


# ------------------------------------------------------------------ dealer accounts

def account_to_proto(view: AccountView) -> order_pb2.DealerAccount:
    account, currency = view.account, view.account.currency
    message = order_pb2.DealerAccount(
        dealer_id=account.dealer_id, selling_company=account.selling_company,
        credit_limit=money_to_proto(Money(account.credit_limit_minor, currency)),
        payment_terms_days=account.payment_terms_days,
        outstanding=money_to_proto(Money(view.outstanding_minor, currency)),
        open_orders=money_to_proto(Money(view.open_orders_minor, currency)),
        available_credit=money_to_proto(Money(view.available_minor, currency)),
        overdue=money_to_proto(Money(view.overdue_minor, currency)), version=account.version)
    if account.updated_at is not None:
        message.updated_at.CopyFrom(to_timestamp(aware(account.updated_at)))
    return message


def limit_change(request: order_pb2.SetCreditLimitRequest, default_company: str,
                 currency: str) -> LimitChange:
    return LimitChange(
        dealer_id=request.dealer_id,
        selling_company=request.selling_company.strip() or default_company,
        credit_limit_minor=request.credit_limit.amount_minor,
        currency=request.credit_limit.currency or currency,
        payment_terms_days=request.payment_terms_days
        if request.HasField("payment_terms_days") else None,
        reason=request.reason, expected_version=request.expected_version)


def account_updated(view: AccountView, before: Account,
                    reason: str) -> events_pb2.DealerAccountUpdated:
    return events_pb2.DealerAccountUpdated(
        account=account_to_proto(view), reason=reason,
        previous_credit_limit=money_to_proto(Money(before.credit_limit_minor,
                                                   before.currency)))


def rebate_credit(payload, occurred_on: str, default_company: str,
                  currency: str) -> RebateCredit:
    """incentive's RebateCredited in domain terms (booked on the day it was credited)."""
    return RebateCredit(
        credit_id=payload.credit_id, dealer_id=payload.dealer_id,
        selling_company=payload.selling_company.strip() or default_company,
        amount_minor=payload.amount.amount_minor,
        currency=payload.amount.currency or currency, credited_on=occurred_on,
        description=payload.description[:200])


def credit_applied(credit: RebateCredit) -> events_pb2.CreditApplied:
    return events_pb2.CreditApplied(
        credit_id=credit.credit_id, dealer_id=credit.dealer_id,
        selling_company=credit.selling_company,
        amount=money_to_proto(Money(credit.amount_minor, credit.currency)))


# ------------------------------------------------------------------------ ERP ingest

def _money(amount_minor: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount_minor, currency=currency)


def shipment_in(message: order_pb2.Shipment, default_company: str) -> ShipmentIn:
    """A pushed shipment in domain terms, with the digests of its header and of each
    line as pushed (a re-push with the same content has the same digests)."""
    sid = message.shipment_id.strip()
    dealer_id = message.dealer_id
    digest = ingest.wire_fingerprint
    return ShipmentIn(
        shipment_id=sid, dealer_id=dealer_id,
        selling_company=message.selling_company.strip() or default_company,
        ship_date=message.ship_date, carrier=message.carrier, waybill_no=message.waybill_no,
        header_hash=ingest.fingerprint(dealer_id, message.selling_company, message.ship_date,
                                       message.carrier, message.waybill_no),
        # (``tuple()`` of an empty repeated field costs a fifth of the whole line.)
        lines=[ShipLine(sid, dealer_id, line.line_no, line.order_id, line.order_line_no,
                        line.product_code.strip(), line.gtin, line.batch.strip(),
                        line.expiry_date, line.production_date,
                        tuple(line.serials) if line.serials else (),
                        line.quantity, digest(line.SerializeToString(deterministic=True)))
               for line in message.lines])


def shipment_batch(message, default_company: str) -> ShipmentBatch:
    """A RecordShipmentsRequest (or a stream message) in domain terms."""
    return ShipmentBatch([shipment_in(s, default_company) for s in message.shipments],
                         ingest.mode_of(message.mode))


def shipment_recorded(recorded: RecordedShipment,
                      moment: datetime) -> events_pb2.ShipmentRecorded:
    """The shipment with the lines this push stored (product, GTIN, line resolved)."""
    header = recorded.shipment
    event = events_pb2.ShipmentRecorded(shipment=order_pb2.Shipment(
        shipment_id=header.shipment_id, dealer_id=header.dealer_id,
        selling_company=header.selling_company, ship_date=header.ship_date,
        carrier=header.carrier, waybill_no=header.waybill_no,
        recorded_at=to_timestamp(aware(moment))))
    # Lines built in place (``add``), the optional fields only when given: a fifth of
    # the time of building each line as a message of its own and copying it in.
    add_line = event.shipment.lines.add
    for stored in recorded.lines:
        line = stored.line
        added = add_line(line_no=line.line_no, order_id=line.order_id,
                         order_line_no=line.order_line_no, product_code=line.product_code,
                         gtin=stored.gtin, product_line=stored.product_line, batch=line.batch,
                         expiry_date=line.expiry_date, quantity=line.quantity)
        if line.serials:
            added.serials.extend(line.serials)
        if line.production_date:
            added.production_date = line.production_date
    return event


def invoice_in(message: order_pb2.Invoice, default_company: str, currency: str) -> InvoiceIn:
    return InvoiceIn(
        invoice_id=message.invoice_id.strip(),
        kind=CREDIT_NOTE if message.kind == CREDIT_NOTE else INVOICE,
        dealer_id=message.dealer_id,
        selling_company=message.selling_company.strip() or default_company,
        invoice_no=message.invoice_no, issued_on=message.issued_on, due_on=message.due_on,
        amount_minor=message.amount.amount_minor,
        currency=message.amount.currency or currency, tax_minor=message.tax.amount_minor,
        tax_currency=message.tax.currency, return_id=message.return_id,
        lines=tuple(InvoiceLineIn(line.line_no, line.shipment_id, line.shipment_line_no,
                                  line.product_code, line.quantity, line.amount.amount_minor,
                                  line.amount.currency) for line in message.lines),
        content_hash=ingest.fingerprint(message.SerializeToString(deterministic=True)))


def invoice_to_proto(invoice: InvoiceIn) -> order_pb2.Invoice:
    return order_pb2.Invoice(
        invoice_id=invoice.invoice_id, kind=invoice.kind, dealer_id=invoice.dealer_id,
        selling_company=invoice.selling_company, invoice_no=invoice.invoice_no,
        issued_on=invoice.issued_on, due_on=invoice.due_on,
        amount=_money(invoice.amount_minor, invoice.currency),
        tax=_money(invoice.tax_minor, invoice.tax_currency), return_id=invoice.return_id,
        lines=[order_pb2.InvoiceLine(
            line_no=line.line_no, shipment_id=line.shipment_id,
            shipment_line_no=line.shipment_line_no, product_code=line.product_code,
            quantity=line.quantity, amount=_money(line.amount_minor, line.currency))
            for line in invoice.lines])


def invoice_recorded(invoice: InvoiceIn) -> events_pb2.InvoiceRecorded:
    return events_pb2.InvoiceRecorded(invoice=invoice_to_proto(invoice))


def payment_in(message: order_pb2.Payment, default_company: str, currency: str) -> PaymentIn:
    return PaymentIn(
        payment_id=message.payment_id.strip(), dealer_id=message.dealer_id,
        selling_company=message.selling_company.strip() or default_company,
        received_on=message.received_on, amount_minor=message.amount.amount_minor,
        currency=message.amount.currency or currency, method=message.method,
        reference=message.reference,
        allocations=tuple(AllocationIn(a.invoice_id, a.amount.amount_minor, a.amount.currency)
                          for a in message.allocations),
        content_hash=ingest.fingerprint(message.SerializeToString(deterministic=True)))


def payment_to_proto(payment: PaymentIn) -> order_pb2.Payment:
    return order_pb2.Payment(
        payment_id=payment.payment_id, dealer_id=payment.dealer_id,
        selling_company=payment.selling_company, received_on=payment.received_on,
        amount=_money(payment.amount_minor, payment.currency), method=payment.method,
        reference=payment.reference,
        allocations=[order_pb2.PaymentAllocation(
            invoice_id=a.invoice_id, amount=_money(a.amount_minor, a.currency))
            for a in payment.allocations])


def payment_recorded(payment: PaymentIn) -> events_pb2.PaymentRecorded:
    return events_pb2.PaymentRecorded(payment=payment_to_proto(payment))


def results_to_proto(results: list[LineResult]) -> list[order_pb2.IngestResult]:
    return [order_pb2.IngestResult(record_id=r.record_id, line_no=r.line_no,
                                   outcome=int(r.outcome), reason_code=r.reason_code,
                                   message=r.message) for r in results]


def summary_to_proto(results: list[LineResult]) -> order_pb2.IngestSummary:
    return order_pb2.IngestSummary(**ingest.summarize(results))


# ----------------------------------------------------------- catalog and price lists

def _ts(moment: datetime | None):
    return None if moment is None else to_timestamp(aware(moment))


def product_in(message: order_pb2.Product) -> Product:
    """As given (product_violations checks it, ``normalized`` trims it)."""
    return Product(code=message.code, name=message.name, spec=message.spec,
                   gtin=message.gtin, product_line=message.product_line, unit=message.unit,
                   list_price_minor=message.list_price.amount_minor,
                   currency=message.list_price.currency,
                   serial_tracked=message.serial_tracked)


def product_to_proto(product: Product) -> order_pb2.Product:
    return order_pb2.Product(
        code=product.code, name=product.name, spec=product.spec, gtin=product.gtin,
        product_line=product.product_line, unit=product.unit,
        serial_tracked=bool(product.serial_tracked),
        list_price=money_to_proto(Money(product.list_price_minor, product.currency)))


def product_upserted(product: Product) -> events_pb2.ProductUpserted:
    return events_pb2.ProductUpserted(product=product_to_proto(product))


def products_imported(report: ProductImport) -> order_pb2.ImportProductsResponse:
    return order_pb2.ImportProductsResponse(
        accepted=report.accepted, errors=[row_error_to_proto(e) for e in report.errors],
        created=report.created, updated=report.updated, unchanged=report.unchanged)


def price_list_in(message: order_pb2.PriceList, default_company: str,
                  currency: str) -> PriceList:
    return PriceList(
        id=message.id, name=message.name, tier=message.tier,
        selling_company=message.selling_company.strip() or default_company,
        valid_from=message.valid_from, valid_to=message.valid_to, updated_at=None,
        items=[PriceItem(item.product_code, item.unit_price.amount_minor,
                         item.unit_price.currency or currency) for item in message.items])


def price_list_to_proto(price_list: PriceList) -> order_pb2.PriceList:
    return order_pb2.PriceList(
        id=price_list.id, name=price_list.name, tier=price_list.tier,
        selling_company=price_list.selling_company, valid_from=price_list.valid_from,
        valid_to=price_list.valid_to, updated_at=_ts(price_list.updated_at),
        items=[order_pb2.PriceListItem(
            product_code=item.product_code,
            unit_price=money_to_proto(Money(item.unit_price_minor, item.currency)))
            for item in price_list.items])


def price_list_upserted(price_list: PriceList) -> events_pb2.PriceListUpserted:
    return events_pb2.PriceListUpserted(price_list=price_list_to_proto(price_list))


# -------------------------------------------------------------------------- orders

STATUS_TO_PROTO = {status: order_pb2.OrderStatus.Value(f"ORDER_STATUS_{status.name}")
                   for status in OrderStatus}
PROTO_TO_STATUS = {value: status for status, value in STATUS_TO_PROTO.items()}


def line_input(line: order_pb2.OrderLineInput) -> LineInput:
    return LineInput(line.product_code, line.quantity,
                     money_from_proto(line.expected_unit_price)
                     if line.HasField("expected_unit_price") else None)


def order_to_proto(order: Order) -> order_pb2.Order:
    money = lambda minor: money_to_proto(Money(minor, order.currency))  # noqa: E731
    message = order_pb2.Order(
        id=order.id, dealer_id=order.dealer_id,
        status=STATUS_TO_PROTO[OrderStatus(order.status)], total=money(order.total_minor),
        client_order_ref=order.client_order_ref, submitted_by=order.submitted_by,
        selling_company=order.selling_company, awaiting_approval=order.awaiting_stage,
        decision_reason=order.decision_reason, note=order.note,
        credit_check=order_pb2.CreditCheck(
            passed=order.credit_passed, credit_limit=money(order.credit_limit_minor),
            outstanding=money(order.credit_outstanding_minor),
            open_orders=money(order.credit_open_orders_minor),
            order_amount=money(order.total_minor)),
        approvals=[order_pb2.OrderApproval(stage=a.stage, decision=a.decision,
                                           decided_by=a.decided_by,
                                           decided_at=_ts(a.decided_at), comment=a.comment)
                   for a in order.approvals],
        lines=[line_to_proto(line, order.currency) for line in order.lines],
        submitted_at=_ts(order.submitted_at), updated_at=_ts(order.updated_at))
    return message


def line_to_proto(line: OrderLine, currency: str) -> order_pb2.OrderLine:
    return order_pb2.OrderLine(
        line_no=line.line_no, product_code=line.product_code, gtin=line.gtin,
        product_line=line.product_line, quantity_ordered=line.quantity_ordered,
        quantity_shipped=line.quantity_shipped, quantity_received=line.quantity_received,
        quantity_closed=line.quantity_closed, quantity_returned=line.quantity_returned,
        close_reason=line.close_reason,
        unit_price=money_to_proto(Money(line.unit_price_minor, currency)),
        amount=money_to_proto(Money(line.amount_minor, currency)))


def order_submitted(order: Order) -> events_pb2.OrderSubmitted:
    return events_pb2.OrderSubmitted(order=order_to_proto(order))


def order_approved(order: Order, stage: int,
                   fully_approved: bool) -> events_pb2.OrderApproved:
    return events_pb2.OrderApproved(order=order_to_proto(order), stage=stage,
                                    fully_approved=fully_approved)


def order_rejected(order: Order, stage: int, reason: str) -> events_pb2.OrderRejected:
    return events_pb2.OrderRejected(order=order_to_proto(order), stage=stage, reason=reason)


def order_cancelled(order: Order, reason: str) -> events_pb2.OrderCancelled:
    return events_pb2.OrderCancelled(order=order_to_proto(order), reason=reason)


def order_line_closed(order: Order, line: OrderLine, quantity: int,
                      reason: str) -> events_pb2.OrderLineClosed:
    return events_pb2.OrderLineClosed(
        order_id=order.id, dealer_id=order.dealer_id, line=line_to_proto(line, order.currency),
        quantity_closed=quantity, reason=reason)


# ------------------------------------------------------ shipments, receipts, stock

def shipment_to_proto(shipment: Shipment) -> order_pb2.Shipment:
    return order_pb2.Shipment(
        shipment_id=shipment.id, dealer_id=shipment.dealer_id,
        selling_company=shipment.selling_company, ship_date=shipment.ship_date,
        carrier=shipment.carrier, waybill_no=shipment.waybill_no,
        received=shipment.received, recorded_at=_ts(shipment.recorded_at),
        lines=[order_pb2.ShipmentLine(
            line_no=line.line_no, order_id=line.order_id, order_line_no=line.order_line_no,
            product_code=line.product_code, gtin=line.gtin, batch=line.batch,
            expiry_date=line.expiry_date, production_date=line.production_date,
            serials=list(line.serials), quantity=line.quantity)
            for line in shipment.lines])


def receipt_line_in(line: order_pb2.ReceiptLineInput) -> ReceiptLineInput:
    return ReceiptLineInput(line.shipment_line_no, line.quantity_received,
                            line.quantity_damaged, line.note)


def discrepancy_to_proto(case: Discrepancy) -> order_pb2.Discrepancy:
    return order_pb2.Discrepancy(
        id=case.id, shipment_id=case.shipment_id, shipment_line_no=case.shipment_line_no,
        dealer_id=case.dealer_id, kind=case.kind, quantity=case.quantity, status=case.status,
        resolution=case.resolution, note=case.note, raised_at=_ts(case.raised_at),
        resolved_at=_ts(case.resolved_at), resolved_by=case.resolved_by)


def receipt_to_proto(receipt: Receipt) -> order_pb2.Receipt:
    return order_pb2.Receipt(
        id=receipt.id, shipment_id=receipt.shipment_id, dealer_id=receipt.dealer_id,
        confirmed_at=_ts(receipt.confirmed_at), confirmed_by=receipt.confirmed_by,
        lines=[order_pb2.ReceiptLine(
            shipment_line_no=line.line_no, quantity_shipped=line.quantity,
            quantity_received=line.quantity_received, quantity_damaged=line.quantity_damaged,
            quantity_short=line.quantity_short, note=line.receipt_note)
            for line in receipt.lines],
        discrepancies=[discrepancy_to_proto(d) for d in receipt.discrepancies])


def receipt_confirmed(receipt: Receipt) -> events_pb2.ReceiptConfirmed:
    return events_pb2.ReceiptConfirmed(receipt=receipt_to_proto(receipt))


def discrepancy_resolved(case: Discrepancy) -> events_pb2.DiscrepancyResolved:
    return events_pb2.DiscrepancyResolved(discrepancy=discrepancy_to_proto(case))


def inventory_to_proto(stock: Stock) -> order_pb2.ChannelInventoryItem:
    return order_pb2.ChannelInventoryItem(
        dealer_id=stock.key.dealer_id, product_code=stock.key.product_code, gtin=stock.gtin,
        batch=stock.key.batch, expiry_date=stock.expiry_date,
        quantity_received=stock.received, quantity_sold=stock.sold,
        quantity_returned=stock.returned, quantity_on_hand=stock.on_hand,
        updated_at=_ts(stock.updated_at))


# ------------------------------------------------------------------------- returns

def return_request(message: order_pb2.RequestReturnRequest,
                   default_company: str) -> ReturnRequest:
    return ReturnRequest(
        dealer_id=message.dealer_id,
        selling_company=message.selling_company.strip() or default_company,
        reason=message.reason, client_request_id=message.client_request_id,
        lines=[ReturnLineInput(line.product_code.strip(), line.batch.strip(),
                               tuple(s.strip() for s in line.serials), line.quantity,
                               line.shipment_id) for line in message.lines])


def return_to_proto(product_return: ProductReturn) -> order_pb2.ProductReturn:
    r = product_return
    return order_pb2.ProductReturn(
        id=r.id, dealer_id=r.dealer_id, selling_company=r.selling_company, status=r.status,
        reason=r.reason, requested_at=_ts(r.requested_at), requested_by=r.requested_by,
        decided_at=_ts(r.decided_at), decided_by=r.decided_by,
        decision_note=r.decision_note, received_on=r.received_on,
        credit_note_invoice_id=r.credit_note_invoice_id,
        lines=[order_pb2.ReturnLine(
            line_no=line.line_no, product_code=line.product_code, gtin=line.gtin,
            batch=line.batch, expiry_date=line.expiry_date, serials=list(line.serials),
            quantity_requested=line.quantity_requested,
            quantity_received=line.quantity_received, shipment_id=line.shipment_id)
            for line in r.lines])


def return_requested(product_return: ProductReturn) -> events_pb2.ReturnRequested:
    return events_pb2.ReturnRequested(product_return=return_to_proto(product_return))


def return_approved(product_return: ProductReturn) -> events_pb2.ReturnApproved:
    return events_pb2.ReturnApproved(product_return=return_to_proto(product_return))


def return_rejected(product_return: ProductReturn) -> events_pb2.ReturnRejected:
    return events_pb2.ReturnRejected(product_return=return_to_proto(product_return))


def return_received(product_return: ProductReturn) -> events_pb2.ReturnReceived:
    return events_pb2.ReturnReceived(product_return=return_to_proto(product_return))


# ---------------------------------------------------------------------- statements

def statement_to_proto(statement: Statement) -> order_pb2.Statement:
    s = statement
    money = lambda minor: money_to_proto(Money(minor, s.currency))  # noqa: E731
    message = order_pb2.Statement(
        id=s.id, dealer_id=s.dealer_id, selling_company=s.selling_company,
        period_start=s.period_start, period_end=s.period_end, status=s.status,
        opening_balance=money(s.opening_minor), total_debit=money(s.total_debit_minor),
        total_credit=money(s.total_credit_minor), closing_balance=money(s.closing_minor),
        issued_at=_ts(s.issued_at), issued_by=s.issued_by, confirmed_at=_ts(s.confirmed_at),
        confirmed_by=s.confirmed_by, supersedes_statement_id=s.supersedes_statement_id)
    for line in s.lines:
        item = order_pb2.StatementLine(
            line_no=line.line_no, kind=line.kind, ref_id=line.ref_id, date=line.date,
            description=line.description, debit=money(line.debit_minor),
            credit=money(line.credit_minor), balance=money(line.balance_minor),
            disputed=bool(line.disputed), dispute_reason=line.dispute_reason)
        if line.disputed_amount_minor is not None:
            item.disputed_amount.CopyFrom(money(line.disputed_amount_minor))
        message.lines.append(item)
    return message


def statement_issued(statement: Statement) -> events_pb2.StatementIssued:
    return events_pb2.StatementIssued(statement=statement_to_proto(statement))


def statement_confirmed(statement: Statement) -> events_pb2.StatementConfirmed:
    return events_pb2.StatementConfirmed(statement=statement_to_proto(statement))


def statement_disputed(statement: Statement, line: IssuedLine) -> events_pb2.StatementDisputed:
    return events_pb2.StatementDisputed(statement=statement_to_proto(statement),
                                        line_no=line.line_no, reason=line.dispute_reason)


def exported_file_to_proto(exported: ExportedFile) -> files_pb2.ExportedFile:
    return files_pb2.ExportedFile(filename=exported.filename,
                                  content_type=exported.content_type,
                                  content=exported.content)


# ---------------------------------------------------------------------- dashboards

def dealer_month_to_proto(row: DealerMonthOrders, currency: str) -> order_pb2.DealerMonthOrders:
    return order_pb2.DealerMonthOrders(
        dealer_id=row.dealer_id, month=row.month, order_count=row.orders,
        order_amount=money_pb2.Money(amount_minor=row.amount_minor, currency=currency))


def product_stock_to_proto(row: ProductStock) -> order_pb2.ProductInventory:
    return order_pb2.ProductInventory(
        product_code=row.product_code, product_name=row.product_name,
        product_line=row.product_line, quantity_received=row.received,
        quantity_sold=row.sold, quantity_returned=row.returned,
        quantity_on_hand=row.on_hand, dealer_count=row.dealers, dealer_id=row.dealer_id)

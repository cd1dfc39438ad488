"""Domain ↔ the messages the order service speaks: what makes a Product message valid,
how a row of an HQ product file (CSV or XLSX, English or Chinese headers, read by
shared.tabular) becomes one, with RowError messages for the rows that do not; dealer
accounts and their events; incentive's rebate credits in. Kept out of domain/, which
imports no generated code."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from qudao.common.v1 import files_pb2, money_pb2
from qudao.order.v1 import events_pb2, order_pb2
from stdnum import ean

from services.order.domain import ingest
from services.order.domain.accounts import (
    CREDIT_NOTE,
    INVOICE,
    Account,
    AccountView,
    LimitChange,
    RebateCredit,
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
from shared.clock import aware
from shared.convert import money_to_proto, to_timestamp
from shared.errors import FieldViolation
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


def validate_product(index: int, product: order_pb2.Product) -> list[FieldViolation]:
    where = f"products[{index}]"
    violations = []
    if not product.code.strip():
        violations.append(FieldViolation(f"{where}.code", "is required"))
    if not product.name.strip():
        violations.append(FieldViolation(f"{where}.name", "is required"))
    if not product.product_line.strip():
        violations.append(FieldViolation(f"{where}.product_line", "is required"))
    gtin = product.gtin.strip()
    if not (gtin.isdigit() and len(gtin) in (8, 12, 13, 14) and ean.is_valid(gtin)):
        violations.append(FieldViolation(f"{where}.gtin",
                                         f"{gtin!r} is not a GTIN with a valid check digit"))
    if product.list_price.amount_minor < 0:
        violations.append(FieldViolation(f"{where}.list_price.amount_minor",
                                         "must not be negative"))
    return violations


def products_from_table(table: Table, currency: str
                        ) -> tuple[list[tuple[int, order_pb2.Product]], list[files_pb2.RowError]]:
    """Every row as a product (with its row number), or the reasons it is not one. A code
    given twice in the file is an error on its second row."""
    columns = {name: table.column(*headers) for name, headers in PRODUCT_COLUMNS.items()}
    missing = [PRODUCT_COLUMNS[name][0] for name in REQUIRED_COLUMNS if columns[name] is None]
    if missing:
        return [], [_error(1, "", "MISSING_COLUMN", f"缺少列：{'、'.join(missing)}",
                           f"missing columns: {', '.join(missing)}", "")]
    products: list[tuple[int, order_pb2.Product]] = []
    errors: list[files_pb2.RowError] = []
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
        product = order_pb2.Product(
            code=value("code"), name=value("name"), spec=value("spec"), gtin=value("gtin"),
            product_line=value("product_line"), unit=value("unit"),
            list_price=money_pb2.Money(amount_minor=amount or 0,
                                       currency=value("currency").upper() or currency),
            serial_tracked=serial_text in TRUE_WORDS)
        for violation in validate_product(0, product):
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


def _error(number: int, column: str, code: str, zh: str, en: str,
           value: str) -> files_pb2.RowError:
    return files_pb2.RowError(row_number=number, column=column, code=code, message_zh=zh,
                              message_en=en, value=value)


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
        lines=[ShipLine(sid, dealer_id, line.line_no, line.order_id, line.order_line_no,
                        line.product_code.strip(), line.gtin, line.batch.strip(),
                        line.expiry_date, line.production_date, tuple(line.serials),
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
    return events_pb2.ShipmentRecorded(shipment=order_pb2.Shipment(
        shipment_id=header.shipment_id, dealer_id=header.dealer_id,
        selling_company=header.selling_company, ship_date=header.ship_date,
        carrier=header.carrier, waybill_no=header.waybill_no,
        recorded_at=to_timestamp(aware(moment)),
        lines=[order_pb2.ShipmentLine(
            line_no=s.line.line_no, order_id=s.line.order_id,
            order_line_no=s.line.order_line_no, product_code=s.line.product_code,
            gtin=s.gtin, product_line=s.product_line, batch=s.line.batch,
            expiry_date=s.line.expiry_date, serials=list(s.line.serials),
            quantity=s.line.quantity, production_date=s.line.production_date)
            for s in recorded.lines]))


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

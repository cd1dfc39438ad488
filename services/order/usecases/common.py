"""What the order use cases share: the base with their collaborators, role checks, date
parsing and the row → message converters."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from qudao.order.v1 import order_pb2

from services.order.adapters.identity import DealerTiers
from services.order.adapters.orm import (
    ChannelInventoryRow,
    DiscrepancyRow,
    InvoiceRow,
    OrderLineRow,
    OrderRow,
    PaymentRow,
    PriceListRow,
    ProductRow,
    ReceiptRow,
    ReturnRow,
    ShipmentLineRow,
    ShipmentRow,
    StatementRow,
)
from services.order.domain.orders import LineQuantities, OrderStatus, derive_status
from shared.bus.outbox import Outbox
from shared.context import Principal, current_principal
from shared.convert import money_to_proto
from shared.db import Database
from shared.errors import FieldViolation, InvalidArgument, PermissionDenied
from shared.money import Money
from shared.scope import Scope
from shared.scope_client import ScopeResolver

STATUS_TO_PROTO = {status: order_pb2.OrderStatus.Value(f"ORDER_STATUS_{status.name}")
                   for status in OrderStatus}
PROTO_TO_STATUS = {value: status for status, value in STATUS_TO_PROTO.items()}

CATALOG_WRITERS = ("hq_admin", "erp")
# The ERP pushes the price lists it keeps (qudao erp push, kind price_lists).
PRICE_WRITERS = ("hq_admin", "finance", "erp")
CREDIT_WRITERS = ("finance", "hq_admin")
LINE_CLOSERS = ("hq_admin", "customer_service")
ERP = ("erp",)
DISCREPANCY_RESOLVERS = ("hq_admin", "customer_service", "finance")
RETURN_DECIDERS = ("hq_admin", "customer_service", "channel_manager", "region_manager")
STATEMENT_ISSUERS = ("finance", "hq_admin")
DEALER_STAFF = ("dealer_admin", "dealer_sales")


class UseCaseBase:
    def __init__(self, db: Database, outbox: Outbox, scopes: ScopeResolver,
                 tiers: DealerTiers | None = None, default_company: str = "default",
                 currency: str = "CNY") -> None:
        self.db = db
        self.outbox = outbox
        self.scopes = scopes
        self.tiers = tiers
        self.default_company = default_company
        self.currency = currency

    @staticmethod
    def require_role(*roles: str, what: str) -> Principal:
        principal = current_principal()
        if not principal.has_role(*roles):
            raise PermissionDenied(f"only {', '.join(roles)} may {what}")
        return principal

    async def scope(self, action: str) -> Scope:
        return await self.scopes.resolve(current_principal(), action)

    def company(self, value: str) -> str:
        return value.strip() or self.default_company


def now() -> datetime:
    return datetime.now(UTC)


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ts(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(aware(moment))
    return stamp


def day(value: str, field: str, *, required: bool = True) -> str:
    """Validate a "YYYY-MM-DD" field; returns it normalized, or "" when optional and empty."""
    value = value.strip()
    if not value:
        if required:
            raise InvalidArgument.field(field, "is required (YYYY-MM-DD)")
        return ""
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise InvalidArgument.field(field, f"{value!r} is not a date (YYYY-MM-DD)") from exc


def day_violation(value: str, field: str, required: bool = True) -> FieldViolation | None:
    try:
        day(value, field, required=required)
    except InvalidArgument as exc:
        return exc.violations[0]
    return None


def money(amount: int, currency: str) -> Money:
    return Money(amount, currency or "CNY")


def line_quantities(order: OrderRow) -> list[LineQuantities]:
    return [LineQuantities(line.quantity_ordered, line.quantity_shipped, line.quantity_closed,
                           line.quantity_receipted) for line in order.lines]


def refresh_status(order: OrderRow) -> bool:
    """Recompute the order's status from its lines; True if it changed."""
    status = derive_status(OrderStatus(order.decision), line_quantities(order))
    if status != order.status:
        order.status = status
        order.updated_at = now()
        return True
    return False


def order_to_proto(row: OrderRow) -> order_pb2.Order:
    order = order_pb2.Order(
        id=row.id,
        dealer_id=row.dealer_id,
        status=STATUS_TO_PROTO[OrderStatus(row.status)],
        total=money_to_proto(Money(row.total_minor, row.currency)),
        client_order_ref=row.client_order_ref,
        submitted_by=row.submitted_by,
        selling_company=row.selling_company,
        awaiting_approval=row.awaiting_stage,
        decision_reason=row.decision_reason,
        note=row.note,
        credit_check=order_pb2.CreditCheck(
            passed=row.credit_passed,
            credit_limit=money_to_proto(Money(row.credit_limit_minor, row.currency)),
            outstanding=money_to_proto(Money(row.credit_outstanding_minor, row.currency)),
            open_orders=money_to_proto(Money(row.credit_open_orders_minor, row.currency)),
            order_amount=money_to_proto(Money(row.total_minor, row.currency)),
        ),
        approvals=[
            order_pb2.OrderApproval(stage=a.stage, decision=a.decision, decided_by=a.decided_by,
                                    decided_at=ts(a.decided_at), comment=a.comment)
            for a in row.approvals
        ],
        lines=[line_to_proto(line, row.currency) for line in row.lines],
    )
    order.submitted_at.CopyFrom(ts(row.submitted_at))
    if row.updated_at is not None:
        order.updated_at.CopyFrom(ts(row.updated_at))
    return order


def line_to_proto(line: OrderLineRow, currency: str) -> order_pb2.OrderLine:
    return order_pb2.OrderLine(
        line_no=line.line_no,
        product_code=line.product_code,
        gtin=line.gtin,
        product_line=line.product_line,
        quantity_ordered=line.quantity_ordered,
        quantity_shipped=line.quantity_shipped,
        quantity_received=line.quantity_received,
        quantity_closed=line.quantity_closed,
        quantity_returned=line.quantity_returned,
        close_reason=line.close_reason,
        unit_price=money_to_proto(Money(line.unit_price_minor, currency)),
        amount=money_to_proto(Money(line.amount_minor, currency)),
    )


PRODUCT_COLUMNS = ("code", "name", "spec", "gtin", "product_line", "unit", "serial_tracked",
                   "list_price_minor", "currency")


def product_to_proto(row: ProductRow) -> order_pb2.Product:
    return product_values_to_proto({name: getattr(row, name) for name in PRODUCT_COLUMNS})


def product_values_to_proto(values: Mapping[str, Any]) -> order_pb2.Product:
    """A product from its column values (bulk imports build no ORM objects)."""
    return order_pb2.Product(
        code=values["code"], name=values["name"], spec=values["spec"], gtin=values["gtin"],
        product_line=values["product_line"], unit=values["unit"],
        serial_tracked=bool(values["serial_tracked"]),
        list_price=money_to_proto(Money(values["list_price_minor"], values["currency"])),
    )


def price_list_to_proto(row: PriceListRow) -> order_pb2.PriceList:
    return order_pb2.PriceList(
        id=row.id, name=row.name, tier=row.tier, selling_company=row.selling_company,
        valid_from=row.valid_from, valid_to=row.valid_to, updated_at=ts(row.updated_at),
        items=[order_pb2.PriceListItem(product_code=item.product_code,
                                       unit_price=money_to_proto(Money(item.unit_price_minor,
                                                        item.currency)))
               for item in row.items])


def shipment_to_proto(row: ShipmentRow, lines: list[ShipmentLineRow],
                      product_lines: dict[str, str] | None = None) -> order_pb2.Shipment:
    shipment = order_pb2.Shipment(
        shipment_id=row.id, dealer_id=row.dealer_id, selling_company=row.selling_company,
        ship_date=row.ship_date, carrier=row.carrier, waybill_no=row.waybill_no,
        received=bool(row.received), recorded_at=ts(row.recorded_at),
        lines=[order_pb2.ShipmentLine(
            line_no=line.line_no, order_id=line.order_id, order_line_no=line.order_line_no,
            product_code=line.product_code, gtin=line.gtin, batch=line.batch,
            expiry_date=line.expiry_date, production_date=line.production_date,
            serials=[s for s in line.serials.split("\n") if s], quantity=line.quantity,
            product_line=(product_lines or {}).get(line.product_code, ""))
            for line in lines])
    return shipment


def receipt_to_proto(receipt: ReceiptRow, lines: list[ShipmentLineRow],
                     discrepancies: list[DiscrepancyRow]) -> order_pb2.Receipt:
    return order_pb2.Receipt(
        id=receipt.id, shipment_id=receipt.shipment_id, dealer_id=receipt.dealer_id,
        confirmed_at=ts(receipt.confirmed_at), confirmed_by=receipt.confirmed_by,
        lines=[order_pb2.ReceiptLine(
            shipment_line_no=line.line_no, quantity_shipped=line.quantity,
            quantity_received=line.quantity_received, quantity_damaged=line.quantity_damaged,
            quantity_short=max(0, line.quantity - line.quantity_received
                               - line.quantity_damaged),
            note=line.receipt_note) for line in lines],
        discrepancies=[discrepancy_to_proto(d) for d in discrepancies])


def discrepancy_to_proto(row: DiscrepancyRow) -> order_pb2.Discrepancy:
    return order_pb2.Discrepancy(
        id=row.id, shipment_id=row.shipment_id, shipment_line_no=row.shipment_line_no,
        dealer_id=row.dealer_id, kind=row.kind, quantity=row.quantity, status=row.status,
        resolution=row.resolution, note=row.note, raised_at=ts(row.raised_at),
        resolved_at=ts(row.resolved_at), resolved_by=row.resolved_by)


def invoice_to_proto(row: InvoiceRow) -> order_pb2.Invoice:
    return order_pb2.Invoice(
        invoice_id=row.id, kind=row.kind, dealer_id=row.dealer_id,
        selling_company=row.selling_company, invoice_no=row.invoice_no,
        issued_on=row.issued_on, due_on=row.due_on,
        amount=money_to_proto(Money(row.amount_minor, row.currency)),
        tax=money_to_proto(Money(row.tax_minor, row.currency)), return_id=row.return_id,
        lines=[order_pb2.InvoiceLine(
            line_no=item["line_no"], shipment_id=item["shipment_id"],
            shipment_line_no=item["shipment_line_no"], product_code=item["product_code"],
            quantity=item["quantity"],
            amount=money_to_proto(Money(item["amount_minor"], row.currency)))
            for item in json.loads(row.lines or "[]")])


def payment_to_proto(row: PaymentRow) -> order_pb2.Payment:
    return order_pb2.Payment(
        payment_id=row.id, dealer_id=row.dealer_id, selling_company=row.selling_company,
        received_on=row.received_on, amount=money_to_proto(Money(row.amount_minor, row.currency)),
        method=row.method, reference=row.reference,
        allocations=[order_pb2.PaymentAllocation(
            invoice_id=item["invoice_id"],
            amount=money_to_proto(Money(item["amount_minor"], row.currency)))
            for item in json.loads(row.allocations or "[]")])


def return_to_proto(row: ReturnRow) -> order_pb2.ProductReturn:
    return order_pb2.ProductReturn(
        id=row.id, dealer_id=row.dealer_id, selling_company=row.selling_company,
        status=row.status, reason=row.reason, requested_at=ts(row.requested_at),
        requested_by=row.requested_by, decided_at=ts(row.decided_at),
        decided_by=row.decided_by, decision_note=row.decision_note,
        received_on=row.received_on, credit_note_invoice_id=row.credit_note_invoice_id,
        lines=[order_pb2.ReturnLine(
            line_no=line.line_no, product_code=line.product_code, gtin=line.gtin,
            batch=line.batch, expiry_date=line.expiry_date,
            serials=[s for s in line.serials.split("\n") if s],
            quantity_requested=line.quantity_requested,
            quantity_received=line.quantity_received, shipment_id=line.shipment_id)
            for line in row.lines])


def statement_to_proto(row: StatementRow, with_lines: bool = True) -> order_pb2.Statement:
    currency = row.currency
    statement = order_pb2.Statement(
        id=row.id, dealer_id=row.dealer_id, selling_company=row.selling_company,
        period_start=row.period_start, period_end=row.period_end, status=row.status,
        opening_balance=money_to_proto(Money(row.opening_minor, currency)),
        total_debit=money_to_proto(Money(row.total_debit_minor, currency)),
        total_credit=money_to_proto(Money(row.total_credit_minor, currency)),
        closing_balance=money_to_proto(Money(row.closing_minor, currency)),
        issued_at=ts(row.issued_at), issued_by=row.issued_by,
        confirmed_at=ts(row.confirmed_at), confirmed_by=row.confirmed_by,
        supersedes_statement_id=row.supersedes_statement_id)
    if with_lines:
        for line in row.lines:
            item = order_pb2.StatementLine(
                line_no=line.line_no, kind=line.kind, ref_id=line.ref_id, date=line.date,
                description=line.description,
                debit=money_to_proto(Money(line.debit_minor, currency)),
                credit=money_to_proto(Money(line.credit_minor, currency)),
                balance=money_to_proto(Money(line.balance_minor, currency)),
                disputed=bool(line.disputed), dispute_reason=line.dispute_reason)
            if line.disputed_amount_minor is not None:
                item.disputed_amount.CopyFrom(money_to_proto(Money(line.disputed_amount_minor,
                                                    currency)))
            statement.lines.append(item)
    return statement


def inventory_to_proto(row: ChannelInventoryRow) -> order_pb2.ChannelInventoryItem:
    return order_pb2.ChannelInventoryItem(
        dealer_id=row.dealer_id, product_code=row.product_code, gtin=row.gtin,
        batch=row.batch, expiry_date=row.expiry_date, quantity_received=row.quantity_received,
        quantity_sold=row.quantity_sold, quantity_returned=row.quantity_returned,
        quantity_on_hand=row.quantity_received - row.quantity_sold - row.quantity_returned,
        updated_at=ts(row.updated_at))


async def reload_order(session, order_id: str) -> OrderRow:
    """The order with its lines and approvals read afresh (after Core UPDATEs)."""
    from sqlalchemy import select

    from services.order.adapters.orm import OrderApprovalRow

    await session.flush()
    order = (await session.scalars(
        select(OrderRow).where(OrderRow.id == order_id)
        .execution_options(populate_existing=True))).one()
    await session.scalars(select(OrderLineRow).where(OrderLineRow.order_id == order_id)
                          .execution_options(populate_existing=True))
    await session.scalars(select(OrderApprovalRow).where(OrderApprovalRow.order_id == order_id)
                          .execution_options(populate_existing=True))
    return order

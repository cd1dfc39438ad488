"""Order use cases: load through a unit of work, apply the domain rules, record the
events in the outbox, commit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from qudao.order.v1 import events_pb2, order_pb2
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from stdnum import ean

from services.order.adapters.orm import OrderLineRow, OrderRow, ProductRow
from services.order.domain.orders import (
    CatalogEntry,
    LineInput,
    OrderStatus,
    order_total,
    price_lines,
)
from shared.bus.outbox import Outbox
from shared.context import current_principal
from shared.db import Database
from shared.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied, collect
from shared.money import Money
from shared.pagination import decode_page_token, encode_page_token, page_size
from shared.scope import ScopeResolver

STATUS_TO_PROTO = {status: order_pb2.OrderStatus.Value(f"ORDER_STATUS_{status.name}")
                   for status in OrderStatus}
CATALOG_WRITERS = ("hq_admin", "erp")


def order_to_proto(row: OrderRow) -> order_pb2.Order:
    order = order_pb2.Order(
        id=row.id,
        dealer_id=row.dealer_id,
        status=STATUS_TO_PROTO[OrderStatus(row.status)],
        total=Money(row.total_minor, row.currency).to_proto(),
        client_order_ref=row.client_order_ref,
        submitted_by=row.submitted_by,
        lines=[
            order_pb2.OrderLine(
                line_no=line.line_no,
                product_code=line.product_code,
                gtin=line.gtin,
                product_line=line.product_line,
                quantity_ordered=line.quantity_ordered,
                quantity_shipped=line.quantity_shipped,
                quantity_received=line.quantity_received,
                quantity_closed=line.quantity_closed,
                unit_price=Money(line.unit_price_minor, row.currency).to_proto(),
                amount=Money(line.amount_minor, row.currency).to_proto(),
            )
            for line in row.lines
        ],
    )
    order.submitted_at.FromDatetime(_aware(row.submitted_at))
    return order


def product_to_proto(row: ProductRow) -> order_pb2.Product:
    return order_pb2.Product(
        code=row.code, name=row.name, spec=row.spec, gtin=row.gtin,
        product_line=row.product_line, unit=row.unit,
        list_price=Money(row.list_price_minor, row.currency).to_proto(),
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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


class OrderService:
    def __init__(self, db: Database, outbox: Outbox, scopes: ScopeResolver) -> None:
        self.db = db
        self.outbox = outbox
        self.scopes = scopes

    async def upsert_products(self, products: list[order_pb2.Product]) -> tuple[int, int, int]:
        if not current_principal().has_role(*CATALOG_WRITERS):
            raise PermissionDenied("only HQ admins and the ERP maintain the catalog")
        violations: list[FieldViolation] = []
        if not products:
            violations.append(FieldViolation("products", "at least one product is required"))
        for index, product in enumerate(products):
            violations.extend(validate_product(index, product))
        collect(violations)
        created = updated = unchanged = 0
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as session:
            for product in products:
                gtin = product.gtin.strip().zfill(14)
                values = dict(
                    name=product.name.strip(), spec=product.spec.strip(), gtin=gtin,
                    product_line=product.product_line.strip(), unit=product.unit.strip(),
                    list_price_minor=product.list_price.amount_minor,
                    currency=product.list_price.currency or "CNY",
                )
                row = await session.get(ProductRow, product.code.strip())
                if row is None:
                    row = ProductRow(code=product.code.strip(), updated_at=now, **values)
                    session.add(row)
                    created += 1
                elif all(getattr(row, key) == value for key, value in values.items()):
                    unchanged += 1
                    continue
                else:
                    for key, value in values.items():
                        setattr(row, key, value)
                    row.updated_at = now
                    updated += 1
                await session.flush()
                await self.outbox.record(
                    session, "product", "upserted",
                    events_pb2.ProductUpserted(product=product_to_proto(row)), row.code,
                )
        return created, updated, unchanged

    async def get_product(self, code: str) -> order_pb2.Product:
        async with self.db.sessions() as session:
            row = await session.get(ProductRow, code)
        if row is None:
            raise NotFound(f"product {code} not found")
        return product_to_proto(row)

    async def list_products(self, product_line: str, size: int, token: str):
        offset = decode_page_token(token)
        async with self.db.sessions() as session:
            query = select(ProductRow).order_by(ProductRow.code)
            if product_line:
                query = query.where(ProductRow.product_line == product_line)
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        more = len(rows) > size
        return [product_to_proto(r) for r in rows[:size]], (
            encode_page_token(offset + size) if more else "")

    async def submit_order(
        self, dealer_id: str, lines: list[LineInput], client_order_ref: str
    ) -> order_pb2.Order:
        principal = current_principal()
        dealer_id = dealer_id or principal.dealer_id
        if not dealer_id:
            raise InvalidArgument.field("dealer_id", "is required")
        scope = await self.scopes.resolve(principal, "order.submit")
        scope.require(dealer_id)
        if len(client_order_ref) > 64:
            raise InvalidArgument.field("client_order_ref", "must be at most 64 characters")
        order_ref = client_order_ref or uuid.uuid4().hex
        async with self.db.sessions() as session:
            codes = {line.product_code.strip() for line in lines}
            products = (await session.scalars(
                select(ProductRow).where(ProductRow.code.in_(codes)))).all()
        catalog = {
            p.code: CatalogEntry(p.code, p.gtin, p.product_line,
                                 Money(p.list_price_minor, p.currency))
            for p in products
        }
        priced = price_lines(lines, catalog)
        total = order_total(priced)
        order_id = str(uuid.uuid4())
        try:
            async with self.db.unit_of_work() as session:
                existing = await self._find_by_ref(session, dealer_id, order_ref)
                if existing is not None:
                    return order_to_proto(existing)
                row = OrderRow(
                    id=order_id, dealer_id=dealer_id, decision=OrderStatus.SUBMITTED,
                    status=OrderStatus.SUBMITTED, client_order_ref=order_ref,
                    total_minor=total.amount_minor, currency=total.currency,
                    submitted_by=principal.subject, submitted_at=datetime.now(UTC),
                    lines=[
                        OrderLineRow(
                            line_no=line.line_no, product_code=line.product_code,
                            gtin=line.gtin, product_line=line.product_line,
                            quantity_ordered=line.quantity, quantity_shipped=0,
                            quantity_received=0, quantity_closed=0,
                            unit_price_minor=line.unit_price.amount_minor,
                            amount_minor=line.amount.amount_minor,
                        )
                        for line in priced
                    ],
                )
                session.add(row)
                await session.flush()
                order = order_to_proto(row)
                await self.outbox.record(
                    session, "order", "submitted", events_pb2.OrderSubmitted(order=order), order_id
                )
        except IntegrityError:
            # A concurrent submit with the same reference won; answer with its order.
            async with self.db.sessions() as session:
                existing = await self._find_by_ref(session, dealer_id, order_ref)
            if existing is None:
                raise
            return order_to_proto(existing)
        return order

    @staticmethod
    async def _find_by_ref(session, dealer_id: str, ref: str) -> OrderRow | None:
        return (await session.scalars(
            select(OrderRow).where(OrderRow.dealer_id == dealer_id,
                                   OrderRow.client_order_ref == ref))).first()

    async def get_order(self, order_id: str) -> order_pb2.Order:
        scope = await self.scopes.resolve(current_principal(), "order.read")
        async with self.db.sessions() as session:
            row = await session.get(OrderRow, order_id)
        if row is None or not scope.allows(row.dealer_id):
            raise NotFound(f"order {order_id} not found")
        return order_to_proto(row)

    async def list_orders(self, dealer_id: str, size: int, token: str):
        scope = await self.scopes.resolve(current_principal(), "order.read")
        offset = decode_page_token(token)
        query = select(OrderRow).order_by(OrderRow.submitted_at.desc(), OrderRow.id)
        if dealer_id:
            if not scope.allows(dealer_id):
                return [], "", 0
            query = query.where(OrderRow.dealer_id == dealer_id)
        elif not scope.all_dealers:
            query = query.where(OrderRow.dealer_id.in_(scope.dealer_ids))
        async with self.db.sessions() as session:
            total = (await session.execute(
                select(func.count()).select_from(query.order_by(None).subquery()))).scalar_one()
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        more = len(rows) > size
        return ([order_to_proto(r) for r in rows[:size]],
                encode_page_token(offset + size) if more else "", total)


def page_args(page) -> tuple[int, str]:
    return page_size(page.page_size), page.page_token

"""Catalog, price lists and the order workflow: submit with credit check, approve in
stages, reject, cancel, close a line, read."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC

from qudao.common.v1 import files_pb2
from qudao.order.v1 import events_pb2, order_pb2
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from services.order.adapters import catalog, exposure
from services.order.adapters.orm import (
    OrderApprovalRow,
    OrderLineRow,
    OrderRow,
    PriceListItemRow,
    PriceListRow,
    ProductRow,
)
from services.order.domain.orders import (
    STAGE_ROLES,
    CatalogEntry,
    LineInput,
    OrderStatus,
    Stage,
    cancellable,
    closable_quantity,
    credit_check,
    first_stage,
    order_total,
    price_lines,
)
from services.order.messages import products_from_table, validate_product
from services.order.usecases.common import (
    CATALOG_WRITERS,
    LINE_CLOSERS,
    PRICE_WRITERS,
    PROTO_TO_STATUS,
    UseCaseBase,
    day,
    line_quantities,
    line_to_proto,
    now,
    order_to_proto,
    price_list_to_proto,
    product_to_proto,
    product_values_to_proto,
    refresh_status,
    reload_order,
    today,
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
from shared.events.order import (
    ORDER_APPROVED,
    ORDER_CANCELLED,
    ORDER_LINE_CLOSED,
    ORDER_REJECTED,
    ORDER_SUBMITTED,
    PRICE_LIST_UPSERTED,
    PRODUCT_UPSERTED,
)
from shared.money import Money
from shared.pagination import decode_page_token, encode_page_token
from shared.progress import STORING, VALIDATING, ImportProgress, tracked_import
from shared.tabular import read_table_isolated

APPROVED = 1
REJECTED = 2

# Built once: pricing runs on every order submission. The items of the tier's list
# valid on the day, in one statement.
PRICE_LIST_ITEMS_FOR = (
    select(PriceListItemRow.product_code, PriceListItemRow.unit_price_minor,
           PriceListItemRow.currency)
    .where(PriceListItemRow.price_list_id == (
        select(PriceListRow.id)
        .where(PriceListRow.tier == bindparam("tier"),
               PriceListRow.selling_company == bindparam("company"),
               PriceListRow.valid_from <= bindparam("on"),
               or_(PriceListRow.valid_to == "", PriceListRow.valid_to >= bindparam("on")))
        .order_by(PriceListRow.valid_from.desc()).limit(1).scalar_subquery())))


class OrderUseCases(UseCaseBase):
    # ------------------------------------------------------------------ catalog
    async def upsert_products(self, products: list[order_pb2.Product]) -> tuple[int, int, int]:
        self.require_role(*CATALOG_WRITERS, what="maintain the catalog")
        violations: list[FieldViolation] = []
        if not products:
            violations.append(FieldViolation("products", "at least one product is required"))
        seen: dict[str, int] = {}
        for index, product in enumerate(products):
            violations.extend(validate_product(index, product))
            code = product.code.strip()
            if code in seen:
                violations.append(FieldViolation(f"products[{index}].code",
                                                 f"repeats products[{seen[code]}]"))
            seen[code] = index
        collect(violations)
        async with self.db.write() as session:
            return await self._store_products(session, products)

    async def import_products(self, request: order_pb2.ImportProductsRequest
                              ) -> order_pb2.ImportProductsResponse:
        """HQ's product file: all rows or none (up to 100,000), in one transaction. GTINs
        already held by another product are row errors too, so a file that passes its dry
        run also passes for real; re-importing the same file changes nothing (every row
        ``unchanged``, no event). The rows are checked off the event loop and stored a
        few thousand per statement, with progress for the import job."""
        self.require_role(*CATALOG_WRITERS, what="maintain the catalog")
        with tracked_import() as progress:
            # The parsing process checks the rows too (off this process's GIL).
            numbered, errors = await read_table_isolated(
                request.content, request.filename, request.format, request.encoding,
                then=functools.partial(products_from_table, currency=self.currency))
            progress.update(VALIDATING, 0, len(numbered) + len(errors))
            async with self.db.write() as session:
                gtins = {p.gtin.strip().zfill(14): (n, p) for n, p in numbered}
                for gtin, code in (await catalog.gtin_holders(session, gtins)).items():
                    number, product = gtins[gtin]
                    if code != product.code:
                        errors.append(files_pb2.RowError(
                            row_number=number, column="gtin", code="GTIN_TAKEN",
                            message_zh=f"产品标识 {gtin} 已属于产品 {code}",
                            message_en=f"GTIN {gtin} already belongs to product {code}",
                            value=product.gtin))
                if errors or request.dry_run:
                    return order_pb2.ImportProductsResponse(
                        accepted=not errors,
                        errors=sorted(errors, key=lambda e: (e.row_number, e.column)))
                created, updated, unchanged = await self._store_products(
                    session, [product for _, product in numbered], progress)
        return order_pb2.ImportProductsResponse(accepted=True, created=created,
                                                updated=updated, unchanged=unchanged)

    async def _store_products(self, session, products: list[order_pb2.Product],
                              progress: ImportProgress | None = None
                              ) -> tuple[int, int, int]:
        """New and changed products in a few statements per part (adapters/catalog.py),
        one ProductUpserted each; a GTIN held by another product is refused naming the
        product."""
        moment = now()
        wanted = [dict(code=product.code.strip(), name=product.name.strip(),
                       spec=product.spec.strip(), gtin=product.gtin.strip().zfill(14),
                       product_line=product.product_line.strip(), unit=product.unit.strip(),
                       list_price_minor=product.list_price.amount_minor,
                       currency=product.list_price.currency or self.currency,
                       serial_tracked=product.serial_tracked, updated_at=moment)
                  for product in products]
        stored = await catalog.stored_products(session, (row["code"] for row in wanted))
        holders = await catalog.gtin_holders(session, (row["gtin"] for row in wanted))
        for index, row in enumerate(wanted):
            holder = holders.setdefault(row["gtin"], row["code"])
            if holder != row["code"]:
                raise InvalidArgument.field(
                    f"products[{index}].gtin",
                    f"GTIN {row['gtin']} already belongs to product {holder}")
        new = [row for row in wanted if row["code"] not in stored]
        changed = [row for row in wanted if row["code"] in stored and any(
            stored[row["code"]][name] != row[name] for name in catalog.PRODUCT_FIELDS)]
        if progress is not None:
            progress.update(STORING, 0, len(new) + len(changed))
        try:
            for part in catalog.parts(new + changed):
                await catalog.insert_products(
                    session, [row for row in part if row["code"] not in stored])
                await catalog.update_products(
                    session, [row for row in part if row["code"] in stored])
                await self.outbox.record_many(session, PRODUCT_UPSERTED, [
                    (events_pb2.ProductUpserted(product=product_values_to_proto(row)),
                     row["code"]) for row in part])
                if progress is not None:
                    progress.advance(len(part))
        except IntegrityError as exc:
            # Only a concurrent writer can get here (the GTINs were checked above).
            raise InvalidArgument.field(
                "products", "a GTIN of these products was taken meanwhile; nothing was "
                "stored, try again") from exc
        return len(new), len(changed), len(wanted) - len(new) - len(changed)

    async def get_product(self, code: str) -> order_pb2.Product:
        async with self.db.read() as session:
            row = await session.get(ProductRow, code)
        if row is None:
            raise NotFound(f"product {code} not found")
        return product_to_proto(row)

    async def list_products(self, product_line: str, size: int, token: str):
        offset = decode_page_token(token)
        async with self.db.read() as session:
            query = select(ProductRow).order_by(ProductRow.code)
            if product_line:
                query = query.where(ProductRow.product_line == product_line)
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        more = len(rows) > size
        return [product_to_proto(r) for r in rows[:size]], (
            encode_page_token(offset + size) if more else "")

    # -------------------------------------------------------------- price lists
    async def upsert_price_list(self, price_list: order_pb2.PriceList):
        self.require_role(*PRICE_WRITERS, what="maintain price lists")
        violations: list[FieldViolation] = []
        if not price_list.tier:
            violations.append(FieldViolation("price_list.tier", "is required"))
        valid_from = valid_to = ""
        try:
            valid_from = day(price_list.valid_from, "price_list.valid_from")
            valid_to = day(price_list.valid_to, "price_list.valid_to", required=False)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
        if valid_from and valid_to and valid_to < valid_from:
            violations.append(FieldViolation("price_list.valid_to", "is before valid_from"))
        if not price_list.items:
            violations.append(FieldViolation("price_list.items", "at least one item"))
        codes: dict[str, int] = {}
        for index, item in enumerate(price_list.items):
            where = f"price_list.items[{index}]"
            if item.product_code in codes:
                violations.append(FieldViolation(f"{where}.product_code",
                                                 f"repeats items[{codes[item.product_code]}]"))
            codes[item.product_code] = index
            if item.unit_price.amount_minor <= 0:
                violations.append(FieldViolation(f"{where}.unit_price.amount_minor",
                                                 "must be positive"))
        collect(violations)
        company = self.company(price_list.selling_company)
        async with self.db.write() as session:
            known = set((await session.scalars(
                select(ProductRow.code).where(ProductRow.code.in_(codes)))).all())
            collect([FieldViolation(f"price_list.items[{index}].product_code",
                                    f"unknown product {code}")
                     for code, index in codes.items() if code not in known])
            if price_list.id:
                row = await session.get(PriceListRow, price_list.id)
                if row is None:
                    raise NotFound(f"price list {price_list.id} not found")
            else:
                row = (await session.scalars(select(PriceListRow).where(
                    PriceListRow.tier == price_list.tier,
                    PriceListRow.selling_company == company,
                    PriceListRow.valid_from == valid_from))).first()
            created = row is None
            if row is None:
                row = PriceListRow(id=str(uuid.uuid4()))
                session.add(row)
            row.name = price_list.name.strip() or f"tier {price_list.tier} from {valid_from}"
            row.tier = price_list.tier
            row.selling_company = company
            row.valid_from = valid_from
            row.valid_to = valid_to
            row.updated_at = now()
            row.items = [PriceListItemRow(product_code=item.product_code,
                                          unit_price_minor=item.unit_price.amount_minor,
                                          currency=item.unit_price.currency or self.currency)
                         for item in price_list.items]
            await session.flush()
            message = price_list_to_proto(row)
            await self.outbox.record(session, PRICE_LIST_UPSERTED,
                                     events_pb2.PriceListUpserted(price_list=message), row.id)
        return message, created

    async def list_price_lists(self, tier: int, company: str, valid_on: str, size: int,
                               token: str):
        offset = decode_page_token(token)
        query = select(PriceListRow).order_by(PriceListRow.tier, PriceListRow.selling_company,
                                              PriceListRow.valid_from.desc())
        if tier:
            query = query.where(PriceListRow.tier == tier)
        if company:
            query = query.where(PriceListRow.selling_company == company)
        if valid_on:
            on = day(valid_on, "valid_on")
            query = query.where(PriceListRow.valid_from <= on,
                                or_(PriceListRow.valid_to == "", PriceListRow.valid_to >= on))
        if current_principal().is_dealer_staff and self.tiers is not None:
            # Dealers see only their own tier's lists.
            query = query.where(PriceListRow.tier == await self.tiers.tier_of(
                current_principal().dealer_id))
        async with self.db.read() as session:
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        more = len(rows) > size
        return ([price_list_to_proto(r) for r in rows[:size]],
                encode_page_token(offset + size) if more else "")

    async def prices_for(self, session, dealer_id: str, company: str) -> dict[str, Money]:
        """The dealer's tier's price list valid today (product → unit price)."""
        if self.tiers is None:
            return {}
        tier = await self.tiers.tier_of(dealer_id)
        items = (await session.execute(PRICE_LIST_ITEMS_FOR, {
            "tier": tier, "company": company, "on": today()})).all()
        return {item.product_code: Money(item.unit_price_minor, item.currency)
                for item in items}

    # ------------------------------------------------------------------ orders
    async def submit_order(
        self, dealer_id: str, lines: list[LineInput], client_order_ref: str,
        selling_company: str = "", note: str = "",
    ) -> order_pb2.Order:
        principal = current_principal()
        dealer_id = dealer_id or principal.dealer_id
        if not dealer_id:
            raise InvalidArgument.field("dealer_id", "is required")
        scope = await self.scope("order.submit")
        scope.require(dealer_id)
        if len(client_order_ref) > 64:
            raise InvalidArgument.field("client_order_ref", "must be at most 64 characters")
        if len(note) > 500:
            raise InvalidArgument.field("note", "must be at most 500 characters")
        company = self.company(selling_company)
        order_ref = client_order_ref or uuid.uuid4().hex
        if self.tiers is not None:
            await self.tiers.tier_of(dealer_id)  # warm the cache outside the transaction
        order_id = str(uuid.uuid4())
        try:
            # A repeated client reference is found by the unique constraint when the order
            # is stored (below), not by a query before: one statement less per order.
            async with self.db.write() as session:
                codes = {line.product_code.strip() for line in lines}
                products = (await session.scalars(
                    select(ProductRow).where(ProductRow.code.in_(codes)))).all()
                catalog = {
                    p.code: CatalogEntry(p.code, p.gtin, p.product_line,
                                         Money(p.list_price_minor, p.currency))
                    for p in products
                }
                priced = price_lines(lines, catalog,
                                     await self.prices_for(session, dealer_id, company))
                total = order_total(priced)
                owed, pending, limit = await exposure.figures(session, dealer_id, company,
                                                              lock=True)
                check = credit_check(limit, owed, pending, total.amount_minor)
                stage = first_stage(check)
                moment = now()
                decision = OrderStatus.APPROVED if stage == Stage.NONE else OrderStatus.SUBMITTED
                row = OrderRow(
                    id=order_id, dealer_id=dealer_id, decision=decision, status=decision,
                    client_order_ref=order_ref, total_minor=total.amount_minor,
                    currency=total.currency, submitted_by=principal.subject,
                    submitted_at=moment, updated_at=moment, selling_company=company,
                    awaiting_stage=int(stage), note=note, decision_reason="",
                    credit_passed=check.passed, credit_limit_minor=check.credit_limit,
                    credit_outstanding_minor=check.outstanding,
                    credit_open_orders_minor=check.open_orders,
                    open_value_minor=total.amount_minor,
                    approvals=[],
                    lines=[
                        OrderLineRow(
                            line_no=line.line_no, product_code=line.product_code,
                            gtin=line.gtin, product_line=line.product_line,
                            quantity_ordered=line.quantity, quantity_shipped=0,
                            quantity_received=0, quantity_closed=0, quantity_returned=0,
                            quantity_invoiced=0, quantity_receipted=0, close_reason="",
                            unit_price_minor=line.unit_price.amount_minor,
                            amount_minor=line.amount.amount_minor,
                        )
                        for line in priced
                    ],
                )
                if stage == Stage.NONE:
                    row.approvals.append(OrderApprovalRow(
                        stage=int(Stage.AUTO), decision=APPROVED, decided_by="system",
                        decided_at=moment, comment="credit check passed"))
                session.add(row)
                await exposure.add(session, open_orders={(dealer_id, company):
                                                         total.amount_minor})
                await session.flush()
                order = order_to_proto(row)
                events = [(ORDER_SUBMITTED, events_pb2.OrderSubmitted(order=order), order_id)]
                if stage == Stage.NONE:
                    events.append((ORDER_APPROVED, events_pb2.OrderApproved(
                        order=order, stage=int(Stage.AUTO), fully_approved=True), order_id))
                await self.outbox.record_all(session, events)
        except IntegrityError:
            # A concurrent submit with the same reference won; answer with its order.
            async with self.db.read() as session:
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

    async def _order_in_scope(self, session, order_id: str, action: str) -> OrderRow:
        scope = await self.scope(action)
        row = await session.get(OrderRow, order_id, populate_existing=True)
        if row is None or not scope.allows(row.dealer_id):
            raise NotFound(f"order {order_id} not found")
        return row

    async def decide_order(self, order_id: str, stage_value: int, approve: bool,
                           text: str) -> order_pb2.Order:
        """Approve or reject at a stage. The decision is a conditional UPDATE on the
        order's (decision, awaiting stage): of two racing deciders exactly one changes
        the row; the other finds nothing to update and gets FAILED_PRECONDITION."""
        if stage_value not in (Stage.CHANNEL_MANAGER, Stage.FINANCE):
            raise InvalidArgument.field("stage", "must be channel_manager or finance")
        stage = Stage(stage_value)
        principal = current_principal()
        if not approve and not text.strip():
            raise InvalidArgument.field("reason", "is required to reject an order")
        if len(text) > 500:
            raise InvalidArgument.field("reason" if not approve else "comment",
                                        "must be at most 500 characters")
        async with self.db.write() as session:
            row = await self._order_in_scope(session, order_id, "order.approve")
            if not principal.has_role(*STAGE_ROLES[stage]):
                raise PermissionDenied(f"the {stage.name.lower()} stage is decided by "
                                       f"{', '.join(sorted(STAGE_ROLES[stage]))}")
            moment = now()
            if approve:
                following = {Stage.CHANNEL_MANAGER: Stage.FINANCE,
                             Stage.FINANCE: Stage.NONE}[stage]
                decision = OrderStatus.APPROVED if following == Stage.NONE \
                    else OrderStatus.SUBMITTED
                values = dict(awaiting_stage=int(following), decision=decision,
                              status=decision, updated_at=moment)
            else:
                values = dict(awaiting_stage=0, decision=OrderStatus.REJECTED,
                              status=OrderStatus.REJECTED, decision_reason=text.strip(),
                              updated_at=moment)
            result = await session.execute(
                update(OrderRow)
                .where(OrderRow.id == order_id, OrderRow.decision == OrderStatus.SUBMITTED,
                       OrderRow.awaiting_stage == int(stage))
                .values(**values)
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                raise FailedPrecondition(
                    f"order {order_id} is not awaiting a {stage.name.lower()} decision "
                    f"(status {row.status}, awaiting stage {Stage(row.awaiting_stage).name})",
                    reason="NOT_AWAITING_THIS_STAGE")
            session.add(OrderApprovalRow(order_id=order_id, stage=int(stage),
                                         decision=APPROVED if approve else REJECTED,
                                         decided_by=principal.subject, decided_at=moment,
                                         comment=text.strip()))
            await session.flush()
            await exposure.refresh_orders(session, [order_id])
            row = await reload_order(session, order_id)
            order = order_to_proto(row)
            if approve:
                await self.outbox.record(session, ORDER_APPROVED, events_pb2.OrderApproved(
                    order=order, stage=int(stage),
                    fully_approved=row.awaiting_stage == Stage.NONE), order_id)
            else:
                await self.outbox.record(session, ORDER_REJECTED, events_pb2.OrderRejected(
                    order=order, stage=int(stage), reason=text.strip()), order_id)
        return order

    async def cancel_order(self, order_id: str, reason: str) -> order_pb2.Order:
        principal = current_principal()
        if len(reason) > 500:
            raise InvalidArgument.field("reason", "must be at most 500 characters")
        async with self.db.write() as session:
            row = await self._order_in_scope(session, order_id, "order.cancel")
            if not (principal.is_dealer_staff or principal.has_role("hq_admin",
                                                                    "customer_service")):
                raise PermissionDenied("only the dealer's staff or HQ may cancel an order")
            why = cancellable(OrderStatus(row.decision), line_quantities(row))
            if why:
                raise FailedPrecondition(f"order {order_id} cannot be cancelled: {why}",
                                         reason="NOT_CANCELLABLE")
            # Conditional on "nothing shipped yet" (status submitted or approved), so a
            # shipment committed in between makes this fail instead of both succeeding.
            result = await session.execute(
                update(OrderRow)
                .where(OrderRow.id == order_id,
                       OrderRow.status.in_([OrderStatus.SUBMITTED, OrderStatus.APPROVED]))
                .values(decision=OrderStatus.CANCELLED, status=OrderStatus.CANCELLED,
                        awaiting_stage=0, decision_reason=reason.strip(), updated_at=now())
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                raise FailedPrecondition(f"order {order_id} cannot be cancelled any more",
                                         reason="NOT_CANCELLABLE")
            await exposure.refresh_orders(session, [order_id])
            row = await reload_order(session, order_id)
            order = order_to_proto(row)
            await self.outbox.record(session, ORDER_CANCELLED, events_pb2.OrderCancelled(
                order=order, reason=reason.strip()), order_id)
        return order

    async def close_order_line(self, order_id: str, line_no: int, quantity: int,
                               reason: str) -> order_pb2.Order:
        if not reason.strip():
            raise InvalidArgument.field("reason", "is required: the dealer sees it")
        async with self.db.write() as session:
            scope = await self.scope("order.read")
            row = await session.get(OrderRow, order_id, with_for_update=True,
                                    populate_existing=True)
            if row is None or not scope.allows(row.dealer_id):
                raise NotFound(f"order {order_id} not found")
            self.require_role(*LINE_CLOSERS, what="close order lines")
            if row.decision != OrderStatus.APPROVED:
                raise FailedPrecondition(f"order {order_id} is {row.status}; only approved "
                                         "orders have lines to close")
            line = next((x for x in row.lines if x.line_no == line_no), None)
            if line is None:
                raise InvalidArgument.field("line_no", f"order has no line {line_no}")
            taken = closable_quantity(line.quantity_ordered, line.quantity_shipped,
                                      line.quantity_closed, quantity)
            line.quantity_closed += taken
            line.close_reason = reason.strip()
            row.updated_at = now()
            refresh_status(row)
            await session.flush()
            await exposure.refresh_orders(session, [order_id])
            order = order_to_proto(row)
            await self.outbox.record(session, ORDER_LINE_CLOSED, events_pb2.OrderLineClosed(
                order_id=order_id, dealer_id=row.dealer_id,
                line=line_to_proto(line, row.currency), quantity_closed=taken,
                reason=reason.strip()), order_id)
        return order

    async def get_order(self, order_id: str) -> order_pb2.Order:
        async with self.db.read() as session:
            row = await self._order_in_scope(session, order_id, "order.read")
            return order_to_proto(row)

    async def list_orders(self, request: order_pb2.ListOrdersRequest, size: int, token: str):
        scope = await self.scope("order.read")
        offset = decode_page_token(token)
        query = select(OrderRow).order_by(OrderRow.submitted_at.desc(), OrderRow.id)
        if request.dealer_id:
            if not scope.allows(request.dealer_id):
                return [], "", 0
            query = query.where(OrderRow.dealer_id == request.dealer_id)
        elif not scope.all_dealers:
            query = query.where(OrderRow.dealer_id.in_(scope.dealer_ids))
        if request.statuses:
            wanted = [PROTO_TO_STATUS[s].value for s in request.statuses if s in PROTO_TO_STATUS]
            query = query.where(OrderRow.status.in_(wanted))
        if request.awaiting_approval:
            query = query.where(OrderRow.awaiting_stage == request.awaiting_approval,
                                OrderRow.decision == OrderStatus.SUBMITTED)
        if request.HasField("submitted_after"):
            query = query.where(OrderRow.submitted_at >= request.submitted_after.ToDatetime(
                tzinfo=UTC))
        if request.HasField("submitted_before"):
            query = query.where(OrderRow.submitted_at < request.submitted_before.ToDatetime(
                tzinfo=UTC))
        async with self.db.read() as session:
            total = (await session.execute(
                select(func.count()).select_from(query.order_by(None).subquery()))).scalar_one()
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        more = len(rows) > size
        return ([order_to_proto(r) for r in rows[:size]],
                encode_page_token(offset + size) if more else "", total)

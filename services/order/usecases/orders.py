"""The catalog, price lists and the order workflow, as handlers: submit with the credit
check (an order over the available credit waits for its channel manager), approve in
stages, reject, cancel, close a line, read. Out of the caller's scope an order is
NOT_FOUND."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from services.order import messages
from services.order.domain.orders import (
    APPROVED,
    CATALOG_WRITERS,
    LINE_CLOSERS,
    NEXT_STAGE,
    PRICE_WRITERS,
    REJECTED,
    STAGE_ROLES,
    Approval,
    GtinTaken,
    LineInput,
    Order,
    OrderLine,
    OrderQuery,
    OrderStatus,
    PriceList,
    PriceListQuery,
    Product,
    ProductImport,
    RefTaken,
    RowError,
    Stage,
    cancellable,
    closable_quantity,
    credit_check,
    first_stage,
    normalized,
    order_total,
    price_lines,
    product_violations,
)
from services.order.usecases.common import day, require_role, visible
from services.order.usecases.ports import OrderUnitOfWork, Tiers
from shared.clock import Clock
from shared.context import Principal
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
from shared.ids import IdSource
from shared.pagination import Page, PageRequest
from shared.progress import STORING, VALIDATING, ImportProgress
from shared.scope import Scopes

# ------------------------------------------------------------------------- catalog

# A product file's rows as products (with their row numbers) and the rows' errors.
CheckedProducts = tuple[list[tuple[int, Product]], list[RowError]]
# Products per write between event-loop turns.
PART_PRODUCTS = 1_000


async def upsert_products(products: list[Product], *, who: Principal, uow: OrderUnitOfWork,
                          clock: Clock, currency: str) -> tuple[int, int, int]:
    """(created, updated, unchanged); every bad field named, nothing stored then."""
    require_role(who, CATALOG_WRITERS, "maintain the catalog")
    violations: list[FieldViolation] = []
    if not products:
        violations.append(FieldViolation("products", "at least one product is required"))
    seen: dict[str, int] = {}
    for index, product in enumerate(products):
        violations.extend(product_violations(index, product))
        code = product.code.strip()
        if code in seen:
            violations.append(FieldViolation(f"products[{index}].code",
                                             f"repeats products[{seen[code]}]"))
        seen[code] = index
    collect(violations)
    async with uow:
        counts = await _store_products(uow, products, clock, currency)
        await uow.commit()
    return counts


async def import_products(checked: CheckedProducts, dry_run: bool, *, who: Principal,
                          uow: OrderUnitOfWork, clock: Clock, currency: str,
                          progress: ImportProgress | None = None) -> ProductImport:
    """HQ's product file (its rows already checked: ``messages.products_from_table``),
    all rows or none, up to 100,000, in one transaction. GTINs already held by another
    product are row errors too, so a file that passes its dry run also passes for real;
    re-importing the same file changes nothing (every row ``unchanged``, no event)."""
    require_role(who, CATALOG_WRITERS, "maintain the catalog")
    numbered, errors = checked
    if progress is not None:
        progress.update(VALIDATING, 0, len(numbered) + len(errors))
    async with uow:
        gtins = {p.gtin.strip().zfill(14): (n, p) for n, p in numbered}
        for gtin, code in (await uow.products.gtin_owners(gtins)).items():
            number, product = gtins[gtin]
            if code != product.code:
                errors.append(RowError(
                    row_number=number, column="gtin", code="GTIN_TAKEN",
                    message_zh=f"产品标识 {gtin} 已属于产品 {code}",
                    message_en=f"GTIN {gtin} already belongs to product {code}",
                    value=product.gtin))
        if errors or dry_run:
            return ProductImport(not errors,
                                 sorted(errors, key=lambda e: (e.row_number, e.column)))
        created, updated, unchanged = await _store_products(
            uow, [product for _, product in numbered], clock, currency, progress)
        await uow.commit()
    return ProductImport(True, [], created, updated, unchanged)


async def _store_products(uow: OrderUnitOfWork, products: list[Product], clock: Clock,
                          currency: str, progress: ImportProgress | None = None
                          ) -> tuple[int, int, int]:
    """New and changed products a thousand per statement, not one lookup and flush per
    product (a 100,000-row file took over 15 minutes); a GTIN another product holds is
    refused naming the product."""
    moment = clock.now()
    wanted = [normalized(given, currency) for given in products]
    stored = await uow.products.stored(product.code for product in wanted)
    holders = await uow.products.gtin_owners(product.gtin for product in wanted)
    for index, product in enumerate(wanted):
        product.updated_at = moment
        if holders.setdefault(product.gtin, product.code) != product.code:
            raise InvalidArgument.field(
                f"products[{index}].gtin",
                f"GTIN {product.gtin} already belongs to product {holders[product.gtin]}")
    new = [p for p in wanted if p.code not in stored]
    changed = [p for p in wanted if p.code in stored and not stored[p.code].same_as(p)]
    if progress is not None:
        progress.update(STORING, 0, len(new) + len(changed))
    try:
        todo = new + changed
        for part in (todo[start:start + PART_PRODUCTS]
                     for start in range(0, len(todo), PART_PRODUCTS)):
            await uow.products.add_many([p for p in part if p.code not in stored])
            await uow.products.save_many([p for p in part if p.code in stored])
            for product in part:
                uow.events.record(PRODUCT_UPSERTED, messages.product_upserted(product),
                                  product.code)
            await uow.write_events()
            if progress is not None:
                progress.advance(len(part))
            await asyncio.sleep(0)  # the service's other calls get their turn
    except GtinTaken as exc:
        # Only a concurrent writer gets here: the GTINs were checked above.
        raise InvalidArgument.field("products", "a GTIN of these products was taken "
                                    "meanwhile; nothing was stored, try again") from exc
    return len(new), len(changed), len(wanted) - len(new) - len(changed)


async def get_product(code: str, *, uow: OrderUnitOfWork) -> Product:
    async with uow.read():
        product = await uow.products.get(code)
    if product is None:
        raise NotFound(f"product {code} not found")
    return product


async def list_products(product_line: str, page: PageRequest, *,
                        uow: OrderUnitOfWork) -> Page[Product]:
    async with uow.read():
        return await uow.products.page(product_line, page)


# --------------------------------------------------------------------- price lists

async def upsert_price_list(price_list: PriceList, *, who: Principal, uow: OrderUnitOfWork,
                            clock: Clock, ids: IdSource) -> tuple[PriceList, bool]:
    """The list (a new one when no list has its id, or its tier, company and first
    day), and whether it was created."""
    require_role(who, PRICE_WRITERS, "maintain price lists")
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
        if item.unit_price_minor <= 0:
            violations.append(FieldViolation(f"{where}.unit_price.amount_minor",
                                             "must be positive"))
    collect(violations)
    async with uow:
        known = await uow.products.known(codes)
        collect([FieldViolation(f"price_list.items[{index}].product_code",
                                f"unknown product {code}")
                 for code, index in codes.items() if code not in known])
        if price_list.id:
            stored = await uow.price_lists.get(price_list.id)
            if stored is None:
                raise NotFound(f"price list {price_list.id} not found")
        else:
            stored = await uow.price_lists.find(price_list.tier, price_list.selling_company,
                                                valid_from)
        saved = PriceList(
            id=stored.id if stored else ids.new_id(),
            name=price_list.name.strip() or f"tier {price_list.tier} from {valid_from}",
            tier=price_list.tier, selling_company=price_list.selling_company,
            valid_from=valid_from, valid_to=valid_to, updated_at=clock.now(),
            items=list(price_list.items))
        await uow.price_lists.save(saved)
        uow.events.record(PRICE_LIST_UPSERTED, messages.price_list_upserted(saved), saved.id)
        await uow.commit()
    return saved, stored is None


async def list_price_lists(query: PriceListQuery, page: PageRequest, *, who: Principal,
                           uow: OrderUnitOfWork, tiers: Tiers) -> Page[PriceList]:
    if query.valid_on:
        query = replace(query, valid_on=day(query.valid_on, "valid_on"))
    only_tier = None
    if who.is_dealer_staff:
        # Dealers see only their own tier's lists.
        only_tier = await tiers.tier_of(who.dealer_id)
    async with uow.read():
        return await uow.price_lists.page(query, page, only_tier)


# -------------------------------------------------------------------------- orders

@dataclass(frozen=True)
class OrderSubmission:
    dealer_id: str
    lines: list[LineInput]
    client_order_ref: str
    selling_company: str
    note: str = ""


async def submit_order(submission: OrderSubmission, *, who: Principal, uow: OrderUnitOfWork,
                       clock: Clock, ids: IdSource, scopes: Scopes, tiers: Tiers) -> Order:
    """Priced from the dealer's tier's price list valid today. An order within the
    available credit is approved at once; one over it waits for the channel manager
    (credit hold). A client reference submitted again answers the order it made."""
    dealer_id = submission.dealer_id or who.dealer_id
    if not dealer_id:
        raise InvalidArgument.field("dealer_id", "is required")
    (await scopes.resolve(who, "order.submit")).require(dealer_id)
    if len(submission.client_order_ref) > 64:
        raise InvalidArgument.field("client_order_ref", "must be at most 64 characters")
    if len(submission.note) > 500:
        raise InvalidArgument.field("note", "must be at most 500 characters")
    company = submission.selling_company
    order_ref = submission.client_order_ref or ids.new_id().replace("-", "")
    tier = await tiers.tier_of(dealer_id)  # outside the transaction: it may call identity
    order_id = ids.new_id()
    try:
        async with uow:
            moment = clock.now()
            catalog, prices = await uow.products.priced(
                {line.product_code.strip() for line in submission.lines}, tier, company,
                moment.date().isoformat())
            priced = price_lines(submission.lines, catalog, prices)
            total = order_total(priced)
            owed, pending, limit = await uow.accounts.credit_figures(dealer_id, company)
            check = credit_check(limit, owed, pending, total.amount_minor)
            stage = first_stage(check)
            decision = OrderStatus.APPROVED if stage == Stage.NONE else OrderStatus.SUBMITTED
            order = Order(
                id=order_id, dealer_id=dealer_id, decision=decision, status=decision,
                client_order_ref=order_ref, total_minor=total.amount_minor,
                currency=total.currency, submitted_by=who.subject, submitted_at=moment,
                selling_company=company, awaiting_stage=int(stage), decision_reason="",
                note=submission.note, updated_at=moment, credit_passed=check.passed,
                credit_limit_minor=check.credit_limit,
                credit_outstanding_minor=check.outstanding,
                credit_open_orders_minor=check.open_orders,
                open_value_minor=total.amount_minor,
                lines=[OrderLine(line.line_no, line.product_code, line.gtin,
                                 line.product_line, line.quantity,
                                 line.unit_price.amount_minor, line.amount.amount_minor)
                       for line in priced])
            if stage == Stage.NONE:
                order.approvals.append(Approval(int(Stage.AUTO), APPROVED, "system", moment,
                                                "credit check passed"))
            # A repeated client reference is found by the unique key when the order is
            # stored, not by a query before: one statement less per order.
            await uow.orders.add(order)
            await uow.accounts.add_open_orders(dealer_id, company, total.amount_minor)
            uow.events.record(ORDER_SUBMITTED, messages.order_submitted(order), order_id)
            if stage == Stage.NONE:
                uow.events.record(ORDER_APPROVED, messages.order_approved(
                    order, int(Stage.AUTO), fully_approved=True), order_id)
            await uow.commit()
    except RefTaken:
        # A concurrent submit with the same reference won; answer with its order.
        async with uow.read():
            existing = await uow.orders.by_ref(dealer_id, order_ref)
        if existing is None:
            raise
        return existing
    return order


async def _order_in_scope(uow: OrderUnitOfWork, scopes: Scopes, who: Principal,
                          order_id: str, action: str, *, for_update: bool = False) -> Order:
    scope = await scopes.resolve(who, action)
    order = await uow.orders.get(order_id, for_update=for_update)
    if order is None or not scope.allows(order.dealer_id):
        raise NotFound(f"order {order_id} not found")
    return order


async def decide_order(order_id: str, stage_value: int, approve: bool, text: str, *,
                       who: Principal, uow: OrderUnitOfWork, clock: Clock,
                       scopes: Scopes) -> Order:
    """Approve or reject at a stage. The decision is conditional on the order's
    (decision, awaiting stage): of two racing deciders exactly one changes the order;
    the other gets FAILED_PRECONDITION."""
    if stage_value not in (Stage.CHANNEL_MANAGER, Stage.FINANCE):
        raise InvalidArgument.field("stage", "must be channel_manager or finance")
    stage = Stage(stage_value)
    if not approve and not text.strip():
        raise InvalidArgument.field("reason", "is required to reject an order")
    if len(text) > 500:
        raise InvalidArgument.field("reason" if not approve else "comment",
                                    "must be at most 500 characters")
    async with uow:
        order = await _order_in_scope(uow, scopes, who, order_id, "order.approve")
        if not who.has_role(*STAGE_ROLES[stage]):
            raise PermissionDenied(f"the {stage.name.lower()} stage is decided by "
                                   f"{', '.join(sorted(STAGE_ROLES[stage]))}")
        moment = clock.now()
        following = NEXT_STAGE[stage] if approve else Stage.NONE
        if not approve:
            decision = OrderStatus.REJECTED
        elif following == Stage.NONE:
            decision = OrderStatus.APPROVED
        else:
            decision = OrderStatus.SUBMITTED
        if not await uow.orders.decide(order_id, stage, decision, following,
                                       "" if approve else text.strip(), moment):
            raise FailedPrecondition(
                f"order {order_id} is not awaiting a {stage.name.lower()} decision "
                f"(status {order.status}, awaiting stage {Stage(order.awaiting_stage).name})",
                reason="NOT_AWAITING_THIS_STAGE")
        await uow.orders.add_approval(order_id, Approval(
            int(stage), APPROVED if approve else REJECTED, who.subject, moment, text.strip()))
        await uow.orders.refresh_exposure([order_id])
        order = await uow.orders.get(order_id)
        if approve:
            uow.events.record(ORDER_APPROVED, messages.order_approved(
                order, int(stage), fully_approved=order.awaiting_stage == Stage.NONE),
                order_id)
        else:
            uow.events.record(ORDER_REJECTED, messages.order_rejected(
                order, int(stage), text.strip()), order_id)
        await uow.commit()
    return order


async def cancel_order(order_id: str, reason: str, *, who: Principal, uow: OrderUnitOfWork,
                       clock: Clock, scopes: Scopes) -> Order:
    if len(reason) > 500:
        raise InvalidArgument.field("reason", "must be at most 500 characters")
    async with uow:
        order = await _order_in_scope(uow, scopes, who, order_id, "order.cancel")
        if not (who.is_dealer_staff or who.has_role("hq_admin", "customer_service")):
            raise PermissionDenied("only the dealer's staff or HQ may cancel an order")
        why = cancellable(OrderStatus(order.decision),
                          [line.quantities() for line in order.lines])
        if why:
            raise FailedPrecondition(f"order {order_id} cannot be cancelled: {why}",
                                     reason="NOT_CANCELLABLE")
        # Conditional on "nothing shipped yet", so a shipment committed in between makes
        # this fail instead of both succeeding.
        if not await uow.orders.cancel(order_id, reason.strip(), clock.now()):
            raise FailedPrecondition(f"order {order_id} cannot be cancelled any more",
                                     reason="NOT_CANCELLABLE")
        await uow.orders.refresh_exposure([order_id])
        order = await uow.orders.get(order_id)
        uow.events.record(ORDER_CANCELLED, messages.order_cancelled(order, reason.strip()),
                          order_id)
        await uow.commit()
    return order


async def close_order_line(order_id: str, line_no: int, quantity: int, reason: str, *,
                           who: Principal, uow: OrderUnitOfWork, clock: Clock,
                           scopes: Scopes) -> Order:
    """Close (part of) a line's unshipped remainder: it will not ship."""
    if not reason.strip():
        raise InvalidArgument.field("reason", "is required: the dealer sees it")
    async with uow:
        order = await _order_in_scope(uow, scopes, who, order_id, "order.read",
                                      for_update=True)
        require_role(who, LINE_CLOSERS, "close order lines")
        if order.decision != OrderStatus.APPROVED:
            raise FailedPrecondition(f"order {order_id} is {order.status}; only approved "
                                     "orders have lines to close")
        line = order.line(line_no)
        if line is None:
            raise InvalidArgument.field("line_no", f"order has no line {line_no}")
        taken = closable_quantity(line.quantity_ordered, line.quantity_shipped,
                                  line.quantity_closed, quantity)
        line.quantity_closed += taken
        line.close_reason = reason.strip()
        moment = clock.now()
        order.updated_at = moment
        order.refresh_status(moment)
        await uow.orders.save(order)
        await uow.orders.refresh_exposure([order_id])
        uow.events.record(ORDER_LINE_CLOSED, messages.order_line_closed(
            order, line, taken, reason.strip()), order_id)
        await uow.commit()
    return order


async def get_order(order_id: str, *, who: Principal, uow: OrderUnitOfWork,
                    scopes: Scopes) -> Order:
    async with uow.read():
        return await _order_in_scope(uow, scopes, who, order_id, "order.read")


async def list_orders(query: OrderQuery, page: PageRequest, *, who: Principal,
                      uow: OrderUnitOfWork, scopes: Scopes) -> Page[Order]:
    """Newest first, counted; only the dealers in the caller's scope."""
    dealers = visible(await scopes.resolve(who, "order.read"), query.dealer_id)
    if dealers is not None and not dealers:
        return Page([], "", 0)
    async with uow.read():
        return await uow.orders.page(replace(query, dealer_ids=dealers), page)


"""In-memory order repositories and unit of work for the service-layer tests. The stores
refuse what the database refuses: a part of an accepted upload recorded twice, an upload
superseded twice, a rebate credit booked twice, a shipment, invoice or payment id stored
twice, a client order reference or return request id used twice, a GTIN held by two
products; conditional changes answer False when the row moved on. What one store reads
of another (an order's exposure on its account, a product's tier price) goes through
the unit of work, so a rolled-back use case leaves every store as it was."""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.order.domain.accounts import Account, AccountFilter, RebateCredit
from services.order.domain.fulfilment import (
    OPEN,
    Discrepancy,
    DiscrepancyQuery,
    Receipt,
    Shipment,
    ShipmentLine,
    ShipmentQuery,
)
from services.order.domain.ingest import (
    InvoiceIn,
    OrderLineState,
    OrderShipping,
    PaymentIn,
    ProductIdentity,
    RecordedShipment,
    ReturnToCredit,
)
from services.order.domain.inventory import (
    Stock,
    StockKey,
    StockMove,
    StockQuery,
    apply_moves,
)
from services.order.domain.orders import (
    Approval,
    CatalogEntry,
    GtinTaken,
    LineValue,
    Order,
    OrderLine,
    OrderQuery,
    OrderStatus,
    PriceList,
    PriceListQuery,
    Product,
    RefTaken,
    Stage,
    open_value,
)
from services.order.domain.returns import (
    OPEN_OR_DONE,
    BatchStock,
    ProductReturn,
    ReturnLineInput,
    ReturnQuery,
    ReturnRepeated,
    ReturnStatus,
)
from services.order.domain.statements import (
    ISSUED,
    SUPERSEDED,
    DueItem,
    Entry,
    IssuedLine,
    LedgerQuery,
    Statement,
    StatementQuery,
)
from shared.money import Money
from shared.pagination import Page, PageRequest, page_of_all
from shared.testing import FakeUnitOfWork


@dataclass
class FakeStock:
    positions: dict[StockKey, Stock] = field(default_factory=dict)

    async def move(self, moves: Iterable[StockMove], moment: datetime) -> None:
        apply_moves(self.positions, moves)

    async def get_many(self, keys: Iterable[StockKey]) -> dict[StockKey, Stock]:
        return {k: self.positions[k] for k in keys if k in self.positions}

    async def adjust(self, dealer_id: str, changes: dict[tuple[str, str], tuple[int, int]],
                     moment: datetime) -> None:
        for (code, batch), (received, returned) in changes.items():
            key = StockKey(dealer_id, code, batch)
            if key in self.positions:
                stock = self.positions[key]
                self.positions[key] = replace(stock, received=stock.received + received,
                                              returned=stock.returned + returned)

    async def expiries(self, dealer_id: str) -> dict[tuple[str, str], str]:
        return {(k.product_code, k.batch): s.expiry_date for k, s in self.positions.items()
                if k.dealer_id == dealer_id}

    async def page(self, query: StockQuery, page: PageRequest) -> Page[Stock]:
        return page_of_all([
            s for k, s in sorted(self.positions.items(),
                                 key=lambda item: (item[0].dealer_id, item[0].product_code,
                                                   item[0].batch))
            if _dealer_matches(k.dealer_id, query.dealer_id, query.dealer_ids)
            and (query.include_empty or s.on_hand > 0)], page)


@dataclass
class FakeAcceptedFlow:
    # (upload id, part index) → (moves, undone)
    parts: dict[tuple[str, int], tuple[list[StockMove], bool]] = field(default_factory=dict)
    superseded: dict[str, str] = field(default_factory=dict)

    async def record_part(self, upload_id: str, part_index: int, dealer_id: str,
                          moves: list[StockMove], moment: datetime) -> bool:
        if (upload_id, part_index) in self.parts:
            return False
        self.parts[(upload_id, part_index)] = (list(moves), False)
        return True

    async def is_superseded(self, upload_id: str) -> bool:
        return upload_id in self.superseded

    async def supersede(self, upload_id: str, superseded_by: str,
                        moment: datetime) -> list[StockMove]:
        if upload_id in self.superseded:
            return []
        self.superseded[upload_id] = superseded_by
        given_back: list[StockMove] = []
        for (uid, index), (moves, undone) in list(self.parts.items()):
            if uid == upload_id and not undone:
                given_back.extend(moves)
                self.parts[(uid, index)] = (moves, True)
        return given_back


@dataclass
class FakeAccounts:
    rows: dict[tuple[str, str], Account] = field(default_factory=dict)
    # (dealer, company) → [outstanding, open orders]
    running: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    # (dealer, company) → (invoices, everything settling them)
    due: dict[tuple[str, str], tuple[list[DueItem], int]] = field(default_factory=dict)

    async def get(self, dealer_id: str, company: str, *,
                  for_update: bool = False) -> Account | None:
        return self.rows.get((dealer_id, company))

    async def save(self, account: Account) -> None:
        self.rows[(account.dealer_id, account.selling_company)] = account

    async def matching(self, which: AccountFilter) -> list[Account]:
        return [a for key, a in sorted(self.rows.items())
                if (not which.dealer_id or a.dealer_id == which.dealer_id)
                and (which.dealer_ids is None or a.dealer_id in which.dealer_ids)
                and (not which.selling_company or a.selling_company == which.selling_company)]

    async def exposures(self, keys):
        return {key: tuple(self.running[key]) for key in keys if key in self.running}

    async def credit_figures(self, dealer_id: str, company: str) -> tuple[int, int, int]:
        owed, pending = self.running.get((dealer_id, company), [0, 0])
        account = self.rows.get((dealer_id, company))
        return owed, pending, account.credit_limit_minor if account else 0

    async def add_outstanding(self, dealer_id: str, company: str, amount_minor: int) -> None:
        self.running.setdefault((dealer_id, company), [0, 0])[0] += amount_minor

    async def add_open_orders(self, dealer_id: str, company: str, amount_minor: int) -> None:
        self.running.setdefault((dealer_id, company), [0, 0])[1] += amount_minor

    async def dues(self, keys):
        return {key: self.due[key] for key in keys if key in self.due}


@dataclass
class FakeRebateCredits:
    rows: dict[str, RebateCredit] = field(default_factory=dict)

    async def add(self, credit: RebateCredit, moment: datetime) -> bool:
        if credit.credit_id in self.rows:
            return False
        self.rows[credit.credit_id] = credit
        return True




def _dealer_matches(dealer_id: str, named: str, allowed: frozenset[str] | None) -> bool:
    return (not named or dealer_id == named) and (allowed is None or dealer_id in allowed)


class AlreadyStored(Exception):
    """A primary key taken (the database would refuse the insert)."""


@dataclass
class FakeShipments:
    rows: dict[str, Shipment] = field(default_factory=dict)
    header_hashes: dict[str, str] = field(default_factory=dict)
    digests: dict[tuple[str, int], str] = field(default_factory=dict)

    async def header_digests(self, shipment_ids: Iterable[str]) -> dict[str, str]:
        return {i: self.header_hashes[i] for i in shipment_ids if i in self.header_hashes}

    async def line_digests(self, shipment_ids: Iterable[str]) -> dict[tuple[str, int], str]:
        wanted = set(shipment_ids)
        return {key: digest for key, digest in self.digests.items() if key[0] in wanted}

    async def add(self, shipments: list[RecordedShipment], moment: datetime) -> None:
        for recorded in shipments:
            header = recorded.shipment
            sid = header.shipment_id
            if recorded.new:
                if sid in self.rows:
                    raise AlreadyStored(sid)
                self.rows[sid] = Shipment(sid, header.dealer_id, header.selling_company,
                                          header.ship_date, header.carrier, header.waybill_no,
                                          False, moment)
                self.header_hashes[sid] = header.header_hash
            for stored in recorded.lines:
                line = stored.line
                if (sid, line.line_no) in self.digests:
                    raise AlreadyStored((sid, line.line_no))
                self.digests[(sid, line.line_no)] = line.content_hash
                self.rows[sid].lines.append(ShipmentLine(
                    line.line_no, line.order_id, line.order_line_no, line.product_code,
                    stored.gtin, line.batch, line.expiry_date, line.production_date,
                    line.serials, line.quantity))

    async def dealers(self, shipment_ids: Iterable[str]) -> dict[str, str]:
        return {i: self.rows[i].dealer_id for i in shipment_ids if i in self.rows}

    async def order_line_of(self, shipment_id: str, line_no: int) -> tuple[str, int] | None:
        shipment = self.rows.get(shipment_id)
        line = next((x for x in shipment.lines if x.line_no == line_no), None) \
            if shipment else None
        return None if line is None else (line.order_id, line.order_line_no)

    async def get(self, shipment_id: str) -> Shipment | None:
        return copy.deepcopy(self.rows.get(shipment_id))

    async def page(self, query: ShipmentQuery, page: PageRequest) -> Page[Shipment]:
        found = [s for s in sorted(self.rows.values(), key=lambda s: s.id)
                 if _dealer_matches(s.dealer_id, query.dealer_id, query.dealer_ids)]
        return page_of_all(copy.deepcopy(found), page)

    async def save_receipt(self, shipment: Shipment) -> None:
        self.rows[shipment.id] = replace(copy.deepcopy(shipment), received=True)

    async def lines_of_batch(self, shipment_id: str, dealer_id: str, product_code: str,
                             batch: str) -> list[ShipmentLine]:
        shipment = self.rows.get(shipment_id)
        if shipment is None or shipment.dealer_id != dealer_id:
            return []
        return [line for line in shipment.lines
                if line.product_code == product_code and line.batch == batch]


@dataclass
class FakeOrders:
    rows: dict[str, Order] = field(default_factory=dict)
    # The accounts of the unit of work (exposure moves with the orders).
    accounts: Callable[[], FakeAccounts] = field(default=lambda: FakeAccounts())

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        return copy.deepcopy(self.rows.get(order_id))

    async def by_ref(self, dealer_id: str, client_order_ref: str) -> Order | None:
        return copy.deepcopy(next((o for o in self.rows.values() if o.dealer_id == dealer_id
                                   and o.client_order_ref == client_order_ref), None))

    async def add(self, order: Order) -> None:
        if await self.by_ref(order.dealer_id, order.client_order_ref) is not None:
            raise RefTaken(order.client_order_ref)
        self.rows[order.id] = copy.deepcopy(order)

    async def save(self, order: Order) -> None:
        self.rows[order.id] = copy.deepcopy(order)

    async def decide(self, order_id: str, stage: Stage, decision: OrderStatus,
                     next_stage: Stage, reason: str, moment: datetime) -> bool:
        order = self.rows[order_id]
        if order.decision != OrderStatus.SUBMITTED or order.awaiting_stage != stage:
            return False
        order.decision = order.status = decision
        order.awaiting_stage = int(next_stage)
        order.updated_at = moment
        if decision == OrderStatus.REJECTED:
            order.decision_reason = reason
        return True

    async def add_approval(self, order_id: str, approval: Approval) -> None:
        self.rows[order_id].approvals.append(approval)

    async def cancel(self, order_id: str, reason: str, moment: datetime) -> bool:
        order = self.rows[order_id]
        if order.status not in (OrderStatus.SUBMITTED, OrderStatus.APPROVED):
            return False
        order.decision = order.status = OrderStatus.CANCELLED
        order.awaiting_stage, order.decision_reason, order.updated_at = 0, reason, moment
        return True

    async def page(self, query: OrderQuery, page: PageRequest) -> Page[Order]:
        found = [o for o in sorted(self.rows.values(), key=lambda o: o.id)
                 if _dealer_matches(o.dealer_id, query.dealer_id, query.dealer_ids)
                 and (not query.statuses or o.status in query.statuses)]
        return page_of_all(copy.deepcopy(found), page)

    async def add_to_line(self, order_id: str, line_no: int, **quantities: int) -> None:
        line = self.rows[order_id].line(line_no)
        for name, quantity in quantities.items():
            setattr(line, name, getattr(line, name) + quantity)

    async def shipping(self, order_ids: Iterable[str]) -> tuple[
            dict[str, OrderShipping], dict[tuple[str, int], OrderLineState]]:
        orders = [self.rows[i] for i in set(order_ids) if i in self.rows]
        return ({o.id: OrderShipping(o.id, o.dealer_id, o.decision, o.status) for o in orders},
                {(o.id, line.line_no): OrderLineState(
                    o.id, line.line_no, o.dealer_id, o.decision == OrderStatus.APPROVED,
                    line.product_code, line.gtin, line.quantity_ordered,
                    line.quantity_shipped, line.quantity_closed)
                 for o in orders for line in o.lines})

    async def add_shipped(self, quantities: dict[tuple[str, int], int]) -> None:
        for (order_id, line_no), quantity in quantities.items():
            await self.add_to_line(order_id, line_no, quantity_shipped=quantity)

    async def set_statuses(self, statuses: dict[str, OrderStatus], moment: datetime) -> None:
        for order_id, status in statuses.items():
            self.rows[order_id].status = status
            self.rows[order_id].updated_at = moment

    async def refresh_exposure(self, order_ids: Iterable[str]) -> None:
        for order_id in set(order_ids):
            order = self.rows[order_id]
            value = open_value(OrderStatus(order.status), [
                LineValue(line.quantity_ordered, line.quantity_closed,
                          line.quantity_invoiced, line.unit_price_minor)
                for line in order.lines])
            await self.accounts().add_open_orders(order.dealer_id, order.selling_company,
                                                  value - order.open_value_minor)
            order.open_value_minor = value


@dataclass
class FakePriceLists:
    rows: dict[str, PriceList] = field(default_factory=dict)

    async def get(self, price_list_id: str) -> PriceList | None:
        return copy.deepcopy(self.rows.get(price_list_id))

    async def find(self, tier: int, company: str, valid_from: str) -> PriceList | None:
        return copy.deepcopy(next((p for p in self.rows.values() if (
            p.tier, p.selling_company, p.valid_from) == (tier, company, valid_from)), None))

    async def save(self, price_list: PriceList) -> None:
        self.rows[price_list.id] = copy.deepcopy(price_list)

    async def page(self, query: PriceListQuery, page: PageRequest,
                   only_tier: int | None = None) -> Page[PriceList]:
        found = [p for p in self.rows.values()
                 if (not query.tier or p.tier == query.tier)
                 and (only_tier is None or p.tier == only_tier)]
        return page_of_all(copy.deepcopy(found), page)

    def prices_for(self, tier: int, company: str, on: str) -> dict[str, Money]:
        valid = sorted((p for p in self.rows.values()
                        if p.tier == tier and p.selling_company == company
                        and p.valid_from <= on and (not p.valid_to or p.valid_to >= on)),
                       key=lambda p: p.valid_from)
        return {item.product_code: Money(item.unit_price_minor, item.currency)
                for item in valid[-1].items} if valid else {}


@dataclass
class FakeProducts:
    rows: dict[str, Product] = field(default_factory=dict)
    price_lists: Callable[[], FakePriceLists] = field(default=lambda: FakePriceLists())

    async def get(self, code: str) -> Product | None:
        return copy.deepcopy(self.rows.get(code))

    async def stored(self, codes: Iterable[str]) -> dict[str, Product]:
        return {code: copy.deepcopy(self.rows[code]) for code in codes if code in self.rows}

    async def add_many(self, products: Sequence[Product]) -> None:
        await self.save_many(products)

    async def save_many(self, products: Sequence[Product]) -> None:
        for product in products:
            if any(p.gtin == product.gtin and p.code != product.code
                   for p in self.rows.values()):
                raise GtinTaken(product.gtin)
        for product in products:
            self.rows[product.code] = copy.deepcopy(product)

    async def page(self, product_line: str, page: PageRequest) -> Page[Product]:
        return page_of_all([p for _, p in sorted(self.rows.items())
                            if not product_line or p.product_line == product_line], page)

    async def priced(self, codes: Iterable[str], tier: int, company: str, on: str
                     ) -> tuple[dict[str, CatalogEntry], dict[str, Money]]:
        catalog = await self.catalog(codes)
        prices = self.price_lists().prices_for(tier, company, on)
        return catalog, {code: price for code, price in prices.items() if code in catalog}

    async def catalog(self, codes: Iterable[str]) -> dict[str, CatalogEntry]:
        return {p.code: CatalogEntry(p.code, p.gtin, p.product_line,
                                     Money(p.list_price_minor, p.currency))
                for p in self.rows.values() if p.code in set(codes)}

    async def known(self, codes: Iterable[str]) -> set[str]:
        return set(codes) & set(self.rows)

    async def gtin_owners(self, gtins: Iterable[str]) -> dict[str, str]:
        wanted = set(gtins)
        return {p.gtin: p.code for p in self.rows.values() if p.gtin in wanted}

    async def identities(self, codes: Iterable[str],
                         gtins: Iterable[str]) -> list[ProductIdentity]:
        codes, gtins = set(codes), set(gtins)
        return [ProductIdentity(p.code, p.gtin, p.product_line) for p in self.rows.values()
                if p.code in codes or p.gtin in gtins]


@dataclass
class FakeReceipts:
    rows: dict[str, Receipt] = field(default_factory=dict)
    discrepancies: Callable[[], FakeDiscrepancies] = field(
        default=lambda: FakeDiscrepancies())

    async def exists(self, shipment_id: str) -> bool:
        return shipment_id in self.rows

    async def add(self, receipt: Receipt) -> None:
        if receipt.shipment_id in self.rows:
            raise AlreadyStored(receipt.shipment_id)
        self.rows[receipt.shipment_id] = copy.deepcopy(receipt)
        for case in receipt.discrepancies:
            self.discrepancies().rows[case.id] = copy.deepcopy(case)


@dataclass
class FakeDiscrepancies:
    rows: dict[str, Discrepancy] = field(default_factory=dict)

    async def get(self, discrepancy_id: str) -> Discrepancy | None:
        return copy.deepcopy(self.rows.get(discrepancy_id))

    async def resolve(self, resolved: Discrepancy) -> bool:
        if self.rows[resolved.id].status != OPEN:
            return False
        self.rows[resolved.id] = copy.deepcopy(resolved)
        return True

    async def page(self, query: DiscrepancyQuery, page: PageRequest) -> Page[Discrepancy]:
        return page_of_all([d for d in self.rows.values()
                            if _dealer_matches(d.dealer_id, query.dealer_id,
                                               query.dealer_ids)
                            and (not query.status or d.status == query.status)], page)


@dataclass
class FakeInvoices:
    rows: dict[str, InvoiceIn] = field(default_factory=dict)

    async def digests(self, invoice_ids: Iterable[str]) -> dict[str, str]:
        return {i: self.rows[i].content_hash for i in invoice_ids if i in self.rows}

    async def dealers(self, invoice_ids: Iterable[str]) -> dict[str, str]:
        return {i: self.rows[i].dealer_id for i in invoice_ids if i in self.rows}

    async def add(self, invoice: InvoiceIn, moment: datetime) -> None:
        if invoice.invoice_id in self.rows:
            raise AlreadyStored(invoice.invoice_id)
        self.rows[invoice.invoice_id] = invoice

    async def page(self, query: LedgerQuery, page: PageRequest) -> Page[InvoiceIn]:
        return page_of_all([i for i in self.rows.values() if _dealer_matches(
            i.dealer_id, query.dealer_id, query.dealer_ids)], page)


@dataclass
class FakePayments:
    rows: dict[str, PaymentIn] = field(default_factory=dict)

    async def digests(self, payment_ids: Iterable[str]) -> dict[str, str]:
        return {i: self.rows[i].content_hash for i in payment_ids if i in self.rows}

    async def add(self, payment: PaymentIn, moment: datetime) -> None:
        if payment.payment_id in self.rows:
            raise AlreadyStored(payment.payment_id)
        self.rows[payment.payment_id] = payment

    async def page(self, query: LedgerQuery, page: PageRequest) -> Page[PaymentIn]:
        return page_of_all([p for p in self.rows.values() if _dealer_matches(
            p.dealer_id, query.dealer_id, query.dealer_ids)], page)


@dataclass
class FakeReturns:
    rows: dict[str, ProductReturn] = field(default_factory=dict)
    stock: Callable[[], FakeStock] = field(default=lambda: FakeStock())
    shipments: Callable[[], FakeShipments] = field(default=lambda: FakeShipments())
    products: Callable[[], FakeProducts] = field(default=lambda: FakeProducts())

    async def to_credit(self, return_ids: Iterable[str]) -> dict[str, ReturnToCredit]:
        return {i: ReturnToCredit(i, self.rows[i].dealer_id, self.rows[i].status)
                for i in return_ids if i in self.rows}

    async def mark_credited(self, return_id: str, invoice_id: str) -> None:
        self.rows[return_id].status = ReturnStatus.CREDITED
        self.rows[return_id].credit_note_invoice_id = invoice_id

    async def get(self, return_id: str, *,
                  for_update: bool = False) -> ProductReturn | None:
        return copy.deepcopy(self.rows.get(return_id))

    async def by_request(self, dealer_id: str,
                         client_request_id: str) -> ProductReturn | None:
        return copy.deepcopy(next((r for r in self.rows.values() if r.dealer_id == dealer_id
                                   and r.client_request_id == client_request_id), None))

    async def add(self, product_return: ProductReturn) -> None:
        if await self.by_request(product_return.dealer_id,
                                 product_return.client_request_id) is not None:
            raise ReturnRepeated(product_return.client_request_id)
        self.rows[product_return.id] = copy.deepcopy(product_return)

    async def decide(self, decided: ProductReturn) -> bool:
        if self.rows[decided.id].status != ReturnStatus.REQUESTED:
            return False
        self.rows[decided.id] = copy.deepcopy(decided)
        return True

    async def save(self, product_return: ProductReturn) -> None:
        self.rows[product_return.id] = copy.deepcopy(product_return)

    async def batch_stock(self, dealer_id: str, lines: list[ReturnLineInput]
                          ) -> dict[tuple[str, str], BatchStock]:
        keys = {(line.product_code, line.batch) for line in lines}
        shipped: dict[tuple[str, str], set[str]] = defaultdict(set)
        for shipment in self.shipments().rows.values():
            if shipment.dealer_id == dealer_id:
                for line in shipment.lines:
                    shipped[(line.product_code, line.batch)].update(line.serials)
        claimed: dict[tuple[str, str], int] = defaultdict(int)
        claimed_serials: dict[tuple[str, str], set[str]] = defaultdict(set)
        for other in self.rows.values():
            if other.dealer_id != dealer_id or other.status not in OPEN_OR_DONE:
                continue
            for line in other.lines:
                key = (line.product_code, line.batch)
                if other.status in (ReturnStatus.REQUESTED, ReturnStatus.APPROVED):
                    claimed[key] += line.quantity_requested
                claimed_serials[key].update(line.serials)
        positions = self.stock().positions
        products = self.products().rows
        return {key: BatchStock(
            positions[StockKey(dealer_id, *key)].on_hand, claimed[key],
            frozenset(shipped[key]), frozenset(claimed_serials[key]),
            bool(products[key[0]].serial_tracked) if key[0] in products else False)
            for key in keys if StockKey(dealer_id, *key) in positions}

    async def page(self, query: ReturnQuery, page: PageRequest) -> Page[ProductReturn]:
        return page_of_all([r for r in self.rows.values() if _dealer_matches(
            r.dealer_id, query.dealer_id, query.dealer_ids)], page)


@dataclass
class FakeStatements:
    rows: dict[str, Statement] = field(default_factory=dict)
    # (dealer, company) → every entry of the account (informational ones too).
    ledger: dict[tuple[str, str], list[Entry]] = field(default_factory=dict)

    async def entries(self, dealer_id: str, company: str, end: str) -> list[Entry]:
        return [e for e in self.ledger.get((dealer_id, company), []) if e.day <= end]

    async def supersede(self, dealer_id: str, company: str, start: str,
                        end: str) -> list[str]:
        ids = [s.id for s in self.rows.values()
               if (s.dealer_id, s.selling_company, s.period_start, s.period_end)
               == (dealer_id, company, start, end) and s.status != SUPERSEDED]
        for statement_id in ids:
            self.rows[statement_id].status = SUPERSEDED
        return ids

    async def add(self, statement: Statement) -> None:
        self.rows[statement.id] = copy.deepcopy(statement)

    async def get(self, statement_id: str) -> Statement | None:
        return copy.deepcopy(self.rows.get(statement_id))

    async def confirm(self, confirmed: Statement) -> bool:
        if self.rows[confirmed.id].status != ISSUED:
            return False
        self.rows[confirmed.id] = copy.deepcopy(confirmed)
        return True

    async def save_dispute(self, statement: Statement, line: IssuedLine) -> None:
        self.rows[statement.id] = copy.deepcopy(statement)

    async def page(self, query: StatementQuery, page: PageRequest) -> Page[Statement]:
        return page_of_all([replace(s, lines=[]) for s in self.rows.values()
                            if _dealer_matches(s.dealer_id, query.dealer_id,
                                               query.dealer_ids)], page)


class FakeOrderUnitOfWork(FakeUnitOfWork):
    repositories = ("stock", "accepted_flow", "accounts", "rebate_credits", "shipments",
                    "orders", "products", "price_lists", "invoices", "payments", "returns",
                    "receipts", "discrepancies", "statements")

    def __init__(self) -> None:
        super().__init__()
        self.stock = FakeStock()
        self.accepted_flow = FakeAcceptedFlow()
        self.accounts = FakeAccounts()
        self.rebate_credits = FakeRebateCredits()
        self.shipments = FakeShipments()
        self.orders = FakeOrders(accounts=lambda: self.accounts)
        self.price_lists = FakePriceLists()
        self.products = FakeProducts(price_lists=lambda: self.price_lists)
        self.invoices = FakeInvoices()
        self.payments = FakePayments()
        self.returns = FakeReturns(stock=lambda: self.stock, shipments=lambda: self.shipments,
                                   products=lambda: self.products)
        self.discrepancies = FakeDiscrepancies()
        self.receipts = FakeReceipts(discrepancies=lambda: self.discrepancies)
        self.statements = FakeStatements()

    def put_order(self, order_id: str, dealer_id: str, decision: OrderStatus,
                  *lines: tuple[str, str, int, int], company: str = "default") -> Order:
        """An order with lines (product code, GTIN, quantity, unit price) numbered from 1."""
        order = Order(
            id=order_id, dealer_id=dealer_id, decision=decision, status=decision,
            client_order_ref=order_id, total_minor=sum(q * p for _, _, q, p in lines),
            currency="CNY", submitted_by="user:test", submitted_at=datetime(2026, 11, 1),
            selling_company=company, awaiting_stage=0, decision_reason="", note="",
            updated_at=None, credit_passed=True, credit_limit_minor=0,
            credit_outstanding_minor=0, credit_open_orders_minor=0,
            lines=[OrderLine(number, code, gtin, "A系列", quantity, price, quantity * price)
                   for number, (code, gtin, quantity, price) in enumerate(lines, 1)])
        self.orders.rows[order_id] = order
        return order

    def put_product(self, code: str, gtin: str, price_minor: int = 1_000, *,
                    serial_tracked: bool = False) -> Product:
        product = Product(code, code, "", gtin, "A系列", "盒", price_minor, "CNY",
                          serial_tracked)
        self.products.rows[code] = product
        return product

"""In-memory order repositories and unit of work for the service-layer tests. The stores
refuse what the database refuses: a part of an accepted upload recorded twice, an upload
superseded twice, a rebate credit booked twice, a shipment, invoice or payment id stored
twice."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.order.domain.accounts import Account, AccountFilter, RebateCredit
from services.order.domain.ingest import (
    InvoiceIn,
    OrderLineState,
    OrderShipping,
    PaymentIn,
    ProductIdentity,
    RecordedShipment,
    ReturnToCredit,
    ShipmentIn,
)
from services.order.domain.inventory import Stock, StockKey, StockMove, apply_moves
from services.order.domain.orders import OrderStatus
from services.order.domain.returns import ReturnStatus
from services.order.domain.statements import DueItem
from shared.testing import FakeUnitOfWork


@dataclass
class FakeStock:
    positions: dict[StockKey, Stock] = field(default_factory=dict)

    async def move(self, moves: Iterable[StockMove], moment: datetime) -> None:
        apply_moves(self.positions, moves)

    async def get_many(self, keys: Iterable[StockKey]) -> dict[StockKey, Stock]:
        return {k: self.positions[k] for k in keys if k in self.positions}


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
    exposures: dict[tuple[str, str], list[int]] = field(default_factory=dict)
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

    async def exposure(self, dealer_id: str, company: str) -> tuple[int, int]:
        owed, pending = self.exposures.get((dealer_id, company), [0, 0])
        return owed, pending

    async def add_outstanding(self, dealer_id: str, company: str, amount_minor: int) -> None:
        self.exposures.setdefault((dealer_id, company), [0, 0])[0] += amount_minor

    async def dues(self, dealer_id: str, company: str) -> tuple[list[DueItem], int]:
        return self.due.get((dealer_id, company), ([], 0))


@dataclass
class FakeRebateCredits:
    rows: dict[str, RebateCredit] = field(default_factory=dict)

    async def add(self, credit: RebateCredit, moment: datetime) -> bool:
        if credit.credit_id in self.rows:
            return False
        self.rows[credit.credit_id] = credit
        return True


class AlreadyStored(Exception):
    """A primary key taken (the database would refuse the insert)."""


@dataclass
class FakeShipments:
    headers: dict[str, ShipmentIn] = field(default_factory=dict)
    # (shipment id, line no) → (content digest, order id, order line no)
    lines: dict[tuple[str, int], tuple[str, str, int]] = field(default_factory=dict)

    async def header_digests(self, shipment_ids: Iterable[str]) -> dict[str, str]:
        return {i: self.headers[i].header_hash for i in shipment_ids if i in self.headers}

    async def line_digests(self, shipment_ids: Iterable[str]) -> dict[tuple[str, int], str]:
        wanted = set(shipment_ids)
        return {key: digest for key, (digest, _, _) in self.lines.items() if key[0] in wanted}

    async def add(self, shipments: list[RecordedShipment], moment: datetime) -> None:
        for recorded in shipments:
            sid = recorded.shipment.shipment_id
            if recorded.new:
                if sid in self.headers:
                    raise AlreadyStored(sid)
                self.headers[sid] = recorded.shipment
            for stored in recorded.lines:
                key = (sid, stored.line.line_no)
                if key in self.lines:
                    raise AlreadyStored(key)
                self.lines[key] = (stored.line.content_hash, stored.line.order_id,
                                   stored.line.order_line_no)

    async def dealers(self, shipment_ids: Iterable[str]) -> dict[str, str]:
        return {i: self.headers[i].dealer_id for i in shipment_ids if i in self.headers}

    async def order_line_of(self, shipment_id: str, line_no: int) -> tuple[str, int] | None:
        stored = self.lines.get((shipment_id, line_no))
        return None if stored is None else (stored[1], stored[2])


@dataclass
class FakeOrders:
    heads: dict[str, OrderShipping] = field(default_factory=dict)
    lines: dict[tuple[str, int], OrderLineState] = field(default_factory=dict)
    invoiced: dict[tuple[str, int], int] = field(default_factory=dict)

    def put(self, order_id: str, dealer_id: str, decision: OrderStatus,
            *lines: tuple[str, str, int]) -> None:
        """An order with lines (product code, GTIN, quantity ordered) numbered from 1."""
        self.heads[order_id] = OrderShipping(order_id, dealer_id, decision, decision)
        for number, (code, gtin, ordered) in enumerate(lines, 1):
            self.lines[(order_id, number)] = OrderLineState(
                order_id, number, dealer_id, decision == OrderStatus.APPROVED, code, gtin,
                ordered, 0, 0)

    async def shipping(self, order_ids: Iterable[str]) -> tuple[
            dict[str, OrderShipping], dict[tuple[str, int], OrderLineState]]:
        wanted = set(order_ids)
        return ({i: h for i, h in self.heads.items() if i in wanted},
                {k: s for k, s in self.lines.items() if k[0] in wanted})

    async def add_shipped(self, quantities: dict[tuple[str, int], int]) -> None:
        for key, quantity in quantities.items():
            self.lines[key] = replace(self.lines[key],
                                      shipped=self.lines[key].shipped + quantity)

    async def set_statuses(self, statuses: dict[str, OrderStatus], moment: datetime) -> None:
        for order_id, status in statuses.items():
            self.heads[order_id] = replace(self.heads[order_id], status=status)

    async def add_invoiced(self, order_id: str, line_no: int, quantity: int) -> None:
        key = (order_id, line_no)
        self.invoiced[key] = self.invoiced.get(key, 0) + quantity

    async def refresh_exposure(self, order_ids: Iterable[str]) -> None:
        return None


@dataclass
class FakeProducts:
    rows: dict[str, ProductIdentity] = field(default_factory=dict)

    async def identities(self, codes: Iterable[str],
                         gtins: Iterable[str]) -> list[ProductIdentity]:
        codes, gtins = set(codes), set(gtins)
        return [p for p in self.rows.values() if p.code in codes or p.gtin in gtins]


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


@dataclass
class FakePayments:
    rows: dict[str, PaymentIn] = field(default_factory=dict)

    async def digests(self, payment_ids: Iterable[str]) -> dict[str, str]:
        return {i: self.rows[i].content_hash for i in payment_ids if i in self.rows}

    async def add(self, payment: PaymentIn, moment: datetime) -> None:
        if payment.payment_id in self.rows:
            raise AlreadyStored(payment.payment_id)
        self.rows[payment.payment_id] = payment


@dataclass
class FakeReturns:
    credits: dict[str, ReturnToCredit] = field(default_factory=dict)
    credit_notes: dict[str, str] = field(default_factory=dict)

    async def to_credit(self, return_ids: Iterable[str]) -> dict[str, ReturnToCredit]:
        return {i: self.credits[i] for i in return_ids if i in self.credits}

    async def mark_credited(self, return_id: str, invoice_id: str) -> None:
        self.credits[return_id] = replace(self.credits[return_id],
                                          status=ReturnStatus.CREDITED)
        self.credit_notes[return_id] = invoice_id


class FakeOrderUnitOfWork(FakeUnitOfWork):
    repositories = ("stock", "accepted_flow", "accounts", "rebate_credits", "shipments",
                    "orders", "products", "invoices", "payments", "returns")

    def __init__(self) -> None:
        super().__init__()
        self.stock = FakeStock()
        self.accepted_flow = FakeAcceptedFlow()
        self.accounts = FakeAccounts()
        self.rebate_credits = FakeRebateCredits()
        self.shipments = FakeShipments()
        self.orders = FakeOrders()
        self.products = FakeProducts()
        self.invoices = FakeInvoices()
        self.payments = FakePayments()
        self.returns = FakeReturns()

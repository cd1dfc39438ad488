"""The facts incentive keeps from other services' events, and the rules that say what
of them counts. Accruals are always a function of these facts: applying an event stores
its facts (idempotently) and recomputes what depends on them. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from services.incentive.domain.commission import CustomerSource


@dataclass(frozen=True)
class Sale:
    """One accepted sell-through row (aggregated per dealer, product, batch, customer and
    day by flow)."""

    upload_id: str
    part_index: int
    row_number: int
    dealer_id: str
    customer_id: str
    product_code: str
    product_line: str
    batch: str
    sold_on: date
    quantity: int
    amount_minor: int
    currency: str = "CNY"
    # Set for a platform dealer's transfer to its sub-dealer: not a sale to a hospital.
    transfer_to_dealer_id: str = ""
    gtin: str = ""


@dataclass(frozen=True)
class UploadPart:
    upload_id: str
    part_index: int
    dealer_id: str
    part_count: int
    event_id: str
    replaces_upload_id: str = ""


class DiversionStatus:
    OPEN = "open"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


@dataclass(frozen=True)
class Diversion:
    """Goods sold by a dealer they never reached (窜货): they never count, unless HQ
    dismisses the diversion.

    Flow finds a diversion while validating an upload — which is then rejected — and
    reports one per product, batch and dealer the batch was shipped to, with the first
    offending row's customer and day. So the goods are identified by the selling dealer,
    the product (its code, or the GTIN where flow resolved none) and the batch: an
    accepted sale of them by that dealer, sold by the day the diversion was detected,
    does not count (whatever upload it came in). Later sales of the batch passed flow's
    shipment check, so they reached the dealer."""

    id: str
    upload_id: str
    dealer_id: str           # the selling dealer
    product_code: str
    gtin: str
    batch: str
    customer_id: str
    sold_on: date | None
    detected_on: date
    status: str = DiversionStatus.OPEN

    @property
    def excludes(self) -> bool:
        return self.status != DiversionStatus.DISMISSED

    def matches(self, sale: Sale) -> bool:
        if (sale.dealer_id, sale.batch) != (self.dealer_id, self.batch):
            return False
        if sale.sold_on > self.detected_on:
            return False
        if self.product_code and sale.product_code:
            return sale.product_code == self.product_code
        return bool(self.gtin) and sale.gtin == self.gtin


def counts(sale: Sale, superseded: bool, diversions: list[Diversion]) -> bool:
    """Whether an accepted row counts as a sale to a hospital: not a transfer, not in a
    replaced upload, not diverted."""
    if sale.transfer_to_dealer_id or superseded or sale.quantity == 0:
        return False
    return not any(d.excludes and d.matches(sale) for d in diversions)


@dataclass(frozen=True)
class OrderLine:
    line_no: int
    product_code: str
    product_line: str
    quantity: int
    amount_minor: int
    quantity_closed: int = 0

    @property
    def counted_quantity(self) -> int:
        return max(self.quantity - self.quantity_closed, 0)

    @property
    def counted_amount(self) -> int:
        """The amount of what was not closed short."""
        if self.quantity <= 0:
            return 0
        return _round(Fraction(self.amount_minor * self.counted_quantity, self.quantity))

    @property
    def unit_price(self) -> Fraction:
        return Fraction(self.amount_minor, self.quantity) if self.quantity else Fraction(0)


@dataclass(frozen=True)
class Order:
    """An order as incentive knows it: counted once fully approved, never once rejected
    or cancelled (whatever order the events arrive in)."""

    order_id: str
    dealer_id: str
    selling_company: str
    lines: tuple[OrderLine, ...]
    approved_on: date | None = None
    voided: bool = False
    currency: str = "CNY"

    @property
    def counts(self) -> bool:
        return self.approved_on is not None and not self.voided


@dataclass(frozen=True)
class ReturnLine:
    line_no: int
    product_code: str
    # What order's warehouse received back (RETURN_RECEIVED's quantity_received).
    quantity: int
    shipment_id: str = ""
    batch: str = ""


@dataclass(frozen=True)
class ShippedLine:
    """A shipment line as order recorded it: the order line the goods were shipped
    against."""

    shipment_id: str
    line_no: int
    product_code: str
    batch: str
    order_id: str
    order_line_no: int
    quantity: int


@dataclass(frozen=True)
class Return:
    return_id: str
    dealer_id: str
    selling_company: str
    received_on: date
    lines: tuple[ReturnLine, ...]
    currency: str = "CNY"


@dataclass(frozen=True)
class PricedReturnLine:
    """A returned line and what the dealer had paid for those goods (exact)."""

    line: ReturnLine
    product_line: str
    value: Fraction
    order_ids: tuple[str, ...] = ()

    @property
    def amount_minor(self) -> int:
        return _round(self.value)


def value_return(line: ReturnLine, shipped: list[ShippedLine], orders: dict[str, Order],
                 dealer_orders: list[Order], product: tuple[str, int] | None
                 ) -> PricedReturnLine:
    """A returned line valued at what the dealer paid: at the prices of the order lines
    its shipment was shipped against, earliest shipment line first (as order counts the
    return on them); what the shipment does not cover (or a return naming no shipment) at
    the dealer's average price for the product on its counted orders, else at the list
    price. ``product`` is the catalog's (product line, list price)."""
    left, value, product_line, order_ids = line.quantity, Fraction(0), "", []
    for ship in sorted(shipped, key=lambda s: s.line_no):
        if left <= 0:
            break
        if ship.product_code != line.product_code or (line.batch and ship.batch != line.batch):
            continue
        order = orders.get(ship.order_id)
        bought = next((ln for ln in order.lines if ln.line_no == ship.order_line_no),
                      None) if order else None
        if bought is None or bought.quantity <= 0:
            continue
        take = min(left, ship.quantity)
        value += bought.unit_price * take
        product_line = product_line or bought.product_line
        if order.order_id not in order_ids:
            order_ids.append(order.order_id)
        left -= take
    if left > 0:
        bought_lines = [ln for o in dealer_orders if o.counts for ln in o.lines
                        if ln.product_code == line.product_code]
        units = sum(ln.quantity for ln in bought_lines)
        if units:
            price = Fraction(sum(ln.amount_minor for ln in bought_lines), units)
            product_line = product_line or bought_lines[-1].product_line
        else:
            price = Fraction(product[1]) if product else Fraction(0)
        value += price * left
    if not product_line and product:
        product_line = product[0]
    return PricedReturnLine(line, product_line, value, tuple(order_ids))


@dataclass(frozen=True)
class Ownership:
    """A span in which a customer is the dealer's for a product line: an approved
    registration (its own source) or an assigned HQ lead. ``end`` is exclusive."""

    dealer_id: str
    customer_id: str
    product_line: str
    source: CustomerSource
    start: date
    end: date | None = None
    from_registration: bool = True

    def covers(self, dealer_id: str, customer_id: str, product_line: str, day: date) -> bool:
        return (self.dealer_id == dealer_id and self.customer_id == customer_id
                and (not self.product_line or self.product_line == product_line)
                and self.start <= day and (self.end is None or day < self.end))


def source_on(spans: list[Ownership], dealer_id: str, customer_id: str, product_line: str,
              day: date) -> CustomerSource:
    """Where the customer came from on that day: a registration's own source beats a
    lead assignment; neither is UNREGISTERED."""
    covering = [s for s in spans if s.covers(dealer_id, customer_id, product_line, day)]
    if not covering:
        return CustomerSource.UNREGISTERED
    registered = [s for s in covering if s.from_registration]
    chosen = max(registered or covering, key=lambda s: (s.start, s.source.value))
    return chosen.source


@dataclass(frozen=True)
class Registration:
    registration_id: str
    dealer_id: str
    customer_id: str
    product_line: str
    source: CustomerSource
    approved_on: date | None = None
    ended_on: date | None = None

    def span(self) -> Ownership | None:
        if self.approved_on is None:
            return None
        return Ownership(self.dealer_id, self.customer_id, self.product_line, self.source,
                         self.approved_on, self.ended_on)


@dataclass(frozen=True)
class LeadEvent:
    """A lead assigned to a dealer, or leaving it (returned to the pool or claimed, after
    which the claim's registration speaks)."""

    lead_id: str
    dealer_id: str
    customer_id: str
    product_line: str
    day: date
    assigned: bool
    event_id: str = ""


def lead_spans(events: list[LeadEvent]) -> list[Ownership]:
    """Each assignment lasts until the next time the lead leaves that dealer."""
    spans = []
    ordered = sorted(events, key=lambda e: (e.lead_id, e.dealer_id, e.day, not e.assigned))
    for index, event in enumerate(ordered):
        if not event.assigned or not event.customer_id:
            continue
        end = next((later.day for later in ordered[index + 1:]
                    if (later.lead_id, later.dealer_id) == (event.lead_id, event.dealer_id)
                    and not later.assigned), None)
        spans.append(Ownership(event.dealer_id, event.customer_id, event.product_line,
                               CustomerSource.HQ_LEAD, event.day, end, from_registration=False))
    return spans


def _round(value: Fraction) -> int:
    sign = -1 if value < 0 else 1
    return sign * int(abs(value) + Fraction(1, 2))

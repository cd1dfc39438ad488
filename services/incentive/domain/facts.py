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
    dismisses the diversion."""

    id: str
    upload_id: str
    dealer_id: str
    product_code: str
    batch: str
    customer_id: str
    sold_on: date
    status: str = DiversionStatus.OPEN

    @property
    def excludes(self) -> bool:
        return self.status != DiversionStatus.DISMISSED

    def matches(self, sale: Sale) -> bool:
        return (sale.upload_id, sale.product_code, sale.batch, sale.customer_id,
                sale.sold_on) == (self.upload_id, self.product_code, self.batch,
                                  self.customer_id, self.sold_on)


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
    quantity: int
    shipment_id: str = ""


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
    """A returned line valued at the price the dealer paid: that of the order line it
    was shipped against, else the dealer's average for the product, else the list
    price."""

    line: ReturnLine
    product_line: str
    unit_price: Fraction
    order_id: str = ""

    @property
    def amount_minor(self) -> int:
        return _round(self.unit_price * self.line.quantity)


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

"""Order rules: pricing lines from the catalog, validating quantities, and deriving an
order's status from its lines. Pure Python, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from stdnum import ean

from shared.errors import FieldViolation, collect
from shared.money import Money

MAX_LINES = 500
MAX_QUANTITY = 10_000_000


class OrderStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class CatalogEntry:
    code: str
    gtin: str
    product_line: str
    list_price: Money


@dataclass(frozen=True)
class LineInput:
    product_code: str
    quantity: int
    # The price the dealer expects; a mismatch with the price list rejects the line.
    expected_unit_price: Money | None = None


@dataclass(frozen=True)
class PricedLine:
    line_no: int
    product_code: str
    gtin: str
    product_line: str
    quantity: int
    unit_price: Money

    @property
    def amount(self) -> Money:
        return self.unit_price.times(self.quantity)


def price_lines(lines: list[LineInput], catalog: dict[str, CatalogEntry],
                prices: dict[str, Money] | None = None) -> list[PricedLine]:
    """Price every line from the dealer's price list (``prices``: product code → unit
    price of the tier's list valid today), falling back to the catalog's list price for a
    product the list does not name; raise one error naming every bad field."""
    violations: list[FieldViolation] = []
    if not lines:
        violations.append(FieldViolation("lines", "an order needs at least one line"))
    if len(lines) > MAX_LINES:
        violations.append(FieldViolation("lines", f"at most {MAX_LINES} lines per order"))
    seen: dict[str, int] = {}
    priced: list[PricedLine] = []
    for index, line in enumerate(lines):
        where = f"lines[{index}]"
        code = line.product_code.strip()
        if not code:
            violations.append(FieldViolation(f"{where}.product_code", "is required"))
            continue
        if code in seen:
            violations.append(FieldViolation(
                f"{where}.product_code", f"{code} already ordered on lines[{seen[code]}]"))
            continue
        seen[code] = index
        if line.quantity <= 0:
            violations.append(FieldViolation(f"{where}.quantity", "must be a positive integer"))
        elif line.quantity > MAX_QUANTITY:
            violations.append(FieldViolation(f"{where}.quantity",
                                             f"must be at most {MAX_QUANTITY}"))
        entry = catalog.get(code)
        if entry is None:
            violations.append(FieldViolation(f"{where}.product_code", f"unknown product {code}"))
            continue
        unit_price = (prices or {}).get(code, entry.list_price)
        expected = line.expected_unit_price
        if expected is not None and expected != unit_price:
            violations.append(FieldViolation(
                f"{where}.expected_unit_price",
                f"does not match the price list: {code} costs {unit_price.amount_minor} "
                f"{unit_price.currency} (minor units), not {expected.amount_minor} "
                f"{expected.currency}"))
            continue
        priced.append(PricedLine(
            line_no=index + 1,
            product_code=code,
            gtin=entry.gtin,
            product_line=entry.product_line,
            quantity=line.quantity,
            unit_price=unit_price,
        ))
    collect(violations)
    currencies = {line.unit_price.currency for line in priced}
    if len(currencies) > 1:
        collect([FieldViolation("lines", f"products are priced in several currencies: "
                                         f"{sorted(currencies)}")])
    return priced


def order_total(lines: list[PricedLine]) -> Money:
    total = Money.zero(lines[0].unit_price.currency)
    for line in lines:
        total = total + line.amount
    return total


@dataclass(frozen=True)
class LineQuantities:
    ordered: int
    shipped: int
    closed: int
    # Shipped quantity whose receipt the dealer has confirmed.
    receipted: int = 0


def derive_status(decision: OrderStatus, lines: list[LineQuantities]) -> OrderStatus:
    """An order's status from its approval decision and its lines' quantities.

    submitted/rejected/cancelled come from the decision; once approved: nothing shipped →
    approved, some remainder unshipped → partially shipped, everything shipped or closed →
    shipped, and when in addition every shipped unit's receipt is confirmed → completed
    (an order whose whole quantity was closed without shipping is completed too)."""
    if decision in (OrderStatus.SUBMITTED, OrderStatus.REJECTED, OrderStatus.CANCELLED):
        return decision
    shipped = sum(line.shipped for line in lines)
    all_done = all(line.shipped + line.closed >= line.ordered for line in lines)
    if shipped == 0:
        return OrderStatus.COMPLETED if all_done and lines else OrderStatus.APPROVED
    if not all_done:
        return OrderStatus.PARTIALLY_SHIPPED
    if all(line.receipted >= line.shipped for line in lines):
        return OrderStatus.COMPLETED
    return OrderStatus.SHIPPED


class Stage(enum.IntEnum):
    """Approval stages (numbers as in the proto's ApprovalStage)."""

    NONE = 0
    AUTO = 1
    CHANNEL_MANAGER = 2
    FINANCE = 3


# Who may decide at each stage. HQ admins may stand in for anyone.
STAGE_ROLES = {
    Stage.CHANNEL_MANAGER: frozenset({"channel_manager", "region_manager", "hq_admin"}),
    Stage.FINANCE: frozenset({"finance", "hq_admin"}),
}
NEXT_STAGE = {Stage.CHANNEL_MANAGER: Stage.FINANCE, Stage.FINANCE: Stage.NONE}


@dataclass(frozen=True)
class CreditCheckResult:
    passed: bool
    credit_limit: int
    outstanding: int
    open_orders: int
    order_amount: int


def credit_check(credit_limit: int, outstanding: int, open_orders: int,
                 order_amount: int) -> CreditCheckResult:
    """open orders + outstanding + this order ≤ limit → the order may be auto-approved."""
    return CreditCheckResult(
        passed=open_orders + outstanding + order_amount <= credit_limit,
        credit_limit=credit_limit, outstanding=outstanding, open_orders=open_orders,
        order_amount=order_amount)


def first_stage(check: CreditCheckResult) -> Stage:
    """Where a new order goes: approved automatically, or to its channel manager."""
    return Stage.NONE if check.passed else Stage.CHANNEL_MANAGER


def cancellable(decision: OrderStatus, lines: list[LineQuantities]) -> str:
    """Why the order cannot be cancelled, or "" if it can."""
    if decision in (OrderStatus.REJECTED, OrderStatus.CANCELLED):
        return f"the order is already {decision.value}"
    if any(line.shipped > 0 for line in lines):
        return "goods have been shipped on this order; close the remaining lines instead"
    return ""


def closable_quantity(ordered: int, shipped: int, closed: int, requested: int) -> int:
    """The quantity a line closure takes: ``requested`` (0 = the whole remainder), which
    must fit in the unshipped, unclosed remainder; raises naming the field."""
    remainder = ordered - shipped - closed
    if remainder <= 0:
        collect([FieldViolation("line_no", "the line has no unshipped remainder to close")])
    if requested < 0:
        collect([FieldViolation("quantity", "must not be negative")])
    if requested > remainder:
        collect([FieldViolation("quantity", f"at most {remainder} remain unshipped")])
    return requested or remainder


# Orders whose unshipped-and-uninvoiced value still counts against the dealer's credit.
OPEN_STATUSES = frozenset({OrderStatus.SUBMITTED, OrderStatus.APPROVED,
                           OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED})


@dataclass(frozen=True)
class LineValue:
    ordered: int
    closed: int
    invoiced: int
    unit_price_minor: int


def open_value(status: OrderStatus, lines: list[LineValue]) -> int:
    """What an order adds to its dealer's credit exposure: the value of its quantity
    neither closed nor invoiced yet, while the order is open (minor units)."""
    if status not in OPEN_STATUSES:
        return 0
    return sum(max(0, line.ordered - line.closed - line.invoiced) * line.unit_price_minor
               for line in lines)


# ------------------------------------------------------------------ stored records

# Who may change the catalog, price lists (the ERP pushes the lists it keeps) and close
# order lines.
CATALOG_WRITERS = ("hq_admin", "erp")
PRICE_WRITERS = ("hq_admin", "finance", "erp")
LINE_CLOSERS = ("hq_admin", "customer_service")
APPROVED, REJECTED = 1, 2  # an approval's decision


class RefTaken(Exception):
    """The dealer's client order reference belongs to an order already (the unique key
    refused the insert)."""


class GtinTaken(Exception):
    """Another product holds the GTIN."""


@dataclass
class Product:
    code: str
    name: str
    spec: str
    gtin: str
    product_line: str
    unit: str
    list_price_minor: int
    currency: str
    serial_tracked: bool
    updated_at: datetime | None = None

    def same_as(self, other: Product) -> bool:
        """Equal in everything but the time of the last change."""
        return all(getattr(self, name) == getattr(other, name) for name in (
            "name", "spec", "gtin", "product_line", "unit", "list_price_minor", "currency",
            "serial_tracked"))


@dataclass(frozen=True)
class PriceItem:
    product_code: str
    unit_price_minor: int
    currency: str


@dataclass
class PriceList:
    id: str
    name: str
    tier: int
    selling_company: str
    valid_from: str
    valid_to: str
    updated_at: datetime | None
    items: list[PriceItem]


@dataclass(frozen=True)
class PriceListQuery:
    tier: int = 0
    selling_company: str = ""
    valid_on: str = ""


@dataclass
class OrderLine:
    line_no: int
    product_code: str
    gtin: str
    product_line: str
    quantity_ordered: int
    unit_price_minor: int
    amount_minor: int
    quantity_shipped: int = 0
    quantity_received: int = 0
    quantity_closed: int = 0
    quantity_returned: int = 0
    quantity_invoiced: int = 0
    quantity_receipted: int = 0
    close_reason: str = ""

    def quantities(self) -> LineQuantities:
        return LineQuantities(self.quantity_ordered, self.quantity_shipped,
                              self.quantity_closed, self.quantity_receipted)


@dataclass(frozen=True)
class Approval:
    stage: int
    decision: int
    decided_by: str
    decided_at: datetime
    comment: str = ""


@dataclass
class Order:
    id: str
    dealer_id: str
    # The approval decision; the shipping states are derived from the lines.
    decision: OrderStatus
    status: OrderStatus
    client_order_ref: str
    total_minor: int
    currency: str
    submitted_by: str
    submitted_at: datetime
    selling_company: str
    awaiting_stage: int
    decision_reason: str
    note: str
    updated_at: datetime | None
    credit_passed: bool
    credit_limit_minor: int
    credit_outstanding_minor: int
    credit_open_orders_minor: int
    # What the order adds to its dealer's credit exposure now (``open_value``).
    open_value_minor: int = 0
    lines: list[OrderLine] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)

    def line(self, line_no: int) -> OrderLine | None:
        return next((line for line in self.lines if line.line_no == line_no), None)

    def refresh_status(self, moment: datetime) -> bool:
        """Recompute the status from the lines; True if it changed."""
        status = derive_status(OrderStatus(self.decision),
                               [line.quantities() for line in self.lines])
        if status == self.status:
            return False
        self.status = status
        self.updated_at = moment
        return True


@dataclass(frozen=True)
class OrderQuery:
    dealer_id: str = ""
    # None: every dealer (the caller sees all).
    dealer_ids: frozenset[str] | None = None
    statuses: frozenset[OrderStatus] = frozenset()
    awaiting_stage: int = 0
    submitted_after: datetime | None = None
    submitted_before: datetime | None = None


def product_violations(index: int, product: Product) -> list[FieldViolation]:
    """What makes a product (as given, before it is normalized) invalid, each naming its
    field under ``products[index]``."""
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
    if product.list_price_minor < 0:
        violations.append(FieldViolation(f"{where}.list_price.amount_minor",
                                         "must not be negative"))
    return violations


def normalized(product: Product, currency: str) -> Product:
    """The product as stored: text trimmed, the GTIN as GTIN-14, a currency."""
    return Product(product.code.strip(), product.name.strip(), product.spec.strip(),
                   product.gtin.strip().zfill(14), product.product_line.strip(),
                   product.unit.strip(), product.list_price_minor,
                   product.currency or currency, product.serial_tracked, product.updated_at)


@dataclass(frozen=True)
class RowError:
    """A row of an imported file that cannot be taken, as the user sees the file."""

    row_number: int
    column: str
    code: str
    message_zh: str
    message_en: str
    value: str = ""


@dataclass(frozen=True)
class ProductImport:
    accepted: bool
    errors: list[RowError] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class DealerMonthOrders:
    """Approved orders of a dealer submitted in a month ("YYYY-MM")."""

    dealer_id: str
    month: str
    orders: int
    amount_minor: int

"""After shipping: shipments as recorded, the dealer's receipt (received, damaged, short,
over), the discrepancies it raises and how HQ resolves them. Pure Python, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.errors import FieldViolation

SHORTAGE, DAMAGE, OVERAGE = 1, 2, 3
OPEN, RESOLVED = 1, 2
RESHIP, CREDIT, WRITE_OFF, DENIED = 1, 2, 3, 4
DISCREPANCY_RESOLVERS = ("hq_admin", "customer_service", "finance")


@dataclass
class ShipmentLine:
    line_no: int
    order_id: str
    order_line_no: int
    product_code: str
    gtin: str
    batch: str
    expiry_date: str
    production_date: str
    serials: tuple[str, ...]
    quantity: int
    quantity_received: int = 0
    quantity_damaged: int = 0
    receipt_note: str = ""

    @property
    def quantity_short(self) -> int:
        return max(0, self.quantity - self.quantity_received - self.quantity_damaged)


@dataclass
class Shipment:
    id: str
    dealer_id: str
    selling_company: str
    ship_date: str
    carrier: str
    waybill_no: str
    received: bool
    recorded_at: datetime
    lines: list[ShipmentLine] = field(default_factory=list)


@dataclass(frozen=True)
class ShipmentQuery:
    dealer_id: str = ""
    # None: every dealer.
    dealer_ids: frozenset[str] | None = None
    order_id: str = ""
    shipped_from: str = ""
    shipped_to: str = ""
    unreceived_only: bool = False


@dataclass(frozen=True)
class ReceiptLineInput:
    shipment_line_no: int
    quantity_received: int
    quantity_damaged: int = 0
    note: str = ""


@dataclass
class Discrepancy:
    id: str
    shipment_id: str
    shipment_line_no: int
    dealer_id: str
    kind: int
    quantity: int
    status: int
    resolution: int
    note: str
    raised_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str = ""


@dataclass(frozen=True)
class DiscrepancyQuery:
    dealer_id: str = ""
    dealer_ids: frozenset[str] | None = None
    shipment_id: str = ""
    status: int = 0


@dataclass
class Receipt:
    id: str
    shipment_id: str
    dealer_id: str
    confirmed_at: datetime
    confirmed_by: str
    lines: list[ShipmentLine]
    discrepancies: list[Discrepancy]


def receipt_violations(inputs: list[ReceiptLineInput],
                       lines: dict[int, ShipmentLine]) -> list[FieldViolation]:
    """What is wrong with the counts given per shipment line, each naming its field."""
    violations: list[FieldViolation] = []
    given: set[int] = set()
    for index, item in enumerate(inputs):
        where = f"lines[{index}]"
        line = lines.get(item.shipment_line_no)
        if line is None:
            violations.append(FieldViolation(f"{where}.shipment_line_no",
                                             f"shipment has no line {item.shipment_line_no}"))
            continue
        if item.shipment_line_no in given:
            violations.append(FieldViolation(f"{where}.shipment_line_no", "listed twice"))
        if item.quantity_received < 0:
            violations.append(FieldViolation(f"{where}.quantity_received",
                                             "must not be negative"))
        if item.quantity_damaged < 0:
            violations.append(FieldViolation(f"{where}.quantity_damaged",
                                             "must not be negative"))
        if item.quantity_received + item.quantity_damaged > line.quantity * 2:
            violations.append(FieldViolation(f"{where}.quantity_received",
                                             "far more than shipped; check the count"))
        given.add(item.shipment_line_no)
    return violations


def discrepancies_of(line: ShipmentLine, received: int, damaged: int) -> list[tuple[int, int]]:
    """(kind, quantity) a line's counts raise: short, damaged, over."""
    short = line.quantity - received - damaged
    return [(kind, quantity) for kind, quantity in ((SHORTAGE, short), (DAMAGE, damaged),
                                                    (OVERAGE, -short)) if quantity > 0]

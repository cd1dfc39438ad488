"""Return rules: a return never exceeds what the dealer received of a batch (minus what
is already returned or waiting in other open returns), serials must have been shipped to
the dealer in that batch and not returned already. Pure Python, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from shared.errors import FieldViolation


class ReturnStatus(enum.IntEnum):
    """Numbers as in the proto's ReturnStatus."""

    REQUESTED = 1
    APPROVED = 2
    REJECTED = 3
    RECEIVED = 4
    CREDITED = 5


# Who approves or rejects returns.
RETURN_DECIDERS = ("hq_admin", "customer_service", "channel_manager", "region_manager")

# Returns that still hold (or have taken) stock of the batch.
OPEN_OR_DONE = (ReturnStatus.REQUESTED, ReturnStatus.APPROVED, ReturnStatus.RECEIVED,
                ReturnStatus.CREDITED)


@dataclass(frozen=True)
class ReturnLineInput:
    product_code: str
    batch: str
    serials: tuple[str, ...]
    quantity: int
    shipment_id: str = ""


@dataclass(frozen=True)
class BatchStock:
    """What the dealer has of one product batch, as far as returns are concerned."""

    received: int
    # Requested, approved or received by other returns.
    claimed: int
    shipped_serials: frozenset[str]
    claimed_serials: frozenset[str]
    serial_tracked: bool


def check_return_lines(lines: list[ReturnLineInput],
                       stock: dict[tuple[str, str], BatchStock]) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    if not lines:
        violations.append(FieldViolation("lines", "a return needs at least one line"))
    taken: dict[tuple[str, str], int] = {}
    for index, line in enumerate(lines):
        where = f"lines[{index}]"
        if not line.product_code:
            violations.append(FieldViolation(f"{where}.product_code", "is required"))
            continue
        if not line.batch:
            violations.append(FieldViolation(f"{where}.batch", "is required"))
            continue
        if line.quantity <= 0:
            violations.append(FieldViolation(f"{where}.quantity", "must be a positive integer"))
            continue
        key = (line.product_code, line.batch)
        batch = stock.get(key)
        if batch is None:
            violations.append(FieldViolation(
                f"{where}.batch", f"batch {line.batch} of {line.product_code} was never "
                                  "shipped to this dealer"))
            continue
        available = batch.received - batch.claimed - taken.get(key, 0)
        if line.quantity > available:
            violations.append(FieldViolation(
                f"{where}.quantity",
                f"exceeds what can be returned of batch {line.batch}: received "
                f"{batch.received}, already returned or requested "
                f"{batch.claimed + taken.get(key, 0)}, so at most {max(available, 0)}"))
            continue
        if batch.serial_tracked and not line.serials:
            violations.append(FieldViolation(f"{where}.serials",
                                             "required: the product is serial-tracked"))
            continue
        if line.serials:
            if len(line.serials) != line.quantity or len(set(line.serials)) != line.quantity:
                violations.append(FieldViolation(
                    f"{where}.serials", "must list as many distinct serials as the quantity"))
                continue
            unknown = sorted(set(line.serials) - batch.shipped_serials)
            if unknown:
                violations.append(FieldViolation(
                    f"{where}.serials",
                    f"not shipped to this dealer in batch {line.batch}: {', '.join(unknown[:5])}"))
                continue
            again = sorted(set(line.serials) & batch.claimed_serials)
            if again:
                violations.append(FieldViolation(
                    f"{where}.serials", f"already returned or requested: {', '.join(again[:5])}"))
                continue
        taken[key] = taken.get(key, 0) + line.quantity
    return violations


class ReturnRepeated(Exception):
    """The dealer's client request id belongs to a return already."""


@dataclass(frozen=True)
class ReturnRequest:
    dealer_id: str
    selling_company: str
    reason: str
    client_request_id: str
    lines: list[ReturnLineInput]


@dataclass
class ReturnLine:
    line_no: int
    product_code: str
    gtin: str
    batch: str
    expiry_date: str
    serials: tuple[str, ...]
    quantity_requested: int
    quantity_received: int = 0
    shipment_id: str = ""


@dataclass
class ProductReturn:
    id: str
    dealer_id: str
    selling_company: str
    status: ReturnStatus
    reason: str
    client_request_id: str
    requested_at: datetime
    requested_by: str
    decided_at: datetime | None = None
    decided_by: str = ""
    decision_note: str = ""
    received_on: str = ""
    credit_note_invoice_id: str = ""
    lines: list[ReturnLine] = field(default_factory=list)


@dataclass(frozen=True)
class ReturnQuery:
    dealer_id: str = ""
    dealer_ids: frozenset[str] | None = None
    statuses: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ReceivedLine:
    line_no: int
    quantity_received: int


def received_violations(given: list[ReceivedLine],
                        lines: dict[int, ReturnLine]) -> list[FieldViolation]:
    """What is wrong with the quantities the ERP says came back, each naming its field."""
    violations = []
    for index, item in enumerate(given):
        line = lines.get(item.line_no)
        if line is None:
            violations.append(FieldViolation(f"lines[{index}].line_no",
                                             f"return has no line {item.line_no}"))
        elif not 0 <= item.quantity_received <= line.quantity_requested:
            violations.append(FieldViolation(f"lines[{index}].quantity_received",
                                             f"must be 0..{line.quantity_requested}"))
    return violations

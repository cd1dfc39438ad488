"""Return rules: a return never exceeds what the dealer received of a batch (minus what
is already returned or waiting in other open returns), serials must have been shipped to
the dealer in that batch and not returned already. Pure Python, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from shared.errors import FieldViolation


class ReturnStatus(enum.IntEnum):
    """Numbers as in the proto's ReturnStatus."""

    REQUESTED = 1
    APPROVED = 2
    REJECTED = 3
    RECEIVED = 4
    CREDITED = 5


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

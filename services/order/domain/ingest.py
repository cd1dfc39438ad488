"""ERP ingest rules: validating shipment lines, invoices and payments against what the
order service knows, idempotency fingerprints, and which records survive under each
ingest mode. Pure Python, no I/O.

Semantics (also in order.proto):

* Idempotency. A shipment line is identified by (shipment id, line no), an invoice by its
  id, a payment by its id. Re-pushing identical content is DUPLICATE and changes nothing;
  the same key with different content is REJECTED as CONFLICTING_REPUSH (the message
  says which fields differ) and the stored record stands.
* ALL_OR_NOTHING (the default): one rejected line anywhere in the call (or in one stream
  message) and nothing of it is stored; the valid lines come back NOT_APPLIED.
* KEEP_VALID: a record (shipment, invoice, payment) is stored whole or not at all: a
  shipment with a rejected line is not stored and its valid lines are NOT_APPLIED; the
  other records of the call are stored.
"""

from __future__ import annotations

import enum
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

# Who pushes shipments, invoices and payments, and confirms returned goods.
ERP = ("erp",)

OVER_SHIPPED = "OVER_SHIPPED"
UNKNOWN_ORDER = "UNKNOWN_ORDER"
UNKNOWN_ORDER_LINE = "UNKNOWN_ORDER_LINE"
UNKNOWN_PRODUCT = "UNKNOWN_PRODUCT"
PRODUCT_MISMATCH = "PRODUCT_MISMATCH"
DEALER_MISMATCH = "DEALER_MISMATCH"
ORDER_NOT_APPROVED = "ORDER_NOT_APPROVED"
CONFLICTING_REPUSH = "CONFLICTING_REPUSH"
INVALID_QUANTITY = "INVALID_QUANTITY"
INVALID_FIELD = "INVALID_FIELD"
SERIAL_COUNT = "SERIAL_COUNT_MISMATCH"
UNKNOWN_SHIPMENT = "UNKNOWN_SHIPMENT"
UNKNOWN_RETURN = "UNKNOWN_RETURN"
UNKNOWN_INVOICE = "UNKNOWN_INVOICE"


R = TypeVar("R", "InvoiceIn", "PaymentIn")


class Outcome(enum.IntEnum):
    """Numbers as in the proto's IngestOutcome."""

    ACCEPTED = 1
    DUPLICATE = 2
    REJECTED = 3
    NOT_APPLIED = 4


class Mode(enum.IntEnum):
    ALL_OR_NOTHING = 1
    KEEP_VALID = 2


def mode_of(value: int) -> Mode:
    return Mode.KEEP_VALID if value == Mode.KEEP_VALID else Mode.ALL_OR_NOTHING


@dataclass(slots=True)
class LineResult:
    record_id: str
    line_no: int
    outcome: Outcome
    reason_code: str = ""
    message: str = ""


def fingerprint(*parts: object) -> str:
    """A stable digest of a record's content, to tell a duplicate from a conflict."""
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(),
                           digest_size=16).hexdigest()


@functools.lru_cache(maxsize=4096)
def parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        return None


@dataclass(frozen=True)
class OrderLineState:
    """What an order line allows: its dealer, approval, product and remaining quantity."""

    order_id: str
    line_no: int
    dealer_id: str
    approved: bool
    product_code: str
    gtin: str
    ordered: int
    shipped: int
    closed: int


@dataclass(slots=True)
class ShipLine:
    """One shipment line as pushed; its content hash is computed once, on creation."""

    shipment_id: str
    dealer_id: str
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
    # Digest of the line as pushed (see ``wire_fingerprint``); computed from the fields
    # when not given.
    content_hash: str = ""

    def __post_init__(self) -> None:
        if not self.content_hash:
            self.content_hash = fingerprint(
                self.order_id, self.order_line_no, self.product_code, self.gtin, self.batch,
                self.expiry_date, self.production_date, "|".join(self.serials),
                self.quantity)


def wire_fingerprint(serialized: bytes) -> str:
    """Digest of a record's deterministic protobuf encoding: the same content pushed
    again has the same digest, any changed field another one."""
    return hashlib.blake2b(serialized, digest_size=16).hexdigest()


@dataclass
class ShipmentCheck:
    """Validates the lines of one call against the order lines, tracking the quantities
    the call itself has already taken so two lines cannot overshoot together."""

    order_lines: dict[tuple[str, int], OrderLineState]
    known_orders: set[str]
    products_by_code: dict[str, str]  # code → gtin
    products_by_gtin: dict[str, str]  # gtin → code
    taken: dict[tuple[str, int], int] = field(default_factory=dict)

    def check(self, line: ShipLine) -> tuple[str, str] | None:
        """(reason code, message) if the line must be rejected, else None."""
        if line.quantity <= 0:
            return INVALID_QUANTITY, f"quantity must be positive, got {line.quantity}"
        if line.serials and len(line.serials) != line.quantity:
            return SERIAL_COUNT, (f"{len(line.serials)} serial numbers for a quantity of "
                                  f"{line.quantity}")
        if line.serials and len(set(line.serials)) != len(line.serials):
            return SERIAL_COUNT, "serial numbers repeat within the line"
        if not line.batch:
            return INVALID_FIELD, "batch is required"
        if line.expiry_date and parse_day(line.expiry_date) is None:
            return INVALID_FIELD, f"expiry_date {line.expiry_date!r} is not YYYY-MM-DD"
        if line.production_date and parse_day(line.production_date) is None:
            return INVALID_FIELD, f"production_date {line.production_date!r} is not YYYY-MM-DD"
        code = line.product_code
        if code and code not in self.products_by_code:
            return UNKNOWN_PRODUCT, f"no product {code} in the catalog"
        if line.gtin and line.gtin.zfill(14) not in self.products_by_gtin:
            return UNKNOWN_PRODUCT, f"no product with GTIN {line.gtin} in the catalog"
        if not code and not line.gtin:
            return UNKNOWN_PRODUCT, "product_code or gtin is required"
        if line.order_id not in self.known_orders:
            return UNKNOWN_ORDER, f"no order {line.order_id}"
        key = (line.order_id, line.order_line_no)
        state = self.order_lines.get(key)
        if state is None:
            return UNKNOWN_ORDER_LINE, f"order {line.order_id} has no line {line.order_line_no}"
        if state.dealer_id != line.dealer_id:
            return DEALER_MISMATCH, (f"order {line.order_id} belongs to another dealer than "
                                     f"the shipment's {line.dealer_id}")
        if not state.approved:
            return ORDER_NOT_APPROVED, f"order {line.order_id} is not approved for shipping"
        if (code and code != state.product_code) or (
                line.gtin and line.gtin.zfill(14) != state.gtin):
            return PRODUCT_MISMATCH, (f"order line {line.order_line_no} is for "
                                      f"{state.product_code} ({state.gtin})")
        already = state.shipped + self.taken.get(key, 0)
        remainder = state.ordered - state.closed - already
        if line.quantity > remainder:
            return OVER_SHIPPED, (f"ships {line.quantity} but only {max(remainder, 0)} of "
                                  f"{state.ordered} remain (shipped {already}, closed "
                                  f"{state.closed})")
        self.taken[key] = self.taken.get(key, 0) + line.quantity
        return None

    def release(self, line: ShipLine) -> None:
        """Give back the quantity of a line that will not be stored after all."""
        key = (line.order_id, line.order_line_no)
        self.taken[key] = self.taken.get(key, 0) - line.quantity


def apply_mode(results: list[LineResult], mode: Mode) -> set[str]:
    """Mark what is not stored under ``mode``; return the record ids to store (those with
    at least one ACCEPTED line)."""
    rejected_records = {r.record_id for r in results if r.outcome == Outcome.REJECTED}
    # None: nothing of the call is stored.
    doomed = None if mode == Mode.ALL_OR_NOTHING and rejected_records else rejected_records
    store: set[str] = set()
    for result in results:
        if result.outcome != Outcome.ACCEPTED:
            continue
        if doomed is None or result.record_id in doomed:
            result.outcome = Outcome.NOT_APPLIED
            result.reason_code = ""
            result.message = ("not stored: another line failed under ALL_OR_NOTHING"
                              if doomed is None else
                              "not stored: another line of this record failed")
        else:
            store.add(result.record_id)
    return store


_OUTCOME_NAMES = {Outcome.ACCEPTED: "accepted", Outcome.DUPLICATE: "duplicate",
                  Outcome.REJECTED: "rejected", Outcome.NOT_APPLIED: "not_applied"}


def summarize(results: list[LineResult]) -> dict[str, int]:
    counts = dict.fromkeys(_OUTCOME_NAMES.values(), 0)
    for result in results:
        counts[_OUTCOME_NAMES[result.outcome]] += 1
    return counts


@dataclass
class StreamReport:
    """What a stream of pushes came to: how many results of each outcome, the results
    that are neither ACCEPTED nor DUPLICATE, and how many messages were committed. A
    stream of millions of lines keeps no more than that."""

    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(_OUTCOME_NAMES.values(), 0))
    problems: list[LineResult] = field(default_factory=list)
    committed: int = 0

    def add(self, results: list[LineResult]) -> None:
        for name, count in summarize(results).items():
            self.counts[name] += count
        self.problems.extend(r for r in results
                             if r.outcome in (Outcome.REJECTED, Outcome.NOT_APPLIED))


# ------------------------------------------------------------------ records pushed

@dataclass
class ShipmentIn:
    """A shipment as the ERP pushed it: its header (company defaulted), the digest of
    the header as pushed, and its lines."""

    shipment_id: str
    dealer_id: str
    selling_company: str
    ship_date: str
    carrier: str
    waybill_no: str
    header_hash: str
    lines: list[ShipLine]

    def problem(self) -> str:
        """Why the header cannot be recorded ("" when it can)."""
        if not self.shipment_id:
            return "shipment_id is required"
        if not self.dealer_id:
            return "dealer_id is required"
        if parse_day(self.ship_date) is None:
            return f"ship_date {self.ship_date!r} is not YYYY-MM-DD"
        if not self.lines:
            return "a shipment needs at least one line"
        return ""


@dataclass(frozen=True)
class ShipmentBatch:
    """One stream message: shipments and the mode they are stored under."""

    shipments: list[ShipmentIn]
    mode: Mode


@dataclass(frozen=True)
class OrderShipping:
    """What shipping an order looks at and changes: its dealer, decision and status."""

    order_id: str
    dealer_id: str
    decision: str
    status: str


@dataclass(frozen=True)
class ProductIdentity:
    code: str
    gtin: str
    product_line: str


@dataclass(slots=True)
class RecordedLine:
    """A shipment line as stored: the line as pushed with the product resolved, the
    order line's GTIN and the product's line. (One per line of a bulk push: slotted and
    not frozen, a third of the cost to create.)"""

    line: ShipLine
    gtin: str
    product_line: str


@dataclass(frozen=True)
class RecordedShipment:
    shipment: ShipmentIn
    lines: list[RecordedLine]
    # False when the header is stored already (more lines of a known shipment).
    new: bool


@dataclass(frozen=True)
class InvoiceLineIn:
    line_no: int
    shipment_id: str
    shipment_line_no: int
    product_code: str
    quantity: int
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class InvoiceIn:
    """An invoice or credit note as pushed (company defaulted, the amounts' currency
    defaulted), with the digest of its content as pushed."""

    invoice_id: str
    kind: int
    dealer_id: str
    selling_company: str
    invoice_no: str
    issued_on: str
    due_on: str
    amount_minor: int
    tax_minor: int
    currency: str
    tax_currency: str
    return_id: str
    lines: tuple[InvoiceLineIn, ...]
    content_hash: str


@dataclass(frozen=True)
class AllocationIn:
    invoice_id: str
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class PaymentIn:
    payment_id: str
    dealer_id: str
    selling_company: str
    received_on: str
    amount_minor: int
    currency: str
    method: str
    reference: str
    allocations: tuple[AllocationIn, ...]
    content_hash: str


@dataclass(frozen=True)
class ReturnToCredit:
    """What a credit note needs of the return it credits."""

    return_id: str
    dealer_id: str
    status: int


def invoice_problem(invoice: InvoiceIn, shipment_dealers: dict[str, str],
                    returns: dict[str, ReturnToCredit], credit_note: int,
                    awaiting_credit: int) -> tuple[str, str] | None:
    """(reason code, message) if the invoice must be rejected, else None.
    ``shipment_dealers``: the dealer of each shipment the lines name; ``returns``: the
    returns credit notes name; a credit note must credit a return in status
    ``awaiting_credit``."""
    if not invoice.invoice_id:
        return INVALID_FIELD, "invoice_id is required"
    if not invoice.dealer_id:
        return INVALID_FIELD, "dealer_id is required"
    if parse_day(invoice.issued_on) is None:
        return INVALID_FIELD, f"issued_on {invoice.issued_on!r} is not YYYY-MM-DD"
    if invoice.due_on and parse_day(invoice.due_on) is None:
        return INVALID_FIELD, f"due_on {invoice.due_on!r} is not YYYY-MM-DD"
    if invoice.amount_minor <= 0:
        return INVALID_QUANTITY, "amount must be positive"
    if invoice.tax_minor < 0:
        return INVALID_QUANTITY, "tax must not be negative"
    for index, line in enumerate(invoice.lines):
        if line.quantity <= 0:
            return INVALID_QUANTITY, f"lines[{index}].quantity must be positive"
        if line.shipment_id:
            owner = shipment_dealers.get(line.shipment_id)
            if owner is None:
                return UNKNOWN_SHIPMENT, f"lines[{index}]: no shipment {line.shipment_id}"
            if owner != invoice.dealer_id:
                return DEALER_MISMATCH, (f"lines[{index}]: shipment {line.shipment_id} "
                                         "went to another dealer")
    if invoice.kind == credit_note and invoice.return_id:
        credited = returns.get(invoice.return_id)
        if credited is None or credited.dealer_id != invoice.dealer_id:
            return UNKNOWN_RETURN, f"no return {invoice.return_id} of this dealer"
        if credited.status != awaiting_credit:
            return INVALID_FIELD, (f"return {invoice.return_id} is not awaiting a credit note "
                                   "(the ERP must confirm receipt first)")
    return None


def payment_problem(payment: PaymentIn,
                    invoice_dealers: dict[str, str]) -> tuple[str, str] | None:
    """(reason code, message) if the payment must be rejected, else None."""
    if not payment.payment_id:
        return INVALID_FIELD, "payment_id is required"
    if not payment.dealer_id:
        return INVALID_FIELD, "dealer_id is required"
    if parse_day(payment.received_on) is None:
        return INVALID_FIELD, f"received_on {payment.received_on!r} is not YYYY-MM-DD"
    if payment.amount_minor <= 0:
        return INVALID_QUANTITY, "amount must be positive"
    allocated = 0
    for index, allocation in enumerate(payment.allocations):
        owner = invoice_dealers.get(allocation.invoice_id)
        if owner is None:
            return UNKNOWN_INVOICE, (f"allocations[{index}]: no invoice "
                                     f"{allocation.invoice_id}")
        if owner != payment.dealer_id:
            return DEALER_MISMATCH, (f"allocations[{index}]: invoice "
                                     f"{allocation.invoice_id} is another dealer's")
        if allocation.amount_minor <= 0:
            return INVALID_QUANTITY, f"allocations[{index}].amount must be positive"
        allocated += allocation.amount_minor
    if allocated > payment.amount_minor:
        return INVALID_QUANTITY, "allocations exceed the payment amount"
    return None


def judge_records(records: list[R], key: Callable[[R], str],
                  stored: dict[str, str], what: str,
                  problem: Callable[[R], tuple[str, str] | None]) -> list[LineResult]:
    """One result per invoice or payment pushed: DUPLICATE when its id is stored (or
    came earlier in the call) with the same content, REJECTED when with other content
    or when ``problem`` names one, else ACCEPTED."""
    results: list[LineResult] = []
    seen: dict[str, str] = {}
    for record in records:
        record_id, digest = key(record), record.content_hash
        previous = stored.get(record_id) or seen.get(record_id)
        if previous is not None:
            results.append(LineResult(record_id, 0, Outcome.DUPLICATE) if previous == digest
                           else LineResult(record_id, 0, Outcome.REJECTED, CONFLICTING_REPUSH,
                                           f"{what} already recorded with different content"))
            continue
        seen[record_id] = digest
        failure = problem(record)
        results.append(LineResult(record_id, 0, Outcome.REJECTED, *failure) if failure
                       else LineResult(record_id, 0, Outcome.ACCEPTED))
    return results

"""Notices (通知公告) and their read receipts: what a notice is, who it reaches, what its
attachments may be, and a receipt's state. Pure Python."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.identity.domain.files import file_violations
from shared.audience import DealerFacts, Node, Predicate, compile_expression
from shared.errors import FieldViolation

TITLE_MAX = 200
BODY_MAX = 20_000
MAX_ATTACHMENTS = 10
ATTACHMENTS_MAX_BYTES = 7 * 1024 * 1024
MAX_EXPLICIT_DEALERS = 5_000

class Category(enum.StrEnum):
    POLICY = "policy"
    PRODUCT = "product"
    PRICE = "price"
    HOLIDAY = "holiday"
    OTHER = "other"


class ReceiptState(enum.StrEnum):
    UNREAD = "unread"
    READ = "read"
    CONFIRMED = "confirmed"


@dataclass(frozen=True)
class Attachment:
    id: str
    filename: str
    content_type: str
    size_bytes: int


@dataclass(frozen=True)
class NewAttachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Audience:
    """Who a notice reaches: dealers the expression selects (within the publisher's
    regions, when a region published it) or that are named."""

    expression: Node | None
    dealer_ids: tuple[str, ...] = ()
    # Empty: HQ published it, every region.
    region_codes: tuple[str, ...] = ()

    def predicate(self) -> Predicate:
        named = frozenset(self.dealer_ids)
        selects = compile_expression(self.expression, "audience") if self.expression else None
        regions = frozenset(self.region_codes)

        def reaches(dealer: DealerFacts) -> bool:
            if dealer.id in named:
                return True
            return selects is not None and (not regions or dealer.region_code in regions) \
                and selects(dealer)
        return reaches


@dataclass(frozen=True)
class Notice:
    id: str
    title: str
    body: str
    category: Category
    must_confirm: bool
    in_force_until: datetime | None
    audience: Audience
    # The dealers it reached when published: they keep it after it expires or they leave
    # the audience.
    reached_dealer_ids: frozenset[str]
    attachments: tuple[Attachment, ...]
    published_by: str
    published_at: datetime

    def in_force(self, now: datetime) -> bool:
        return self.in_force_until is None or now < self.in_force_until

    def dealers_reached(self, dealers: Iterable[DealerFacts], now: datetime) -> set[str]:
        """The dealers it reached at publication, and, while in force, those that have
        joined its audience since (a tag added later)."""
        reached = set(self.reached_dealer_ids)
        if self.in_force(now):
            reaches = self.audience.predicate()
            reached.update(dealer.id for dealer in dealers if reaches(dealer))
        return reached

    def reaches(self, dealer: DealerFacts | None, now: datetime) -> bool:
        if dealer is None:
            return False
        return dealer.id in self.reached_dealer_ids or (
            self.in_force(now) and self.audience.predicate()(dealer))


@dataclass(frozen=True)
class Receipt:
    """One dealer user's reading of one notice."""

    notice_id: str
    user_id: str
    dealer_id: str
    read_at: datetime
    confirmed_at: datetime | None = None

    @property
    def state(self) -> ReceiptState:
        return ReceiptState.CONFIRMED if self.confirmed_at else ReceiptState.READ


@dataclass(frozen=True)
class NoticeView:
    """A notice as its reader sees it: a dealer user with their own receipt, HQ and
    managers with the counts of the dealer users in their scope."""

    notice: Notice
    receipt: Receipt | None = None
    recipients: int = 0
    read: int = 0
    confirmed: int = 0


@dataclass(frozen=True)
class ReceiptRow:
    """A line of a notice's receipts table: a dealer user and how far they got."""

    dealer_id: str
    dealer_name: str
    user_id: str
    username: str
    display_name: str
    read_at: datetime | None
    confirmed_at: datetime | None

    @property
    def state(self) -> ReceiptState:
        if self.confirmed_at:
            return ReceiptState.CONFIRMED
        return ReceiptState.READ if self.read_at else ReceiptState.UNREAD

    def needs_reminder(self, must_confirm: bool) -> bool:
        return self.state == ReceiptState.UNREAD or (
            must_confirm and self.state != ReceiptState.CONFIRMED)


@dataclass(frozen=True)
class NewNotice:
    title: str
    body: str
    category: Category | None
    must_confirm: bool
    in_force_until: datetime | None
    expression: Node | None
    dealer_ids: tuple[str, ...]
    attachments: tuple[NewAttachment, ...] = ()


def notice_violations(notice: NewNotice, now: datetime) -> list[FieldViolation]:
    """Everything wrong with a notice to publish, each naming its field."""
    problems = []
    if not notice.title.strip():
        problems.append(FieldViolation("title", "is required"))
    elif len(notice.title) > TITLE_MAX:
        problems.append(FieldViolation("title", f"at most {TITLE_MAX} characters"))
    if not notice.body.strip():
        problems.append(FieldViolation("body", "is required"))
    elif len(notice.body) > BODY_MAX:
        problems.append(FieldViolation("body", f"at most {BODY_MAX} characters"))
    if notice.category is None:
        problems.append(FieldViolation("category", "is required"))
    if notice.in_force_until is not None and notice.in_force_until <= now:
        problems.append(FieldViolation("in_force_until", "must be in the future"))
    if notice.expression is None and not notice.dealer_ids:
        problems.append(FieldViolation("audience", "a tag expression or dealer_ids is required"))
    if len(notice.dealer_ids) > MAX_EXPLICIT_DEALERS:
        problems.append(FieldViolation("dealer_ids", f"at most {MAX_EXPLICIT_DEALERS}"))
    if len(notice.attachments) > MAX_ATTACHMENTS:
        problems.append(FieldViolation("attachments", f"at most {MAX_ATTACHMENTS} files"))
    total = 0
    for index, attachment in enumerate(notice.attachments):
        total += len(attachment.content)
        problems += file_violations(f"attachments[{index}]", attachment.filename,
                                    attachment.content_type, attachment.content)
    if total > ATTACHMENTS_MAX_BYTES:
        problems.append(FieldViolation(
            "attachments", f"together larger than {ATTACHMENTS_MAX_BYTES // (1024 * 1024)} MiB"))
    return problems


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(text: str) -> str:
    """A cell's text as a spreadsheet must show it, never run it (OWASP CSV injection):
    text a spreadsheet would take for a formula gets a leading apostrophe."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text

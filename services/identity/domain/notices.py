"""Notices (通知公告) and their read receipts: what a notice is, who it reaches, what its
attachments may be, and a receipt's state. Pure Python."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shared.audience import DealerFacts, Node, Predicate, compile_expression
from shared.errors import FieldViolation

TITLE_MAX = 200
BODY_MAX = 20_000
MAX_ATTACHMENTS = 10
# Sent base64 in one JSON body, which the gateway takes up to 10 MiB.
ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
ATTACHMENTS_MAX_BYTES = 7 * 1024 * 1024
MAX_EXPLICIT_DEALERS = 5_000

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
# What may be attached, each with the bytes its content starts with: a file is taken for
# what its content says, not for what its name or declared type claim.
ATTACHMENT_TYPES: dict[str, tuple[tuple[str, ...], bytes | None]] = {
    "application/pdf": ((".pdf",), b"%PDF-"),
    "image/png": ((".png",), b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": ((".jpg", ".jpeg"), b"\xff\xd8\xff"),
    XLSX: ((".xlsx",), b"PK\x03\x04"),
    DOCX: ((".docx",), b"PK\x03\x04"),
    PPTX: ((".pptx",), b"PK\x03\x04"),
    "text/plain": ((".txt",), None),
}


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


def _attachment_type(attachment: NewAttachment) -> str | None:
    """Why the attachment is refused, or None."""
    allowed = ATTACHMENT_TYPES.get(attachment.content_type)
    if allowed is None:
        return f"type {attachment.content_type or '(none)'} is not allowed: PDF, PNG, " \
               "JPEG, XLSX, DOCX, PPTX or plain text"
    extensions, magic = allowed
    if not attachment.filename.lower().endswith(extensions):
        return f"a {attachment.content_type} file's name ends with {' or '.join(extensions)}"
    if magic is not None and not attachment.content.startswith(magic):
        return f"the content is not {attachment.content_type}"
    if magic is None:
        try:
            attachment.content.decode("utf-8")
        except UnicodeDecodeError:
            return "plain text must be UTF-8"
    return None


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
        field = f"attachments[{index}]"
        total += len(attachment.content)
        if not attachment.filename.strip() or len(attachment.filename) > 200:
            problems.append(FieldViolation(f"{field}.filename", "1 to 200 characters"))
        if not attachment.content:
            problems.append(FieldViolation(f"{field}.content", "is empty"))
        elif len(attachment.content) > ATTACHMENT_MAX_BYTES:
            problems.append(FieldViolation(
                f"{field}.content", f"larger than {ATTACHMENT_MAX_BYTES // (1024 * 1024)} MiB"))
        else:
            wrong = _attachment_type(attachment)
            if wrong:
                problems.append(FieldViolation(f"{field}.content_type", wrong))
    if total > ATTACHMENTS_MAX_BYTES:
        problems.append(FieldViolation(
            "attachments", f"together larger than {ATTACHMENTS_MAX_BYTES // (1024 * 1024)} MiB"))
    return problems


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(text: str) -> str:
    """A cell's text as a spreadsheet must show it, never run it (OWASP CSV injection):
    text a spreadsheet would take for a formula gets a leading apostrophe."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text

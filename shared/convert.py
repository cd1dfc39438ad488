"""protobuf ↔ the shared value types (Money, timestamps), for the layers that speak
protobuf: api/, consumers/ and the event payloads use cases record."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from qudao.common.v1 import money_pb2, page_pb2

from shared.clock import aware
from shared.money import DEFAULT_CURRENCY, Money
from shared.pagination import Page, PageRequest


def money_to_proto(money: Money) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=money.amount_minor, currency=money.currency)


def money_from_proto(message: money_pb2.Money) -> Money:
    return Money(message.amount_minor, message.currency or DEFAULT_CURRENCY)


def to_timestamp(moment: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp (None stays None, so an unset field stays unset)."""
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(aware(moment))
    return stamp


def from_timestamp(stamp: Timestamp) -> datetime | None:
    """None for an unset (zero) Timestamp."""
    if not stamp.seconds and not stamp.nanos:
        return None
    return stamp.ToDatetime(tzinfo=UTC)


def page_request_of(page: page_pb2.PageRequest) -> PageRequest:
    """A list request's page, validated (size bounded, token decodable)."""
    return PageRequest.of(page.page_size, page.page_token)


def page_info_of(page: Page) -> page_pb2.PageInfo:
    """The next token and, where the list was counted, the total (0 when not)."""
    return page_pb2.PageInfo(next_page_token=page.next_token, total_size=page.total or 0)

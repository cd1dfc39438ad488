"""Paging, the same for every list: a page request (size and opaque token) in, a page of
items (with the next token and, where counted, the total) out. Pure Python; the SQL side
is ``shared.db.fetch_page``."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shared.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Far beyond any real list; a token past it is forged or corrupt.
MAX_OFFSET = 100_000_000

T = TypeVar("T")


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument.field("page.page_size", "must not be negative")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_page_token(token: str) -> int:
    if not token:
        return 0
    try:
        if len(token) > 64:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, value = raw.partition(":")
        offset = int(value)
        if kind != "o" or not 0 <= offset <= MAX_OFFSET:
            raise ValueError(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidArgument.field("page.page_token", "is not a valid page token") from exc
    return offset


@dataclass(frozen=True)
class PageRequest:
    """Which page: ``size`` items after the position ``token`` names."""

    size: int = DEFAULT_PAGE_SIZE
    token: str = ""

    @classmethod
    def of(cls, size: int, token: str) -> PageRequest:
        """Validated: the size bounded, the token decodable."""
        decode_page_token(token)
        return cls(page_size(size), token)

    @property
    def offset(self) -> int:
        return decode_page_token(self.token)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str = ""
    # Set where the list is counted.
    total: int | None = None
    extra: dict = field(default_factory=dict)

    def map(self, convert) -> Page:
        return Page([convert(item) for item in self.items], self.next_token, self.total,
                    self.extra)


def page_of(items: list[T], request: PageRequest, total: int | None = None) -> Page[T]:
    """A page from ``request.size + 1`` fetched items: the extra one only says that
    there is a next page."""
    more = len(items) > request.size
    token = encode_page_token(request.offset + request.size) if more else ""
    return Page(items[:request.size], token, total)


def page_of_all(items: list[T], request: PageRequest) -> Page[T]:
    """The page ``request`` names of a list held whole in memory, counted."""
    return page_of(items[request.offset:request.offset + request.size + 1], request,
                   len(items))

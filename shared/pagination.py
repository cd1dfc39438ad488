"""Paging, the same for every list: a page request (size and opaque token) in, a page of
items (with the next token and, where counted, the total) out. Pure Python; the SQL side
is ``shared.db.fetch_page``.

A token is one of two positions, opaque to clients: an offset (``o:``), or for lists
ordered by when their items were created or changed, a cursor (``k:``): the sort key of
the last item given, so rows inserted between pages neither shift nor repeat items."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Generic, TypeVar

from shared.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Far beyond any real list; a token past it is forged or corrupt.
MAX_OFFSET = 100_000_000
# A cursor holds a time and an id or two; anything longer is forged.
MAX_TOKEN_LENGTH = 200

T = TypeVar("T")


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument.field("page.page_size", "must not be negative")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def _token(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def encode_page_token(offset: int) -> str:
    return _token(f"o:{offset}")


def encode_cursor(values: list) -> str:
    """The token of the position after an item whose sort key is ``values``."""
    return _token("k:" + json.dumps([_plain(value) for value in values],
                                    separators=(",", ":")))


def _plain(value):
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    return value


def _typed(value):
    if isinstance(value, dict):
        ((kind, text),) = value.items()
        return datetime.fromisoformat(text) if kind == "t" else date.fromisoformat(text)
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(value)
    return value


def _invalid(description: str = "is not a valid page token") -> InvalidArgument:
    return InvalidArgument.field("page.page_token", description)


def _decode(token: str) -> tuple[str, int | list]:
    """("o", offset) or ("k", sort key values)."""
    try:
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind == "k":
            values = json.loads(value)
            if not isinstance(values, list) or not values:
                raise ValueError(raw)
            return kind, [_typed(v) for v in values]
        offset = int(value)
        if kind != "o" or not 0 <= offset <= MAX_OFFSET:
            raise ValueError(raw)
        return kind, offset
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise _invalid() from exc


def decode_page_token(token: str) -> int:
    """The offset an offset token names (0 for none)."""
    if not token:
        return 0
    kind, value = _decode(token)
    if kind != "o":
        raise _invalid("is not a page token of this list")
    return value


def decode_cursor(token: str, width: int) -> list | None:
    """The sort key (``width`` values) a cursor names; None for the first page."""
    if not token:
        return None
    kind, value = _decode(token)
    if kind != "k" or len(value) != width:
        raise _invalid("is not a page token of this list")
    return value


@dataclass(frozen=True)
class PageRequest:
    """Which page: ``size`` items after the position ``token`` names."""

    size: int = DEFAULT_PAGE_SIZE
    token: str = ""

    @classmethod
    def of(cls, size: int, token: str) -> PageRequest:
        """Validated: the size bounded, the token decodable."""
        if token:
            _decode(token)
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

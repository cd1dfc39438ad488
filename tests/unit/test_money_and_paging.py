from datetime import UTC, datetime

import pytest

from shared.convert import money_from_proto, money_to_proto
from shared.errors import InvalidArgument
from shared.money import Money
from shared.pagination import (
    MAX_PAGE_SIZE,
    decode_cursor,
    decode_page_token,
    encode_cursor,
    encode_page_token,
    page_size,
)


def test_rates_round_half_away_from_zero():
    assert Money(10_000).at_rate_bps(200) == Money(200)
    assert Money(25).at_rate_bps(2_000) == Money(5)          # 5.0 exactly
    assert Money(1).at_rate_bps(5_000) == Money(1)           # 0.5 rounds up
    assert Money(-1).at_rate_bps(5_000) == Money(-1)         # and away from zero
    assert Money(99).at_rate_bps(0) == Money(0)


def test_money_refuses_to_mix_currencies():
    with pytest.raises(ValueError, match="currency mismatch"):
        Money(1, "CNY") + Money(1, "USD")


def test_money_round_trips_through_protobuf():
    assert money_from_proto(money_to_proto(Money(12_345, "CNY"))) == Money(12_345, "CNY")


def test_page_tokens_round_trip_and_reject_garbage():
    assert decode_page_token(encode_page_token(150)) == 150
    assert decode_page_token("") == 0
    for bad in ("%%%", "bm9wZQ", encode_page_token(1)[:-1] + "!"):
        with pytest.raises(InvalidArgument) as caught:
            decode_page_token(bad)
        assert caught.value.violations[0].field == "page.page_token"


def test_a_cursor_holds_the_last_sort_key_and_refuses_forgeries():
    moment = datetime(2026, 11, 30, 1, 2, 3, 456789, tzinfo=UTC)
    token = encode_cursor([moment, "0b7c6c1e-8a47-4d8e-9a8f-2f3c9d5e1a10"])
    assert len(token) <= 200 and "2026" not in token  # opaque
    assert decode_cursor(token, 2) == [moment, "0b7c6c1e-8a47-4d8e-9a8f-2f3c9d5e1a10"]
    assert decode_cursor("", 2) is None
    forged = [encode_page_token(50),                # an offset where a cursor belongs
              encode_cursor(["only one value"]),     # another list's cursor
              encode_cursor([{"t": "yesterday"}, "x"]),
              encode_cursor([[1, 2], "x"]),
              "k" * 201]
    for bad in forged:
        with pytest.raises(InvalidArgument) as caught:
            decode_cursor(bad, 2)
        assert caught.value.violations[0].field == "page.page_token"
    with pytest.raises(InvalidArgument):
        decode_page_token(token)  # a cursor where an offset belongs


def test_page_size_defaults_and_caps():
    assert page_size(0) == 50
    assert page_size(10_000) == MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument):
        page_size(-1)

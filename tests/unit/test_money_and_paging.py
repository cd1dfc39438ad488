import pytest

from shared.convert import money_from_proto, money_to_proto
from shared.errors import InvalidArgument
from shared.money import Money
from shared.pagination import MAX_PAGE_SIZE, decode_page_token, encode_page_token, page_size


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


def test_page_size_defaults_and_caps():
    assert page_size(0) == 50
    assert page_size(10_000) == MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument):
        page_size(-1)

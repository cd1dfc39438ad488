"""The flow service's UDI parser against biip, the reference: thousands of generated GS1
element strings (with and without parentheses, GS/FNC1 separators, symbology
identifiers, lot last or not, expiry day 00) must parse to the same GTIN, lot, serial
and dates, or fail alike. MA and AHM codes are recognised by their form."""

from __future__ import annotations

from datetime import date

import pytest
from biip import ParseConfig, parse
from biip.gs1_messages import GS1Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import ean

from services.flow.domain.udi import GS, Issuer, UdiError, gs1_date, parse_udi

YEAR = date.today().year  # biip decides two-digit centuries from today
SET_82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
SAFE_LOT = SET_82.replace("(", "").replace(")", "")
SYMBOLOGIES = ["", "]d2", "]C1", "]Q3", "]e0"]


def _gtin(body: str, valid: bool) -> str:
    digit = ean.calc_check_digit(body)
    return body + (digit if valid else str((int(digit) + 1) % 10))


gtins = st.builds(_gtin, st.text("0123456789", min_size=13, max_size=13),
                  st.booleans())
dates = st.tuples(st.integers(0, 99), st.integers(0, 13), st.integers(0, 31)).map(
    lambda t: f"{t[0]:02d}{t[1]:02d}{t[2]:02d}")
lots = st.text(SAFE_LOT, min_size=1, max_size=22)


@st.composite
def element_strings(draw):
    fields = [("01", draw(gtins))]
    if draw(st.booleans()):
        fields.append(("17", draw(dates)))
    if draw(st.booleans()):
        fields.append(("11", draw(dates)))
    if draw(st.booleans()):
        fields.append(("10", draw(lots)))
    if draw(st.booleans()):
        fields.append(("21", draw(lots)))
    fields = draw(st.permutations(fields))
    return fields


def reference(code: str, hri: bool):
    """biip's answer as (gtin, lot, serial, expiry, production), or None for an error."""
    try:
        if hri:
            message = GS1Message.parse_hri(code)
        else:
            result = parse(code, config=ParseConfig(separator_chars=[GS]))
            message = result.gs1_message
            if message is None:
                return None
    except Exception:
        return None
    values: dict[str, object] = {}
    for element in message.element_strings:
        if element.ai.ai == "01" and element.gtin_error:
            return None
        if element.ai.ai in ("11", "17"):
            values.setdefault(element.ai.ai, element.date)
        else:
            values.setdefault(element.ai.ai, element.value)
    if "01" not in values:
        return None
    return (values["01"], values.get("10", ""), values.get("21", ""), values.get("17"),
            values.get("11"))


def ours(code: str):
    try:
        udi = parse_udi(code, YEAR)
    except UdiError:
        return None
    return udi.gtin, udi.batch, udi.serial, udi.expiry, udi.production


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(element_strings(), st.sampled_from(SYMBOLOGIES), st.booleans())
def test_raw_element_strings_parse_as_biip_does(fields, symbology, always_separate):
    parts = []
    for index, (ai, value) in enumerate(fields):
        parts.append(ai + value)
        variable = ai in ("10", "21")
        last = index == len(fields) - 1
        if (variable and not last) or (always_separate and not last):
            parts.append(GS)
    code = symbology + "".join(parts)
    assert ours(code) == reference(code, hri=False), code


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(element_strings())
def test_parenthesised_element_strings_parse_as_biip_does(fields):
    code = "".join(f"({ai}){value}" for ai, value in fields)
    assert ours(code) == reference(code, hri=True), code


def test_a_lot_not_last_without_a_separator_swallows_the_rest_as_biip_does():
    code = f"01{_gtin('0690123456789', True)}10LOT12321SN1"
    assert ours(code) == reference(code, hri=False)
    assert ours(code)[1] == "LOT12321SN1"


def test_expiry_day_00_is_the_last_day_of_the_month():
    assert gs1_date("290200", 2026) == date(2029, 2, 28)
    assert parse_udi(f"(01){_gtin('0690123456789', True)}(17)280200", 2026).expiry == \
        date(2028, 2, 29)


def test_wrong_check_digit_and_garbage_fail_with_codes():
    with pytest.raises(UdiError) as wrong:
        parse_udi(f"(01){_gtin('0690123456789', False)}", 2026)
    assert wrong.value.code == "UDI_CHECK_DIGIT"
    with pytest.raises(UdiError) as garbage:
        parse_udi("hello world", 2026)
    assert garbage.value.code == "UDI_UNPARSEABLE"


def test_ma_and_ahm_codes_are_recognised_by_form():
    ma = parse_udi("MA.156.M0.100038.10010265.S20260101.L2026A", 2026)
    assert ma.issuer == Issuer.MA and ma.di == "MA.156.M0.100038.10010265"
    assert "L2026A" in ma.pi
    ahm = parse_udi("(DI)88001234567(BN)LOT7(ED)20301231", 2026)
    assert ahm.issuer == Issuer.AHM and ahm.di == "88001234567" and ahm.batch == "LOT7"
    with pytest.raises(UdiError):
        parse_udi("MA.156.X", 2026)

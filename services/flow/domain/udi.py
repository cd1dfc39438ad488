"""UDI as scanned: parsing the codes the issuers NMPA accepts. Pure Python, no I/O.

GS1 (the dominant issuer): an element string with or without parentheses, with GS
(FNC1) separators, optionally behind a scanner's symbology identifier (``]d2``, ``]C1``,
``]Q3``…). ``biip`` is the reference parser. The fast path below handles what medical
UDIs nearly always carry — GTIN (01), production date (11), expiry (17), lot (10) and
serial (21), in any order, plain characters of the GS1 set — and hands every other
string to ``biip`` unchanged, so its answers are biip's by construction where it
declines and proven equal by differential property tests where it answers
(tests/unit/test_flow_udi.py).

MA (IDcode) and AHM codes are recognised by their form and compared as DI + PI strings.
"""

from __future__ import annotations

import calendar
import enum
import functools
import re
from dataclasses import dataclass
from datetime import date

from stdnum import ean

GS = "\x1d"


class Issuer(enum.StrEnum):
    GS1 = "GS1"
    MA = "MA"
    AHM = "AHM"


@dataclass(frozen=True, slots=True)
class Udi:
    issuer: Issuer
    # GS1: the GTIN-14; MA/AHM: the DI string.
    di: str
    gtin: str = ""
    batch: str = ""
    serial: str = ""
    expiry: date | None = None
    production: date | None = None
    # MA/AHM: everything after the DI, compared as a string.
    pi: str = ""


class UdiError(ValueError):
    """The code does not parse; ``code`` is a stable error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


UDI_UNPARSEABLE = "UDI_UNPARSEABLE"
UDI_CHECK_DIGIT = "UDI_CHECK_DIGIT"
UDI_NO_GTIN = "UDI_NO_GTIN"

# GS1 General Specifications, figure 7.11-1: the 82 characters of the encodable set.
_SET_82 = frozenset("!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
                    "abcdefghijklmnopqrstuvwxyz")
_DATE_AIS = {"11", "17"}
_VARIABLE_AIS = {"10", "21"}
_HANDLED_AIS = {"01", *_DATE_AIS, *_VARIABLE_AIS}
_MAX_VARIABLE = 20
_SYMBOLOGY = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_MA = re.compile(r"^(MA\.\d{3}\.M0\.\d{6}\.\d{8})(?:[.]?(.*))$")
_AHM_FIELD = re.compile(r"\((DI|BN|SN|MD|BD|ED)\)([^()]*)")
_GTIN_ONLY = re.compile(r"^\d{14}$")


def parse_udi(text: str, reference_year: int) -> Udi:
    """Parse one scanned code. ``reference_year`` decides the century of two-digit
    years (GS1 General Specifications 7.12: within 49 years back, 50 ahead)."""
    code = text.strip()
    if not code:
        raise UdiError(UDI_UNPARSEABLE, "empty UDI")
    symbology = ""
    if _SYMBOLOGY.match(code):
        symbology, code = code[:3], code[3:]
    if code.startswith("MA."):
        return _parse_ma(code)
    if code.startswith("(DI)"):
        return _parse_ahm(code)
    if _GTIN_ONLY.match(code):
        return _from_gtin(code, {})
    fields = _fast_hri(code) if "(" in code else _fast_element_string(code)
    if fields is None:
        return _with_biip(symbology + code, reference_year, hri="(" in code)
    return _from_fields(fields, reference_year)


def _fast_hri(code: str) -> dict[str, str] | None:
    """``(01)…(17)…(10)…``: None when anything is outside the fast path."""
    parts = code.split("(")
    if parts[0] or len(parts) < 2:
        return None
    fields: dict[str, str] = {}
    for part in parts[1:]:
        ai, closing, value = part.partition(")")
        if (not closing or ")" in value or ai not in _HANDLED_AIS or ai in fields
                or not _plausible(ai, value)):
            return None
        fields[ai] = value
    return fields


def _fast_element_string(code: str) -> dict[str, str] | None:
    """``0106901234567892172912311OLOT<GS>21S1``: None outside the fast path."""
    fields: dict[str, str] = {}
    position, length = 0, len(code)
    while position < length:
        ai = code[position:position + 2]
        position += 2
        if ai not in _HANDLED_AIS or ai in fields:
            return None
        if ai == "01":
            value, position = code[position:position + 14], position + 14
        elif ai in _DATE_AIS:
            value, position = code[position:position + 6], position + 6
        else:
            end = code.find(GS, position)
            end = length if end < 0 else end
            value, position = code[position:end], end + 1
        if not _plausible(ai, value):
            return None
        fields[ai] = value
    return fields or None


_VARIABLE_VALUE = re.compile(f"[{re.escape(''.join(sorted(_SET_82)))}]{{1,{_MAX_VARIABLE}}}")


def _plausible(ai: str, value: str) -> bool:
    if ai == "01":
        return len(value) == 14 and value.isdigit() and value.isascii()
    if ai in _DATE_AIS:
        return len(value) == 6 and value.isdigit() and value.isascii()
    return _VARIABLE_VALUE.fullmatch(value) is not None


@functools.lru_cache(maxsize=16_384)
def gs1_date(value: str, reference_year: int) -> date:
    """YYMMDD; day 00 means the last day of the month. Raises ValueError."""
    yy, month, day = int(value[:2]), int(value[2:4]), int(value[4:6])
    difference = yy - reference_year % 100
    century = reference_year // 100
    if difference >= 51:
        century -= 1
    elif difference <= -50:
        century += 1
    year = century * 100 + yy
    if not 1 <= month <= 12:
        raise ValueError(f"month {month}")
    if day == 0:
        day = calendar.monthrange(year, month)[1]
    return date(year, month, day)


def _from_fields(fields: dict[str, str], reference_year: int) -> Udi:
    dates: dict[str, date] = {}
    for ai in _DATE_AIS & fields.keys():
        try:
            dates[ai] = gs1_date(fields[ai], reference_year)
        except ValueError:
            raise UdiError(UDI_UNPARSEABLE,
                           f"({ai}) {fields[ai]} is not a valid YYMMDD date") from None
    if "01" not in fields:
        raise UdiError(UDI_NO_GTIN, "the UDI carries no GTIN (01)")
    return _from_gtin(fields["01"], fields, dates)


@functools.lru_cache(maxsize=65_536)
def gtin_valid(gtin: str) -> bool:
    """A catalog has thousands of GTINs and a file repeats them: checked once each."""
    return ean.is_valid(gtin)


def _from_gtin(gtin: str, fields: dict[str, str], dates: dict | None = None) -> Udi:
    if not gtin_valid(gtin):
        raise UdiError(UDI_CHECK_DIGIT, f"GTIN {gtin} has a wrong check digit")
    dates = dates or {}
    return Udi(Issuer.GS1, gtin, gtin, fields.get("10", ""), fields.get("21", ""),
               dates.get("17"), dates.get("11"))


def _with_biip(code: str, reference_year: int, *, hri: bool) -> Udi:
    """The reference parser, for everything outside the fast path."""
    from biip import ParseConfig, ParseError, parse
    from biip.gs1_messages import GS1Message

    try:
        if hri:
            message = GS1Message.parse_hri(code)
        else:
            result = parse(code, config=ParseConfig(separator_chars=[GS]))
            message = result.gs1_message
            if message is None:
                if result.gtin is not None and not result.gtin_error:
                    return _from_gtin(result.gtin.value.zfill(14), {})
                raise UdiError(UDI_UNPARSEABLE, result.gs1_message_error
                               or result.gtin_error or "not a GS1 element string")
    except ParseError as exc:
        raise UdiError(UDI_UNPARSEABLE, str(exc)) from None
    fields: dict[str, str] = {}
    dates: dict[str, date] = {}
    for element in message.element_strings:
        ai = element.ai.ai
        if ai == "01" and element.gtin_error:
            raise UdiError(UDI_CHECK_DIGIT, element.gtin_error)
        fields.setdefault(ai, element.value)
        if ai in _DATE_AIS and element.date is not None:
            # biip decides the century from today; ours from the reference year.
            dates.setdefault(ai, gs1_date(element.value, reference_year))
    if "01" not in fields:
        raise UdiError(UDI_NO_GTIN, "the UDI carries no GTIN (01)")
    return _from_gtin(fields["01"], fields, dates)


def _parse_ma(code: str) -> Udi:
    match = _MA.match(code)
    if match is None:
        raise UdiError(UDI_UNPARSEABLE, "an MA (IDcode) UDI starts with MA.<country>.M0."
                                        "<registrant 6 digits>.<product 8 digits>")
    return Udi(Issuer.MA, match.group(1), pi=match.group(2) or "")


def _parse_ahm(code: str) -> Udi:
    fields: dict[str, str] = {}
    position = 0
    for match in _AHM_FIELD.finditer(code):
        if match.start() != position:
            break
        fields.setdefault(match.group(1), match.group(2))
        position = match.end()
    if position != len(code) or not fields.get("DI"):
        raise UdiError(UDI_UNPARSEABLE, "an AHM UDI is (DI)… followed by (BN) (SN) (MD) "
                                        "(BD) (ED) fields")
    return Udi(Issuer.AHM, fields["DI"], batch=fields.get("BN", ""),
               serial=fields.get("SN", ""), pi=code[len("(DI)") + len(fields["DI"]):])


def pi_mentions(udi: Udi, value: str) -> bool:
    """For MA/AHM codes, compared as strings: the PI carries the row's value."""
    return not value or value in udi.pi

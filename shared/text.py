"""The one name normalizer every service uses when it compares names of customers
(hospitals, clinics, pharmacies, companies): traditional to simplified script (OpenCC),
full-width to half-width, whitespace and punctuation, brackets, and the common prefixes
and suffixes that do not tell two customers apart (有限公司, 附属, 院区, "上海市" vs "上海").
A campus (院区, 东院) is dropped from the name and kept apart (``campus_of``); a branch
(分院) stays in the name (it is often a customer of its own), ``main_hospital`` names the
hospital it belongs to. Pure Python, no I/O.

``normalize_name("復旦大學附屬中山醫院（徐匯院區）") == "复旦大学中山医院"``
``campus_of("復旦大學附屬中山醫院（徐匯院區）") == "徐汇院区"``
"""

from __future__ import annotations

import functools
import re
import unicodedata

import opencc

# Brackets of every width and shape, mapped to ASCII parentheses after NFKC.
_BRACKETS = str.maketrans({"【": "(", "】": ")", "〔": "(", "〕": ")", "［": "(", "］": ")",
                           "[": "(", "]": ")", "{": "(", "}": ")", "《": "(", "》": ")",
                           "〈": "(", "〉": ")", "「": "(", "」": ")", "『": "(", "』": ")",
                           "<": "(", ">": ")", "﹙": "(", "﹚": ")"})
_BRACKETED = re.compile(r"\([^()]*\)")
_NOT_WORD = re.compile(r"[^0-9a-z\u3400-\u4dbf\u4e00-\u9fff]+")
# Legal-form suffixes of companies (clinics, pharmacies, distributors).
_LEGAL_SUFFIX = re.compile(r"(股份有限公司|有限责任公司|有限公司|集团公司|集团|公司)$")
# "<university>(医学院)附属<hospital>" — 附属 carries no identity.
_AFFILIATED = re.compile(r"(医学院)?附属")
# "<university><college>医学院<hospital>" with 附属 left out: the same hospital.
_MEDICAL_SCHOOL = re.compile(r"(大学[\u4e00-\u9fff]{0,4}?)医学院")
# A campus or part of one hospital: "瑞金医院北部院区", "第六人民医院东院", "院本部".
_CAMPUS = re.compile(r"(医院|中心|卫生院)(?:[0-9a-z\u4e00-\u9fff]{0,8}?院区|[东南西北]院|院?本部)$")
_TRAILING_CAMPUS = re.compile(r"[0-9a-z\u4e00-\u9fff]{0,6}院区$")
# A branch (分院) is often a customer of its own (its own licence): it stays in the name,
# and the duplicate check also looks for the main hospital, for review.
_BRANCH = re.compile(r"(医院|中心|卫生院)[0-9a-z\u4e00-\u9fff]{0,8}?分院$")
# What names a campus, in brackets or after the hospital: "（徐汇院区）", "北部院区", "东院".
_CAMPUS_NAME = r"([0-9a-z\u4e00-\u9fff]{1,8}?(?:院区|分院)|[东南西北]院)$"
_CAMPUS_WORD = re.compile(_CAMPUS_NAME)
_CAMPUS_AFTER = re.compile(r"(?:医院|中心|卫生院)" + _CAMPUS_NAME)
_PROVINCES = ("北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏",
              "浙江", "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南",
              "四川", "贵州", "云南", "陕西", "甘肃", "青海", "台湾")
_AUTONOMOUS = {"内蒙古自治区": "内蒙古", "广西壮族自治区": "广西", "西藏自治区": "西藏",
               "宁夏回族自治区": "宁夏", "新疆维吾尔自治区": "新疆",
               "香港特别行政区": "香港", "澳门特别行政区": "澳门"}
_PROVINCE_PREFIX = re.compile("^(" + "|".join(_PROVINCES) + ")[省市]")
_DIGITS_ORDINAL = re.compile(r"第(\d{1,3})")
_CN_DIGITS = "零一二三四五六七八九"


def chinese_number(value: int) -> str:
    """1..999 as Chinese numerals the way hospital names write them: 1 一, 10 十, 12 十二."""
    if value < 10:
        return _CN_DIGITS[value]
    if value < 20:
        return "十" + (_CN_DIGITS[value % 10] if value % 10 else "")
    if value < 100:
        return _CN_DIGITS[value // 10] + "十" + (_CN_DIGITS[value % 10] if value % 10 else "")
    rest = value % 100
    head = _CN_DIGITS[value // 100] + "百"
    if rest == 0:
        return head
    if rest < 10:
        return head + "零" + _CN_DIGITS[rest]
    return head + (_CN_DIGITS[rest // 10] + "十" + (_CN_DIGITS[rest % 10] if rest % 10 else ""))


def to_half_width(text: str) -> str:
    """Full-width letters, digits, punctuation and the ideographic space to half-width."""
    return unicodedata.normalize("NFKC", text)


@functools.cache
def _traditional_to_simplified() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional Chinese script to simplified (醫院 → 医院, 協和 → 协和); other text as is."""
    if text.isascii():
        return text
    return _traditional_to_simplified().convert(text)


def is_traditional(text: str) -> bool:
    """Whether the text is written (partly) in traditional script."""
    text = to_half_width(text or "")
    return to_simplified(text) != text


def _folded(name: str) -> str:
    """Simplified script, half width, lower case, brackets made ASCII."""
    return to_simplified(to_half_width(name or "")).lower().translate(_BRACKETS)


def campus_of(name: str) -> str:
    """The campus a name points at, kept apart from the name: "瑞金医院（北部院区）" →
    "北部院区", "第六人民医院东院" → "东院"; empty when the name names none."""
    text = _folded(name)
    for inner in reversed(re.findall(r"\(([^()]*)\)", text)):
        inner = _NOT_WORD.sub("", inner)
        if match := _CAMPUS_WORD.search(inner):
            return match.group(1)
    text = _NOT_WORD.sub("", text.replace("(", "").replace(")", ""))
    match = _CAMPUS_AFTER.search(text)
    return match.group(1) if match else ""


def main_hospital(normalized: str) -> str:
    """The normalized name of the hospital a branch belongs to ("瑞金医院卢湾分院" →
    "瑞金医院"); the name itself when it names no branch."""
    return _BRANCH.sub(r"\1", normalized)


def collapse_spaces(text: str) -> str:
    return " ".join(text.split())


def normalize_name(name: str) -> str:
    """The canonical form of a customer name; empty when nothing distinctive is left."""
    text = _folded(name)
    previous = None
    while previous != text:  # nested brackets: drop innermost first
        previous = text
        text = _BRACKETED.sub("", text)
    text = text.replace("(", "").replace(")", "")
    text = _NOT_WORD.sub("", text)
    for long_name, short in _AUTONOMOUS.items():
        if text.startswith(long_name):
            text = short + text[len(long_name):]
    text = _PROVINCE_PREFIX.sub(r"\1", text)
    text = _AFFILIATED.sub("", text)
    text = _MEDICAL_SCHOOL.sub(r"\1", text)
    text = _DIGITS_ORDINAL.sub(lambda m: "第" + chinese_number(int(m.group(1))), text)
    for _ in range(2):
        text = _LEGAL_SUFFIX.sub("", text)
        text = _CAMPUS.sub(r"\1", text)
        stripped = _TRAILING_CAMPUS.sub("", text)
        if len(stripped) >= 2:
            text = stripped
    return text

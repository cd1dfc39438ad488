"""Duplicate detection rules: the features of a normalized name, the similarity of two
names, and the verdict of a duplicate check. Pure Python, no I/O.

Two names are compared on their *core*: the normalized name without its leading place
names ("上海", "徐汇区") and its category suffix ("医院", "中医医院", "妇幼保健院"). Names
of different categories or with different ordinals ("第一" vs "第六") never match; a core
contained in the other ("中山" in "复旦大学中山") is a 简称 and scores high."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace

from rapidfuzz import fuzz

DEFAULT_FUZZY_THRESHOLD_BPS = 8500

# Longest first: the first suffix that matches is the category.
CATEGORIES = (
    "社区卫生服务中心", "社区卫生服务站", "中西医结合医院", "妇幼保健院", "精神卫生中心",
    "疾病预防控制中心", "妇产科医院", "中医医院", "中医院", "口腔医院", "肿瘤医院", "儿童医院",
    "眼科医院", "骨科医院", "胸科医院", "传染病医院", "康复医院", "专科医院", "卫生院",
    "门诊部", "诊所", "大药房", "药房", "药店", "医疗器械", "医药", "医院", "中心",
)
_PLACE_TOKEN = re.compile(r"[\u4e00-\u9fff]{1,12}?(?:省|自治区|自治州|市|地区|盟|区|县|旗)")
_PROVINCE_SHORT = re.compile(
    "^(北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|"
    "湖南|广东|海南|四川|贵州|云南|陕西|甘肃|青海|台湾|内蒙古|广西|西藏|宁夏|新疆|香港|澳门)")
# A place name never holds these: "首都医科大学旗天" is no banner (旗).
_NOT_A_PLACE = re.compile(r"大学|学院|医院")
_INSTITUTION = re.compile(r"^(.*(?:大学|医学院|医科大学|学院))(.{2,})$")
_ORDINAL = re.compile(r"第[零一二三四五六七八九十百]+|\d+")
# A bare numeral closing a core of two characters or more is an ordinal too: 湘雅二.
_TRAILING_NUMERAL = re.compile(r"(?<=..)(?<!第)[一二三四五六七八九十]{1,3}$")
# Cores made only of these words say nothing about which hospital it is.
_GENERIC_WORDS = re.compile(r"人民|中心|中医|第[零一二三四五六七八九十百]+|市|区|县|医学院|大学|"
                            r"医科|附属|总|联合|社区|卫生|服务")


class Verdict(enum.IntEnum):
    NONE = 1
    POSSIBLE_DUPLICATE = 2
    DUPLICATE = 3


class MatchKind(enum.IntEnum):
    CREDIT_CODE = 1
    NORMALIZED_NAME = 2
    ALIAS = 3
    FUZZY_NAME = 4
    # Same normalized address (division, street, number) and the same kind of customer.
    ADDRESS = 5
    # The same distinctive core in the same city, one name adding what the other leaves
    # out (a university, 中国医学科学院, the city): 湘雅二医院 = 中南大学湘雅二医院.
    CORE_NAME = 6
    # The same institution in another city (a branch campus): for review.
    OTHER_CITY = 7


# Kinds that make a duplicate; the others (fuzzy, other city) go to review.
EXACT_KINDS = frozenset({MatchKind.CREDIT_CODE, MatchKind.NORMALIZED_NAME, MatchKind.ALIAS,
                         MatchKind.ADDRESS, MatchKind.CORE_NAME})


class Reason(enum.IntEnum):
    """Why a candidate matched, shown with it so HQ can trust the verdict."""

    CREDIT_CODE = 1
    NAME = 2            # the same normalized name
    ALIAS = 3           # a known alias of the customer
    ABBREVIATION = 4    # an abbreviation or ordinal rule (abbreviations.tsv)
    TRADITIONAL = 5     # the query was written in traditional script
    ADDRESS = 6         # the same normalized address
    CORE = 7            # the same distinctive core (the rest left out)
    SIMILAR_NAME = 8    # a similar name (edit distance)
    OTHER_CITY = 9      # the same institution, in another city
    CAMPUS = 10         # the query names a campus (院区, 分院) of the customer


@dataclass(frozen=True, slots=True)
class NameFeatures:
    normalized: str
    core: str
    places: tuple[str, ...]
    category: str
    institution: str
    ordinals: frozenset[str]
    generic: bool

    def bigrams(self) -> set[str]:
        text = self.core
        if len(text) < 2:
            return {text} if text else set()
        return {text[i:i + 2] for i in range(len(text) - 1)}


def features(normalized: str) -> NameFeatures:
    category = ""
    body = normalized
    for suffix in CATEGORIES:
        if body.endswith(suffix) and len(body) > len(suffix):
            category = suffix
            body = body[: -len(suffix)]
            break
    places: list[str] = []
    match = _PROVINCE_SHORT.match(body)
    if match and len(body) > match.end():
        places.append(match.group(0))
        body = body[match.end():]
    while ((match := _PLACE_TOKEN.match(body)) and len(body) > match.end()
           and not _NOT_A_PLACE.search(match.group(0))):
        places.append(match.group(0))
        body = body[match.end():]
    institution = ""
    match = _INSTITUTION.match(body)
    if match:
        institution, body = match.group(1), match.group(2)
    ordinals = frozenset(_ORDINAL.findall(body)
                         + ["第" + n for n in _TRAILING_NUMERAL.findall(body)])
    generic = not _GENERIC_WORDS.sub("", body)
    return NameFeatures(normalized, body, tuple(places), category, institution, ordinals,
                        generic)


def _place_key(places: tuple[str, ...]) -> str:
    return "".join(places).replace("市", "")


def similarity(query: NameFeatures, candidate: NameFeatures) -> int:
    """Similarity in basis points, 0..10000."""
    return compare(query, candidate)[0]


def compare(query: NameFeatures, candidate: NameFeatures) -> tuple[int, bool]:
    """(similarity in basis points, whether the two share the same distinctive core —
    what is left of both once places, institution and category are set aside)."""
    if query.normalized == candidate.normalized:
        return 10000, False
    if query.category != candidate.category or query.ordinals != candidate.ordinals:
        return 0, False
    pa, pb = _place_key(query.places), _place_key(candidate.places)
    if pa and pb and pa not in pb and pb not in pa:
        return 0, False  # 徐汇区 vs 长宁区
    if query.institution and candidate.institution and query.institution != candidate.institution:
        return 0, False  # hospitals of two universities
    a, b = query.core, candidate.core
    # A city's short name glued to the name: 长春兴和 vs 兴和 (长春市), 北海第十六人民.
    if a != b:
        for longer, shorter, places in ((a, b, pb), (b, a, pa)):
            if (shorter and longer.endswith(shorter) and places
                    and places.startswith(longer[: -len(shorter)])):
                a = b = shorter
    if query.generic or candidate.generic:
        # "人民医院" of a district is not the city's "人民医院": the most specific places
        # must agree unless one name gives none.
        same_place = not pa or not pb or pa.endswith(pb) or pb.endswith(pa)
        return (10000 if a == b and same_place else 0), False
    prefix = 0
    while prefix < min(len(a), len(b)) - 1 and a[prefix] == b[prefix]:
        prefix += 1
    # A shared lead (哈密广华永 / 哈密华永) says nothing; compare what follows.
    score = fuzz.ratio(a[prefix:], b[prefix:]) if prefix >= 2 else fuzz.ratio(a, b)
    # A 简称 drops the institution: 复旦大学附属中山医院 → 中山医院; 中南大学湘雅广兴 → 广兴.
    if query.institution or candidate.institution:
        long, short = (a, b) if query.institution else (b, a)
        if not (query.institution and candidate.institution) and len(short) >= 2 and (
                long == short or (long.endswith(short) and len(long) - len(short) >= 2)):
            score = max(score, 95.0 - min(5.0, (len(long) - len(short)) * 0.5))
    return max(0, round(score * 100)), a == b and len(a) >= 2 and query.category != ""


@dataclass(frozen=True)
class Match:
    customer_id: str
    kind: MatchKind
    score_bps: int
    reasons: tuple[Reason, ...] = ()

    @property
    def exact(self) -> bool:
        return self.kind in EXACT_KINDS

    def because(self, *reasons: Reason) -> Match:
        """This match with more reasons (each once, in order)."""
        return replace(self, reasons=tuple(dict.fromkeys((*self.reasons, *reasons))))


def verdict_of(matches: list[Match]) -> Verdict:
    if any(m.exact for m in matches):
        return Verdict.DUPLICATE
    if matches:
        return Verdict.POSSIBLE_DUPLICATE
    return Verdict.NONE


def rank(matches: list[Match]) -> list[Match]:
    """Best first; one entry per customer, keeping its strongest kind and every reason
    any of its matches gave."""
    best: dict[str, Match] = {}
    for match in matches:
        current = best.get(match.customer_id)
        if current is None:
            best[match.customer_id] = match
        elif (match.exact, match.score_bps) > (current.exact, current.score_bps):
            best[match.customer_id] = match.because(*current.reasons)
        else:
            best[match.customer_id] = current.because(*match.reasons)
    return sorted(best.values(), key=lambda m: (not m.exact, m.kind == MatchKind.OTHER_CITY,
                                                -m.score_bps, m.customer_id))

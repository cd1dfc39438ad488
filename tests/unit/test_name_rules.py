"""How dealers really type hospital names, rule by rule (no I/O): traditional script and
campuses in the normalizer, the abbreviation and ordinal table, normalized addresses,
and what the index makes of each — with the reason it gives."""

from __future__ import annotations

import pytest

from shared.names.address import address_key
from shared.names.index import NameIndex
from shared.names.matching import MatchKind, Reason, Verdict, rank, verdict_of
from shared.names.rules import RuleError, canonical, parse, rules
from shared.text import campus_of, is_traditional, main_hospital, normalize_name


@pytest.mark.parametrize(("raw", "expected"), [
    ("北京協和醫院", "北京协和医院"),
    ("復旦大學附屬中山醫院（徐匯院區）", "复旦大学中山医院"),
    ("四川大學華西醫院", "四川大学华西医院"),
])
def test_traditional_script_and_campuses_fold_away(raw, expected):
    assert normalize_name(raw) == expected


@pytest.mark.parametrize(("raw", "campus"), [
    ("復旦大學附屬中山醫院（徐匯院區）", "徐汇院区"), ("瑞金医院北部院区", "北部院区"),
    ("上海市第六人民医院东院", "东院"), ("瑞金医院卢湾分院", "卢湾分院"), ("仁济医院", ""),
])
def test_the_campus_is_kept_apart(raw, campus):
    assert campus_of(raw) == campus


def test_a_branch_stays_in_the_name_and_names_its_main_hospital():
    assert normalize_name("瑞金医院卢湾分院") == "瑞金医院卢湾分院"
    assert main_hospital(normalize_name("瑞金医院卢湾分院")) == "瑞金医院"
    assert main_hospital("瑞金医院") == "瑞金医院"


def test_traditional_script_is_recognised():
    assert is_traditional("北京協和醫院") and not is_traditional("北京协和医院")


@pytest.mark.parametrize(("short", "long", "division"), [
    ("北医三院", "北京大学第三医院", "110108"),
    ("郑大一附院", "郑州大学第一附属医院", "410103"),
    ("浙大一院", "浙江大学医学院附属第一医院", "330102"),
    ("中大附一", "中山大学附属第一医院", "440104"),
    ("复旦中山医院", "复旦大学附属中山医院", "310104"),
    ("华科同济医院", "华中科技大学同济医院", "420102"),
    ("省人医", "江苏省人民医院", "320106"),
    ("省人医", "四川省人民医院", "510104"),
    ("西京医院", "空军军医大学第一附属医院", "610102"),
])
def test_abbreviations_and_ordinals_meet_the_long_name(short, long, division):
    assert canonical(normalize_name(short), division) == canonical(normalize_name(long),
                                                                    division)


@pytest.mark.parametrize(("short", "division"), [
    ("省人医", "310101"),       # a municipality has no 省人医
    ("中南医院", "420106"),     # 武汉大学中南医院, not 中南大学
    ("北大医院", "310101"),     # 北京大学第一医院 only in Beijing
    ("天一医院", "310101"),     # a core, not an ordinal
])
def test_rules_apply_only_where_they_mean_something(short, division):
    assert canonical(normalize_name(short), division) == normalize_name(short)


def test_the_rule_table_is_checked_line_by_line():
    assert rules().universities and rules().ordinals
    with pytest.raises(RuleError, match="line 2"):
        parse("name\t北医三院\t北京大学第三医院\nnickname\tx\ty\n")
    with pytest.raises(RuleError, match="line 1: scope"):
        parse("name\t省人医\t{province}人民医院\tsomewhere\n")
    with pytest.raises(RuleError, match="province"):
        parse("name\t省人医\t{province}人民医院\n")


@pytest.mark.parametrize(("address", "division", "key"), [
    ("上海市徐汇区宜山路600号", "310104", "310104|宜山路600"),
    ("徐汇区 宜山路 600 号 3楼", "310104", "310104|宜山路600"),
    ("上海徐匯區宜山路六百號", "310104", "310104|宜山路600"),
    ("上海市徐汇区", "310104", ""),
    ("", "310104", ""),
])
def test_addresses_normalize_to_division_street_and_number(address, division, key):
    assert address_key(address, division) == key


SHANGHAI, CHANGSHA, NANCHANG = "310100", "430100", "360100"


def build() -> NameIndex:
    index = NameIndex()
    for customer_id, city, division, name, aliases, address in (
        ("ruijin", SHANGHAI, "310101", "上海交通大学医学院附属瑞金医院", [],
         "上海市黄浦区瑞金二路197号"),
        ("first", SHANGHAI, "310109", "上海市第一人民医院", ["上海交通大学附属第一人民医院"], ""),
        ("xiangya", CHANGSHA, "430105", "中南大学湘雅医院", [], ""),
        ("xiangya2", CHANGSHA, "430102", "中南大学湘雅二医院", [], ""),
    ):
        index.put(customer_id, city, normalize_name(name), [normalize_name(a) for a in aliases],
                  address_key(address, division), division)
    return index


def test_each_spelling_finds_its_customer_with_the_reason():
    index = build()

    def found(city, name, division=""):
        normalized = normalize_name(name)
        return rank(index.exact(city, normalized)
                    + index.fuzzy(city, normalized, 8500, division_code=division))

    [abbreviated] = found(SHANGHAI, "上交瑞金医院")
    assert (abbreviated.customer_id, abbreviated.kind) == ("ruijin", MatchKind.NORMALIZED_NAME)
    assert Reason.ABBREVIATION in abbreviated.reasons
    [alias] = found(SHANGHAI, "上海交通大学附属第一人民医院")
    assert (alias.customer_id, alias.kind, alias.reasons[0]) == ("first", MatchKind.ALIAS,
                                                                 Reason.ALIAS)
    [short] = found(SHANGHAI, "瑞金医院", "310101")
    assert (short.customer_id, short.kind) == ("ruijin", MatchKind.CORE_NAME)
    # The same core in another district of the city: for review only.
    [elsewhere] = found(SHANGHAI, "瑞金医院", "310105")
    assert (elsewhere.kind, verdict_of([elsewhere])) == (MatchKind.FUZZY_NAME,
                                                         Verdict.POSSIBLE_DUPLICATE)
    assert [m.customer_id for m in found(CHANGSHA, "湘雅二医院", "430102")] == ["xiangya2"]
    assert found(CHANGSHA, "湘雅三医院", "430102") == []
    assert [m.customer_id for m in found(CHANGSHA, "湘雅医院", "430105")] == ["xiangya"]
    [at_address] = index.at_address(SHANGHAI, "310101|瑞金二路197", normalize_name("上海瑞金"))
    assert (at_address.customer_id, at_address.kind) == ("ruijin", MatchKind.ADDRESS)


def test_the_same_institution_in_another_city_is_for_review():
    index = build()
    [branch] = index.other_cities(NANCHANG, normalize_name("中南大学湘雅二医院（江西院区）"),
                                  campus=True)
    assert (branch.customer_id, branch.kind) == ("xiangya2", MatchKind.OTHER_CITY)
    assert verdict_of([branch]) == Verdict.POSSIBLE_DUPLICATE
    [by_core] = index.other_cities(NANCHANG, normalize_name("湘雅二医院"), campus=True)
    assert by_core.customer_id == "xiangya2"
    # A plain name without institution nor campus is another hospital of the same name.
    assert index.other_cities(NANCHANG, normalize_name("湘雅二医院"), campus=False) == []
    assert index.other_cities(CHANGSHA, normalize_name("中南大学湘雅二医院"), campus=True) == []

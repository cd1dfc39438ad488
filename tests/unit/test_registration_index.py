"""The in-memory fuzzy-name index (no database): blocking by city, candidates by core
suffix and rare bigrams, exact names and aliases, updates and removals."""

from __future__ import annotations

from shared.names.index import NameIndex
from shared.names.matching import MatchKind
from shared.text import normalize_name

SHANGHAI, HANGZHOU = "310100", "330100"


def build() -> NameIndex:
    index = NameIndex()
    for number, (city, name, aliases) in enumerate([
        (SHANGHAI, "复旦大学附属中山医院", ["中山医院"]),
        (SHANGHAI, "上海交通大学医学院附属瑞金医院", []),
        (SHANGHAI, "上海市第六人民医院", []),
        (SHANGHAI, "上海市第五人民医院", []),
        (SHANGHAI, "上海市徐汇区中心医院", []),
        (HANGZHOU, "杭州市瑞金医院", []),
    ]):
        index.put(f"c{number}", city, normalize_name(name), [normalize_name(a) for a in aliases])
    return index


def ids(matches) -> list[str]:
    return [m.customer_id for m in matches]


def test_fuzzy_finds_variants_within_the_city_only():
    index = build()
    assert ids(index.fuzzy(SHANGHAI, normalize_name("瑞金医院"), 8500)) == ["c1"]
    assert ids(index.fuzzy(HANGZHOU, normalize_name("瑞金医院"), 8500)) == ["c5"]
    assert ids(index.fuzzy(SHANGHAI, normalize_name("第六人民医院"), 8500)) == ["c2"]
    assert index.fuzzy(SHANGHAI, normalize_name("上海市第七人民医院"), 8500) == []
    assert index.fuzzy("440300", normalize_name("瑞金医院"), 8500) == []


def test_exact_names_and_aliases_from_memory():
    index = build()
    [match] = index.exact(SHANGHAI, normalize_name("中山医院"))
    assert (match.customer_id, match.kind) == ("c0", MatchKind.ALIAS)
    [match] = index.exact(SHANGHAI, normalize_name("上海第六人民医院"))
    assert (match.customer_id, match.kind) == ("c2", MatchKind.NORMALIZED_NAME)


def test_updates_replace_and_remove():
    index = build()
    index.put("c1", SHANGHAI, normalize_name("上海市瑞金康复医院"), [])
    assert index.fuzzy(SHANGHAI, normalize_name("瑞金医院"), 8500) == []
    index.remove("c2")
    assert index.exact(SHANGHAI, normalize_name("上海第六人民医院")) == []
    assert index.size == 5


def test_a_typo_is_found_among_many_names_sharing_the_city_prefix():
    """Hundreds of names start with the city's short name; the one-character typo of one
    of them is still found, and none of the others (nor another category) is offered."""
    index = NameIndex()
    cores = "仁济瑞金华山长征长海同济东方曙光龙华岳阳新华协和博爱康宁仁爱和平安贞天坛广安"
    for number in range(len(cores) - 1):
        index.put(f"p{number}", "510100", normalize_name(f"成都{cores[number:number + 2]}大药房"),
                  [])
        index.put(f"k{number}", "510100", normalize_name(f"成都{cores[number:number + 2]}诊所"),
                  [])
    index.put("target", "510100", normalize_name("成都市征福堂仁和大药房"), [])
    assert ids(index.fuzzy("510100", normalize_name("成都市正福堂仁和大药房"), 8000)) == [
        "target"]
    assert ids(index.fuzzy("510100", normalize_name("成都华山大药房"), 8000)) == ["p4"]

"""Duplicate detection rules: name features, similarity, verdicts."""

from __future__ import annotations

import pytest

from shared.names.matching import (
    DEFAULT_FUZZY_THRESHOLD_BPS,
    Match,
    MatchKind,
    Verdict,
    features,
    rank,
    similarity,
    verdict_of,
)
from shared.text import normalize_name


def score(a: str, b: str) -> int:
    return similarity(features(normalize_name(a)), features(normalize_name(b)))


@pytest.mark.parametrize(("a", "b"), [
    ("复旦大学附属中山医院", "中山医院"),                 # 简称
    ("上海交通大学医学院附属瑞金医院", "瑞金医院"),
    ("上海市徐汇区大华医院", "大华医院"),
    ("上海市第一人民医院", "第一人民医院"),
    ("上海市长宁区妇幼保健院", "长宁区妇幼保健院"),
    ("上海市徐汇区人民医院", "徐汇区人民医院"),
    ("上海市徐汇区仁济诊所", "仁济诊所"),
])
def test_variants_are_possible_duplicates(a, b):
    assert score(a, b) >= DEFAULT_FUZZY_THRESHOLD_BPS


@pytest.mark.parametrize(("a", "b"), [
    ("上海市第六人民医院", "上海市第五人民医院"),          # other ordinal
    ("上海市徐汇区中心医院", "上海市徐汇区中医医院"),        # other category
    ("上海市徐汇区大华医院", "上海市徐汇区光华医院"),
    ("上海市人民医院", "上海市徐汇区人民医院"),            # generic name, other place
    ("仁济医院", "仁和医院"),
    ("东方医院", "上海东方肝胆外科医院"),                 # contained, but not a 简称
    ("中山医院", "中山大学第一医院"),
    ("上海市徐汇区中心医院", "上海市长宁区中心医院"),
    ("上海市徐汇区仁济诊所", "上海市长宁区仁济诊所"),          # same name, other district
    ("上海市人民医院", "徐汇区人民医院"),
])
def test_different_hospitals_do_not_match(a, b):
    assert score(a, b) < DEFAULT_FUZZY_THRESHOLD_BPS


def test_exact_is_full_score():
    assert score("华山医院", "华山医院北院") == 10000


def test_features_split_places_core_and_category():
    f = features(normalize_name("上海市徐汇区大华医院"))
    assert (f.places, f.core, f.category) == (("上海", "徐汇区"), "大华", "医院")
    assert features(normalize_name("上海市第六人民医院")).ordinals == frozenset({"第六"})
    assert features(normalize_name("上海市人民医院")).generic is True


def test_verdicts_and_ranking():
    fuzzy = Match("b", MatchKind.FUZZY_NAME, 9000)
    exact = Match("a", MatchKind.NORMALIZED_NAME, 10000)
    assert verdict_of([]) == Verdict.NONE
    assert verdict_of([fuzzy]) == Verdict.POSSIBLE_DUPLICATE
    assert verdict_of([fuzzy, exact]) == Verdict.DUPLICATE
    ranked = rank([fuzzy, exact, Match("a", MatchKind.FUZZY_NAME, 9500),
                   Match("c", MatchKind.FUZZY_NAME, 9900)])
    assert [(m.customer_id, m.kind) for m in ranked] == [
        ("a", MatchKind.NORMALIZED_NAME), ("c", MatchKind.FUZZY_NAME),
        ("b", MatchKind.FUZZY_NAME)]

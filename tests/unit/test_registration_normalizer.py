"""The one name normalizer (shared/text.py)."""

from __future__ import annotations

import pytest

from shared.text import chinese_number, normalize_name


@pytest.mark.parametrize(("raw", "expected"), [
    ("复旦大学附属中山医院", "复旦大学中山医院"),
    ("复旦大学附属中山医院（徐汇院区）", "复旦大学中山医院"),
    ("上海交通大学医学院附属瑞金医院北部院区", "上海交通大学瑞金医院"),
    ("上海市第六人民医院东院", "上海第六人民医院"),
    ("上海市第6人民医院", "上海第六人民医院"),
    ("  上 海 市 第 一 人 民 医 院 ", "上海第一人民医院"),
    ("ＡＢＣ医院", "abc医院"),
    ("上海市第一人民医院【总院】", "上海第一人民医院"),
    ("华山医院院本部", "华山医院"),
    ("华山医院虹桥院区", "华山医院"),
    ("广西壮族自治区人民医院", "广西人民医院"),
    ("上海国药控股医疗器械有限公司", "上海国药控股医疗器械"),
    ("上海某某大药房股份有限公司", "上海某某大药房"),
    ("中国人民解放军总医院", "中国人民解放军总医院"),
    ("北京协和医院", "北京协和医院"),
    ("（）", ""),
    ("  ", ""),
    ("·—", ""),
])
def test_normalize_name(raw, expected):
    assert normalize_name(raw) == expected


def test_full_width_and_spacing_variants_agree():
    variants = ["上海市第十人民医院", "上海市 第十 人民医院", "上海市第１０人民医院",
                "上海市第十人民医院（本部）", "上海第十人民医院"]
    assert {normalize_name(v) for v in variants} == {"上海第十人民医院"}


@pytest.mark.parametrize(("value", "text"), [(1, "一"), (10, "十"), (12, "十二"), (20, "二十"),
                                             (85, "八十五"), (100, "一百"), (105, "一百零五"),
                                             (120, "一百二十")])
def test_chinese_number(value, text):
    assert chinese_number(value) == text

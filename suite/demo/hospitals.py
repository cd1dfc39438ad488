"""Hospitals with the names, addresses and aliases dealers really type: numbered people's
hospitals, traditional Chinese medicine and maternal-and-child hospitals, university
affiliated hospitals with their colloquial short forms (附一院), district hospitals and
private clinics, each in a real city with a street address and a unified social credit
code (public institutions: 12…). Pure Python, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass

from stdnum.cn import uscc

from shared.text import normalize_name

_CITY = {"310100": ("上海", "上海市", ("徐汇区", "静安区", "黄浦区", "浦东新区", "长宁区")),
         "320100": ("南京", "江苏省南京市", ("鼓楼区", "玄武区", "秦淮区", "建邺区")),
         "320500": ("苏州", "江苏省苏州市", ("姑苏区", "吴中区", "相城区")),
         "330100": ("杭州", "浙江省杭州市", ("上城区", "西湖区", "拱墅区", "滨江区")),
         "330200": ("宁波", "浙江省宁波市", ("海曙区", "江北区", "鄞州区")),
         "340100": ("合肥", "安徽省合肥市", ("蜀山区", "庐阳区", "包河区")),
         "350200": ("厦门", "福建省厦门市", ("思明区", "湖里区")),
         "370200": ("青岛", "山东省青岛市", ("市南区", "市北区", "崂山区")),
         "440100": ("广州", "广东省广州市", ("越秀区", "天河区", "海珠区", "荔湾区")),
         "440300": ("深圳", "广东省深圳市", ("福田区", "罗湖区", "南山区")),
         "450100": ("南宁", "广西壮族自治区南宁市", ("青秀区", "兴宁区")),
         "460100": ("海口", "海南省海口市", ("龙华区", "美兰区")),
         "110100": ("北京", "北京市", ("东城区", "西城区", "海淀区", "朝阳区")),
         "120100": ("天津", "天津市", ("和平区", "河西区", "南开区")),
         "130100": ("石家庄", "河北省石家庄市", ("长安区", "桥西区")),
         "140100": ("太原", "山西省太原市", ("小店区", "迎泽区")),
         "420100": ("武汉", "湖北省武汉市", ("江岸区", "武昌区", "洪山区")),
         "430100": ("长沙", "湖南省长沙市", ("芙蓉区", "开福区", "岳麓区")),
         "410100": ("郑州", "河南省郑州市", ("金水区", "二七区", "中原区")),
         "510100": ("成都", "四川省成都市", ("武侯区", "锦江区", "青羊区")),
         "500100": ("重庆", "重庆市", ("渝中区", "江北区", "沙坪坝区")),
         "530100": ("昆明", "云南省昆明市", ("五华区", "盘龙区")),
         "520100": ("贵阳", "贵州省贵阳市", ("云岩区", "南明区")),
         "610100": ("西安", "陕西省西安市", ("碑林区", "雁塔区", "新城区")),
         "620100": ("兰州", "甘肃省兰州市", ("城关区", "七里河区")),
         "650100": ("乌鲁木齐", "新疆维吾尔自治区乌鲁木齐市", ("天山区", "沙依巴克区")),
         "210100": ("沈阳", "辽宁省沈阳市", ("和平区", "沈河区", "皇姑区")),
         "220100": ("长春", "吉林省长春市", ("朝阳区", "南关区")),
         "230100": ("哈尔滨", "黑龙江省哈尔滨市", ("南岗区", "道里区", "香坊区"))}
_UNIVERSITY = {"上海": ("复旦大学", "复旦"), "南京": ("南京医科大学", "南医大"),
               "苏州": ("苏州大学", "苏大"), "杭州": ("浙江大学医学院", "浙大"),
               "广州": ("中山大学", "中大"), "北京": ("北京大学", "北大"),
               "武汉": ("华中科技大学同济医学院", "华科"), "长沙": ("中南大学湘雅医学院", "湘雅"),
               "郑州": ("郑州大学", "郑大"), "成都": ("四川大学华西医学院", "川大"),
               "西安": ("西安交通大学", "西交大"), "沈阳": ("中国医科大学", "中国医大"),
               "重庆": ("重庆医科大学", "重医"), "哈尔滨": ("哈尔滨医科大学", "哈医大")}
_ORDINALS = "一二三四五六七八九"
_STREETS = ("人民路", "解放路", "中山路", "建设路", "和平路", "长江路", "黄河路", "青年路",
            "文化路", "健康路", "东风路", "胜利路", "新华路", "光明路", "北京路")
_GRADES = ("三级甲等", "三级乙等", "二级甲等", "二级乙等", "一级")
DEPARTMENTS = ("心内科", "骨科", "神经内科", "ICU", "急诊科", "普外科", "麻醉科", "检验科",
               "肾内科", "呼吸内科")


@dataclass(frozen=True)
class Hospital:
    name: str
    aliases: tuple[str, ...]
    city_code: str
    address: str
    credit_code: str
    grade: str
    departments: tuple[str, ...]


def _credit_code(serial: int, city_code: str) -> str:
    body = f"12{city_code}{serial:09d}"
    return body + uscc.calc_check_digit(body)


def _named(rng: random.Random, city: str, number: int) -> tuple[str, tuple[str, ...], str]:
    """A name, its aliases and a grade; ``number`` keeps names in a city distinct."""
    kind = number % 6
    nth = _ORDINALS[(number // 6) % len(_ORDINALS)]
    batch = number // (6 * len(_ORDINALS))
    suffix = "" if not batch else f"第{batch + 1}分院"
    if kind == 0:
        aliases = (f"{city}{nth}院", f"{city}市{nth}医院")
        return f"{city}市第{nth}人民医院{suffix}", aliases, "三级甲等"
    if kind == 1 and city in _UNIVERSITY:
        university, short = _UNIVERSITY[city]
        return (f"{university}附属第{nth}医院{suffix}",
                (f"{short}附{nth}院", f"{short}{nth}附院"), "三级甲等")
    if kind == 2:
        return f"{city}市中医医院{suffix or ('' if nth == '一' else f'第{nth}分院')}", (
            f"{city}中医院",), "三级甲等"
    if kind == 3:
        return f"{city}市妇幼保健院{suffix or ('' if nth == '一' else f'{nth}部')}", (
            f"{city}妇幼",), "二级甲等"
    if kind == 4:
        district = _CITY_BY_NAME[city][2][number % len(_CITY_BY_NAME[city][2])]
        return f"{city}市{district}人民医院{suffix or ('' if nth == '一' else f'{nth}部')}", (
            f"{district}人民医院",), rng.choice(_GRADES[2:])
    private = rng.choice(("仁爱", "博爱", "康华", "慈济", "安贞", "和睦"))
    return f"{city}{private}医院{nth}{batch or ''}", (), rng.choice(_GRADES[1:])


_CITY_BY_NAME = {name: (code, prefix, districts) for code, (name, prefix, districts)
                 in _CITY.items()}


def hospitals_for(rng: random.Random, city_codes: list[str], count: int) -> list[Hospital]:
    """``count`` hospitals spread over the given cities (their GB/T 2260 city codes)."""
    known = [code for code in city_codes if code in _CITY] or sorted(_CITY)
    hospitals: list[Hospital] = []
    # Registration tells customers apart by normalized name within a city ("第2分院" and
    # "第二分院" are one name to it), so the world does too.
    seen: set[tuple[str, str]] = set()
    number = 0
    while len(hospitals) < count:
        code = known[len(hospitals) % len(known)]
        city, prefix, districts = _CITY[code]
        name, aliases, grade = _named(rng, city, number // len(known))
        if "分院" in name:
            aliases = ()  # a short form names the main hospital, never its branches
        number += 1
        key = (code, normalize_name(name))
        if key in seen:
            continue
        seen.add(key)
        district, street = rng.choice(districts), rng.choice(_STREETS)
        # Registration calls two hospitals at one address the same one: each gets a
        # house number of its own. (The draw is kept so that a seed plans the world it
        # always did: names and departments come later from the same generator.)
        rng.randrange(1, 999)
        address = f"{prefix}{district}{street}{1000 + len(hospitals)}号"
        hospitals.append(Hospital(name, aliases, code, address,
                                  _credit_code(len(hospitals) + 1, code), grade,
                                  tuple(rng.sample(DEPARTMENTS, 3))))
    return hospitals

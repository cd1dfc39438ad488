"""A labelled data set of Chinese hospital (and clinic, pharmacy) names for the
``registration.dedupe`` benchmark.

Customers are spread over the real GB/T 2260 cities (from cpca's table) with a Zipf-like
skew, so the largest cities hold tens of thousands of names. Each name is built the way
real ones are: "<city>第N人民医院", "<district>中心医院", "<university>附属<core>医院",
"<city><core>口腔医院", "<district><core>诊所", "<core>大药房"… with every (core, category)
used once per city.

Queries are half near-duplicates of known customers (no credit code; 简称 dropping the
university or the city, 附属 added or dropped, a 院区 / 东院 / (本部) suffix, spaces,
full-width characters, Arabic ordinals — one or two at a time) labelled with the customer
they mean, and half new names (a (core, category) not used in that city) labelled as new.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from services.registration.adapters.places import _load
from shared.divisions import MUNICIPALITIES, city_of
from shared.text import chinese_number

CORE_CHARS = ("仁济瑞金华山长征长海同济东方曙光龙华岳阳新华协和博爱康宁仁爱和平安贞天坛广安"
              "朝阳宣武友谊同仁积水潭世纪民航普仁隆福丰盛宫明德惠民安康福寿永安长青益民广济"
              "保和明珠金山银河红旗胜利光明复兴前进建设解放南湖西湖北湖春晖阳光嘉禾恒康泰和"
              "九州天佑华美爱尔新世界远大中信百汇")
UNIVERSITIES = ("复旦大学", "上海交通大学医学院", "同济大学", "浙江大学医学院", "中山大学",
                "南京医科大学", "四川大学", "北京大学", "首都医科大学", "中南大学湘雅医学院",
                "华中科技大学同济医学院", "山东大学", "吉林大学", "郑州大学", "西安交通大学",
                "重庆医科大学", "温州医科大学", "苏州大学", "南方医科大学", "青岛大学")
CATEGORIES = ("医院", "医院", "医院", "口腔医院", "中医医院", "妇产科医院", "儿童医院", "诊所",
              "诊所", "诊所", "门诊部", "大药房", "大药房", "康复医院", "眼科医院")
FULL = str.maketrans({**{chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}, " ": "\u3000"})


@dataclass(frozen=True)
class City:
    code: str          # the city code customers are blocked by
    name: str          # e.g. 杭州市, 上海市
    districts: tuple[str, ...]


@dataclass
class Customer:
    id: str
    name: str
    city: City
    division_code: str
    kind: str          # "ordinal", "district", "university", "core"
    core: str = ""
    university: str = ""
    district: str = ""


@dataclass(frozen=True)
class Query:
    name: str
    division_code: str
    expected_id: str | None   # the customer it means, or None for a new one


def cities() -> list[City]:
    cpca = _load()
    infos = list(cpca.ad_2_addr_dict.values())
    names = {info.adcode: info.name for info in infos}
    by_city: dict[str, list[str]] = {}
    for info in infos:
        if info.rank == 2:
            code = city_of(info.adcode)
            if code:
                by_city.setdefault(code, []).append(info.name)
    result = []
    for code, districts in sorted(by_city.items()):
        name = (names.get(code[:2] + "0000", "") if code[:2] in MUNICIPALITIES
                else names.get(code, ""))
        districts = [d for d in districts if "的" not in d and len(d) <= 6]
        if name and len(districts) >= 2 and "行政区划" not in name:
            result.append(City(code, name, tuple(sorted(districts))))
    return result


def _district_code(city: City, district: str) -> str:
    cpca = _load()
    for info in cpca.ad_2_addr_dict.values():
        if info.rank == 2 and info.name == district and city_of(info.adcode) == city.code:
            return info.adcode
    return city.code


class Generator:
    def __init__(self, seed: int = 20261122) -> None:
        self.random = random.Random(seed)
        self.cities = cities()
        self.used: dict[str, set[tuple[str, str]]] = {}
        self.district_codes: dict[tuple[str, str], str] = {}

    def _core(self) -> str:
        length = self.random.choice((2, 2, 2, 3))
        return "".join(self.random.choice(CORE_CHARS) for _ in range(length))

    def _division(self, city: City, district: str) -> str:
        key = (city.code, district)
        if key not in self.district_codes:
            self.district_codes[key] = _district_code(city, district)
        return self.district_codes[key]

    def city_sizes(self, total: int) -> list[tuple[City, int]]:
        order = self.cities[:]
        self.random.shuffle(order)
        # the biggest cities first
        big = [c for c in order if c.code in ("310100", "110100", "440100", "440300",
                                             "510100", "500100", "330100", "420100")]
        order = big + [c for c in order if c not in big]
        weights = [1 / (rank + 1) ** 0.8 for rank in range(len(order))]
        scale = total / sum(weights)
        sizes = [max(1, int(w * scale)) for w in weights]
        sizes[0] += total - sum(sizes)
        return list(zip(order, sizes, strict=True))

    def _fresh(self, city: City, kind: str | None = None) -> Customer | None:
        used = self.used.setdefault(city.code, set())
        short_city = city.name.removesuffix("市")
        district = self.random.choice(city.districts)
        kind = kind or self.random.choices(
            ("ordinal", "district", "university", "core"), (2, 6, 3, 89))[0]
        if kind == "ordinal":
            n = self.random.randint(1, 30)
            key = (f"第{n}", "人民医院")
            if key in used:
                return None
            used.add(key)
            return Customer("", f"{city.name}第{chinese_number(n)}人民医院", city, city.code,
                            kind, core=f"第{n}")
        if kind == "district":
            category = self.random.choice(("人民医院", "中心医院", "中医医院", "妇幼保健院"))
            key = (district, category)
            if key in used:
                return None
            used.add(key)
            prefix = self.random.choice((city.name, ""))
            return Customer("", f"{prefix}{district}{category}", city,
                            self._division(city, district), kind, district=district)
        core = self._core()
        category = "医院" if kind == "university" else self.random.choice(CATEGORIES)
        key = (core, category)
        if key in used:
            return None
        used.add(key)
        if kind == "university":
            university = self.random.choice(UNIVERSITIES)
            return Customer("", f"{university}附属{core}医院", city, city.code, kind,
                            core=core, university=university)
        style = self.random.random()
        if style < 0.4:
            name = f"{city.name}{core}{category}"
        elif style < 0.7:
            name = f"{city.name}{district}{core}{category}"
        else:
            name = f"{core}{category}"
        if category == "大药房":
            name = f"{short_city}{core}大药房有限公司"
        return Customer("", name, city, self._division(city, district), kind, core=core,
                        district=district)

    def customers(self, total: int) -> list[Customer]:
        result = []
        for city, size in self.city_sizes(total):
            made, misses = 0, 0
            while made < size and misses < 50_000:
                customer = self._fresh(city)
                if customer is None:
                    misses += 1
                    continue
                customer.id = f"c{len(result):08d}"
                result.append(customer)
                made += 1
        return result

    def variant(self, customer: Customer) -> str:
        name = customer.name
        city = customer.city
        changes = self.random.sample(("abbrev", "affiliated", "campus", "spaces", "full",
                                      "digits", "city"), self.random.choice((1, 1, 2)))
        for change in changes:
            if change == "abbrev" and customer.kind == "university":
                name = name.replace(f"{customer.university}附属", "")
            elif change == "affiliated" and customer.kind == "university":
                name = name.replace("附属", "") if "附属" in name else name
            elif change == "city" and name.startswith(city.name):
                name = name.replace(city.name, self.random.choice(
                    (city.name.removesuffix("市"), "")), 1)
            elif change == "campus" and name.endswith("医院"):
                district = self.random.choice(city.districts)
                name += self.random.choice((f"（{district}院区）", f"{district}院区", "东院",
                                            "(本部)", "【总院】"))
            elif change == "spaces":
                position = self.random.randint(1, max(1, len(name) - 1))
                name = name[:position] + self.random.choice((" ", "  ", "\u3000")) + name[position:]
            elif change == "full":
                name = name.translate(FULL) if self.random.random() < 0.5 else (
                    name.replace("(", "（").replace(")", "）") + "（本部）")
            elif change == "digits" and customer.kind == "ordinal":
                name = name.replace(f"第{chinese_number(int(customer.core[1:]))}",
                                    customer.core.translate(FULL))
        return name

    def queries(self, customers: list[Customer], count: int) -> list[Query]:
        result = []
        for index in range(count):
            if index % 2 == 0:
                customer = self.random.choice(customers)
                result.append(Query(self.variant(customer), customer.division_code,
                                    customer.id))
            else:
                city = self.random.choice(customers).city
                fresh = None
                while fresh is None:
                    fresh = self._fresh(city, kind=self.random.choice(("core", "core",
                                                                        "university")))
                result.append(Query(fresh.name, fresh.division_code, None))
        self.random.shuffle(result)
        return result

"""A labelled data set of Chinese hospital (and clinic, pharmacy) names for the
``registration.dedupe`` benchmark.

Customers are spread over the real GB/T 2260 cities (from cpca's table) with a Zipf-like
skew, so the largest cities hold tens of thousands of names. Each name is built the way
real ones are: "<city>第N人民医院", "<district>中心医院", "<university>附属<core>医院",
"<city><core>口腔医院", "<district><core>诊所", "<core>大药房"… with every (core, category)
used once per city.

Universities' hospitals stand in their home cities ("郑州大学第一附属医院", "中南大学湘雅
二医院"-style cores with ordinals, "中国医学科学院…"), some customers carry a second official
name as an alias, a third have a street address.

Queries are half near-duplicates of known customers labelled with the customer they
mean, each in one category (``POSITIVE``, with realistic shares):

* ``spelling`` — 简称 dropping the university or the city, 附属 added or dropped, a 院区 /
  东院 / (本部) suffix, spaces, full-width characters, Arabic ordinals;
* ``traditional`` — the same in traditional script (醫院, 協和);
* ``abbreviation`` — colloquial forms (郑大一附院, 浙大一院, 中大附一, 省人医);
* ``alias`` — the customer's second official name;
* ``address`` — another name of the same kind at the customer's street address;
* ``long_short`` — the short form alone (湘雅二医院 for 中南大学湘雅二医院), or a prefix such
  as 中国医学科学院 dropped, in the customer's own district;
* ``other_city`` — the institution's name with a campus, in another city (a branch).

and half new names labelled as new (``NEGATIVE``): ``new`` (a (core, category) not used in
that city), ``ordinal`` (湘雅三医院 where only 湘雅医院 and 湘雅二医院 exist) and
``same_name_other_city`` (a plain name that exists only in another city).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import opencc

from services.registration.adapters.places import _load
from shared.divisions import MUNICIPALITIES, city_of
from shared.names.matching import features
from shared.names.rules import rules
from shared.text import chinese_number, normalize_name

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
# Universities with hospitals, in their home cities (for the abbreviation rules).
HOME_CITIES = {"北京大学": "110100", "浙江大学": "330100", "复旦大学": "310100",
               "四川大学": "510100", "中南大学": "430100", "华中科技大学": "420100",
               "上海交通大学": "310100", "郑州大学": "410100", "中山大学": "440100",
               "山东大学": "370100", "吉林大学": "220100", "苏州大学": "320500",
               "南京医科大学": "320100", "西安交通大学": "610100", "重庆医科大学": "500100",
               "武汉大学": "420100", "温州医科大学": "330300", "青岛大学": "370200"}
POSITIVE = {"spelling": 50, "traditional": 8, "abbreviation": 12, "alias": 6, "address": 6,
            "long_short": 10, "other_city": 8}
NEGATIVE = {"new": 80, "ordinal": 10, "same_name_other_city": 10}
ROADS = ("中山", "解放", "人民", "建设", "长江", "黄河", "和平", "胜利", "文化", "健康", "青年",
         "迎宾", "滨江", "新华", "光明")
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
    kind: str          # "ordinal", "district", "university", "core", "numbered", "academy"
    core: str = ""
    university: str = ""
    district: str = ""
    aliases: list[str] = field(default_factory=list)
    address: str = ""
    number: int = 0    # the ordinal of a university's numbered hospital (第一附属医院)
    # the same university's hospital of that core stands in another city already
    elsewhere: bool = False


@dataclass(frozen=True)
class Query:
    name: str
    division_code: str
    expected_id: str | None   # the customer it means, or None for a new one
    category: str = "spelling"
    address: str = ""


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
        self.by_code = {city.code: city for city in self.cities}
        self.used: dict[str, set[tuple[str, str]]] = {}
        self.district_codes: dict[tuple[str, str], str] = {}
        self.traditional = opencc.OpenCC("s2t")
        # (university, core) of every university hospital made, in any city
        self.institution_cores: set[tuple[str, str]] = set()
        self.addresses = 0
        # university → its short names (浙大) from the rule table
        self.short_names: dict[str, list[str]] = {}
        for rule in rules().universities:
            if not rule.scope:
                self.short_names.setdefault(rule.long, []).append(rule.short)

    def _core(self) -> str:
        while True:
            length = self.random.choice((2, 2, 2, 3))
            core = "".join(self.random.choice(CORE_CHARS) for _ in range(length))
            # "福中" + "医院" reads as 福 + 中医院 (a TCM hospital): not a label to trust.
            if not core.endswith("中"):
                return core

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
            elsewhere = (university, core) in self.institution_cores
            self.institution_cores.add((university, core))
            return Customer("", f"{university}附属{core}医院", city, city.code, kind,
                            core=core, university=university, elsewhere=elsewhere)
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

    def _institutions(self) -> list[Customer]:
        """Each university's hospitals in its home city: numbered ones (第一附属医院),
        cores with ordinals (湘雅, 湘雅二), and an academy's (中国医学科学院…)."""
        made = []
        for university, code in HOME_CITIES.items():
            city = self.by_code.get(code)
            if city is None:
                continue
            used = self.used.setdefault(city.code, set())
            district = self.random.choice(city.districts)
            division = self._division(city, district)
            for number in (1, 2, 3):
                name = (f"{university}第{chinese_number(number)}附属医院" if number % 2
                        else f"{university}附属第{chinese_number(number)}医院")
                made.append(Customer("", name, city, division, "numbered",
                                     university=university, number=number))
            for _ in range(3):
                core = self._core()
                if (core, "医院") in used:
                    continue
                used.update({(core, "医院"), (f"{core}二", "医院"), (f"{core}三", "医院")})
                made.append(Customer("", f"{university}{core}医院", city, division,
                                     "university", core=core, university=university))
                made.append(Customer("", f"{university}{core}二医院", city, division,
                                     "university", core=f"{core}二", university=university))
            core = self._core()
            if (core, "医院") not in used:
                used.add((core, "医院"))
                made.append(Customer("", f"中国医学科学院{core}医院", city, division, "academy",
                                     core=core, university="中国医学科学院"))
        return made

    def _furnish(self, customer: Customer) -> None:
        """A second official name for some, a street address for a third."""
        if customer.kind in ("core", "university") and customer.name.endswith("医院") \
                and self.random.random() < 0.02:
            alias_core = self._core() + self._core()
            used = self.used.setdefault(customer.city.code, set())
            if (alias_core, "医院") not in used:
                used.add((alias_core, "医院"))
                customer.aliases.append(f"{customer.city.name}{alias_core}医院")
        if customer.division_code != customer.city.code and self.random.random() < 0.33:
            self.addresses += 1
            road = self.random.choice(ROADS) + self.random.choice(("路", "大道", "街"))
            customer.address = f"{customer.district}{road}{self.addresses}号"

    def customers(self, total: int) -> list[Customer]:
        result = []
        for customer in self._institutions():
            customer.id = f"c{len(result):08d}"
            result.append(customer)
        for city, size in self.city_sizes(total - len(result)):
            made, misses = 0, 0
            while made < size and misses < 50_000:
                customer = self._fresh(city)
                if customer is None:
                    misses += 1
                    continue
                customer.id = f"c{len(result):08d}"
                self._furnish(customer)
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

    def _positive(self, category: str, customers: list[Customer],
                  pools: dict[str, list[Customer]]) -> Query | None:
        if category == "spelling":
            customer = self.random.choice(customers)
            return Query(self.variant(customer), customer.division_code, customer.id, category)
        if category == "traditional":
            customer = self.random.choice(customers)
            name = self.traditional.convert(self.variant(customer))
            return Query(name, customer.division_code, customer.id, category)
        if category == "abbreviation":
            customer = self.random.choice(pools["numbered"])
            shorts = self.short_names.get(customer.university)
            if not shorts:
                return None
            short, n = self.random.choice(shorts), chinese_number(customer.number)
            form = self.random.choice((f"{short}{n}院", f"{short}{n}附院", f"{short}附{n}",
                                       f"{short}附{n}院", f"{short}第{n}附院"))
            return Query(form, customer.division_code, customer.id, category)
        if category == "alias":
            customer = self.random.choice(pools["aliased"])
            return Query(self.random.choice(customer.aliases), customer.division_code,
                         customer.id, category)
        if category == "address":
            customer = self.random.choice(pools["addressed"])
            fresh = None
            while fresh is None:
                fresh = self._fresh(customer.city, kind="core")
            if (features(normalize_name(fresh.name)).category
                    != features(normalize_name(customer.name)).category):
                return None  # another kind of customer: no address evidence expected
            return Query(fresh.name, customer.division_code, customer.id, category,
                         address=customer.address)
        if category == "long_short":
            customer = self.random.choice(pools["institutional"])
            return Query(f"{customer.core}医院", customer.division_code, customer.id, category)
        if category == "other_city":
            customer = self.random.choice(pools["institutional"])
            city = self.random.choice(self.cities)
            if city.code == customer.city.code:
                return None
            district = self.random.choice(city.districts)
            name = self.random.choice((
                f"{customer.name}（{district}院区）", f"{customer.name}{district}分院",
                f"{customer.core}医院（{district}院区）"))
            return Query(name, self._division(city, district), customer.id, category)
        raise ValueError(category)

    def _negative(self, category: str, customers: list[Customer],
                  pools: dict[str, list[Customer]]) -> Query | None:
        if category == "new":
            city = self.random.choice(customers).city
            fresh = None
            while fresh is None:
                fresh = self._fresh(city, kind=self.random.choice(("core", "core",
                                                                    "university")))
            if fresh.elsewhere:
                return None  # a branch of a known institution, not a new customer
            return Query(fresh.name, fresh.division_code, None, category)
        if category == "ordinal":
            customer = self.random.choice(pools["institutional"])
            if customer.core.endswith("二"):
                return None
            return Query(f"{customer.core}三医院", customer.division_code, None, category)
        if category == "same_name_other_city":
            customer = self.random.choice(pools["plain"])
            city = self.random.choice(self.cities)
            used = self.used.setdefault(city.code, set())
            category_name = next((c for c in CATEGORIES if customer.name.endswith(c)), "")
            if (city.code == customer.city.code or not category_name
                    or (customer.core, category_name) in used):
                return None
            used.add((customer.core, category_name))
            district = self.random.choice(city.districts)
            return Query(f"{customer.core}{category_name}", self._division(city, district),
                         None, category)
        raise ValueError(category)

    def queries(self, customers: list[Customer], count: int) -> list[Query]:
        pools = {
            "numbered": [c for c in customers if c.kind == "numbered"],
            "aliased": [c for c in customers if c.aliases],
            "addressed": [c for c in customers if c.address and c.kind == "core"],
            "institutional": [c for c in customers if c.kind in ("university", "academy")],
            "plain": [c for c in customers if c.kind == "core"
                      and c.name == f"{c.core}{c.name[len(c.core):]}"],
        }
        result = []
        while len(result) < count:
            positive = len(result) % 2 == 0
            shares = POSITIVE if positive else NEGATIVE
            category = self.random.choices(list(shares), list(shares.values()))[0]
            make = self._positive if positive else self._negative
            query = make(category, customers, pools)
            if query is not None:
                result.append(query)
        self.random.shuffle(result)
        return result

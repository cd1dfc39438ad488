"""The demo world as data (../DESIGN.md §7), decided before anything is sent: regions,
platform dealers with their sub-dealers and tier-one/two dealers with territories, their
staff in every role, HQ staff, a catalog with valid GTINs and tier price lists, hospitals
with realistic names, addresses and aliases, and the year of trade the loader plays.

Everything comes from one seeded random generator and carries a natural key (credit
code, username, product code, client reference), so a second run plans the same world
and the loader can skip what already exists. Pure Python, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from stdnum import ean
from stdnum.cn import uscc

from suite.demo.hospitals import Hospital, hospitals_for

PASSWORD = "Demo-Passw0rd!"
PRODUCT_LINES = ("A系列", "B系列", "C系列")

# GB/T 2260 provinces by sales region; the cities the demo's dealers sit in.
REGIONS: dict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = {
    "east": ("华东", "31", (("310000", "310100"), ("320000", "320100"), ("320000", "320500"),
                           ("330000", "330100"), ("330000", "330200"), ("340000", "340100"),
                           ("350000", "350200"), ("370000", "370200"))),
    "south": ("华南", "44", (("440000", "440100"), ("440000", "440300"), ("450000", "450100"),
                            ("460000", "460100"))),
    "north": ("华北", "11", (("110000", "110100"), ("120000", "120100"), ("130000", "130100"),
                            ("140000", "140100"))),
    "central": ("华中", "42", (("420000", "420100"), ("430000", "430100"), ("410000", "410100"))),
    "southwest": ("西南", "51", (("510000", "510100"), ("500000", "500100"),
                                ("530000", "530100"), ("520000", "520100"))),
    "northwest": ("西北", "61", (("610000", "610100"), ("620000", "620100"),
                                ("650000", "650100"))),
    "northeast": ("东北", "21", (("210000", "210100"), ("220000", "220100"),
                                ("230000", "230100"))),
}

_FIRMS = ("康健", "瑞信", "华泰", "仁和", "博润", "安康", "嘉禾", "恒信", "济民", "同心", "长青",
          "百川", "德润", "永康", "天成", "金桥", "宏远", "众合", "信达", "益生", "鸿泰", "明德")
_KINDS = ("医疗器械有限公司", "医疗科技有限公司", "医药有限公司", "生物科技有限公司",
          "医疗用品有限公司")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"  # noqa: E501
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国俊峰宇浩然欣怡晨阳"
_PRODUCTS = (("一次性使用输液器", "带针 20滴/ml"), ("一次性使用静脉留置针", "22G"),
             ("医用外科口罩", "17.5×9.5cm 50只/盒"), ("一次性使用无菌注射器", "5ml"),
             ("一次性使用采血针", "0.7×25mm"), ("医用导管", "16Fr"),
             ("一次性使用输血器", "带针"), ("一次性使用麻醉穿刺包", "硬膜外"),
             ("医用超声耦合剂", "250ml"), ("一次性使用吸痰管", "12Fr"),
             ("一次性使用血液透析管路", "成人型"), ("心电电极片", "50片/袋"))


@dataclass(frozen=True)
class Scale:
    """How big a world: ``small`` for tests and a first look, ``full`` as DESIGN.md §7."""

    dealers: int
    hospitals: int
    products: int
    registrations: int
    orders: int
    flow_dealers: int

    @classmethod
    def named(cls, name: str) -> Scale:
        return {"small": cls(dealers=24, hospitals=120, products=12, registrations=48,
                             orders=60, flow_dealers=4),
                "medium": cls(dealers=300, hospitals=3_000, products=100,
                              registrations=1_000, orders=1_500, flow_dealers=30),
                "full": cls(dealers=5_000, hospitals=50_000, products=1_000,
                            registrations=10_000, orders=12_000, flow_dealers=200)}[name]


@dataclass(frozen=True)
class Person:
    username: str
    display_name: str
    roles: tuple[str, ...]
    org: str  # "hq", a region code or a dealer credit code


@dataclass(frozen=True)
class Dealer:
    credit_code: str
    name: str
    tier: str  # platform, one, two
    region_code: str
    city_code: str
    territory: tuple[str, ...]
    product_lines: tuple[str, ...]
    platform_credit_code: str = ""


@dataclass(frozen=True)
class Product:
    code: str
    name: str
    spec: str
    gtin: str
    product_line: str
    list_price_minor: int
    serialised: bool


@dataclass(frozen=True)
class Registration:
    """A dealer registers a hospital; ``outcome`` is what the manager then does."""

    client_request_id: str
    dealer: str  # credit code
    hospital: int  # index into hospitals
    product_line: str
    outcome: str  # approve, reject, pending
    # After approval the dealer notes its first visit (closing the SOP's visit task);
    # the others stay open and turn overdue.
    visited: bool = False


# Follow-up rules HQ sets (标准作业程序): each opens a task on its trigger, closed by
# the closing event, red when late.
SOP_RULES = (
    {"name": "新报备7天内首次拜访", "trigger": "registration.approved",
     "closing": "registration.note_added", "deadline_minutes": 7 * 24 * 60,
     "assignee_role": "dealer"},
    {"name": "待审订单当天处理", "trigger": "order.held", "closing": "order.decided",
     "deadline_minutes": 8 * 60, "assignee_role": "channel_manager"},
)


@dataclass(frozen=True)
class OrderPlan:
    """An order through its life: ``fate`` is cancel, hold (over credit, left for the
    manager), ship (shipped, not yet received) or receive (shipped and received)."""

    client_order_ref: str
    dealer: str
    lines: tuple[tuple[str, int], ...]  # product code, quantity
    fate: str
    ship_date: date


@dataclass
class DemoWorld:
    scale: Scale
    dealers: list[Dealer] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    products: list[Product] = field(default_factory=list)
    hospitals: list[Hospital] = field(default_factory=list)
    registrations: list[Registration] = field(default_factory=list)
    orders: list[OrderPlan] = field(default_factory=list)
    flow_dealers: list[str] = field(default_factory=list)  # credit codes
    _by_code: dict[str, Dealer] = field(default_factory=dict, repr=False)

    def dealer(self, credit_code: str) -> Dealer:
        if len(self._by_code) != len(self.dealers):
            self._by_code = {d.credit_code: d for d in self.dealers}
        return self._by_code[credit_code]


def credit_code(serial: int, province: str) -> str:
    """A valid unified social credit code (统一社会信用代码) registered in ``province``."""
    body = f"91{province}MA{serial:07d}"
    return body + uscc.calc_check_digit(body)


def gtin(serial: int) -> str:
    body = f"0693{serial:09d}"
    return body + ean.calc_check_digit(body)


def _person_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))


def _dealers(rng: random.Random, count: int) -> list[Dealer]:
    """A tenth platform dealers, each with a few sub-dealers; the rest tier one or two."""
    dealers: list[Dealer] = []
    regions = list(REGIONS.items())
    platforms = max(1, count // 10)
    serial = 0
    while len(dealers) < count:
        code, (region_name, _, cities) = regions[serial % len(regions)]
        province, city = cities[(serial // len(regions)) % len(cities)]
        serial += 1
        firm = _FIRMS[serial % len(_FIRMS)] + ("" if serial <= len(_FIRMS) else str(serial))
        city_name = _CITY_NAMES.get(city, region_name)
        name = f"{city_name}{firm}{_KINDS[serial % len(_KINDS)]}"
        lines = tuple(sorted(rng.sample(PRODUCT_LINES, rng.choice((1, 2, 3)))))
        if len(dealers) < platforms:
            dealers.append(Dealer(credit_code(serial, province), name, "platform", code, city,
                                  (province,), PRODUCT_LINES))
            continue
        platform = next((d for d in dealers if d.tier == "platform" and d.region_code == code),
                        None)
        tier = "two" if serial % 3 == 0 else "one"
        dealers.append(Dealer(
            credit_code(serial, province), name, tier, code, city,
            (city,) if tier == "two" else (province,), lines,
            platform.credit_code if platform and tier == "two" else ""))
    return dealers


_CITY_NAMES = {"310100": "上海", "320100": "南京", "320500": "苏州", "330100": "杭州",
               "330200": "宁波", "340100": "合肥", "350200": "厦门", "370200": "青岛",
               "440100": "广州", "440300": "深圳", "450100": "南宁", "460100": "海口",
               "110100": "北京", "120100": "天津", "130100": "石家庄", "140100": "太原",
               "420100": "武汉", "430100": "长沙", "410100": "郑州", "510100": "成都",
               "500100": "重庆", "530100": "昆明", "520100": "贵阳", "610100": "西安",
               "620100": "兰州", "650100": "乌鲁木齐", "210100": "沈阳", "220100": "长春",
               "230100": "哈尔滨"}


def _people(rng: random.Random, dealers: list[Dealer]) -> list[Person]:
    people = [Person("demo.hq", "总部管理员 " + _person_name(rng), ("hq_admin",), "hq"),
              Person("demo.finance", "财务 " + _person_name(rng), ("finance",), "hq"),
              Person("demo.service", "客服 " + _person_name(rng), ("customer_service",), "hq"),
              Person("demo.erp", "ERP 接口", ("service_erp",), "hq")]
    for code in REGIONS:
        people.append(Person(f"demo.{code}.rm", _person_name(rng), ("region_manager",), code))
        people.append(Person(f"demo.{code}.cm", _person_name(rng), ("channel_manager",), code))
    for number, dealer in enumerate(dealers, start=1):
        people.append(Person(f"demo.d{number:05d}.admin", _person_name(rng), ("dealer_admin",),
                             dealer.credit_code))
        people.append(Person(f"demo.d{number:05d}.sales", _person_name(rng), ("dealer_sales",),
                             dealer.credit_code))
    return people


def _products(rng: random.Random, count: int) -> list[Product]:
    products = []
    for number in range(1, count + 1):
        name, spec = _PRODUCTS[(number - 1) % len(_PRODUCTS)]
        line = PRODUCT_LINES[(number - 1) % len(PRODUCT_LINES)]
        variant = (number - 1) // len(_PRODUCTS)
        products.append(Product(
            f"{line[0]}-{number:04d}", name if not variant else f"{name}（{variant + 1}型）",
            spec, gtin(number), line, rng.randrange(800, 40_000, 50), number % 5 == 0))
    return products


def plan(scale: Scale, seed: int = 2026, today: date | None = None) -> DemoWorld:
    rng = random.Random(seed)
    today = today or date.today()
    world = DemoWorld(scale)
    world.dealers = _dealers(rng, scale.dealers)
    world.people = _people(rng, world.dealers)
    world.products = _products(rng, scale.products)
    cities = sorted({d.city_code for d in world.dealers})
    world.hospitals = hospitals_for(rng, cities, scale.hospitals)
    trading = [d for d in world.dealers if d.tier != "platform"] or world.dealers
    by_city: dict[str, list[int]] = {}
    for index, hospital in enumerate(world.hospitals):
        by_city.setdefault(hospital.city_code, []).append(index)
    outcomes = ("approve",) * 7 + ("reject",) + ("pending",) * 2
    # Each registration takes the next hospital of its dealer's city (the dealers of a
    # city once all took its first ones: 2,347 registrations named 29 hospitals); every
    # twentieth takes the one another dealer of the city has just registered: a conflict.
    next_in_city: dict[str, int] = {}
    last_in_city: dict[str, tuple[str, int]] = {}
    for number in range(scale.registrations):
        dealer = trading[number % len(trading)]
        candidates = by_city.get(dealer.city_code) or list(range(len(world.hospitals)))
        last = last_in_city.get(dealer.city_code)
        if number % 20 == 19 and last and last[0] != dealer.credit_code:
            hospital = last[1]
        else:
            turn = next_in_city.get(dealer.city_code, 0)
            next_in_city[dealer.city_code] = turn + 1
            hospital = candidates[turn % len(candidates)]
        last_in_city[dealer.city_code] = (dealer.credit_code, hospital)
        line = dealer.product_lines[number % len(dealer.product_lines)]
        world.registrations.append(Registration(
            f"DEMO-REG-{number:06d}", dealer.credit_code, hospital, line,
            outcomes[number % len(outcomes)], visited=number % 3 != 0))
    fates = ("receive",) * 6 + ("ship",) * 2 + ("cancel",) + ("hold",)
    sold: dict[tuple[str, ...], list[Product]] = {}
    for number in range(scale.orders):
        dealer = trading[number % len(trading)]
        if dealer.product_lines not in sold:
            sold[dealer.product_lines] = [p for p in world.products
                                          if p.product_line in dealer.product_lines]
        products = sold[dealer.product_lines]
        chosen = rng.sample(products, min(len(products), rng.choice((1, 2, 3))))
        world.orders.append(OrderPlan(
            f"DEMO-ORD-{number:06d}", dealer.credit_code,
            tuple((p.code, rng.choice((5, 10, 20, 50))) for p in chosen),
            fates[number % len(fates)],
            today - timedelta(days=360 * (scale.orders - number) // max(scale.orders, 1) + 1)))
    world.flow_dealers = [d.credit_code for d in trading[:scale.flow_dealers]]
    return world


# ---- notices and the material library -----------------------------------------------

_EVERY_REGION = {"any_of": [{"term": {"region_code": code}} for code in REGIONS]}


@dataclass(frozen=True)
class NoticePlan:
    title: str
    category: str
    body: str
    must_confirm: bool
    audience: dict


NOTICES = (
    NoticePlan("五一假期发货安排", "holiday",
               "5月1日至5日暂停发货，4月28日前的订单照常发出，请提前备货。", True, _EVERY_REGION),
    NoticePlan("华东区A系列价格调整", "price",
               "自下月1日起，华东区A系列出厂价下调3%，在途订单按原价执行。", True,
               {"term": {"region_code": "east"}}),
    NoticePlan("新品上市：一次性使用血液透析管路", "product",
               "B系列新增成人型血液透析管路，欢迎向医院推荐。", False,
               {"term": {"product_line": "B系列"}}),
    NoticePlan("二级经销商报备规则变更", "policy", "二级经销商的报备改由平台商初审，总部复核。",
               True, {"term": {"tier": "two"}}),
)


@dataclass(frozen=True)
class MaterialPlan:
    title: str
    kind: str
    description: str
    audience: dict
    # One file name per version, oldest first.
    versions: tuple[str, ...]


MATERIALS = (
    MaterialPlan("A系列产品手册", "product_document", "适应症、规格型号与注意事项",
                 {"term": {"product_line": "A系列"}}, ("A系列产品手册.pdf", "A系列产品手册-2.pdf")),
    MaterialPlan("华东区价格政策", "price_policy", "华东区各级经销商供货价与返利口径",
                 {"term": {"region_code": "east"}}, ("华东区价格政策.pdf",)),
    MaterialPlan("医院采购科拜访话术", "talk_track", "开场、异议处理与跟进",
                 _EVERY_REGION, ("拜访话术.pdf",)),
    MaterialPlan("新经销商入门培训", "training", "系统操作、报备与流向上报",
                 {"term": {"tier": "two"}}, ("入门培训.pdf",)),
)


def notice_reading(dealer_number: int, notice_number: int) -> str:
    """How a dealer's sales rep treats a notice that reaches it: "confirm" (read and, if
    asked, confirmed), "read", or "unread" — a third of each, so HQ's receipts show
    partial reads."""
    return ("confirm", "read", "unread")[(dealer_number + notice_number) % 3]


def reader_numbers(world: DemoWorld) -> list[int]:
    """The dealers (1-based numbers) whose sales reps read notices and download
    materials: all of a small world, a sample of a large one (each is a sign-in)."""
    count = len(world.dealers)
    return list(range(1, count + 1, max(1, count // 120)))

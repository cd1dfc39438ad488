"""The world the portal's browser tests look at, built through the gateway (and the ERP's
gRPC door for shipments): a region, three Shanghai dealers with their sales staff, HQ
staff (channel manager, finance), the catalog with a tier-one price list, and helpers
for the orders, shipments and registrations a journey starts from."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from tests.harness import ADMIN_PASSWORD, Suite
from tests.order.support import Erp, shipment
from tests.registration.helpers import hospital_code
from tests.world import credit_code, gtin

PASSWORD = "Portal-Passw0rd!"
DEALERS = [
    ("上海康健医疗器械有限公司", "kangjian.wang", "王芳"),
    ("上海瑞信医疗科技有限公司", "ruixin.li", "李强"),
    ("上海华泰医疗用品有限公司", "huatai.zhao", "赵敏"),
]
PRODUCTS = [
    ("A-001", "一次性使用输液器 带针", "20滴/ml", 12_500),
    ("A-002", "一次性使用静脉留置针", "22G", 3_800),
    ("A-003", "医用外科口罩", "17.5×9.5cm 50只/盒", 4_500),
    ("A-004", "一次性使用无菌注射器", "5ml", 1_650),
]
ZHONGSHAN = {"name": "复旦大学附属中山医院", "address": "上海市徐汇区枫林路180号",
             "credit_code": hospital_code(11), "grade": "三级甲等",
             "departments": ["心内科", "骨科"]}
HUASHAN = {"name": "复旦大学附属华山医院", "address": "上海市静安区乌鲁木齐中路12号",
           "credit_code": hospital_code(12), "grade": "三级甲等", "departments": ["神经内科"]}


@dataclass
class Person:
    username: str
    display_name: str
    id: str = ""
    token: str = ""


@dataclass
class DealerAccount:
    id: str
    name: str
    staff: Person


@dataclass
class PortalWorld:
    suite: Suite
    admin_token: str
    region_id: str = ""
    dealers: list[DealerAccount] = field(default_factory=list)
    manager: Person | None = None
    finance: Person | None = None
    erp_token: str = ""

    async def call(self, token: str, method: str, path: str, **kwargs) -> dict:
        async with self.suite.client(token) as client:
            response = await client.request(method, path, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.text}"
        return response.json() if response.content else {}

    async def order(self, dealer: DealerAccount, ref: str, lines: dict[str, int]) -> dict:
        return await self.call(dealer.staff.token, "POST", "/api/v1/orders", json={
            "client_order_ref": ref,
            "lines": [{"product_code": code, "quantity": n} for code, n in lines.items()]})

    async def give_credit(self, dealer: DealerAccount, amount_minor: int) -> None:
        await self.call(self.admin_token, "PUT",
                        f"/api/v1/dealer-accounts/{dealer.id}/credit-limit",
                        json={"credit_limit": {"amount_minor": amount_minor, "currency": "CNY"},
                              "payment_terms_days": 60, "reason": "年度授信"})

    async def ship(self, order: dict, shipment_id: str) -> None:
        erp = Erp(self.suite, self.erp_token)
        try:
            response = await erp.ship([shipment(shipment_id, order["dealer_id"], [
                {"order_id": order["id"], "order_line_no": line["line_no"],
                 "product_code": line["product_code"], "quantity": line["quantity_ordered"],
                 "batch": "B2611"}
                for line in order["lines"]], waybill=f"SF{uuid.uuid4().int % 10**10:010d}")])
            assert response.summary.rejected == 0, response
        finally:
            await erp.close()

    async def register(self, dealer: DealerAccount, customer: dict,
                       request_id: str) -> dict:
        return await self.call(dealer.staff.token, "POST", "/api/v1/registrations", json={
            "product_line": "A系列", "customer": customer, "client_request_id": request_id})


async def _person(world: PortalWorld, org_unit_id: str, person: Person, roles: list[str]) -> None:
    created = await world.call(world.admin_token, "POST", "/api/v1/users", json={
        "username": person.username, "password": PASSWORD,
        "display_name": person.display_name, "roles": roles, "org_unit_id": org_unit_id})
    person.id = created["id"]
    person.token = await world.suite.login(person.username, PASSWORD)


async def build_portal_world(suite: Suite) -> PortalWorld:
    world = PortalWorld(suite, await suite.login("admin", ADMIN_PASSWORD))
    admin = world.admin_token
    region = await world.call(admin, "POST", "/api/v1/org-units", json={
        "kind": "region", "name": "华东", "region_code": "east"})
    world.region_id = region["id"]
    for index, (name, username, display) in enumerate(DEALERS):
        dealer = await world.call(admin, "POST", "/api/v1/org-units", json={
            "kind": "dealer", "name": name, "parent_id": world.region_id,
            "credit_code": credit_code(100 + index), "tier": "one", "city_code": "310100",
            "division_codes": ["310000"], "product_lines": ["A系列"]})
        staff = Person(username, display)
        await _person(world, dealer["id"], staff, ["dealer_sales"])
        world.dealers.append(DealerAccount(dealer["id"], name, staff))
    hq = (await world.call(admin, "GET", "/api/v1/org-units", params={"kind": "hq"}))
    hq_id = hq["org_units"][0]["id"]
    world.manager = Person("zhang.wei", "张伟")
    await _person(world, world.region_id, world.manager, ["channel_manager"])
    world.finance = Person("liu.na", "刘娜")
    await _person(world, hq_id, world.finance, ["finance"])
    erp = Person("erp.sap", "ERP")
    await _person(world, hq_id, erp, ["service_erp"])
    world.erp_token = erp.token
    await world.call(admin, "POST", "/api/v1/assignments", json={
        "manager_user_id": world.manager.id, "dealer_ids": [d.id for d in world.dealers]})
    await world.call(admin, "PUT", "/api/v1/products", json={"products": [
        {"code": code, "name": name, "spec": spec, "gtin": gtin(500 + n), "product_line": "A系列",
         "unit": "盒", "list_price": {"amount_minor": price, "currency": "CNY"}}
        for n, (code, name, spec, price) in enumerate(PRODUCTS)]})
    await world.call(admin, "PUT", "/api/v1/price-lists", json={
        "name": "2026 一级经销商价", "tier": "one", "valid_from": "2026-01-01",
        "items": [{"product_code": code, "unit_price": {"amount_minor": price * 9 // 10}}
                  for code, _, _, price in PRODUCTS]})
    return world


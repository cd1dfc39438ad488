"""A small believable world built through the gateway: a region, dealers, their staff,
and a catalog. Tests build on it instead of poking databases."""

from __future__ import annotations

from dataclasses import dataclass, field

from stdnum import ean
from stdnum.cn import uscc

from tests.harness import ADMIN_PASSWORD, Suite

STAFF_PASSWORD = "Dealer-Passw0rd!"


def credit_code(serial: int) -> str:
    """A valid unified social credit code (统一社会信用代码) for a test dealer."""
    body = f"91310000MA1{serial:06d}"
    return body + uscc.calc_check_digit(body)


def gtin(serial: int) -> str:
    body = f"0690{serial:09d}"
    return body + ean.calc_check_digit(body)


@dataclass
class Dealer:
    id: str
    name: str
    staff_username: str
    token: str = ""


@dataclass
class World:
    admin_token: str
    region_id: str
    dealers: list[Dealer] = field(default_factory=list)
    products: list[dict] = field(default_factory=list)


async def build_world(suite: Suite, dealers: int = 2) -> World:
    admin_token = await suite.login("admin", ADMIN_PASSWORD)
    async with suite.client(admin_token) as admin:
        response = await admin.post("/api/v1/org-units", json={
            "kind": "region", "name": "华东", "region_code": "east"})
        assert response.status_code == 201, response.text
        region_id = response.json()["id"]
        world = World(admin_token=admin_token, region_id=region_id)
        for index in range(dealers):
            response = await admin.post("/api/v1/org-units", json={
                "kind": "dealer", "name": f"上海医疗器械经销商{index + 1}号有限公司",
                "parent_id": region_id, "credit_code": credit_code(index + 1), "tier": "one",
                "division_codes": ["310000"], "product_lines": ["A系列"]})
            assert response.status_code == 201, response.text
            dealer_id = response.json()["id"]
            username = f"dealer{index + 1}.sales"
            response = await admin.post("/api/v1/users", json={
                "username": username, "password": STAFF_PASSWORD, "display_name": "销售",
                "roles": ["dealer_sales"], "org_unit_id": dealer_id})
            assert response.status_code == 201, response.text
            world.dealers.append(Dealer(dealer_id, f"dealer {index + 1}", username))
        products = [
            {"code": f"A-{n:03d}", "name": f"一次性使用输液器 {n}", "spec": "20滴/ml",
             "gtin": gtin(n), "product_line": "A系列", "unit": "盒",
             "list_price": {"amount_minor": 12_500 * n, "currency": "CNY"}}
            for n in (1, 2, 3)
        ]
        response = await admin.put("/api/v1/products", json={"products": products})
        assert response.status_code == 200, response.text
        world.products = products
    for dealer in world.dealers:
        dealer.token = await suite.login(dealer.staff_username, STAFF_PASSWORD)
    return world

"""Small helpers for registration tests, all through the gateway."""

from __future__ import annotations

from stdnum.cn import uscc

from tests.harness import Suite, eventually
from tests.world import STAFF_PASSWORD, World

ZHONGSHAN = {"name": "复旦大学附属中山医院", "address": "上海市徐汇区枫林路180号",
             "grade": "三级甲等", "departments": ["心内科", "骨科"]}


def hospital_code(serial: int) -> str:
    body = f"12310000{serial:09d}"[:17]
    return body + uscc.calc_check_digit(body)


async def channel_manager(suite: Suite, world: World, username: str = "cm.zhang",
                          dealers: list[str] | None = None) -> tuple[str, str]:
    """A channel manager assigned to the given dealers (all of the world's by default):
    (user id, token)."""
    async with suite.client(world.admin_token) as admin:
        response = await admin.post("/api/v1/users", json={
            "username": username, "password": STAFF_PASSWORD, "display_name": "渠道经理",
            "roles": ["channel_manager"], "org_unit_id": world.region_id})
        assert response.status_code == 201, response.text
        user_id = response.json()["id"]
        response = await admin.post("/api/v1/assignments", json={
            "manager_user_id": user_id,
            "dealer_ids": dealers or [d.id for d in world.dealers]})
        assert response.status_code in (200, 201), response.text
    return user_id, await suite.login(username, STAFF_PASSWORD)


async def add_dealer(suite: Suite, world: World, name: str, division_codes: list[str],
                     product_lines: list[str], tier: str = "one", serial: int = 50) -> str:
    from tests.world import credit_code

    async with suite.client(world.admin_token) as admin:
        response = await admin.post("/api/v1/org-units", json={
            "kind": "dealer", "name": name, "parent_id": world.region_id,
            "credit_code": credit_code(serial), "tier": tier,
            "division_codes": division_codes, "product_lines": product_lines})
        assert response.status_code == 201, response.text
        return response.json()["id"]


async def wait_status(client, registration_id: str, status: str, timeout: float = 10) -> dict:
    async def check():
        response = await client.get(f"/api/v1/registrations/{registration_id}")
        body = response.json()
        return body if body.get("status") == status else None

    return await eventually(check, timeout=timeout)

"""Small helpers for identity's gateway tests."""

from __future__ import annotations

from tests.harness import ADMIN_PASSWORD, Suite
from tests.world import STAFF_PASSWORD, credit_code


class Admin:
    """An HQ admin session with shortcuts that assert success."""

    def __init__(self, suite: Suite, token: str) -> None:
        self.suite = suite
        self.token = token
        self.http = suite.client(token)

    @classmethod
    async def login(cls, suite: Suite) -> Admin:
        return cls(suite, await suite.login("admin", ADMIN_PASSWORD))

    async def ok(self, method: str, path: str, expected=(200, 201), **kwargs) -> dict:
        response = await self.http.request(method, path, **kwargs)
        assert response.status_code in expected, response.text
        return response.json() if response.content else {}

    async def region(self, code: str, name: str, parent_id: str = "") -> dict:
        body = {"kind": "region", "name": name, "region_code": code}
        if parent_id:
            body["parent_id"] = parent_id
        return await self.ok("POST", "/api/v1/org-units", json=body)

    async def dealer(self, serial: int, region_id: str, **fields) -> dict:
        body = {"kind": "dealer", "name": f"测试经销商{serial}号", "parent_id": region_id,
                "credit_code": credit_code(serial), "tier": "one",
                "division_codes": ["310000"], "product_lines": ["A系列"]}
        body.update(fields)
        return await self.ok("POST", "/api/v1/org-units", json=body)

    async def user(self, username: str, roles: list[str], org_unit_id: str) -> dict:
        return await self.ok("POST", "/api/v1/users", json={
            "username": username, "password": STAFF_PASSWORD, "roles": roles,
            "org_unit_id": org_unit_id})

    async def hq_id(self) -> str:
        body = await self.ok("GET", "/api/v1/org-units", params={"kind": "hq"})
        return body["org_units"][0]["id"]

    async def aclose(self) -> None:
        await self.http.aclose()


def fields_of(problem: dict) -> list[str]:
    return [error["field"] for error in problem.get("errors", [])]

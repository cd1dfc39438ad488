"""The isolation world: tenants (dealers) and principals built through the gateway.

Tenants (dealer keys):
    east       tier-1 dealer in region 华东 (east), Shanghai
    south      tier-1 dealer in region 华南 (south), Shenzhen
    platform   platform dealer (平台商) in 华东
    sub        sub-dealer of ``platform``, shared with it (the grant)

Principals (keys) and the tenants each may see (``VISIBLE``):
    east_admin      dealer admin of east        {east}
    south_sales     dealer sales of south       {south}
    platform_sales  dealer sales of platform    {platform, sub}
    sub_sales       dealer sales of sub         {sub}
    cm_east         channel manager, assigned east        {east}
    cm_south        channel manager, assigned south       {south}
    region_east     region manager of 华东      {east, platform, sub}
    finance         HQ finance                  all
    admin           HQ admin                    all
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.harness import ADMIN_PASSWORD, Suite
from tests.world import STAFF_PASSWORD, credit_code, gtin

TENANTS = ("east", "south", "platform", "sub")
PRINCIPALS = ("east_admin", "south_sales", "platform_sales", "sub_sales", "cm_east",
              "cm_south", "region_east", "finance", "admin")
VISIBLE: dict[str, frozenset[str]] = {
    "east_admin": frozenset({"east"}),
    "south_sales": frozenset({"south"}),
    "platform_sales": frozenset({"platform", "sub"}),
    "sub_sales": frozenset({"sub"}),
    "cm_east": frozenset({"east"}),
    "cm_south": frozenset({"south"}),
    "region_east": frozenset({"east", "platform", "sub"}),
    "finance": frozenset(TENANTS),
    "admin": frozenset(TENANTS),
}
DEALER_STAFF = frozenset({"east_admin", "south_sales", "platform_sales", "sub_sales"})
HQ = frozenset({"cm_east", "cm_south", "region_east", "finance", "admin"})


@dataclass
class IsolationWorld:
    suite: Suite
    dealer_ids: dict[str, str] = field(default_factory=dict)      # tenant → dealer id
    region_ids: dict[str, str] = field(default_factory=dict)      # region code → org unit id
    user_ids: dict[str, str] = field(default_factory=dict)        # principal → user id
    tokens: dict[str, str] = field(default_factory=dict)          # principal → access token
    staff_of: dict[str, str] = field(default_factory=dict)        # tenant → a staff principal
    products: list[dict] = field(default_factory=list)
    # Specs may keep what their setup created here, e.g. cache["order:east"].
    cache: dict[str, object] = field(default_factory=dict)

    def tenant_of(self, dealer_id: str) -> str | None:
        for tenant, known in self.dealer_ids.items():
            if known == dealer_id:
                return tenant
        return None

    def client(self, principal: str):
        return self.suite.client(self.tokens[principal])

    def visible(self, principal: str) -> frozenset[str]:
        return VISIBLE[principal]


async def build_isolation_world(suite: Suite) -> IsolationWorld:
    world = IsolationWorld(suite)
    world.tokens["admin"] = await suite.login("admin", ADMIN_PASSWORD)
    async with suite.client(world.tokens["admin"]) as admin:
        async def post(path: str, body: dict) -> dict:
            response = await admin.post(path, json=body)
            assert response.status_code in (200, 201), response.text
            return response.json()

        for code, name in (("east", "华东"), ("south", "华南")):
            world.region_ids[code] = (await post("/api/v1/org-units", {
                "kind": "region", "name": name, "region_code": code}))["id"]
        dealers = {
            "east": {"region": "east", "tier": "one", "division_codes": ["310000"]},
            "south": {"region": "south", "tier": "one", "division_codes": ["440300"]},
            "platform": {"region": "east", "tier": "platform", "division_codes": ["310000"]},
            "sub": {"region": "east", "tier": "two", "division_codes": ["310101"],
                    "platform": "platform"},
        }
        for serial, (tenant, spec) in enumerate(dealers.items(), start=101):
            body = {"kind": "dealer", "name": f"隔离测试经销商-{tenant}",
                    "parent_id": world.region_ids[spec["region"]],
                    "credit_code": credit_code(serial), "tier": spec["tier"],
                    "division_codes": spec["division_codes"], "product_lines": ["A系列"]}
            if "platform" in spec:
                body["platform_dealer_id"] = world.dealer_ids[spec["platform"]]
                body["shared_with_platform"] = True
            world.dealer_ids[tenant] = (await post("/api/v1/org-units", body))["id"]
        hq_id = (await admin.get("/api/v1/org-units", params={"kind": "hq"})).json()[
            "org_units"][0]["id"]
        users = {
            "east_admin": (["dealer_admin"], world.dealer_ids["east"]),
            "south_sales": (["dealer_sales"], world.dealer_ids["south"]),
            "platform_sales": (["dealer_sales"], world.dealer_ids["platform"]),
            "sub_sales": (["dealer_sales"], world.dealer_ids["sub"]),
            "cm_east": (["channel_manager"], hq_id),
            "cm_south": (["channel_manager"], hq_id),
            "region_east": (["region_manager"], world.region_ids["east"]),
            "finance": (["finance"], hq_id),
        }
        for principal, (roles, unit) in users.items():
            world.user_ids[principal] = (await post("/api/v1/users", {
                "username": f"iso.{principal.replace('_', '.')}", "password": STAFF_PASSWORD,
                "roles": roles, "org_unit_id": unit}))["id"]
        for principal, tenant in (("cm_east", "east"), ("cm_south", "south")):
            await post("/api/v1/assignments", {"manager_user_id": world.user_ids[principal],
                                               "dealer_ids": [world.dealer_ids[tenant]]})
        world.products = [
            {"code": f"ISO-{n:03d}", "name": f"隔离测试产品 {n}", "spec": "", "gtin": gtin(900 + n),
             "product_line": "A系列", "unit": "盒",
             "list_price": {"amount_minor": 10_000 * n, "currency": "CNY"}} for n in (1, 2)]
        response = await admin.put("/api/v1/products", json={"products": world.products})
        assert response.status_code == 200, response.text
    async with suite.client(world.tokens["admin"]) as me:
        world.user_ids["admin"] = (await me.get("/api/v1/auth/me")).json()["user"]["id"]
    for principal in users:
        world.tokens[principal] = await suite.login(f"iso.{principal.replace('_', '.')}",
                                                    STAFF_PASSWORD)
    world.staff_of = {"east": "east_admin", "south": "south_sales", "platform": "platform_sales",
                      "sub": "sub_sales"}
    return world

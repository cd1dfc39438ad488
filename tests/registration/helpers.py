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


class EventLog:
    """Every event registration publishes, read from its JetStream stream."""

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self.seen: list[tuple[str, object]] = []

    async def __aenter__(self) -> EventLog:
        import nats

        from shared.bus.envelope import decode_envelope

        self.nc = await nats.connect(self.suite.nats.url)
        js = self.nc.jetstream()

        async def on_message(message):
            event = decode_envelope(message.subject, message.data)
            self.seen.append((message.subject, event.payload))
            await message.ack()

        self.subscription = await js.subscribe("qudao.registration.>", cb=on_message,
                                               stream="QUDAO_REGISTRATION")
        return self

    async def __aexit__(self, *exc) -> None:
        await self.subscription.unsubscribe()
        await self.nc.close()

    def of(self, subject_suffix: str) -> list:
        return [payload for subject, payload in self.seen if subject.endswith(subject_suffix)]

    async def wait_for(self, subject_suffix: str, predicate=lambda payload: True,
                       timeout: float = 10):
        async def check():
            return [p for p in self.of(subject_suffix) if predicate(p)]

        return await eventually(check, timeout=timeout)

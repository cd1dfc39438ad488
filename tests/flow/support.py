"""The flow tests' world, built through the gateway and the ERP's gRPC ingest: two
tier-1 dealers, a platform dealer with a sub-dealer, hospitals from registration, and
shipments of batches (some with serials) from the ERP. ``caught_up`` waits until flow's
projections have every event."""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field

import nats
from qudao.order.v1 import order_pb2
from sqlalchemy import text

from shared.db import Database
from tests.harness import Suite, eventually
from tests.order.support import Erp, add_staff, shipment
from tests.world import STAFF_PASSWORD, World, build_world, credit_code

HEADER = ["销售日期", "医院名称", "科室", "产品编码", "UDI", "批号", "有效期", "序列号", "数量",
          "金额"]
HOSPITALS = {
    "ruijin": ("上海交通大学医学院附属瑞金医院", "310101", ["瑞金医院"]),
    "zhongshan": ("复旦大学附属中山医院", "310104", ["中山医院"]),
    "first": ("上海市第一人民医院", "310106", []),
}
_refs = itertools.count(1)
FLOW_DURABLES = ("flow-catalog", "flow-shipments", "flow-customers", "flow-authorizations",
                 "flow-dealers")


@dataclass
class FlowWorld:
    suite: Suite
    world: World
    erp: Erp
    admin_token: str
    cm_token: str
    dealers: dict[str, str] = field(default_factory=dict)   # key → dealer id
    tokens: dict[str, str] = field(default_factory=dict)    # key → staff token
    customers: dict[str, str] = field(default_factory=dict)  # key → customer id
    products: list[dict] = field(default_factory=list)

    def client(self, key: str):
        token = {"admin": self.admin_token, "cm": self.cm_token}.get(key) or self.tokens[key]
        return self.suite.client(token)

    async def close(self) -> None:
        await self.erp.close()


async def build_flow_world(suite: Suite) -> FlowWorld:
    world = await build_world(suite)
    staff = await add_staff(suite, world, prefix="flow.")
    flow = FlowWorld(suite, world, Erp(suite, staff.erp_token), world.admin_token,
                     staff.manager_token, products=world.products)
    flow.dealers = {"a": world.dealers[0].id, "b": world.dealers[1].id}
    flow.tokens = {"a": world.dealers[0].token, "b": world.dealers[1].token}
    async with suite.client(world.admin_token) as admin:
        for key, tier, parent in (("platform", "platform", ""), ("sub", "two", "platform")):
            body = {"kind": "dealer", "name": f"上海{key}医疗器械有限公司",
                    "parent_id": world.region_id, "credit_code": credit_code(50 + len(key)),
                    "tier": tier, "division_codes": ["310000"], "product_lines": ["A系列"]}
            if parent:
                body["platform_dealer_id"] = flow.dealers[parent]
                body["shared_with_platform"] = True
            response = await admin.post("/api/v1/org-units", json=body)
            assert response.status_code == 201, response.text
            flow.dealers[key] = response.json()["id"]
            response = await admin.post("/api/v1/users", json={
                "username": f"{key}.flow.sales", "password": STAFF_PASSWORD,
                "roles": ["dealer_sales"], "org_unit_id": flow.dealers[key]})
            assert response.status_code == 201, response.text
        for key, (name, division, aliases) in HOSPITALS.items():
            response = await admin.post("/api/v1/customers", json={
                "name": name, "division_code": division, "aliases": aliases,
                "departments": ["心内科", "ICU"]})
            assert response.status_code == 201, response.text
            flow.customers[key] = response.json()["customer"]["id"]
    for key in ("platform", "sub"):
        flow.tokens[key] = await suite.login(f"{key}.flow.sales", STAFF_PASSWORD)
    return flow


async def approved_order(flow: FlowWorld, dealer: str, quantity: int = 100_000) -> dict:
    async with flow.client(dealer) as staff:
        response = await staff.post("/api/v1/orders", json={
            "dealer_id": flow.dealers[dealer], "client_order_ref": f"FLOW-{next(_refs)}",
            "lines": [{"product_code": p["code"], "quantity": quantity}
                      for p in flow.products]})
        assert response.status_code == 201, response.text
        order = response.json()
    if order["status"] != "approved":
        async with flow.client("admin") as admin:
            for stage in ("channel_manager", "finance"):
                response = await admin.post(f"/api/v1/orders/{order['id']}/approve",
                                            json={"stage": stage})
                assert response.status_code == 200, response.text
            order = response.json()
    return order


async def ship(flow: FlowWorld, dealer: str, lines: list[dict], ship_date: str = "2026-03-02",
               order: dict | None = None) -> str:
    """Ship ``lines`` ({product, batch, quantity, serials?, expiry?}) to the dealer from
    the ERP; returns the shipment id."""
    order = order or await approved_order(flow, dealer)
    shipment_id = f"FLOW-SHIP-{next(_refs)}"
    codes = [p["code"] for p in flow.products]
    reply = await flow.erp.ship([shipment(shipment_id, flow.dealers[dealer], [
        {"order_id": order["id"], "order_line_no": codes.index(line["product"]) + 1,
         "product_code": line["product"], "batch": line["batch"],
         "expiry_date": line.get("expiry", "2028-12-31"), "serials": line.get("serials", []),
         "quantity": line["quantity"]} for line in lines], ship_date=ship_date)],
        mode=order_pb2.INGEST_MODE_ALL_OR_NOTHING)
    assert reply.summary.accepted >= 1, reply
    return shipment_id


async def published(suite: Suite, timeout: float = 20) -> None:
    """The producers flow projects from have published everything they committed."""
    databases = [Database(suite.database_urls[service])
                 for service in ("order", "registration", "identity")]

    async def empty():
        for database in databases:
            async with database.read() as session:
                if (await session.execute(text(
                        "SELECT count(*) FROM outbox WHERE published_at IS NULL"))).scalar():
                    return False
        return True

    try:
        await eventually(empty, timeout=timeout, interval=0.1)
    finally:
        for database in databases:
            await database.dispose()


async def caught_up(suite: Suite, timeout: float = 20) -> None:
    """Every flow projection consumer has applied everything the producers committed."""
    await published(suite, timeout)
    connection = await nats.connect(suite.nats.url)
    js = connection.jetstream()
    streams = {"flow-catalog": "QUDAO_ORDER", "flow-shipments": "QUDAO_ORDER",
               "flow-customers": "QUDAO_REGISTRATION", "flow-authorizations": "QUDAO_REGISTRATION",
               "flow-dealers": "QUDAO_IDENTITY"}

    async def idle():
        for durable, stream in streams.items():
            try:
                info = await js.consumer_info(stream, durable)
            except Exception:
                return False
            if info.num_pending or info.num_ack_pending:
                return False
        return True

    try:
        await eventually(idle, timeout=timeout, interval=0.1)
    finally:
        await connection.close()


def csv_bytes(rows: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8"
              ) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode(encoding)


async def upload(flow: FlowWorld, dealer: str, content: bytes, *, filename: str = "flow.csv",
                 params: dict | None = None, expect: int = 201, form: bool = False) -> dict:
    async with flow.client(dealer) as client:
        query = {"filename": filename, "dealer_id": flow.dealers[dealer], **(params or {})}
        if form:
            response = await client.post("/api/v1/flow/uploads", params=query,
                                         files={"file": (filename, content)})
        else:
            response = await client.post("/api/v1/flow/uploads", params=query, content=content,
                                         headers={"content-type": "text/csv"})
    assert response.status_code == expect, response.text
    return response.json()


async def finished(flow: FlowWorld, upload_id: str, key: str = "admin",
                   timeout: float = 60) -> dict:
    async def done():
        async with flow.client(key) as client:
            body = (await client.get(f"/api/v1/flow/uploads/{upload_id}")).json()
        return body if body["status"] in ("accepted", "rejected", "failed") else None

    return await eventually(done, timeout=timeout, interval=0.1)


async def errors_of(flow: FlowWorld, upload_id: str) -> list[dict]:
    async with flow.client("admin") as client:
        response = await client.get(f"/api/v1/flow/uploads/{upload_id}/errors",
                                    params={"page_size": 500})
    assert response.status_code == 200, response.text
    return response.json()["errors"]


def codes(errors: list[dict]) -> set[str]:
    return {e["error"]["code"] for e in errors}


async def channel_stock(flow: FlowWorld, dealer: str, batch: str,
                        expected: dict[str, tuple[int, int]], timeout: float = 20) -> None:
    """Wait until order's channel inventory of the dealer's batch reads ``expected``
    (product code → (received, sold)), as the dealer sees it through the gateway."""
    async def stock():
        async with flow.client(dealer) as client:
            response = await client.get("/api/v1/channel-inventory", params={
                "dealer_id": flow.dealers[dealer], "batch": batch, "include_empty": True})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        found = {i["product_code"]: (int(i.get("quantity_received", 0)),
                                     int(i.get("quantity_sold", 0))) for i in items}
        for item in items:
            assert int(item.get("quantity_on_hand", 0)) == (
                found[item["product_code"]][0] - found[item["product_code"]][1]
                - int(item.get("quantity_returned", 0)))
        return found if found == expected else None

    try:
        await eventually(stock, timeout=timeout, interval=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{dealer}'s stock of {batch} never became {expected}: "
                             f"{exc}") from None

"""Isolation specs for the flow service's gateway routes: uploads and their progress,
errors and reports, accepted flow, column mappings and diversions. See spec.py for the
format. Each tenant gets its own batch shipped by the ERP (gRPC), sells one unit of it
to a registered hospital (accepted flow), uploads one bad file (a rejected upload), and
has its batch sold by another dealer (a diversion, seen by whoever may see the tenant
the goods were shipped to — never by dealer staff)."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import date, timedelta

from qudao.order.v1 import order_pb2, order_pb2_grpc

from tests.flow.support import caught_up
from tests.harness import eventually
from tests.isolation.spec import Call, Endpoint, only
from tests.isolation.specs_order import _approved_order, _erp
from tests.isolation.world import DEALER_STAFF, PRINCIPALS, IsolationWorld

HOSPITAL = "隔离测试医院"
_numbers = itertools.count(1)
NOT_DEALER_STAFF = tuple(p for p in PRINCIPALS if p not in DEALER_STAFF)


def _day(days_ago: int) -> str:
    return (date.today() - timedelta(days=days_ago)).isoformat()


def _csv(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["销售日期", "医院名称", "产品编码", "批号", "数量"])
    writer.writerows(rows)
    return text.getvalue().encode()


def _batch(tenant: str) -> str:
    return f"F-{tenant}"


async def _shipped(world: IsolationWorld, tenant: str) -> None:
    """The tenant's own batch, shipped by the ERP three days ago; a hospital to sell to."""
    if "flow:hospital" not in world.cache:
        async with world.client("admin") as admin:
            response = await admin.post("/api/v1/customers", json={
                "name": HOSPITAL, "division_code": "310101"})
            assert response.status_code == 201, response.text
        world.cache["flow:hospital"] = True
    key = f"flow:shipped:{tenant}"
    if key in world.cache:
        return
    order = await _approved_order(world, tenant, quantity=1000)
    channel, metadata = await _erp(world)
    try:
        reply = await order_pb2_grpc.OrderServiceStub(channel).RecordShipments(
            order_pb2.RecordShipmentsRequest(shipments=[order_pb2.Shipment(
                shipment_id=f"ISO-FLOW-{tenant}", dealer_id=world.dealer_ids[tenant],
                ship_date=_day(3), lines=[order_pb2.ShipmentLine(
                    line_no=1, order_id=order["id"], order_line_no=1,
                    product_code=world.products[0]["code"], batch=_batch(tenant),
                    expiry_date="2030-12-31", quantity=100)])]), metadata=metadata)
    finally:
        await channel.close()
    assert reply.summary.accepted == 1, reply
    await caught_up(world.suite)
    world.cache[key] = True


async def _upload(world: IsolationWorld, seller: str, rows: list[list[str]]) -> dict:
    async with world.client(world.staff_of[seller]) as staff:
        response = await staff.post(
            "/api/v1/flow/uploads", content=_csv(rows), headers={"content-type": "text/csv"},
            params={"dealer_id": world.dealer_ids[seller],
                    "filename": f"iso-{next(_numbers)}.csv"})
        assert response.status_code == 201, response.text
        upload = response.json()

    async def finished():
        async with world.client("admin") as admin:
            body = (await admin.get(f"/api/v1/flow/uploads/{upload['id']}")).json()
        return body if body["status"] in ("accepted", "rejected", "failed") else None

    return await eventually(finished, timeout=30, interval=0.1)


async def accepted_of(world: IsolationWorld, tenant: str) -> dict:
    key = f"flow:accepted:{tenant}"
    if key not in world.cache:
        await _shipped(world, tenant)
        upload = await _upload(world, tenant, [[_day(1), HOSPITAL, world.products[0]["code"],
                                                _batch(tenant), "1"]])
        assert upload["status"] == "accepted", upload
        world.cache[key] = upload
    return world.cache[key]


async def rejected_of(world: IsolationWorld, tenant: str) -> dict:
    key = f"flow:rejected:{tenant}"
    if key not in world.cache:
        upload = await _upload(world, tenant, [[_day(1), "不存在的医院", "X", "X", "1"]])
        assert upload["status"] == "rejected", upload
        world.cache[key] = upload
    return world.cache[key]


async def diversion_of(world: IsolationWorld, tenant: str) -> dict:
    """The tenant's batch sold by another dealer."""
    key = f"flow:diversion:{tenant}"
    if key not in world.cache:
        await _shipped(world, tenant)
        seller = "south" if tenant != "south" else "east"
        upload = await _upload(world, seller, [[_day(1), HOSPITAL, world.products[0]["code"],
                                                _batch(tenant), "1"]])
        assert upload["status"] == "rejected", upload
        async with world.client("admin") as admin:
            body = (await admin.get("/api/v1/flow/diversions", params={
                "shipped_dealer_id": world.dealer_ids[tenant], "batch": _batch(tenant)})).json()
        world.cache[key] = body["diversions"][0]
    return world.cache[key]


# ---- setups -----------------------------------------------------------------------


async def _new_upload(world: IsolationWorld, tenant: str) -> Call:
    return Call(params={"dealer_id": world.dealer_ids[tenant], "filename": "iso.csv"},
                json=[["销售日期"]])


async def _uploads(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await rejected_of(world, tenant)
        return None
    return Call(params={"page_size": 500})


async def _upload_call(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"upload_id": (await rejected_of(world, tenant))["id"]})


async def _rows(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await accepted_of(world, tenant)
        return None
    return Call(params={"page_size": 500})


async def _export(world: IsolationWorld, tenant: str) -> Call:
    await accepted_of(world, tenant)
    return Call(params={"dealer_id": world.dealer_ids[tenant]})


async def _mapping(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"dealer_id": world.dealer_ids[tenant]})


async def _set_mapping(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"dealer_id": world.dealer_ids[tenant]},
                json={"mapping": [{"column": "sold_on", "header": "开单日"}]})


async def _diversions(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await diversion_of(world, tenant)
        return None
    return Call(params={"page_size": 500})


async def _diversion(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"diversion_id": (await diversion_of(world, tenant))["id"]})


async def _resolve(world: IsolationWorld, tenant: str) -> Call:
    diversion = await diversion_of(world, tenant)
    return Call(path_params={"diversion_id": diversion["id"]},
                json={"status": "dismissed", "note": "隔离测试"})


SPECS = [
    Endpoint("POST", "/api/v1/flow/uploads", "object", _new_upload, ok=(201,)),
    Endpoint("GET", "/api/v1/flow/uploads", "list", _uploads,
             items=lambda body: body["uploads"], dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("GET", "/api/v1/flow/uploads/{upload_id}", "object", _upload_call),
    Endpoint("GET", "/api/v1/flow/uploads/{upload_id}/events", "object", _upload_call),
    Endpoint("GET", "/api/v1/flow/uploads/{upload_id}/errors", "object", _upload_call),
    Endpoint("GET", "/api/v1/flow/uploads/{upload_id}/error-report", "object", _upload_call),
    Endpoint("GET", "/api/v1/flow/rows", "list", _rows, items=lambda body: body["rows"],
             dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("GET", "/api/v1/flow/rows/export", "object", _export),
    Endpoint("GET", "/api/v1/flow/column-mappings/{dealer_id}", "object", _mapping),
    Endpoint("PUT", "/api/v1/flow/column-mappings/{dealer_id}", "object", _set_mapping),
    Endpoint("GET", "/api/v1/flow/diversions", "list", _diversions,
             permitted=only(*NOT_DEALER_STAFF), items=lambda body: body["diversions"],
             dealer_of=lambda w, item: item["shipped_dealer_id"]),
    Endpoint("GET", "/api/v1/flow/diversions/{diversion_id}", "object", _diversion,
             permitted=only(*NOT_DEALER_STAFF)),
    Endpoint("POST", "/api/v1/flow/diversions/{diversion_id}/resolve", "object", _resolve,
             permitted=only("admin")),
]

EXEMPT = {
    ("GET", "/api/v1/flow/period-close"): "the suite-wide closing date; no dealer's data",
    ("POST", "/api/v1/flow/period-close"): "closes a period for every dealer (HQ admin and "
                                          "finance only); no dealer's data",
}

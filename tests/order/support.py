"""Order tests' helpers: the HQ staff an order's life needs (channel manager, finance,
customer service, the ERP's service account), a gRPC stub as the ERP, and shipment
builders."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from qudao.order.v1 import order_pb2, order_pb2_grpc

from tests.harness import Suite
from tests.world import World

STAFF_PASSWORD = "Hq-Staff-Passw0rd!"


@dataclass
class Staff:
    manager_token: str
    finance_token: str
    service_token: str
    erp_token: str
    manager_id: str


async def hq_org_id(suite: Suite, world: World) -> str:
    async with suite.client(world.admin_token) as admin:
        response = await admin.get("/api/v1/org-units", params={"kind": "hq"})
        assert response.status_code == 200, response.text
        return response.json()["org_units"][0]["id"]


async def add_staff(suite: Suite, world: World, prefix: str = "") -> Staff:
    hq = await hq_org_id(suite, world)
    ids = {}
    async with suite.client(world.admin_token) as admin:
        for name, role in (("cm", "channel_manager"), ("fin", "finance"),
                           ("cs", "customer_service"), ("erp", "service_erp")):
            response = await admin.post("/api/v1/users", json={
                "username": f"{prefix}{name}.user", "password": STAFF_PASSWORD,
                "display_name": name, "roles": [role], "org_unit_id": hq})
            assert response.status_code == 201, response.text
            ids[name] = response.json()["id"]
        response = await admin.post("/api/v1/assignments", json={
            "manager_user_id": ids["cm"], "dealer_ids": [d.id for d in world.dealers]})
        assert response.status_code in (200, 201), response.text
    tokens = {name: await suite.login(f"{prefix}{name}.user", STAFF_PASSWORD)
              for name in ("cm", "fin", "cs", "erp")}
    return Staff(tokens["cm"], tokens["fin"], tokens["cs"], tokens["erp"], ids["cm"])


class Erp:
    """The ERP's side: gRPC straight to the order service with a service credential."""

    def __init__(self, suite: Suite, token: str) -> None:
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{suite.ports['order']}")
        self.stub = order_pb2_grpc.OrderServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),)

    async def close(self) -> None:
        await self.channel.close()

    async def ship(self, shipments, mode=order_pb2.INGEST_MODE_ALL_OR_NOTHING):
        return await self.stub.RecordShipments(order_pb2.RecordShipmentsRequest(
            shipments=shipments, mode=mode), metadata=self.metadata)

    async def stream(self, messages):
        async def requests():
            for message in messages:
                yield message
        return await self.stub.StreamShipments(requests(), metadata=self.metadata)

    async def invoice(self, invoices, mode=order_pb2.INGEST_MODE_ALL_OR_NOTHING):
        return await self.stub.RecordInvoices(order_pb2.RecordInvoicesRequest(
            invoices=invoices, mode=mode), metadata=self.metadata)

    async def pay(self, payments, mode=order_pb2.INGEST_MODE_ALL_OR_NOTHING):
        return await self.stub.RecordPayments(order_pb2.RecordPaymentsRequest(
            payments=payments, mode=mode), metadata=self.metadata)

    async def return_received(self, return_id: str, received_on: str, lines=()):
        return await self.stub.ConfirmReturnReceived(order_pb2.ConfirmReturnReceivedRequest(
            return_id=return_id, received_on=received_on, lines=lines), metadata=self.metadata)


def shipment(shipment_id: str, dealer_id: str, lines: list[dict], ship_date: str = "2026-11-02",
             waybill: str = "SF100") -> order_pb2.Shipment:
    return order_pb2.Shipment(
        shipment_id=shipment_id, dealer_id=dealer_id, ship_date=ship_date, carrier="顺丰",
        waybill_no=waybill,
        lines=[order_pb2.ShipmentLine(
            line_no=index + 1, order_id=line["order_id"], order_line_no=line["order_line_no"],
            product_code=line["product_code"], batch=line.get("batch", "B1"),
            expiry_date=line.get("expiry_date", "2028-12-31"),
            serials=line.get("serials", []), quantity=line["quantity"])
            for index, line in enumerate(lines)])

"""Isolation specs for the order service's gateway routes: orders and their workflow,
dealer accounts, shipments and receipts, discrepancies, returns, statements and channel
inventory. See spec.py for the format. The ERP's pushes (shipments, invoices) go over
gRPC with a service account created here; they are not gateway routes."""

from __future__ import annotations

import itertools

import grpc
from qudao.order.v1 import order_pb2, order_pb2_grpc

from tests.isolation.spec import Call, Endpoint, only
from tests.isolation.world import DEALER_STAFF, IsolationWorld
from tests.world import STAFF_PASSWORD

_refs = itertools.count(1)
_shipment_numbers = itertools.count(1)

APPROVERS = ("cm_east", "cm_south", "region_east", "admin")
DEALER_SIDE_OR_ADMIN = (*sorted(DEALER_STAFF), "admin")


def _order_body(world: IsolationWorld, tenant: str, quantity: int = 1) -> dict:
    return {"dealer_id": world.dealer_ids[tenant],
            "lines": [{"product_code": world.products[0]["code"], "quantity": quantity}],
            "client_order_ref": f"ISO-{tenant}-{next(_refs)}"}


async def _new_order(world: IsolationWorld, tenant: str, quantity: int = 1) -> dict:
    async with world.client(world.staff_of[tenant]) as staff:
        response = await staff.post("/api/v1/orders", json=_order_body(world, tenant, quantity))
        assert response.status_code == 201, response.text
        return response.json()


async def order_of(world: IsolationWorld, tenant: str) -> dict:
    """One order per tenant, submitted by the tenant's own staff (cached)."""
    key = f"order:{tenant}"
    if key not in world.cache:
        world.cache[key] = await _new_order(world, tenant)
    return world.cache[key]


async def _approved_order(world: IsolationWorld, tenant: str, quantity: int = 1) -> dict:
    order = await _new_order(world, tenant, quantity)
    if order["status"] == "approved":
        return order
    async with world.client("admin") as admin:
        for stage in ("channel_manager", "finance"):
            response = await admin.post(f"/api/v1/orders/{order['id']}/approve",
                                        json={"stage": stage})
            assert response.status_code == 200, response.text
    return response.json()


async def _erp(world: IsolationWorld) -> tuple[order_pb2_grpc.OrderServiceStub, tuple]:
    if "order:erp_token" not in world.cache:
        async with world.client("admin") as admin:
            hq = (await admin.get("/api/v1/org-units", params={"kind": "hq"})).json()[
                "org_units"][0]["id"]
            response = await admin.post("/api/v1/users", json={
                "username": "iso.erp", "password": STAFF_PASSWORD, "roles": ["service_erp"],
                "org_unit_id": hq})
            assert response.status_code == 201, response.text
        world.cache["order:erp_token"] = await world.suite.login("iso.erp", STAFF_PASSWORD)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{world.suite.ports['order']}")
    return channel, (("authorization", f"Bearer {world.cache['order:erp_token']}"),)


async def _ship(world: IsolationWorld, tenant: str, quantity: int = 5) -> str:
    """A new shipment to the tenant against its big approved order; returns its id."""
    key = f"order:big:{tenant}"
    if key not in world.cache:
        world.cache[key] = await _approved_order(world, tenant, quantity=100_000)
    order = world.cache[key]
    shipment_id = f"ISO-S-{tenant}-{next(_shipment_numbers)}"
    channel, metadata = await _erp(world)
    try:
        reply = await order_pb2_grpc.OrderServiceStub(channel).RecordShipments(
            order_pb2.RecordShipmentsRequest(shipments=[order_pb2.Shipment(
                shipment_id=shipment_id, dealer_id=world.dealer_ids[tenant],
                ship_date="2026-11-02", lines=[order_pb2.ShipmentLine(
                    line_no=1, order_id=order["id"], order_line_no=1,
                    product_code=world.products[0]["code"], batch=f"LOT-{tenant}",
                    expiry_date="2029-12-31", quantity=quantity)])]), metadata=metadata)
    finally:
        await channel.close()
    assert reply.summary.accepted == 1, reply
    return shipment_id


async def shipment_of(world: IsolationWorld, tenant: str) -> str:
    key = f"order:shipment:{tenant}"
    if key not in world.cache:
        world.cache[key] = await _ship(world, tenant, quantity=50)
    return world.cache[key]


async def _discrepancy(world: IsolationWorld, tenant: str) -> str:
    """A shipment received two short: its shortage discrepancy id."""
    shipment_id = await _ship(world, tenant)
    async with world.client(world.staff_of[tenant]) as staff:
        response = await staff.post(f"/api/v1/shipments/{shipment_id}/receipt", json={
            "lines": [{"shipment_line_no": 1, "quantity_received": 3}]})
        assert response.status_code == 201, response.text
        return response.json()["discrepancies"][0]["id"]


async def _return(world: IsolationWorld, tenant: str) -> dict:
    await shipment_of(world, tenant)
    async with world.client(world.staff_of[tenant]) as staff:
        response = await staff.post("/api/v1/returns", json={
            "dealer_id": world.dealer_ids[tenant], "reason": "近效期",
            "lines": [{"product_code": world.products[0]["code"], "batch": f"LOT-{tenant}",
                       "quantity": 1}]})
        assert response.status_code == 201, response.text
        return response.json()


async def return_of(world: IsolationWorld, tenant: str) -> dict:
    key = f"order:return:{tenant}"
    if key not in world.cache:
        world.cache[key] = await _return(world, tenant)
    return world.cache[key]


async def _statement(world: IsolationWorld, tenant: str) -> dict:
    async with world.client("finance") as finance:
        response = await finance.post("/api/v1/statements", json={
            "dealer_id": world.dealer_ids[tenant], "period_start": "2026-11-01",
            "period_end": "2026-11-30"})
        assert response.status_code == 201, response.text
        return response.json()


async def statement_of(world: IsolationWorld, tenant: str) -> dict:
    key = f"order:statement:{tenant}"
    if key not in world.cache:
        await shipment_of(world, tenant)
        world.cache[key] = await _statement(world, tenant)
    return world.cache[key]


async def _account(world: IsolationWorld, tenant: str) -> None:
    key = f"order:account:{tenant}"
    if key not in world.cache:
        async with world.client("admin") as admin:
            response = await admin.put(
                f"/api/v1/dealer-accounts/{world.dealer_ids[tenant]}/credit-limit",
                json={"credit_limit": {"amount_minor": 1}})
            assert response.status_code == 200, response.text
        world.cache[key] = True


# ---- setups -----------------------------------------------------------------------


async def _submit(world: IsolationWorld, tenant: str) -> Call:
    return Call(json=_order_body(world, tenant))


async def _order(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"order_id": (await order_of(world, tenant))["id"]})


async def _orders(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await order_of(world, tenant)
        return None
    return Call(params={"page_size": 500})


async def _fresh_order_to_approve(world: IsolationWorld, tenant: str) -> Call:
    order = await _new_order(world, tenant)
    return Call(path_params={"order_id": order["id"]}, json={"stage": "channel_manager"})


async def _fresh_order_to_reject(world: IsolationWorld, tenant: str) -> Call:
    order = await _new_order(world, tenant)
    return Call(path_params={"order_id": order["id"]},
                json={"stage": "channel_manager", "reason": "隔离测试"})


async def _fresh_order_to_cancel(world: IsolationWorld, tenant: str) -> Call:
    order = await _new_order(world, tenant)
    return Call(path_params={"order_id": order["id"]}, json={"reason": "隔离测试"})


async def _fresh_line_to_close(world: IsolationWorld, tenant: str) -> Call:
    order = await _approved_order(world, tenant, quantity=3)
    return Call(path_params={"order_id": order["id"], "line_no": "1"},
                json={"reason": "停产"})


async def _order_unchanged(world: IsolationWorld, tenant: str, call: Call) -> bool:
    async with world.client("admin") as admin:
        order = (await admin.get(f"/api/v1/orders/{call.path_params['order_id']}")).json()
    return order["status"] in ("submitted", "approved") and not any(
        line["quantity_closed"] for line in order["lines"]) and len(order["approvals"]) <= 2


async def _dealer_account(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"dealer_id": world.dealer_ids[tenant]})


async def _dealer_accounts(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await _account(world, tenant)
        return None
    return Call(params={"page_size": 500})


async def _credit_limit(world: IsolationWorld, tenant: str) -> Call:
    # Zero keeps every order of the run waiting for approval, as the other specs expect.
    return Call(path_params={"dealer_id": world.dealer_ids[tenant]},
                json={"credit_limit": {"amount_minor": 0}, "payment_terms_days": 30})


async def _shipment(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"shipment_id": await shipment_of(world, tenant)})


async def _shipments(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await shipment_of(world, tenant)
        return None
    return Call(params={"page_size": 500})


async def _fresh_receipt(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"shipment_id": await _ship(world, tenant)}, json={})


async def _receipt_unchanged(world: IsolationWorld, tenant: str, call: Call) -> bool:
    async with world.client("admin") as admin:
        shipment = (await admin.get(f"/api/v1/shipments/{call.path_params['shipment_id']}")
                    ).json()
    return shipment["received"] is False


async def _discrepancies(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        key = f"order:discrepancy:{tenant}"
        if key not in world.cache:
            world.cache[key] = await _discrepancy(world, tenant)
        return None
    return Call(params={"page_size": 500})


async def _fresh_discrepancy(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"discrepancy_id": await _discrepancy(world, tenant)},
                json={"resolution": "reship", "note": "补发"})


async def _request_return(world: IsolationWorld, tenant: str) -> Call:
    await shipment_of(world, tenant)
    return Call(json={"dealer_id": world.dealer_ids[tenant], "reason": "包装破损",
                      "lines": [{"product_code": world.products[0]["code"],
                                 "batch": f"LOT-{tenant}", "quantity": 1}]})


async def _return_call(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"return_id": (await return_of(world, tenant))["id"]})


async def _returns(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await return_of(world, tenant)
        return None
    return Call(params={"page_size": 500})


async def _fresh_return_to_approve(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"return_id": (await _return(world, tenant))["id"]}, json={})


async def _fresh_return_to_reject(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"return_id": (await _return(world, tenant))["id"]},
                json={"reason": "超过退货期"})


async def _return_unchanged(world: IsolationWorld, tenant: str, call: Call) -> bool:
    async with world.client("admin") as admin:
        product_return = (await admin.get(f"/api/v1/returns/{call.path_params['return_id']}")
                          ).json()
    return product_return["status"] == "requested"


async def _issue_statement(world: IsolationWorld, tenant: str) -> Call:
    return Call(json={"dealer_id": world.dealer_ids[tenant], "period_start": "2026-10-01",
                      "period_end": "2026-10-31"})


async def _statement_call(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"statement_id": (await statement_of(world, tenant))["id"]})


async def _statements(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await statement_of(world, tenant)
        return None
    return Call(params={"page_size": 500})


async def _fresh_statement_to_confirm(world: IsolationWorld, tenant: str) -> Call:
    statement = await _statement(world, tenant)
    return Call(path_params={"statement_id": statement["id"]}, json={"comment": "无误"})


async def _fresh_statement_line_to_dispute(world: IsolationWorld, tenant: str) -> Call:
    await shipment_of(world, tenant)
    statement = await _statement(world, tenant)
    return Call(path_params={"statement_id": statement["id"],
                             "line_no": str(statement["lines"][0]["line_no"])},
                json={"reason": "金额不符"})


async def _statement_unchanged(world: IsolationWorld, tenant: str, call: Call) -> bool:
    async with world.client("admin") as admin:
        statement = (await admin.get(
            f"/api/v1/statements/{call.path_params['statement_id']}")).json()
    return statement["status"] in ("issued", "superseded")


async def _inventory(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await shipment_of(world, tenant)
        return None
    return Call(params={"page_size": 500})


def _dealer(world: IsolationWorld, item: dict) -> str:
    return item["dealer_id"]


SPECS = [
    # Anyone whose scope holds the dealer may order for it; 409 is the order rules (e.g.
    # credit) answering, which still reveals nothing of another tenant.
    Endpoint("POST", "/api/v1/orders", "object", _submit, ok=(201, 409)),
    Endpoint("GET", "/api/v1/orders", "list", _orders, items=lambda body: body["orders"],
             dealer_of=_dealer),
    Endpoint("GET", "/api/v1/orders/{order_id}", "object", _order),
    Endpoint("POST", "/api/v1/orders/{order_id}/approve", "object", _fresh_order_to_approve,
             permitted=only(*APPROVERS), fresh=True, unchanged=_order_unchanged),
    Endpoint("POST", "/api/v1/orders/{order_id}/reject", "object", _fresh_order_to_reject,
             permitted=only(*APPROVERS), fresh=True, unchanged=_order_unchanged),
    Endpoint("POST", "/api/v1/orders/{order_id}/cancel", "object", _fresh_order_to_cancel,
             permitted=only(*DEALER_SIDE_OR_ADMIN), fresh=True, unchanged=_order_unchanged),
    Endpoint("POST", "/api/v1/orders/{order_id}/lines/{line_no}/close", "object",
             _fresh_line_to_close, permitted=only("admin"), fresh=True,
             unchanged=_order_unchanged),
    Endpoint("GET", "/api/v1/dealer-accounts", "list", _dealer_accounts,
             items=lambda body: body["accounts"], dealer_of=_dealer),
    Endpoint("GET", "/api/v1/dealer-accounts/{dealer_id}", "object", _dealer_account),
    Endpoint("PUT", "/api/v1/dealer-accounts/{dealer_id}/credit-limit", "object",
             _credit_limit, permitted=only("finance", "admin")),
    Endpoint("GET", "/api/v1/shipments", "list", _shipments,
             items=lambda body: body["shipments"], dealer_of=_dealer),
    Endpoint("GET", "/api/v1/shipments/{shipment_id}", "object", _shipment),
    Endpoint("POST", "/api/v1/shipments/{shipment_id}/receipt", "object", _fresh_receipt,
             permitted=only(*DEALER_SIDE_OR_ADMIN), ok=(201,), fresh=True,
             unchanged=_receipt_unchanged),
    Endpoint("GET", "/api/v1/discrepancies", "list", _discrepancies,
             items=lambda body: body["discrepancies"], dealer_of=_dealer),
    Endpoint("POST", "/api/v1/discrepancies/{discrepancy_id}/resolve", "object",
             _fresh_discrepancy, permitted=only("finance", "admin"), fresh=True),
    Endpoint("POST", "/api/v1/returns", "object", _request_return,
             permitted=only(*DEALER_SIDE_OR_ADMIN), ok=(201,)),
    Endpoint("GET", "/api/v1/returns", "list", _returns,
             items=lambda body: body["product_returns"], dealer_of=_dealer),
    Endpoint("GET", "/api/v1/returns/{return_id}", "object", _return_call),
    Endpoint("POST", "/api/v1/returns/{return_id}/approve", "object",
             _fresh_return_to_approve, permitted=only(*APPROVERS), fresh=True,
             unchanged=_return_unchanged),
    Endpoint("POST", "/api/v1/returns/{return_id}/reject", "object", _fresh_return_to_reject,
             permitted=only(*APPROVERS), fresh=True, unchanged=_return_unchanged),
    Endpoint("POST", "/api/v1/statements", "object", _issue_statement,
             permitted=only("finance", "admin"), ok=(201,)),
    Endpoint("GET", "/api/v1/statements", "list", _statements,
             items=lambda body: body["statements"], dealer_of=_dealer),
    Endpoint("GET", "/api/v1/statements/{statement_id}", "object", _statement_call),
    Endpoint("GET", "/api/v1/statements/{statement_id}/export", "object", _statement_call),
    Endpoint("POST", "/api/v1/statements/{statement_id}/confirm", "object",
             _fresh_statement_to_confirm, permitted=only(*sorted(DEALER_STAFF)), fresh=True,
             unchanged=_statement_unchanged),
    Endpoint("POST", "/api/v1/statements/{statement_id}/lines/{line_no}/dispute", "object",
             _fresh_statement_line_to_dispute, permitted=only(*sorted(DEALER_STAFF)),
             fresh=True, unchanged=_statement_unchanged),
    Endpoint("GET", "/api/v1/channel-inventory", "list", _inventory,
             items=lambda body: body["items"], dealer_of=_dealer),
]

EXEMPT = {
    ("GET", "/api/v1/products"): "the catalog is shared by every dealer, owned by none",
    ("GET", "/api/v1/products/{code}"): "the catalog is shared by every dealer, owned by none",
    ("PUT", "/api/v1/products"): "catalog upkeep (HQ/ERP); no dealer's data",
    ("POST", "/api/v1/products/import"): "catalog upkeep (HQ's product file); no dealer's "
                                         "data (tests/order/test_product_import.py)",
    ("PUT", "/api/v1/price-lists"): "price lists belong to a dealer tier, not to a dealer "
                                     "(HQ admin and finance maintain them)",
    ("GET", "/api/v1/price-lists"): "price lists belong to a dealer tier, not to a dealer; "
                                     "dealer staff see their own tier's only",
}

"""Catalog and orders."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field
from qudao.common.v1 import money_pb2
from qudao.order.v1 import order_pb2

from gateway.clients import call
from gateway.protojson import to_json
from gateway.routes.common import Body, Caller, Int64, Page, Services

router = APIRouter(prefix="/api/v1", tags=["orders"])


class MoneyBody(Body):
    amount_minor: Int64 = Field(ge=0, description="integer minor units (fen)")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")


class ProductBody(Body):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    spec: str = Field(default="", max_length=200)
    gtin: str = Field(min_length=8, max_length=14)
    product_line: str = Field(min_length=1, max_length=64)
    unit: str = Field(default="", max_length=16)
    list_price: MoneyBody


class ProductsBody(Body):
    products: list[ProductBody] = Field(min_length=1, max_length=5000)


class OrderLineBody(Body):
    product_code: str = Field(min_length=1, max_length=64)
    quantity: Int64


class OrderBody(Body):
    dealer_id: str = Field(default="", description="defaults to the caller's dealer")
    lines: list[OrderLineBody] = Field(min_length=1)
    client_order_ref: str = Field(default="", max_length=64,
                                  description="your reference; repeating it is idempotent")


@router.put("/products")
async def upsert_products(body: ProductsBody, caller: Caller, services: Services) -> dict:
    request = order_pb2.UpsertProductsRequest(products=[
        order_pb2.Product(code=p.code, name=p.name, spec=p.spec, gtin=p.gtin,
                          product_line=p.product_line, unit=p.unit,
                          list_price=money_pb2.Money(amount_minor=p.list_price.amount_minor,
                                                     currency=p.list_price.currency))
        for p in body.products])
    return to_json(await call(services.order.UpsertProducts, request))


@router.get("/products")
async def list_products(caller: Caller, services: Services, page: Page,
                        product_line: str = "") -> dict:
    return to_json(await call(services.order.ListProducts, order_pb2.ListProductsRequest(
        product_line=product_line, page=page)))


@router.get("/products/{code}")
async def get_product(code: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.order.GetProduct,
                               order_pb2.GetProductRequest(code=code))).product)


@router.post("/orders", status_code=201)
async def submit_order(body: OrderBody, caller: Caller, services: Services) -> dict:
    request = order_pb2.SubmitOrderRequest(
        dealer_id=body.dealer_id, client_order_ref=body.client_order_ref,
        lines=[order_pb2.OrderLineInput(product_code=line.product_code, quantity=line.quantity)
               for line in body.lines])
    return to_json((await call(services.order.SubmitOrder, request)).order)


@router.get("/orders")
async def list_orders(caller: Caller, services: Services, page: Page, dealer_id: str = "") -> dict:
    return to_json(await call(services.order.ListOrders,
                              order_pb2.ListOrdersRequest(dealer_id=dealer_id, page=page)))


@router.get("/orders/{order_id}")
async def get_order(order_id: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.order.GetOrder,
                               order_pb2.GetOrderRequest(id=order_id))).order)


@router.post("/ping", include_in_schema=False)
async def ping(caller: Caller, services: Services) -> dict:
    """One no-op gRPC call: the baseline of the gateway.order_submit benchmark."""
    await call(services.order.Ping, order_pb2.PingRequest())
    return {}

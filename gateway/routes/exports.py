"""Exports of the lists users work with, as XLSX (default) or CSV: each holds exactly
what the caller's list with the same filters shows (gateway/exports.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from qudao.incentive.v1 import incentive_pb2
from qudao.order.v1 import order_pb2
from qudao.registration.v1 import registration_pb2

from gateway.exports import EXPORT_RESPONSES, ExportFormat, all_items, columns, export, field
from gateway.protojson import enum_number
from gateway.routes.common import Caller, Services
from gateway.routes.orders import OrderStatusName

router = APIRouter(prefix="/api/v1", tags=["exports"])

Filter = Annotated[str, Query(max_length=200)]

ORDER_LINE_COLUMNS = columns(
    ("订单 Order", field("id")), ("经销商 Dealer", field("dealer_id")),
    ("销售公司 Selling company", field("selling_company")), ("状态 Status", field("status")),
    ("提交时间 Submitted at", field("submitted_at")),
    ("客户单号 Client ref", field("client_order_ref")), ("备注 Note", field("note")),
    ("订单金额 Order total", field("total")), ("行 Line", field("line", "line_no")),
    ("产品 Product", field("line", "product_code")), ("GTIN", field("line", "gtin")),
    ("产品线 Product line", field("line", "product_line")),
    ("订购 Ordered", field("line", "quantity_ordered")),
    ("已发 Shipped", field("line", "quantity_shipped")),
    ("已收 Received", field("line", "quantity_received")),
    ("关闭 Closed", field("line", "quantity_closed")),
    ("退货 Returned", field("line", "quantity_returned")),
    ("单价 Unit price", field("line", "unit_price")), ("金额 Amount", field("line", "amount")))


def _per_line(document: dict):
    """One row per line of an order or shipment, the document's own columns repeated."""
    for line in document["lines"] or [{}]:
        yield {**document, "line": line}


@router.get("/orders/export", response_class=StreamingResponse, responses=EXPORT_RESPONSES)
async def export_orders(caller: Caller, services: Services, format: ExportFormat = "xlsx",
                        dealer_id: Filter = "",
                        status: list[OrderStatusName] = Query(default=[])  # noqa: B008
                        ) -> StreamingResponse:
    """Orders and their lines, one row per line."""
    request = order_pb2.ListOrdersRequest(
        dealer_id=dealer_id,
        statuses=[enum_number(order_pb2.OrderStatus.DESCRIPTOR, s) for s in status])
    return await export(all_items(services.order.ListOrders, request, "orders"),
                        ORDER_LINE_COLUMNS, format, "订单 orders", explode=_per_line)


SHIPMENT_LINE_COLUMNS = columns(
    ("发货单 Shipment", field("shipment_id")), ("经销商 Dealer", field("dealer_id")),
    ("销售公司 Selling company", field("selling_company")), ("发货日期 Ship date",
                                                            field("ship_date")),
    ("承运商 Carrier", field("carrier")), ("运单号 Waybill", field("waybill_no")),
    ("已签收 Received", field("received")), ("行 Line", field("line", "line_no")),
    ("订单 Order", field("line", "order_id")), ("产品 Product", field("line", "product_code")),
    ("批号 Batch", field("line", "batch")), ("效期 Expiry", field("line", "expiry_date")),
    ("数量 Quantity", field("line", "quantity")), ("序列号 Serials", field("line", "serials")))


@router.get("/shipments/export", response_class=StreamingResponse, responses=EXPORT_RESPONSES)
async def export_shipments(caller: Caller, services: Services, format: ExportFormat = "xlsx",
                           dealer_id: Filter = "", order_id: Filter = "",
                           shipped_from: Filter = "", shipped_to: Filter = "",
                           unreceived_only: bool = False) -> StreamingResponse:
    """Shipments, one row per shipment line."""
    request = order_pb2.ListShipmentsRequest(
        dealer_id=dealer_id, order_id=order_id, shipped_from=shipped_from,
        shipped_to=shipped_to, unreceived_only=unreceived_only)
    return await export(all_items(services.order.ListShipments, request, "shipments"),
                        SHIPMENT_LINE_COLUMNS, format, "发货 shipments",
                        explode=_per_line)


INVENTORY_COLUMNS = columns(
    ("经销商 Dealer", field("dealer_id")), ("产品 Product", field("product_code")),
    ("GTIN", field("gtin")), ("批号 Batch", field("batch")),
    ("效期 Expiry", field("expiry_date")), ("收货 Received", field("quantity_received")),
    ("销售 Sold", field("quantity_sold")), ("退货 Returned", field("quantity_returned")),
    ("库存 On hand", field("quantity_on_hand")), ("更新 Updated at", field("updated_at")))


@router.get("/channel-inventory/export", response_class=StreamingResponse,
            responses=EXPORT_RESPONSES)
async def export_inventory(caller: Caller, services: Services, format: ExportFormat = "xlsx",
                           dealer_id: Filter = "", product_code: Filter = "",
                           product_line: Filter = "", batch: Filter = "",
                           include_empty: bool = False) -> StreamingResponse:
    """Channel inventory per dealer × product × batch."""
    request = order_pb2.ListChannelInventoryRequest(
        dealer_id=dealer_id, product_code=product_code, product_line=product_line,
        batch=batch, include_empty=include_empty)
    return await export(all_items(services.order.ListChannelInventory, request, "items"),
                        INVENTORY_COLUMNS, format, "渠道库存 inventory")


REGISTRATION_COLUMNS = columns(
    ("报备 Registration", field("id")), ("经销商 Dealer", field("dealer_id")),
    ("客户 Customer", field("customer_name")), ("客户ID Customer id", field("customer_id")),
    ("科室 Department", field("department")), ("产品线 Product line", field("product_line")),
    ("状态 Status", field("status")), ("阶段 Stage", field("stage")),
    ("提交时间 Submitted at", field("submitted_at")),
    ("保护期至 Protected until", field("protected_until")),
    ("续期次数 Renewals", field("renewal_count")), ("下一步 Next step", field("next_step")),
    ("审批意见 Decision note", field("decision_note")))


@router.get("/registrations/export", response_class=StreamingResponse,
            responses=EXPORT_RESPONSES)
async def export_registrations(caller: Caller, services: Services,
                               format: ExportFormat = "xlsx", dealer_id: Filter = "",
                               customer_id: Filter = "", product_line: Filter = "",
                               region_code: Filter = "") -> StreamingResponse:
    request = registration_pb2.ListRegistrationsRequest(
        dealer_id=dealer_id, customer_id=customer_id, product_line=product_line,
        region_code=region_code)
    return await export(all_items(services.registration.ListRegistrations, request,
                                  "registrations"),
                        REGISTRATION_COLUMNS, format, "报备 registrations")


CUSTOMER_COLUMNS = columns(
    ("客户 Customer", field("id")), ("名称 Name", field("name")),
    ("别名 Aliases", field("aliases")), ("统一社会信用代码 Credit code", field("credit_code")),
    ("地址 Address", field("address")), ("行政区划 Division", field("division_code")),
    ("类型 Type", field("customer_type")), ("等级 Grade", field("grade")),
    ("科室 Departments", field("departments")), ("创建时间 Created at", field("created_at")))


@router.get("/customers/export", response_class=StreamingResponse, responses=EXPORT_RESPONSES)
async def export_customers(caller: Caller, services: Services, format: ExportFormat = "xlsx",
                           query: Filter = "", division_code: Filter = ""
                           ) -> StreamingResponse:
    request = registration_pb2.ListCustomersRequest(query=query, division_code=division_code)
    return await export(all_items(services.registration.ListCustomers, request, "customers"),
                        CUSTOMER_COLUMNS, format, "客户 customers")


ACCRUAL_COLUMNS = columns(
    ("计提 Accrual", field("id")), ("经销商 Dealer", field("dealer_id")),
    ("类型 Kind", field("kind")), ("来源 Source", field("source_type")),
    ("来源ID Source id", field("source_id")), ("方案 Program", field("program_id")),
    ("产品线 Product line", field("product_line")), ("数量 Quantity", field("quantity")),
    ("基数 Base", field("base_amount")), ("费率 Rate (bps)", field("rate_bps")),
    ("金额 Amount", field("amount")), ("期间起 Period start", field("period_start")),
    ("期间止 Period end", field("period_end")), ("结算 Settlement", field("settlement_id")),
    ("记录时间 Recorded at", field("recorded_at")))


@router.get("/accruals/export", response_class=StreamingResponse, responses=EXPORT_RESPONSES)
async def export_accruals(caller: Caller, services: Services, format: ExportFormat = "xlsx",
                          dealer_id: Filter = "", period: Filter = "", program_id: Filter = "",
                          settlement_id: Filter = "") -> StreamingResponse:
    request = incentive_pb2.ListAccrualsRequest(dealer_id=dealer_id, period=period,
                                                program_id=program_id,
                                                settlement_id=settlement_id)
    return await export(all_items(services.incentive.ListAccruals, request, "accruals"),
                        ACCRUAL_COLUMNS, format, "计提 accruals")

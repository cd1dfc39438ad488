"""Catalog and orders."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field
from qudao.common.v1 import files_pb2, money_pb2
from qudao.identity.v1 import identity_pb2
from qudao.order.v1 import order_pb2

from gateway.clients import call
from gateway.import_jobs import run_import
from gateway.protojson import enum_number, to_json
from gateway.routes.common import (
    MAX_AMOUNT_MINOR,
    MAX_ORDER_LINES,
    MAX_UNIT_PRICE_MINOR,
    XLSX_RESPONSES,
    Body,
    Caller,
    IdempotencyKey,
    IfMatch,
    LineNo,
    Page,
    Quantity,
    Services,
    client_reference,
    file_response,
    idempotent,
    tagged,
)
from gateway.uploads import IMPORT_BODY, read_upload
from shared.errors import FieldViolation, InvalidArgument

router = APIRouter(prefix="/api/v1", tags=["orders"])


class MoneyBody(Body):
    amount_minor: int = Field(ge=0, le=MAX_AMOUNT_MINOR, description="integer minor units (fen)")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")


class UnitPriceBody(MoneyBody):
    amount_minor: int = Field(ge=0, le=MAX_UNIT_PRICE_MINOR,
                              description="integer minor units (fen) per unit")


class SignedMoneyBody(Body):
    amount_minor: int = Field(ge=-MAX_AMOUNT_MINOR, le=MAX_AMOUNT_MINOR,
                              description="integer minor units (fen); may be negative")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")


def _money(body: MoneyBody | SignedMoneyBody) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=body.amount_minor, currency=body.currency)


class ProductBody(Body):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    spec: str = Field(default="", max_length=200)
    gtin: str = Field(min_length=8, max_length=14)
    product_line: str = Field(min_length=1, max_length=64)
    unit: str = Field(default="", max_length=16)
    list_price: UnitPriceBody
    serial_tracked: bool = False


class ProductsBody(Body):
    products: list[ProductBody] = Field(min_length=1, max_length=5000)


class OrderLineBody(Body):
    product_code: str = Field(min_length=1, max_length=64)
    quantity: Quantity = Field(description="must be positive; checked by the order service")
    expected_unit_price: UnitPriceBody | None = Field(
        default=None, description="optional: rejected when the price list says otherwise")


class OrderBody(Body):
    dealer_id: str = Field(default="", description="defaults to the caller's dealer")
    lines: list[OrderLineBody] = Field(min_length=1)
    client_order_ref: str = Field(default="", max_length=64,
                                  description="your reference; repeating it is idempotent")
    selling_company: str = Field(default="", max_length=64)
    note: str = Field(default="", max_length=500)


Stage = Literal["channel_manager", "finance"]


class ApproveBody(Body):
    stage: Stage
    comment: str = Field(default="", max_length=500)


class RejectBody(Body):
    stage: Stage
    reason: str = Field(min_length=1, max_length=500)


class ReasonBody(Body):
    reason: str = Field(default="", max_length=500)


class CloseLineBody(Body):
    quantity: Quantity = Field(default=0, description="0 closes the whole unshipped remainder")
    reason: str = Field(min_length=1, max_length=500)


class PriceListItemBody(Body):
    product_code: str = Field(min_length=1, max_length=64)
    unit_price: UnitPriceBody


class PriceListBody(Body):
    id: str = ""
    name: str = Field(default="", max_length=200)
    tier: Literal["platform", "one", "two"]
    selling_company: str = Field(default="", max_length=64)
    valid_from: str = Field(description="YYYY-MM-DD, inclusive")
    valid_to: str = Field(default="", description="YYYY-MM-DD, inclusive; empty = open")
    items: list[PriceListItemBody] = Field(min_length=1, max_length=10000)


class CreditLimitBody(Body):
    selling_company: str = Field(default="", max_length=64)
    credit_limit: MoneyBody
    payment_terms_days: int | None = Field(default=None, ge=0, le=365)
    reason: str = Field(default="", max_length=500)


class ReceiptLineBody(Body):
    shipment_line_no: int = Field(ge=0, le=2**31 - 1)
    quantity_received: Quantity = Field(description="units received in good condition (the "
                                                   "damaged ones are not counted here)")
    quantity_damaged: Quantity = Field(default=0, description="units received damaged; "
                                       "received + damaged = what arrived")
    note: str = Field(default="", max_length=500)


class ReceiptBody(Body):
    lines: list[ReceiptLineBody] = Field(default_factory=list, max_length=MAX_ORDER_LINES,
                                         description="lines left out were received in full")


class ResolveBody(Body):
    resolution: Literal["reship", "credit", "write_off", "denied"]
    note: str = Field(default="", max_length=300)


class ReturnLineBody(Body):
    product_code: str = Field(min_length=1, max_length=64)
    batch: str = Field(min_length=1, max_length=64)
    serials: list[str] = Field(default_factory=list)
    quantity: Quantity
    shipment_id: str = ""


class ReturnBody(Body):
    dealer_id: str = ""
    selling_company: str = ""
    lines: list[ReturnLineBody] = Field(min_length=1, max_length=MAX_ORDER_LINES)
    reason: str = Field(min_length=1, max_length=500)
    client_request_id: str = Field(default="", max_length=64)


class CommentBody(Body):
    comment: str = Field(default="", max_length=500)


class StatementBody(Body):
    dealer_id: str = Field(min_length=1)
    selling_company: str = ""
    period_start: str = Field(description="YYYY-MM-DD, inclusive")
    period_end: str = Field(description="YYYY-MM-DD, inclusive")


class DisputeBody(Body):
    reason: str = Field(min_length=1, max_length=500)
    disputed_amount: SignedMoneyBody | None = None


@router.put("/products")
async def upsert_products(body: ProductsBody, caller: Caller, services: Services) -> dict:
    request = order_pb2.UpsertProductsRequest(products=[
        order_pb2.Product(code=p.code, name=p.name, spec=p.spec, gtin=p.gtin,
                          product_line=p.product_line, unit=p.unit,
                          serial_tracked=p.serial_tracked,
                          list_price=money_pb2.Money(amount_minor=p.list_price.amount_minor,
                                                     currency=p.list_price.currency))
        for p in body.products])
    return to_json(await call(services.order.UpsertProducts, request))


@router.post("/products/import", openapi_extra=IMPORT_BODY)
async def import_products(request: Request, caller: Caller, services: Services,
                          filename: Annotated[str, Query(max_length=200)] = "",
                          dry_run: bool = False,
                          encoding: Literal["utf8", "gbk", "gb18030", ""] = ""):
    """HQ's product file, CSV/XLSX (the raw body, or a form upload in the field ``file``).
    All or nothing: when any row fails nothing is written, ``accepted`` is false and
    ``errors`` lists every failing row. Columns: code, name, spec, gtin, product_line,
    unit, list_price (e.g. 1280.50), currency, serial_tracked (yes/no) — or 产品编码,
    产品名称, 规格型号, 产品标识, 产品线, 单位, 目录价, 币种, 序列号管理. Over 1 MiB (or
    ``Prefer: respond-async``) a job: 202 and ``/api/v1/import-jobs/{id}``."""
    upload = await read_upload(request, filename)
    return await run_import(request, caller, "products", upload, lambda timeout: call(
        services.order.ImportProducts, order_pb2.ImportProductsRequest(
            content=upload.content, filename=upload.filename, format=upload.format,
            dry_run=dry_run, encoding=enum_number(files_pb2.TextEncoding.DESCRIPTOR, encoding)
            if encoding else 0), timeout))


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
async def submit_order(body: OrderBody, caller: Caller, services: Services,
                       key: IdempotencyKey) -> dict:
    """At most 500 lines (a larger order is refused with reason TOO_MANY_LINES)."""
    if len(body.lines) > MAX_ORDER_LINES:
        raise InvalidArgument(
            f"an order has at most {MAX_ORDER_LINES} lines, this one {len(body.lines)}: "
            "split it into several orders", reason="TOO_MANY_LINES",
            violations=[FieldViolation("lines", f"at most {MAX_ORDER_LINES} lines")])
    request = order_pb2.SubmitOrderRequest(
        dealer_id=body.dealer_id,
        client_order_ref=client_reference(body.client_order_ref, key, "client_order_ref"),
        selling_company=body.selling_company, note=body.note,
        lines=[order_pb2.OrderLineInput(
            product_code=line.product_code, quantity=line.quantity,
            expected_unit_price=_money(line.expected_unit_price)
            if line.expected_unit_price else None)
            for line in body.lines])
    return to_json((await call(services.order.SubmitOrder, request)).order)


OrderStatusName = Literal["submitted", "approved", "rejected", "partially_shipped", "shipped",
                          "completed", "cancelled"]


@router.get("/orders")
async def list_orders(caller: Caller, services: Services, page: Page, dealer_id: str = "",
                      status: list[OrderStatusName] = Query(default=[]),  # noqa: B008
                      awaiting_approval: Stage | None = None) -> dict:
    request = order_pb2.ListOrdersRequest(
        dealer_id=dealer_id, page=page,
        statuses=[enum_number(order_pb2.OrderStatus.DESCRIPTOR, s) for s in status],
        awaiting_approval=enum_number(order_pb2.ApprovalStage.DESCRIPTOR, awaiting_approval)
        if awaiting_approval else 0)
    return to_json(await call(services.order.ListOrders, request))


@router.get("/orders/{order_id}")
async def get_order(order_id: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.order.GetOrder,
                               order_pb2.GetOrderRequest(id=order_id))).order)


@router.post("/orders/{order_id}/approve")
async def approve_order(order_id: str, body: ApproveBody, caller: Caller,
                        services: Services) -> dict:
    """Approve at the order's current stage (channel manager, then finance); of two
    racing approvals exactly one wins, the other gets 409."""
    request = order_pb2.ApproveOrderRequest(
        order_id=order_id, comment=body.comment,
        stage=enum_number(order_pb2.ApprovalStage.DESCRIPTOR, body.stage))
    return to_json((await call(services.order.ApproveOrder, request)).order)


@router.post("/orders/{order_id}/reject")
async def reject_order(order_id: str, body: RejectBody, caller: Caller,
                       services: Services) -> dict:
    request = order_pb2.RejectOrderRequest(
        order_id=order_id, reason=body.reason,
        stage=enum_number(order_pb2.ApprovalStage.DESCRIPTOR, body.stage))
    return to_json((await call(services.order.RejectOrder, request)).order)


@router.post("/orders/{order_id}/cancel")
async def cancel_order(order_id: str, body: ReasonBody, caller: Caller,
                       services: Services) -> dict:
    return to_json((await call(services.order.CancelOrder, order_pb2.CancelOrderRequest(
        order_id=order_id, reason=body.reason))).order)


@router.post("/orders/{order_id}/lines/{line_no}/close")
async def close_order_line(order_id: str, line_no: LineNo, body: CloseLineBody, caller: Caller,
                           services: Services) -> dict:
    return to_json((await call(services.order.CloseOrderLine, order_pb2.CloseOrderLineRequest(
        order_id=order_id, line_no=line_no, quantity=body.quantity,
        reason=body.reason))).order)


@router.put("/price-lists")
async def upsert_price_list(body: PriceListBody, caller: Caller, services: Services) -> dict:
    price_list = order_pb2.PriceList(
        id=body.id, name=body.name, selling_company=body.selling_company,
        tier=enum_number(identity_pb2.DealerTier.DESCRIPTOR, body.tier),
        valid_from=body.valid_from, valid_to=body.valid_to,
        items=[order_pb2.PriceListItem(product_code=i.product_code,
                                       unit_price=_money(i.unit_price)) for i in body.items])
    return to_json(await call(services.order.UpsertPriceList,
                              order_pb2.UpsertPriceListRequest(price_list=price_list)))


@router.get("/price-lists")
async def list_price_lists(caller: Caller, services: Services, page: Page,
                           tier: Literal["platform", "one", "two", ""] = "",
                           selling_company: str = "", valid_on: str = "") -> dict:
    return to_json(await call(services.order.ListPriceLists, order_pb2.ListPriceListsRequest(
        tier=enum_number(identity_pb2.DealerTier.DESCRIPTOR, tier) if tier else 0,
        selling_company=selling_company, valid_on=valid_on, page=page)))


@router.get("/dealer-accounts")
async def list_dealer_accounts(caller: Caller, services: Services, page: Page,
                               dealer_id: str = "", selling_company: str = "",
                               overdue_only: bool = False) -> dict:
    return to_json(await call(services.order.ListDealerAccounts,
                              order_pb2.ListDealerAccountsRequest(
                                  dealer_id=dealer_id, selling_company=selling_company,
                                  overdue_only=overdue_only, page=page)))


@router.get("/dealer-accounts/{dealer_id}")
async def get_dealer_account(dealer_id: str, caller: Caller, services: Services,
                             response: Response, selling_company: str = "") -> dict:
    """Credit limit and terms, with balances derived from invoices, payments and
    credits (never edited by hand). The ETag is the version of the limit and terms."""
    return tagged(response, to_json((await call(
        services.order.GetDealerAccount, order_pb2.GetDealerAccountRequest(
            dealer_id=dealer_id, selling_company=selling_company))).account))


@router.put("/dealer-accounts/{dealer_id}/credit-limit")
async def set_credit_limit(dealer_id: str, body: CreditLimitBody, caller: Caller,
                           services: Services, version: IfMatch, response: Response) -> dict:
    """With ``If-Match`` (the account's ETag) only while no other change of the limit or
    terms came first (412 otherwise)."""
    request = order_pb2.SetCreditLimitRequest(
        dealer_id=dealer_id, selling_company=body.selling_company,
        credit_limit=_money(body.credit_limit), reason=body.reason, expected_version=version)
    if body.payment_terms_days is not None:
        request.payment_terms_days = body.payment_terms_days
    return tagged(response, to_json((await call(services.order.SetCreditLimit,
                                                request)).account))


@router.get("/shipments")
async def list_shipments(caller: Caller, services: Services, page: Page, dealer_id: str = "",
                         order_id: str = "", shipped_from: str = "", shipped_to: str = "",
                         unreceived_only: bool = False) -> dict:
    return to_json(await call(services.order.ListShipments, order_pb2.ListShipmentsRequest(
        dealer_id=dealer_id, order_id=order_id, shipped_from=shipped_from,
        shipped_to=shipped_to, unreceived_only=unreceived_only, page=page)))


@router.get("/shipments/{shipment_id}")
async def get_shipment(shipment_id: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.order.GetShipment, order_pb2.GetShipmentRequest(
        shipment_id=shipment_id))).shipment)


@router.post("/shipments/{shipment_id}/receipt", status_code=201)
async def confirm_receipt(shipment_id: str, body: ReceiptBody, caller: Caller,
                          services: Services, key: IdempotencyKey) -> dict:
    """The dealer confirms what arrived; shortages and damage become discrepancies."""
    request = order_pb2.ConfirmReceiptRequest(shipment_id=shipment_id, lines=[
        order_pb2.ReceiptLineInput(shipment_line_no=line.shipment_line_no,
                                   quantity_received=line.quantity_received,
                                   quantity_damaged=line.quantity_damaged, note=line.note)
        for line in body.lines])
    return to_json((await call(services.order.ConfirmReceipt, request,
                               metadata=idempotent(key))).receipt)


@router.get("/discrepancies")
async def list_discrepancies(caller: Caller, services: Services, page: Page,
                             dealer_id: str = "", shipment_id: str = "",
                             status: Literal["open", "resolved", ""] = "") -> dict:
    return to_json(await call(services.order.ListDiscrepancies,
                              order_pb2.ListDiscrepanciesRequest(
                                  dealer_id=dealer_id, shipment_id=shipment_id, page=page,
                                  status=enum_number(order_pb2.DiscrepancyStatus.DESCRIPTOR,
                                                     status) if status else 0)))


@router.post("/discrepancies/{discrepancy_id}/resolve")
async def resolve_discrepancy(discrepancy_id: str, body: ResolveBody, caller: Caller,
                              services: Services) -> dict:
    request = order_pb2.ResolveDiscrepancyRequest(
        discrepancy_id=discrepancy_id, note=body.note,
        resolution=enum_number(order_pb2.DiscrepancyResolution.DESCRIPTOR, body.resolution))
    return to_json((await call(services.order.ResolveDiscrepancy, request)).discrepancy)


@router.post("/returns", status_code=201)
async def request_return(body: ReturnBody, caller: Caller, services: Services,
                         key: IdempotencyKey) -> dict:
    """A return by batch (and serial); never more than the dealer received of it."""
    request = order_pb2.RequestReturnRequest(
        dealer_id=body.dealer_id, selling_company=body.selling_company, reason=body.reason,
        client_request_id=client_reference(body.client_request_id, key, "client_request_id"),
        lines=[order_pb2.ReturnLineInput(product_code=line.product_code, batch=line.batch,
                                         serials=line.serials, quantity=line.quantity,
                                         shipment_id=line.shipment_id)
               for line in body.lines])
    return to_json((await call(services.order.RequestReturn, request)).product_return)


ReturnStatusName = Literal["requested", "approved", "rejected", "received", "credited"]


@router.get("/returns")
async def list_returns(caller: Caller, services: Services, page: Page, dealer_id: str = "",
                       status: list[ReturnStatusName] = Query(default=[])) -> dict:  # noqa: B008
    return to_json(await call(services.order.ListReturns, order_pb2.ListReturnsRequest(
        dealer_id=dealer_id, page=page,
        statuses=[enum_number(order_pb2.ReturnStatus.DESCRIPTOR, s) for s in status])))


@router.get("/returns/{return_id}")
async def get_return(return_id: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.order.GetReturn, order_pb2.GetReturnRequest(
        return_id=return_id))).product_return)


@router.post("/returns/{return_id}/approve")
async def approve_return(return_id: str, body: CommentBody, caller: Caller,
                         services: Services) -> dict:
    return to_json((await call(services.order.ApproveReturn, order_pb2.ApproveReturnRequest(
        return_id=return_id, comment=body.comment))).product_return)


@router.post("/returns/{return_id}/reject")
async def reject_return(return_id: str, body: ReasonBody, caller: Caller,
                        services: Services) -> dict:
    return to_json((await call(services.order.RejectReturn, order_pb2.RejectReturnRequest(
        return_id=return_id, reason=body.reason))).product_return)


@router.post("/statements", status_code=201)
async def issue_statement(body: StatementBody, caller: Caller, services: Services,
                          key: IdempotencyKey) -> dict:
    """Finance issues a statement (对账单); issuing a period again supersedes it (but not
    a retry with the first one's Idempotency-Key: that answers the first)."""
    return to_json((await call(services.order.IssueStatement, order_pb2.IssueStatementRequest(
        dealer_id=body.dealer_id, selling_company=body.selling_company,
        period_start=body.period_start, period_end=body.period_end),
        metadata=idempotent(key))).statement)


StatementStatusName = Literal["issued", "confirmed", "disputed", "superseded"]


@router.get("/statements")
async def list_statements(caller: Caller, services: Services, page: Page,
                          dealer_id: str = "", selling_company: str = "",
                          status: list[StatementStatusName] = Query(default=[])  # noqa: B008
                          ) -> dict:
    return to_json(await call(services.order.ListStatements, order_pb2.ListStatementsRequest(
        dealer_id=dealer_id, selling_company=selling_company, page=page,
        statuses=[enum_number(order_pb2.StatementStatus.DESCRIPTOR, s) for s in status])))


Day = Annotated[str, Query(max_length=10, description="YYYY-MM-DD, inclusive")]


@router.get("/invoices")
async def list_invoices(caller: Caller, services: Services, page: Page, dealer_id: str = "",
                        selling_company: str = "", statement_id: str = "",
                        issued_from: Day = "", issued_to: Day = "") -> dict:
    """Invoices and credit notes (kind ``credit_note``, with the return they credit) the
    ERP recorded, newest first; ``statement_id`` gives those the statement lists."""
    return to_json(await call(services.order.ListInvoices, order_pb2.ListInvoicesRequest(
        dealer_id=dealer_id, selling_company=selling_company, statement_id=statement_id,
        issued_from=issued_from, issued_to=issued_to, page=page)))


@router.get("/payments")
async def list_payments(caller: Caller, services: Services, page: Page, dealer_id: str = "",
                        selling_company: str = "", statement_id: str = "",
                        received_from: Day = "", received_to: Day = "") -> dict:
    """Payments the ERP recorded with the invoices they settle, newest first;
    ``statement_id`` gives those the statement lists."""
    return to_json(await call(services.order.ListPayments, order_pb2.ListPaymentsRequest(
        dealer_id=dealer_id, selling_company=selling_company, statement_id=statement_id,
        received_from=received_from, received_to=received_to, page=page)))


@router.get("/statements/{statement_id}")
async def get_statement(statement_id: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.order.GetStatement, order_pb2.GetStatementRequest(
        statement_id=statement_id))).statement)


@router.post("/statements/{statement_id}/confirm")
async def confirm_statement(statement_id: str, body: CommentBody, caller: Caller,
                            services: Services) -> dict:
    return to_json((await call(services.order.ConfirmStatement,
                               order_pb2.ConfirmStatementRequest(
                                   statement_id=statement_id,
                                   comment=body.comment))).statement)


@router.post("/statements/{statement_id}/lines/{line_no}/dispute")
async def dispute_statement_line(statement_id: str, line_no: LineNo, body: DisputeBody,
                                 caller: Caller, services: Services,
                                 key: IdempotencyKey) -> dict:
    request = order_pb2.DisputeStatementLineRequest(statement_id=statement_id,
                                                    line_no=line_no, reason=body.reason)
    if body.disputed_amount is not None:
        request.disputed_amount.CopyFrom(_money(body.disputed_amount))
    return to_json((await call(services.order.DisputeStatementLine, request,
                               metadata=idempotent(key))).statement)


@router.get("/statements/{statement_id}/export", responses=XLSX_RESPONSES)
async def export_statement(statement_id: str, caller: Caller, services: Services) -> Response:
    """The statement as an XLSX workbook."""
    return file_response((await call(services.order.ExportStatement,
                                     order_pb2.ExportStatementRequest(
                                         statement_id=statement_id))).file)


@router.get("/channel-inventory")
async def list_channel_inventory(caller: Caller, services: Services, page: Page,
                                 dealer_id: str = "", product_code: str = "", gtin: str = "",
                                 batch: str = "", product_line: str = "",
                                 include_empty: bool = False) -> dict:
    """Stock per dealer × product × batch: received − sold − returned."""
    return to_json(await call(services.order.ListChannelInventory,
                              order_pb2.ListChannelInventoryRequest(
                                  dealer_id=dealer_id, product_code=product_code, gtin=gtin,
                                  batch=batch, product_line=product_line,
                                  include_empty=include_empty, page=page)))


@router.post("/ping", include_in_schema=False)
async def ping(caller: Caller, services: Services) -> dict:
    """One no-op gRPC call: the baseline of the gateway.order_submit benchmark."""
    await call(services.order.Ping, order_pb2.PingRequest())
    return {}

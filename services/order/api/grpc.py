"""The order service's gRPC servicer: translate messages, call the use case. Use cases
written as handlers (usecases/accounts.py) get their collaborators from ``Deps``; the
others are methods of ``OrderService`` (``deps.service``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from qudao.common.v1 import page_pb2
from qudao.order.v1 import order_pb2 as pb
from qudao.order.v1 import order_pb2_grpc

from services.order import messages
from services.order.domain.accounts import AccountFilter
from services.order.domain.ingest import Outcome, ShipmentBatch, mode_of
from services.order.domain.orders import LineInput
from services.order.service import page_args
from services.order.usecases import accounts, ingest
from services.order.usecases.ports import Deps
from shared.context import current_principal
from shared.convert import money_from_proto
from shared.pagination import PageRequest


def _page(token: str, total: int | None = None) -> page_pb2.PageInfo:
    info = page_pb2.PageInfo(next_page_token=token)
    if total is not None:
        info.total_size = total
    return info


async def _batches(request_iterator, default_company: str) -> AsyncIterator[ShipmentBatch]:
    """The stream's messages in domain terms, each converted in a worker thread so the
    event loop (and the database work on the message before) goes on meanwhile."""
    async for message in request_iterator:
        yield await asyncio.to_thread(messages.shipment_batch, message, default_company)


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.service = deps.service

    def _company(self, value: str) -> str:
        return value.strip() or self.deps.default_company

    # catalog
    async def UpsertProducts(self, request, context):
        created, updated, unchanged = await self.service.upsert_products(list(request.products))
        return pb.UpsertProductsResponse(created=created, updated=updated, unchanged=unchanged)

    async def ImportProducts(self, request, context):
        return await self.service.import_products(request)

    async def GetProduct(self, request, context):
        return pb.GetProductResponse(product=await self.service.get_product(request.code))

    async def ListProducts(self, request, context):
        size, token = page_args(request.page)
        products, next_token = await self.service.list_products(request.product_line, size, token)
        return pb.ListProductsResponse(products=products, page=_page(next_token))

    async def UpsertPriceList(self, request, context):
        price_list, created = await self.service.upsert_price_list(request.price_list)
        return pb.UpsertPriceListResponse(price_list=price_list, created=created)

    async def ListPriceLists(self, request, context):
        size, token = page_args(request.page)
        lists, next_token = await self.service.list_price_lists(
            request.tier, request.selling_company, request.valid_on, size, token)
        return pb.ListPriceListsResponse(price_lists=lists, page=_page(next_token))

    # accounts
    async def GetDealerAccount(self, request, context):
        d = self.deps
        view = await accounts.get_dealer_account(
            request.dealer_id, self._company(request.selling_company),
            who=current_principal(), uow=d.uow(), scopes=d.scopes, clock=d.clock,
            currency=d.currency)
        return pb.GetDealerAccountResponse(account=messages.account_to_proto(view))

    async def ListDealerAccounts(self, request, context):
        d = self.deps
        page = await accounts.list_dealer_accounts(
            AccountFilter(request.dealer_id, request.selling_company), request.overdue_only,
            PageRequest.of(request.page.page_size, request.page.page_token),
            who=current_principal(), uow=d.uow(), scopes=d.scopes, clock=d.clock)
        return pb.ListDealerAccountsResponse(
            accounts=[messages.account_to_proto(view) for view in page.items],
            page=_page(page.next_token))

    async def SetCreditLimit(self, request, context):
        d = self.deps
        view = await accounts.set_credit_limit(
            messages.limit_change(request, d.default_company, d.currency),
            who=current_principal(), uow=d.uow(), scopes=d.scopes, clock=d.clock)
        return pb.SetCreditLimitResponse(account=messages.account_to_proto(view))

    # orders
    async def SubmitOrder(self, request, context):
        order = await self.service.submit_order(
            request.dealer_id,
            [LineInput(line.product_code, line.quantity,
                       money_from_proto(line.expected_unit_price)
                       if line.HasField("expected_unit_price") else None)
             for line in request.lines],
            request.client_order_ref, request.selling_company, request.note)
        return pb.SubmitOrderResponse(order=order)

    async def GetOrder(self, request, context):
        return pb.GetOrderResponse(order=await self.service.get_order(request.id))

    async def ListOrders(self, request, context):
        size, token = page_args(request.page)
        orders, next_token, total = await self.service.list_orders(request, size, token)
        return pb.ListOrdersResponse(orders=orders, page=_page(next_token, total))

    async def ApproveOrder(self, request, context):
        return pb.ApproveOrderResponse(order=await self.service.decide_order(
            request.order_id, request.stage, True, request.comment))

    async def RejectOrder(self, request, context):
        return pb.RejectOrderResponse(order=await self.service.decide_order(
            request.order_id, request.stage, False, request.reason))

    async def CancelOrder(self, request, context):
        return pb.CancelOrderResponse(order=await self.service.cancel_order(
            request.order_id, request.reason))

    async def CloseOrderLine(self, request, context):
        return pb.CloseOrderLineResponse(order=await self.service.close_order_line(
            request.order_id, request.line_no, request.quantity, request.reason))

    async def Ping(self, request, context):
        return pb.PingResponse()

    # ERP ingest
    async def RecordShipments(self, request, context):
        d = self.deps
        batch = messages.shipment_batch(request, d.default_company)
        results = await ingest.record_shipments(batch.shipments, batch.mode,
                                                who=current_principal(), uow=d.uow(),
                                                clock=d.clock)
        return pb.RecordShipmentsResponse(results=messages.results_to_proto(results),
                                          summary=messages.summary_to_proto(results))

    async def StreamShipments(self, request_iterator, context):
        d = self.deps
        results, committed = await ingest.stream_shipments(
            _batches(request_iterator, d.default_company), who=current_principal(),
            uow=d.uow(), clock=d.clock)
        problems = [r for r in results if r.outcome in (Outcome.REJECTED, Outcome.NOT_APPLIED)]
        return pb.StreamShipmentsResponse(summary=messages.summary_to_proto(results),
                                          problems=messages.results_to_proto(problems),
                                          messages_committed=committed)

    async def RecordInvoices(self, request, context):
        d = self.deps
        results = await ingest.record_invoices(
            [messages.invoice_in(i, d.default_company, d.currency) for i in request.invoices],
            mode_of(request.mode), who=current_principal(), uow=d.uow(), clock=d.clock)
        return pb.RecordInvoicesResponse(results=messages.results_to_proto(results),
                                         summary=messages.summary_to_proto(results))

    async def RecordPayments(self, request, context):
        d = self.deps
        results = await ingest.record_payments(
            [messages.payment_in(p, d.default_company, d.currency) for p in request.payments],
            mode_of(request.mode), who=current_principal(), uow=d.uow(), clock=d.clock)
        return pb.RecordPaymentsResponse(results=messages.results_to_proto(results),
                                         summary=messages.summary_to_proto(results))

    async def GetShipment(self, request, context):
        return pb.GetShipmentResponse(shipment=await self.service.get_shipment(
            request.shipment_id))

    async def ListShipments(self, request, context):
        size, token = page_args(request.page)
        shipments, next_token = await self.service.list_shipments(request, size, token)
        return pb.ListShipmentsResponse(shipments=shipments, page=_page(next_token))

    # receipts
    async def ConfirmReceipt(self, request, context):
        return pb.ConfirmReceiptResponse(receipt=await self.service.confirm_receipt(
            request.shipment_id, list(request.lines)))

    async def ListDiscrepancies(self, request, context):
        size, token = page_args(request.page)
        items, next_token = await self.service.list_discrepancies(
            request.dealer_id, request.shipment_id, request.status, size, token)
        return pb.ListDiscrepanciesResponse(discrepancies=items, page=_page(next_token))

    async def ResolveDiscrepancy(self, request, context):
        return pb.ResolveDiscrepancyResponse(discrepancy=await self.service.resolve_discrepancy(
            request.discrepancy_id, request.resolution, request.note))

    # returns
    async def RequestReturn(self, request, context):
        return pb.RequestReturnResponse(product_return=await self.service.request_return(
            request))

    async def ApproveReturn(self, request, context):
        return pb.ApproveReturnResponse(product_return=await self.service.decide_return(
            request.return_id, True, request.comment))

    async def RejectReturn(self, request, context):
        return pb.RejectReturnResponse(product_return=await self.service.decide_return(
            request.return_id, False, request.reason))

    async def ConfirmReturnReceived(self, request, context):
        return pb.ConfirmReturnReceivedResponse(
            product_return=await self.service.confirm_return_received(request))

    async def GetReturn(self, request, context):
        return pb.GetReturnResponse(product_return=await self.service.get_return(
            request.return_id))

    async def ListReturns(self, request, context):
        size, token = page_args(request.page)
        items, next_token = await self.service.list_returns(
            request.dealer_id, list(request.statuses), size, token)
        return pb.ListReturnsResponse(product_returns=items, page=_page(next_token))

    # statements
    async def IssueStatement(self, request, context):
        return pb.IssueStatementResponse(statement=await self.service.issue_statement(request))

    async def GetStatement(self, request, context):
        return pb.GetStatementResponse(statement=await self.service.get_statement(
            request.statement_id))

    async def ListStatements(self, request, context):
        size, token = page_args(request.page)
        items, next_token = await self.service.list_statements(
            request.dealer_id, request.selling_company, list(request.statuses), size, token)
        return pb.ListStatementsResponse(statements=items, page=_page(next_token))

    async def ListInvoices(self, request, context):
        items, token, total = await self.service.list_invoices(request)
        return pb.ListInvoicesResponse(invoices=items, page=_page(token, total))

    async def ListPayments(self, request, context):
        items, token, total = await self.service.list_payments(request)
        return pb.ListPaymentsResponse(payments=items, page=_page(token, total))

    async def ConfirmStatement(self, request, context):
        return pb.ConfirmStatementResponse(statement=await self.service.confirm_statement(
            request.statement_id, request.comment))

    async def DisputeStatementLine(self, request, context):
        return pb.DisputeStatementLineResponse(
            statement=await self.service.dispute_statement_line(request))

    async def ExportStatement(self, request, context):
        return pb.ExportStatementResponse(file=await self.service.export_statement(
            request.statement_id, request.format))

    # channel inventory
    async def ListChannelInventory(self, request, context):
        size, token = page_args(request.page)
        items, next_token = await self.service.list_channel_inventory(request, size, token)
        return pb.ListChannelInventoryResponse(items=items, page=_page(next_token))

    # dashboards
    async def GetOrderStats(self, request, context):
        return pb.GetOrderStatsResponse(rows=await self.service.order_stats(request))

    async def GetChannelInventoryStats(self, request, context):
        return pb.GetChannelInventoryStatsResponse(
            products=await self.service.channel_inventory_stats(request))

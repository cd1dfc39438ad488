"""The order service's gRPC servicer: translate the request into domain terms, call the
use case with its collaborators from ``Deps``, translate the answer
(services/order/messages.py). Requests that name no selling company get the default
one here, once."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from datetime import UTC

from qudao.order.v1 import order_pb2 as pb
from qudao.order.v1 import order_pb2_grpc

from services.order import messages
from services.order.domain.accounts import AccountFilter
from services.order.domain.fulfilment import DiscrepancyQuery, ShipmentQuery
from services.order.domain.ingest import ShipmentBatch, mode_of
from services.order.domain.inventory import StockQuery
from services.order.domain.orders import OrderQuery, PriceListQuery
from services.order.domain.returns import ReceivedLine, ReturnQuery
from services.order.domain.statements import Dispute, LedgerQuery, StatementQuery
from services.order.usecases import (
    accounts,
    fulfilment,
    ingest,
    ledger,
    orders,
    returns,
    statements,
    stats,
)
from services.order.usecases.ports import Deps
from shared.context import current_principal
from shared.convert import page_info_of, page_request_of
from shared.progress import tracked_import
from shared.tabular import read_table_isolated


async def _batches(request_iterator, default_company: str) -> AsyncIterator[ShipmentBatch]:
    """The stream's messages in domain terms, each converted in a worker thread so the
    event loop (and the database work on the message before) goes on meanwhile."""
    async for message in request_iterator:
        yield await asyncio.to_thread(messages.shipment_batch, message, default_company)


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _company(self, value: str) -> str:
        return value.strip() or self.deps.default_company

    async def Ping(self, request, context):
        return pb.PingResponse()

    # catalog and price lists

    async def UpsertProducts(self, request, context):
        d = self.deps
        created, updated, unchanged = await orders.upsert_products(
            [messages.product_in(p) for p in request.products], who=current_principal(),
            uow=d.uow(), clock=d.clock, currency=d.currency)
        return pb.UpsertProductsResponse(created=created, updated=updated, unchanged=unchanged)

    async def ImportProducts(self, request, context):
        d = self.deps
        with tracked_import() as progress:
            # The parsing process checks the rows too (off this process's loop and GIL).
            checked = await read_table_isolated(
                request.content, request.filename, request.format, request.encoding,
                then=functools.partial(messages.products_from_table, currency=d.currency))
            report = await orders.import_products(
                checked, request.dry_run, who=current_principal(), uow=d.uow(), clock=d.clock,
                currency=d.currency, progress=progress)
        return messages.products_imported(report)

    async def GetProduct(self, request, context):
        product = await orders.get_product(request.code, uow=self.deps.uow())
        return pb.GetProductResponse(product=messages.product_to_proto(product))

    async def ListProducts(self, request, context):
        page = await orders.list_products(request.product_line, page_request_of(request.page),
                                          uow=self.deps.uow())
        return pb.ListProductsResponse(
            products=[messages.product_to_proto(p) for p in page.items],
            page=page_info_of(page))

    async def UpsertPriceList(self, request, context):
        d = self.deps
        price_list, created = await orders.upsert_price_list(
            messages.price_list_in(request.price_list, d.default_company, d.currency),
            who=current_principal(), uow=d.uow(), clock=d.clock, ids=d.ids)
        return pb.UpsertPriceListResponse(price_list=messages.price_list_to_proto(price_list),
                                          created=created)

    async def ListPriceLists(self, request, context):
        d = self.deps
        page = await orders.list_price_lists(
            PriceListQuery(request.tier, request.selling_company, request.valid_on),
            page_request_of(request.page), who=current_principal(), uow=d.uow(), tiers=d.tiers)
        return pb.ListPriceListsResponse(
            price_lists=[messages.price_list_to_proto(p) for p in page.items],
            page=page_info_of(page))

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
            page_request_of(request.page), who=current_principal(), uow=d.uow(),
            scopes=d.scopes, clock=d.clock)
        return pb.ListDealerAccountsResponse(
            accounts=[messages.account_to_proto(view) for view in page.items],
            page=page_info_of(page))

    async def SetCreditLimit(self, request, context):
        d = self.deps
        view = await accounts.set_credit_limit(
            messages.limit_change(request, d.default_company, d.currency),
            who=current_principal(), uow=d.uow(), scopes=d.scopes, clock=d.clock)
        return pb.SetCreditLimitResponse(account=messages.account_to_proto(view))

    # orders

    async def SubmitOrder(self, request, context):
        d = self.deps
        order = await orders.submit_order(
            orders.OrderSubmission(request.dealer_id,
                                   [messages.line_input(line) for line in request.lines],
                                   request.client_order_ref,
                                   self._company(request.selling_company), request.note),
            who=current_principal(), uow=d.uow(), clock=d.clock, ids=d.ids, scopes=d.scopes,
            tiers=d.tiers)
        return pb.SubmitOrderResponse(order=messages.order_to_proto(order))

    async def GetOrder(self, request, context):
        order = await orders.get_order(request.id, who=current_principal(),
                                       uow=self.deps.uow(), scopes=self.deps.scopes)
        return pb.GetOrderResponse(order=messages.order_to_proto(order))

    async def ListOrders(self, request, context):
        query = OrderQuery(
            dealer_id=request.dealer_id,
            statuses=frozenset(messages.PROTO_TO_STATUS[s] for s in request.statuses
                               if s in messages.PROTO_TO_STATUS),
            awaiting_stage=request.awaiting_approval,
            submitted_after=request.submitted_after.ToDatetime(tzinfo=UTC)
            if request.HasField("submitted_after") else None,
            submitted_before=request.submitted_before.ToDatetime(tzinfo=UTC)
            if request.HasField("submitted_before") else None)
        page = await orders.list_orders(query, page_request_of(request.page),
                                        who=current_principal(), uow=self.deps.uow(),
                                        scopes=self.deps.scopes)
        return pb.ListOrdersResponse(orders=[messages.order_to_proto(o) for o in page.items],
                                     page=page_info_of(page))

    async def _decide(self, request, approve: bool, text: str):
        d = self.deps
        order = await orders.decide_order(request.order_id, request.stage, approve, text,
                                          who=current_principal(), uow=d.uow(),
                                          clock=d.clock, scopes=d.scopes)
        return messages.order_to_proto(order)

    async def ApproveOrder(self, request, context):
        return pb.ApproveOrderResponse(order=await self._decide(request, True,
                                                                request.comment))

    async def RejectOrder(self, request, context):
        return pb.RejectOrderResponse(order=await self._decide(request, False,
                                                               request.reason))

    async def CancelOrder(self, request, context):
        d = self.deps
        order = await orders.cancel_order(request.order_id, request.reason,
                                          who=current_principal(), uow=d.uow(),
                                          clock=d.clock, scopes=d.scopes)
        return pb.CancelOrderResponse(order=messages.order_to_proto(order))

    async def CloseOrderLine(self, request, context):
        d = self.deps
        order = await orders.close_order_line(
            request.order_id, request.line_no, request.quantity, request.reason,
            who=current_principal(), uow=d.uow(), clock=d.clock, scopes=d.scopes)
        return pb.CloseOrderLineResponse(order=messages.order_to_proto(order))

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
        report = await ingest.stream_shipments(
            _batches(request_iterator, d.default_company), who=current_principal(),
            uow=d.uow(), clock=d.clock)
        return pb.StreamShipmentsResponse(summary=pb.IngestSummary(**report.counts),
                                          problems=messages.results_to_proto(report.problems),
                                          messages_committed=report.committed)

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

    # shipments and receipts

    async def GetShipment(self, request, context):
        shipment = await fulfilment.get_shipment(request.shipment_id, who=current_principal(),
                                                 uow=self.deps.uow(), scopes=self.deps.scopes)
        return pb.GetShipmentResponse(shipment=messages.shipment_to_proto(shipment))

    async def ListShipments(self, request, context):
        page = await fulfilment.list_shipments(
            ShipmentQuery(request.dealer_id, None, request.order_id, request.shipped_from,
                          request.shipped_to, request.unreceived_only),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scopes=self.deps.scopes)
        return pb.ListShipmentsResponse(
            shipments=[messages.shipment_to_proto(s) for s in page.items],
            page=page_info_of(page))

    async def ConfirmReceipt(self, request, context):
        d = self.deps
        receipt = await fulfilment.confirm_receipt(
            request.shipment_id, [messages.receipt_line_in(line) for line in request.lines],
            who=current_principal(), uow=d.uow(), clock=d.clock, ids=d.ids, scopes=d.scopes)
        return pb.ConfirmReceiptResponse(receipt=messages.receipt_to_proto(receipt))

    async def ListDiscrepancies(self, request, context):
        page = await fulfilment.list_discrepancies(
            DiscrepancyQuery(request.dealer_id, None, request.shipment_id, request.status),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scopes=self.deps.scopes)
        return pb.ListDiscrepanciesResponse(
            discrepancies=[messages.discrepancy_to_proto(c) for c in page.items],
            page=page_info_of(page))

    async def ResolveDiscrepancy(self, request, context):
        d = self.deps
        case = await fulfilment.resolve_discrepancy(
            request.discrepancy_id, request.resolution, request.note, who=current_principal(),
            uow=d.uow(), clock=d.clock, scopes=d.scopes)
        return pb.ResolveDiscrepancyResponse(discrepancy=messages.discrepancy_to_proto(case))

    # returns

    async def RequestReturn(self, request, context):
        d = self.deps
        created = await returns.request_return(
            messages.return_request(request, d.default_company), who=current_principal(),
            uow=d.uow(), clock=d.clock, ids=d.ids, scopes=d.scopes)
        return pb.RequestReturnResponse(product_return=messages.return_to_proto(created))

    async def _decide_return(self, return_id: str, approve: bool, text: str):
        d = self.deps
        decided = await returns.decide_return(return_id, approve, text,
                                              who=current_principal(), uow=d.uow(),
                                              clock=d.clock, scopes=d.scopes)
        return messages.return_to_proto(decided)

    async def ApproveReturn(self, request, context):
        return pb.ApproveReturnResponse(product_return=await self._decide_return(
            request.return_id, True, request.comment))

    async def RejectReturn(self, request, context):
        return pb.RejectReturnResponse(product_return=await self._decide_return(
            request.return_id, False, request.reason))

    async def ConfirmReturnReceived(self, request, context):
        d = self.deps
        received = await returns.confirm_return_received(
            request.return_id, request.received_on,
            [ReceivedLine(line.line_no, line.quantity_received) for line in request.lines],
            who=current_principal(), uow=d.uow(), clock=d.clock, scopes=d.scopes)
        return pb.ConfirmReturnReceivedResponse(
            product_return=messages.return_to_proto(received))

    async def GetReturn(self, request, context):
        found = await returns.get_return(request.return_id, who=current_principal(),
                                         uow=self.deps.uow(), scopes=self.deps.scopes)
        return pb.GetReturnResponse(product_return=messages.return_to_proto(found))

    async def ListReturns(self, request, context):
        page = await returns.list_returns(
            ReturnQuery(request.dealer_id, None, frozenset(request.statuses)),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scopes=self.deps.scopes)
        return pb.ListReturnsResponse(
            product_returns=[messages.return_to_proto(r) for r in page.items],
            page=page_info_of(page))

    # statements, invoices and payments

    async def IssueStatement(self, request, context):
        d = self.deps
        statement = await statements.issue_statement(
            request.dealer_id, self._company(request.selling_company), request.period_start,
            request.period_end, who=current_principal(), uow=d.uow(), clock=d.clock,
            ids=d.ids, scopes=d.scopes, currency=d.currency)
        return pb.IssueStatementResponse(statement=messages.statement_to_proto(statement))

    async def GetStatement(self, request, context):
        statement = await statements.get_statement(
            request.statement_id, who=current_principal(), uow=self.deps.uow(),
            scopes=self.deps.scopes)
        return pb.GetStatementResponse(statement=messages.statement_to_proto(statement))

    async def ListStatements(self, request, context):
        page = await statements.list_statements(
            StatementQuery(request.dealer_id, None, request.selling_company,
                           frozenset(request.statuses)),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scopes=self.deps.scopes)
        return pb.ListStatementsResponse(
            statements=[messages.statement_to_proto(s) for s in page.items],
            page=page_info_of(page))

    async def ConfirmStatement(self, request, context):
        d = self.deps
        statement = await statements.confirm_statement(
            request.statement_id, request.comment, who=current_principal(), uow=d.uow(),
            clock=d.clock, scopes=d.scopes)
        return pb.ConfirmStatementResponse(statement=messages.statement_to_proto(statement))

    async def DisputeStatementLine(self, request, context):
        statement = await statements.dispute_statement_line(
            Dispute(request.statement_id, request.line_no, request.reason,
                    request.disputed_amount.amount_minor
                    if request.HasField("disputed_amount") else None),
            who=current_principal(), uow=self.deps.uow(), scopes=self.deps.scopes)
        return pb.DisputeStatementLineResponse(
            statement=messages.statement_to_proto(statement))

    async def ExportStatement(self, request, context):
        d = self.deps
        exported = await statements.export_statement(
            request.statement_id, request.format, who=current_principal(), uow=d.uow(),
            scopes=d.scopes, export=d.export)
        return pb.ExportStatementResponse(file=messages.exported_file_to_proto(exported))

    def _ledger_query(self, request, day_from: str, day_to: str) -> LedgerQuery:
        return LedgerQuery(request.dealer_id.strip(), None, request.selling_company.strip(),
                           request.statement_id.strip(), day_from, day_to)

    async def ListInvoices(self, request, context):
        page = await ledger.list_invoices(
            self._ledger_query(request, request.issued_from, request.issued_to),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scopes=self.deps.scopes)
        return pb.ListInvoicesResponse(
            invoices=[messages.invoice_to_proto(i) for i in page.items],
            page=page_info_of(page))

    async def ListPayments(self, request, context):
        page = await ledger.list_payments(
            self._ledger_query(request, request.received_from, request.received_to),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scopes=self.deps.scopes)
        return pb.ListPaymentsResponse(
            payments=[messages.payment_to_proto(p) for p in page.items],
            page=page_info_of(page))

    # channel inventory and dashboards

    async def ListChannelInventory(self, request, context):
        page = await fulfilment.list_channel_inventory(
            StockQuery(request.dealer_id, None, request.product_code, request.gtin,
                       request.batch, request.product_line, request.include_empty),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scopes=self.deps.scopes)
        return pb.ListChannelInventoryResponse(
            items=[messages.inventory_to_proto(s) for s in page.items], page=page_info_of(page))

    async def GetOrderStats(self, request, context):
        rows = await stats.order_stats(request.dealer_id, request.from_month,
                                       request.to_month, who=current_principal(),
                                       uow=self.deps.uow(), scopes=self.deps.scopes)
        return pb.GetOrderStatsResponse(
            rows=[messages.dealer_month_to_proto(r, self.deps.currency) for r in rows])

    async def GetChannelInventoryStats(self, request, context):
        rows = await stats.channel_inventory_stats(
            request.dealer_id, request.product_line, request.by_dealer,
            who=current_principal(), uow=self.deps.uow(), scopes=self.deps.scopes)
        return pb.GetChannelInventoryStatsResponse(
            products=[messages.product_stock_to_proto(r) for r in rows])

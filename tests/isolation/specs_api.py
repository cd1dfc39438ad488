"""Isolation specs for the API-product routes: the dealer's invoices and payments (asked
by another dealer's statement id: tests/e2e/test_exports_and_ledger.py) and the list
exports (XLSX/CSV). An export holds exactly what the caller's list shows: it is checked
here as CSV, row by row."""

from __future__ import annotations

import itertools

from qudao.common.v1 import money_pb2
from qudao.order.v1 import order_pb2, order_pb2_grpc

from tests.isolation.spec import Call, Endpoint
from tests.isolation.specs_incentive import accrual_of
from tests.isolation.specs_order import _erp, shipment_of
from tests.isolation.specs_registration import registration_of
from tests.isolation.world import IsolationWorld

_numbers = itertools.count(1)
DEALER_COLUMN = "经销商 Dealer"


async def ledger_of(world: IsolationWorld, tenant: str) -> tuple[str, str]:
    """One invoice and one payment per tenant, pushed by the ERP (cached)."""
    key = f"api:ledger:{tenant}"
    if key not in world.cache:
        number = next(_numbers)
        invoice_id, payment_id = f"ISO-INV-{tenant}-{number}", f"ISO-PAY-{tenant}-{number}"
        money = money_pb2.Money(amount_minor=10_000, currency="CNY")
        channel, metadata = await _erp(world)
        try:
            stub = order_pb2_grpc.OrderServiceStub(channel)
            invoiced = await stub.RecordInvoices(order_pb2.RecordInvoicesRequest(invoices=[
                order_pb2.Invoice(invoice_id=invoice_id, dealer_id=world.dealer_ids[tenant],
                                  invoice_no=f"NO-{number}", issued_on="2026-11-03",
                                  amount=money)]), metadata=metadata)
            paid = await stub.RecordPayments(order_pb2.RecordPaymentsRequest(payments=[
                order_pb2.Payment(payment_id=payment_id, dealer_id=world.dealer_ids[tenant],
                                  received_on="2026-11-10", amount=money)]), metadata=metadata)
        finally:
            await channel.close()
        assert invoiced.summary.accepted == 1 and paid.summary.accepted == 1, (invoiced, paid)
        world.cache[key] = (invoice_id, payment_id)
    return world.cache[key]


async def _ledger_list(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await ledger_of(world, tenant)
        return None
    return Call(params={"page_size": 500})


def _exported(maker, params: dict | None = None):
    async def setup(world: IsolationWorld, tenant: str) -> Call | None:
        if tenant:
            await maker(world, tenant)
            return None
        return Call(params={"format": "csv", **(params or {})})
    return setup


def _rows(body) -> list[dict]:
    return body


def _dealer_column(world: IsolationWorld, row: dict) -> str:
    return row[DEALER_COLUMN]


SPECS = [
    Endpoint("GET", "/api/v1/invoices", "list", _ledger_list,
             items=lambda body: body["invoices"], dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("GET", "/api/v1/payments", "list", _ledger_list,
             items=lambda body: body["payments"], dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("GET", "/api/v1/orders/export", "list", _exported(shipment_of),
             items=_rows, dealer_of=_dealer_column),
    Endpoint("GET", "/api/v1/shipments/export", "list", _exported(shipment_of),
             items=_rows, dealer_of=_dealer_column),
    Endpoint("GET", "/api/v1/channel-inventory/export", "list", _exported(shipment_of),
             items=_rows, dealer_of=_dealer_column),
    Endpoint("GET", "/api/v1/registrations/export", "list", _exported(registration_of),
             items=_rows, dealer_of=_dealer_column),
    Endpoint("GET", "/api/v1/accruals/export", "list", _exported(accrual_of),
             items=_rows, dealer_of=_dealer_column),
]

EXEMPT = {
    ("GET", "/api/v1/customers/export"): "customers are shared master data owned by no "
    "dealer (as GET /api/v1/customers); the export pages through that same list",
}

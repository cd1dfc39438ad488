"""Incentive tests' helpers: flow's events published exactly as flow publishes them (an
envelope from shared.bus on flow's stream, the event id as Nats-Msg-Id), and the HQ
configuration an incentive scenario starts from, through the gateway."""

from __future__ import annotations

import io

import nats
from google.protobuf.message import Message
from openpyxl import load_workbook
from qudao.common.v1 import money_pb2
from qudao.flow.v1 import events_pb2 as flow_events

from shared.bus.envelope import build_envelope
from shared.bus.outbox import nats_headers
from shared.events.catalog import EventType
from tests.harness import Suite

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class FlowPublisher:
    """Publishes as flow's outbox relay does: ``build_envelope("flow", …)`` on the
    event's subject with ``nats_headers`` (Nats-Msg-Id = event id)."""

    def __init__(self, suite: Suite) -> None:
        self.url = suite.nats.url
        self.nc = None

    async def __aenter__(self) -> FlowPublisher:
        self.nc = await nats.connect(self.url)
        return self

    async def __aexit__(self, *_exc) -> None:
        await self.nc.close()

    async def publish(self, event: EventType, payload: Message, aggregate_id: str,
                      event_id: str | None = None, msg_id: str | None = None) -> str:
        """Returns the event id. ``msg_id`` other than the event id stands for a
        re-publish past JetStream's duplicate window."""
        envelope = build_envelope("flow", payload, aggregate_id, event_id)
        data = envelope.SerializeToString()
        headers = nats_headers(envelope.event_id, data)
        if msg_id:
            headers["Nats-Msg-Id"] = msg_id
        await self.nc.jetstream().publish(event.subject, data, headers=headers)
        return envelope.event_id


def flow_row(row_number: int, dealer_id: str, customer_id: str, quantity: int, amount: int,
             sold_on: str, *, product: dict, batch: str = "B1", transfer_to: str = "",
             row_count: int = 1) -> flow_events.FlowRow:
    """One aggregated accepted row as flow's FlowRow carries it."""
    return flow_events.FlowRow(
        row_number=row_number, dealer_id=dealer_id, customer_id="" if transfer_to else customer_id,
        department="骨科", product_code=product["code"], gtin=product["gtin"],
        product_line=product["product_line"], batch=batch, expiry_date="2029-12-31",
        quantity=quantity, amount=money_pb2.Money(amount_minor=amount, currency="CNY"),
        sold_on=sold_on, shipment_id="S-1", transfer_to_dealer_id=transfer_to,
        row_count=row_count)


def accepted(upload_id: str, dealer_id: str, rows: list, *, part: int = 0, parts: int = 1,
             period: tuple[str, str] = ("2026-10-01", "2026-10-31"),
             replaces: str = "") -> flow_events.FlowUploadAccepted:
    return flow_events.FlowUploadAccepted(
        upload_id=upload_id, dealer_id=dealer_id, part_index=part, part_count=parts,
        rows=rows, total_rows=len(rows), total_quantity=sum(r.quantity for r in rows),
        period_start=period[0], period_end=period[1], replaces_upload_id=replaces)


def cells(content: bytes) -> list[tuple[str, object, str]]:
    """Every non-empty cell of an XLSX file: (coordinate, value, data type)."""
    book = load_workbook(io.BytesIO(content))
    return [(cell.coordinate, cell.value, cell.data_type)
            for sheet in book.worksheets for row in sheet.iter_rows() for cell in row
            if cell.value is not None]


def formulas(content: bytes) -> list[tuple[str, object]]:
    """Cells a spreadsheet would evaluate: formulas, or text starting like one."""
    return [(coordinate, value) for coordinate, value, kind in cells(content)
            if kind == "f" or (isinstance(value, str) and value.startswith(FORMULA_STARTS))]


async def orders_accrue_at_once(suite: Suite, world) -> None:
    """Commission is booked for approved orders only: a rule on approved orders (2%) and
    credit limits high enough that order approves each dealer's order on submission
    (OrderApproved fully_approved comes with OrderSubmitted), so every submitted order
    accrues."""
    async with suite.client(world.admin_token) as admin:
        response = await admin.post("/api/v1/commission-rules", json={"rule": {
            "name": "订单佣金", "base": "approved_orders", "base_rate_bps": 200,
            "valid_from": "2000-01-01"}})
        assert response.status_code == 201, response.text
        for dealer in world.dealers:
            response = await admin.put(f"/api/v1/dealer-accounts/{dealer.id}/credit-limit",
                                       json={"credit_limit": {"amount_minor": 10**12},
                                             "reason": "orders approve at once"})
            assert response.status_code == 200, response.text

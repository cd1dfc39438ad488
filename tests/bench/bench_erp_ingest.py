"""erp.ingest: shipment lines pushed by the ERP through the client-streaming
StreamShipments call (validated line by line, idempotency-checked, stored with their
order-line updates, channel inventory and one ShipmentRecorded event per shipment in the
outbox), against the order service running as its own process on SQLite.

Baseline, same run, same rows: SQLAlchemy Core ``executemany`` of the same shipment
headers and lines into the same schema (a fresh database migrated to the same head), in
this process, in transactions of the same size as our stream messages."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
from qudao.common.v1 import money_pb2
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc
from qudao.order.v1 import order_pb2, order_pb2_grpc
from sqlalchemy import func, insert, select

from services.order.adapters.orm import ShipmentLineRow, ShipmentRow, outbox_table
from services.order.bootstrap import MIGRATIONS
from services.order.domain.ingest import fingerprint
from shared.db import Database, migrate
from tests.bench.common import ProcessSuite, Result, seed_dealer_with_catalog

NAME = "erp.ingest"
PRODUCTS = 50
LINES_PER_SHIPMENT = 50
SHIPMENTS_PER_MESSAGE = 100
# A production lot of each product ships in this many consecutive shipments (a lot lasts
# weeks, a shipment is a day's picking), so a stream message meets each lot a few times.
BATCH_RUN = 20
ERP_PASSWORD = "Bench-Erp-Passw0rd!"


async def erp_token(suite: ProcessSuite, admin_token: str) -> str:
    auth = (("authorization", f"Bearer {admin_token}"),)
    async with grpc.aio.insecure_channel(suite.addr("identity")) as channel:
        identity = identity_pb2_grpc.IdentityServiceStub(channel)
        hq = (await identity.ListOrgUnits(identity_pb2.ListOrgUnitsRequest(
            kind=identity_pb2.ORG_UNIT_KIND_HQ), metadata=auth)).org_units[0]
        await identity.CreateUser(identity_pb2.CreateUserRequest(
            username="bench.erp", password=ERP_PASSWORD, roles=[identity_pb2.ROLE_SERVICE_ERP],
            org_unit_id=hq.id), metadata=auth)
        return (await identity.Login(identity_pb2.LoginRequest(
            username="bench.erp", password=ERP_PASSWORD))).access_token


async def place_orders(suite: ProcessSuite, seed: dict, orders: int) -> list[str]:
    """Orders of every product in large quantities, approved automatically."""
    admin = (("authorization", f"Bearer {seed['admin_token']}"),)
    dealer = (("authorization", f"Bearer {seed['dealer_token']}"),)
    ids = []
    async with grpc.aio.insecure_channel(suite.addr("order")) as channel:
        stub = order_pb2_grpc.OrderServiceStub(channel)
        await stub.SetCreditLimit(order_pb2.SetCreditLimitRequest(
            dealer_id=seed["dealer_id"],
            credit_limit=money_pb2.Money(amount_minor=10**15, currency="CNY")), metadata=admin)
        for _ in range(orders):
            response = await stub.SubmitOrder(order_pb2.SubmitOrderRequest(lines=[
                order_pb2.OrderLineInput(product_code=code, quantity=1_000_000)
                for code in seed["product_codes"]]), metadata=dealer)
            assert response.order.status == order_pb2.ORDER_STATUS_APPROVED
            ids.append(response.order.id)
    return ids


def make_shipments(dealer_id: str, order_ids: list[str], codes: list[str],
                   lines: int) -> list[order_pb2.Shipment]:
    shipments = []
    for number in range(lines // LINES_PER_SHIPMENT):
        order_id = order_ids[number % len(order_ids)]
        shipments.append(order_pb2.Shipment(
            shipment_id=f"SHP-{number:07d}", dealer_id=dealer_id, ship_date="2026-11-02",
            carrier="顺丰", waybill_no=f"SF{number:010d}",
            lines=[order_pb2.ShipmentLine(
                line_no=index + 1, order_id=order_id, order_line_no=index + 1,
                product_code=codes[index], batch=f"L{number // BATCH_RUN:05d}",
                expiry_date="2028-12-31", quantity=1 + (number + index) % 5)
                for index in range(LINES_PER_SHIPMENT)]))
    return shipments


async def measure_ours(suite: ProcessSuite, token: str,
                       shipments: list[order_pb2.Shipment]) -> tuple[float, dict]:
    messages = [order_pb2.StreamShipmentsRequest(
        shipments=shipments[start:start + SHIPMENTS_PER_MESSAGE],
        mode=order_pb2.INGEST_MODE_ALL_OR_NOTHING)
        for start in range(0, len(shipments), SHIPMENTS_PER_MESSAGE)]

    async def requests():
        for message in messages:
            yield message

    async with grpc.aio.insecure_channel(suite.addr("order"), options=[
            ("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        stub = order_pb2_grpc.OrderServiceStub(channel)
        started = time.perf_counter()
        response = await stub.StreamShipments(
            requests(), metadata=(("authorization", f"Bearer {token}"),), timeout=3600)
        elapsed = time.perf_counter() - started
        # A second push of the same stream: everything is a duplicate, nothing changes.
        started = time.perf_counter()
        again = await stub.StreamShipments(
            requests(), metadata=(("authorization", f"Bearer {token}"),), timeout=3600)
        repush = time.perf_counter() - started
    assert response.summary.accepted == sum(len(s.lines) for s in shipments), response.summary
    assert again.summary.duplicate == response.summary.accepted, again.summary
    return elapsed, {"repush_seconds": round(repush, 3),
                     "messages": response.messages_committed}


async def measure_baseline(workdir: Path, shipments: list[order_pb2.Shipment]) -> float:
    url = f"sqlite+aiosqlite:///{workdir / 'baseline.db'}"
    await asyncio.to_thread(migrate, MIGRATIONS, url)
    db = Database(url)
    batches = []
    for start in range(0, len(shipments), SHIPMENTS_PER_MESSAGE):
        chunk = shipments[start:start + SHIPMENTS_PER_MESSAGE]
        batches.append((
            [dict(id=s.shipment_id, dealer_id=s.dealer_id, selling_company="default",
                  ship_date=s.ship_date, carrier=s.carrier, waybill_no=s.waybill_no,
                  header_hash="", recorded_at=None, received=False) for s in chunk],
            [dict(shipment_id=s.shipment_id, line_no=line.line_no, order_id=line.order_id,
                  order_line_no=line.order_line_no, product_code=line.product_code,
                  gtin="", batch=line.batch, expiry_date=line.expiry_date,
                  production_date=line.production_date, serials="", quantity=line.quantity,
                  content_hash="", quantity_received=0, quantity_damaged=0, receipt_note="")
             for s in chunk for line in s.lines]))
    started = time.perf_counter()
    for headers, lines in batches:
        for header in headers:
            header["recorded_at"] = datetime.now(UTC)
            header["header_hash"] = fingerprint(header["dealer_id"], header["ship_date"])
        async with db.unit_of_work() as session:
            await session.execute(insert(ShipmentRow.__table__), headers)
            await session.execute(insert(ShipmentLineRow.__table__), lines)
    elapsed = time.perf_counter() - started
    async with db.sessions() as session:
        stored = await session.scalar(select(func.count()).select_from(ShipmentLineRow))
    await db.dispose()
    assert stored == sum(len(s.lines) for s in shipments)
    return elapsed


async def count_stored(workdir: Path) -> tuple[int, int]:
    db = Database(f"sqlite+aiosqlite:///{workdir / 'order.db'}")
    async with db.sessions() as session:
        lines = await session.scalar(select(func.count()).select_from(ShipmentLineRow))
        events = await session.scalar(select(func.count()).select_from(outbox_table).where(
            outbox_table.c.subject == "qudao.order.shipment.recorded"))
    await db.dispose()
    return lines, events


async def run(workdir: Path, quick: bool) -> Result:
    total = 10_000 if quick else 200_000
    suite = await ProcessSuite(workdir, ("identity", "order")).start()
    try:
        seed = await seed_dealer_with_catalog(suite, products=PRODUCTS)
        token = await erp_token(suite, seed["admin_token"])
        order_ids = await place_orders(suite, seed, orders=20)
        shipments = make_shipments(seed["dealer_id"], order_ids, seed["product_codes"], total)
        ours_seconds, extra = await measure_ours(suite, token, shipments)
    finally:
        await suite.stop()
    lines, events = await count_stored(workdir)
    assert lines == total and events == len(shipments), (lines, events)
    baseline_seconds = await measure_baseline(workdir, shipments)
    ours = total / ours_seconds
    baseline = total / baseline_seconds
    return Result(
        name=NAME,
        params={"lines": total, "lines_per_shipment": LINES_PER_SHIPMENT,
                "shipments_per_message": SHIPMENTS_PER_MESSAGE, "database": "sqlite",
                "shipments_per_lot": BATCH_RUN},
        value=round(ours, 1), unit="rows/s",
        baseline="sqlalchemy_core_executemany", baseline_value=round(baseline, 1),
        baseline_unit="rows/s", ratio=round(ours / baseline, 3),
        ratio_meaning="our rows/s / baseline rows/s (higher is better; 1.0 = as fast as a "
                      "bare executemany of the same rows; target at least 0.5)",
        extra={"ours_seconds": round(ours_seconds, 3),
               "baseline_seconds": round(baseline_seconds, 3), "events": events, **extra},
    )

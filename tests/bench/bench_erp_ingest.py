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
import nats
from qudao.common.v1 import money_pb2, page_pb2
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc
from qudao.order.v1 import order_pb2, order_pb2_grpc
from sqlalchemy import func, insert, select

from services.order.adapters.orm import ShipmentLineRow, ShipmentRow, outbox_table
from services.order.adapters.shipments import SHIPMENT_LINE_COLUMNS
from services.order.bootstrap import MIGRATIONS
from services.order.domain.ingest import fingerprint, wire_fingerprint
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


def stream_of(shipments: list[order_pb2.Shipment]) -> list[order_pb2.StreamShipmentsRequest]:
    return [order_pb2.StreamShipmentsRequest(
        shipments=shipments[start:start + SHIPMENTS_PER_MESSAGE],
        mode=order_pb2.INGEST_MODE_ALL_OR_NOTHING)
        for start in range(0, len(shipments), SHIPMENTS_PER_MESSAGE)]


async def push(suite: ProcessSuite, token: str, shipments: list[order_pb2.Shipment]):
    messages = stream_of(shipments)

    async def requests():
        for message in messages:
            yield message

    async with grpc.aio.insecure_channel(suite.addr("order"), options=[
            ("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        started = time.perf_counter()
        response = await order_pb2_grpc.OrderServiceStub(channel).StreamShipments(
            requests(), metadata=(("authorization", f"Bearer {token}"),), timeout=3600)
        return time.perf_counter() - started, response


async def wait_published(suite: ProcessSuite, events: int) -> None:
    """Until the relay has published every ShipmentRecorded so far, so that its work does
    not overlap the baseline's turn."""
    nc = await nats.connect(suite.nats.url)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            info = await nc.jetstream().stream_info(
                "QUDAO_ORDER", subjects_filter="qudao.order.shipment.recorded")
            if (info.state.subjects or {}).get("qudao.order.shipment.recorded", 0) >= events:
                return
            await asyncio.sleep(0.2)
        raise RuntimeError("the outbox relay did not publish the shipments' events")
    finally:
        await nc.close()


async def product_gtins(suite: ProcessSuite, admin_token: str) -> dict[str, str]:
    async with grpc.aio.insecure_channel(suite.addr("order")) as channel:
        response = await order_pb2_grpc.OrderServiceStub(channel).ListProducts(
            order_pb2.ListProductsRequest(page=page_pb2.PageRequest(page_size=PRODUCTS)),
            metadata=(("authorization", f"Bearer {admin_token}"),))
    return {product.code: product.gtin for product in response.products}


def baseline_rows(chunk: list[order_pb2.Shipment],
                  gtins: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """The rows as the order service stores them: the lines with their order line's GTIN
    and content digest (computed here, before the clock starts, like every other value)."""
    return (
        [dict(id=s.shipment_id, dealer_id=s.dealer_id, selling_company="default",
              ship_date=s.ship_date, carrier=s.carrier, waybill_no=s.waybill_no,
              header_hash="", recorded_at=None, received=False) for s in chunk],
        [dict(shipment_id=s.shipment_id, line_no=line.line_no, order_id=line.order_id,
              order_line_no=line.order_line_no, product_code=line.product_code,
              gtin=gtins[line.product_code], batch=line.batch, expiry_date=line.expiry_date,
              production_date=line.production_date, serials="", quantity=line.quantity,
              content_hash=wire_fingerprint(line.SerializeToString(deterministic=True)),
              quantity_received=0, quantity_damaged=0, receipt_note="")
         for s in chunk for line in s.lines])


async def measure_baseline(db: Database, shipments: list[order_pb2.Shipment],
                           gtins: dict[str, str]) -> float:
    """SQLAlchemy Core executemany of the same headers and lines, one transaction per
    stream-message-sized chunk."""
    batches = [baseline_rows(shipments[start:start + SHIPMENTS_PER_MESSAGE], gtins)
               for start in range(0, len(shipments), SHIPMENTS_PER_MESSAGE)]
    started = time.perf_counter()
    for headers, lines in batches:
        for header in headers:
            header["recorded_at"] = datetime.now(UTC)
            header["header_hash"] = fingerprint(header["dealer_id"], header["ship_date"])
        async with db.write() as session:
            await session.execute(insert(ShipmentRow.__table__), headers)
            await session.execute(insert(ShipmentLineRow.__table__), lines)
    return time.perf_counter() - started


async def stored_lines(url: str) -> list[tuple]:
    db = Database(url)
    table = ShipmentLineRow.__table__
    async with db.read() as session:
        rows = (await session.execute(select(
            *(table.c[name] for name in SHIPMENT_LINE_COLUMNS))
            .order_by(table.c.shipment_id, table.c.line_no))).all()
    await db.dispose()
    return [tuple(row) for row in rows]


async def count_stored(workdir: Path) -> tuple[int, int]:
    db = Database(f"sqlite+aiosqlite:///{workdir / 'order.db'}")
    async with db.read() as session:
        lines = await session.scalar(select(func.count()).select_from(ShipmentLineRow))
        events = await session.scalar(select(func.count()).select_from(outbox_table).where(
            outbox_table.c.subject == "qudao.order.shipment.recorded"))
    await db.dispose()
    return lines, events


async def run(workdir: Path, quick: bool) -> Result:
    """Ours and the baseline take turns on equal slices of the data (the machine is
    shared and its load drifts; alternating keeps both under the same conditions)."""
    total, rounds = (10_000, 2) if quick else (200_000, 4)
    baseline_url = f"sqlite+aiosqlite:///{workdir / 'baseline.db'}"
    await asyncio.to_thread(migrate, MIGRATIONS, baseline_url)
    baseline_db = Database(baseline_url)
    ours_seconds = baseline_seconds = 0.0
    suite = await ProcessSuite(workdir, ("identity", "order")).start()
    try:
        seed = await seed_dealer_with_catalog(suite, products=PRODUCTS)
        token = await erp_token(suite, seed["admin_token"])
        order_ids = await place_orders(suite, seed, orders=20)
        shipments = make_shipments(seed["dealer_id"], order_ids, seed["product_codes"], total)
        gtins = await product_gtins(suite, seed["admin_token"])
        size = len(shipments) // rounds
        for number in range(rounds):
            chunk = shipments[number * size:(number + 1) * size]
            elapsed, response = await push(suite, token, chunk)
            assert response.summary.accepted == sum(len(s.lines) for s in chunk), response
            ours_seconds += elapsed
            await wait_published(suite, (number + 1) * size)
            baseline_seconds += await measure_baseline(baseline_db, chunk, gtins)
        # The whole stream again: every line a duplicate, nothing changes.
        repush_seconds, again = await push(suite, token, shipments)
        assert again.summary.duplicate == total, again.summary
    finally:
        await suite.stop()
        await baseline_db.dispose()
    lines, events = await count_stored(workdir)
    assert lines == total and events == len(shipments), (lines, events)
    # The baseline wrote the very lines we stored, value for value.
    assert (await stored_lines(baseline_url) ==
            await stored_lines(f"sqlite+aiosqlite:///{workdir / 'order.db'}"))
    ours = total / ours_seconds
    baseline = total / baseline_seconds
    return Result(
        name=NAME,
        params={"lines": total, "lines_per_shipment": LINES_PER_SHIPMENT,
                "shipments_per_message": SHIPMENTS_PER_MESSAGE, "database": "sqlite",
                "shipments_per_lot": BATCH_RUN, "alternating_rounds": rounds},
        value=round(ours, 1), unit="rows/s",
        baseline="sqlalchemy_core_executemany", baseline_value=round(baseline, 1),
        baseline_unit="rows/s", ratio=round(ours / baseline, 3),
        ratio_meaning="our rows/s / baseline rows/s (higher is better; 1.0 = as fast as a "
                      "bare executemany of the same rows; target at least 0.5)",
        extra={"ours_seconds": round(ours_seconds, 3),
               "baseline_seconds": round(baseline_seconds, 3), "events": events,
               "repush_all_duplicates_seconds": round(repush_seconds, 3),
               "our_path": "gRPC client stream → validation, idempotency digests, order-line "
                           "and status updates, channel inventory, one ShipmentRecorded per "
                           "shipment in the outbox; shipment lines written with the "
                           "driver's executemany"},
    )

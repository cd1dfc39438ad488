"""flow.validate: a sell-through CSV (1,000,000 rows by default; a fifth of the UDIs
carry serials; a few percent bad in known, labelled ways) validated by the flow service
running as its own process on SQLite, against a projection of 1,000,000 shipment lines:
bytes streamed in over gRPC → verdict → the XLSX error report streamed out. Every
labelled bad row must be reported with its code.

Baselines, same data, same run, in this process:
  limit  polars reads the CSV and hash-joins it with the shipments on (dealer, GTIN,
         batch) — no parsing, no UDI, no hospitals: what reading and joining alone cost;
  naive  one ORM query per row (stock of the batch, the hospital by name, the serial)
         with biip parsing each UDI, on a 10,000-row sample, extrapolated.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
import polars as pl
from qudao.common.v1 import files_pb2
from qudao.flow.v1 import flow_pb2, flow_pb2_grpc
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc

from services.flow.adapters.orm import CustomerRow, ShippedSerialRow, StockRow
from services.flow.adapters.uow import SqlFlowUnitOfWork
from services.flow.bootstrap import MIGRATIONS
from services.flow.domain.model import Dealer, Product, ShipmentLine
from services.flow.usecases import projections
from shared.bus.outbox import Outbox
from shared.db import Database, migrate
from shared.text import normalize_name
from tests.bench.common import ADMIN_PASSWORD, ProcessSuite, Result
from tests.bench.flow_data import (
    DEALER,
    EXPIRY,
    OTHER_DEALER,
    PERIOD,
    SHIP_DATE,
    FlowData,
    generate,
)

NAME = "flow.validate"
FULL_ROWS = 1_000_000
QUICK_ROWS = 50_000
NAIVE_SAMPLE = 10_000
CHUNK = 1024 * 1024


async def seed(url: str, data: FlowData) -> float:
    """Flow's projections, filled through its own projection use cases."""
    from services.flow.adapters.orm import outbox_table

    started = time.perf_counter()
    db = Database(url)
    outbox = Outbox(outbox_table, "flow")

    def uow():
        return SqlFlowUnitOfWork(db, outbox)

    for code, gtin in data.products:
        await projections.apply_product(Product(code, gtin, code, "A系列"), uow=uow())
    await projections.apply_dealer(Dealer(DEALER, "基准医疗器械有限公司",
                                          division_codes=("310000",)), uow=uow())
    await projections.apply_dealer(Dealer(OTHER_DEALER, "另一家医疗器械有限公司",
                                          division_codes=("310000",)), uow=uow())
    now = datetime.now(UTC)
    async with db.write() as session:  # the customers in one statement, not 5,000 events
        await session.execute(CustomerRow.__table__.insert(), [dict(
            id=customer_id, name=name, normalized_name=normalize_name(name),
            city_code=division[:4] + "00", aliases=[], departments=[], updated_at=now)
            for customer_id, name, division in data.hospitals])
    for start in range(0, len(data.shipments), 50_000):
        lines = [ShipmentLine(sid, 1, dealer, code, gtin, batch, EXPIRY, quantity, SHIP_DATE,
                              serials)
                 for sid, dealer, code, gtin, batch, quantity, serials
                 in data.shipments[start:start + 50_000]]
        await projections.apply_shipment(lines, uow=uow())
    await db.dispose()
    return time.perf_counter() - started


async def admin_token(suite: ProcessSuite) -> str:
    async with grpc.aio.insecure_channel(suite.addr("identity")) as channel:
        identity = identity_pb2_grpc.IdentityServiceStub(channel)
        return (await identity.Login(identity_pb2.LoginRequest(
            username="admin", password=ADMIN_PASSWORD))).access_token


async def ours(suite: ProcessSuite, token: str, data: FlowData) -> dict:
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(suite.addr("flow"), options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024)]) as channel:
        stub = flow_pb2_grpc.FlowServiceStub(channel)

        async def requests():
            yield flow_pb2.UploadFlowFileRequest(metadata=flow_pb2.UploadMetadata(
                dealer_id=DEALER, filename="bench.csv", format=files_pb2.FILE_FORMAT_CSV,
                size_bytes=len(data.csv), period_start=PERIOD[0].isoformat(),
                period_end=PERIOD[1].isoformat()))
            for start in range(0, len(data.csv), CHUNK):
                yield flow_pb2.UploadFlowFileRequest(chunk=data.csv[start:start + CHUNK])

        started = time.perf_counter()
        upload = (await stub.UploadFlowFile(requests(), metadata=metadata)).upload
        stored = time.perf_counter()
        while True:
            upload = (await stub.GetUpload(flow_pb2.GetUploadRequest(id=upload.id),
                                           metadata=metadata)).upload
            if upload.status not in (flow_pb2.UPLOAD_STATUS_QUEUED,
                                     flow_pb2.UPLOAD_STATUS_VALIDATING):
                break
            await asyncio.sleep(0.05)
        verdict = time.perf_counter()
        report = bytearray()
        async for part in stub.DownloadErrorReport(flow_pb2.DownloadErrorReportRequest(
                upload_id=upload.id), metadata=metadata):
            report += part.chunk
        finished = time.perf_counter()
        found: dict[int, set[str]] = {}
        token_ = ""
        while True:
            page = await stub.GetUploadErrors(flow_pb2.GetUploadErrorsRequest(
                upload_id=upload.id, page={"page_size": 500, "page_token": token_}),
                metadata=metadata)
            for error in page.errors:
                found.setdefault(error.error.row_number, set()).add(error.error.code)
            token_ = page.page.next_page_token
            if not token_ or len(found) > len(data.bad) * 3:
                break
    return {"upload": upload, "seconds": finished - started, "store_s": stored - started,
            "validate_s": verdict - stored, "report_s": finished - verdict,
            "report_bytes": len(report), "found": found}


def limit_baseline(workdir: Path, data: FlowData) -> float:
    """polars: read the CSV and the shipments, hash-join on (dealer, GTIN, batch)."""
    csv_path = workdir / "flow.csv"
    ship_path = workdir / "shipments.parquet"
    csv_path.write_bytes(data.csv)
    pl.DataFrame([(d, g, b, q) for _, d, _, g, b, q, _ in data.shipments], orient="row",
                 schema={"dealer": pl.Utf8, "gtin": pl.Utf8, "batch": pl.Utf8,
                         "quantity": pl.Int64}).write_parquet(ship_path)
    started = time.perf_counter()
    rows = pl.read_csv(csv_path, infer_schema=False).rename(
        {"批号": "batch"}).with_columns(
        dealer=pl.lit(DEALER), gtin=pl.col("UDI").str.extract(r"(?:01\)?)(\d{14})", 1))
    shipments = pl.read_parquet(ship_path).group_by("dealer", "gtin", "batch").agg(
        pl.col("quantity").sum())
    joined = rows.join(shipments, on=["dealer", "gtin", "batch"], how="left")
    assert joined.height == data.rows
    return time.perf_counter() - started


async def naive_baseline(url: str, data: FlowData) -> float:
    """One ORM query per row (and per serial), biip per UDI, on a sample."""
    from biip import ParseConfig, parse
    from sqlalchemy import select

    reader = pl.read_csv(io.BytesIO(data.csv), infer_schema=False)
    sample = reader.head(NAIVE_SAMPLE).rows()
    db = Database(url)
    config = ParseConfig(separator_chars=["\x1d"])
    started = time.perf_counter()
    async with db.read() as session:
        for _day, hospital, _, _, udi, batch, _, serial, _quantity, _ in sample:
            result = parse(udi.replace("(", "").replace(")", "") if udi.startswith("(")
                           else udi, config=config)
            gtin = result.gs1_message.element_strings[0].value if result.gs1_message else ""
            await session.scalar(select(CustomerRow).where(
                CustomerRow.normalized_name == normalize_name(hospital)))
            await session.scalar(select(StockRow).where(
                StockRow.dealer_id == DEALER, StockRow.gtin == gtin, StockRow.batch == batch))
            if serial:
                await session.scalar(select(ShippedSerialRow).where(
                    ShippedSerialRow.gtin == gtin, ShippedSerialRow.serial == serial))
    elapsed = time.perf_counter() - started
    await db.dispose()
    return elapsed * data.rows / len(sample)


def peak_memory_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def run(workdir: Path, quick: bool, rows: int | None = None) -> Result:
    rows = rows or int(os.environ.get("QUDAO_BENCH_FLOW_ROWS", 0)) or (
        QUICK_ROWS if quick else FULL_ROWS)
    random.seed(7)
    began = time.perf_counter()
    data = generate(rows)
    generated = time.perf_counter() - began
    print(f"  generated {rows} rows ({len(data.csv) / 1e6:.0f} MB, {len(data.bad)} bad) and "
          f"{data.shipment_lines} shipment lines in {generated:.1f}s", flush=True)
    url = f"sqlite+aiosqlite:///{workdir / 'flow.db'}"
    await asyncio.to_thread(migrate, MIGRATIONS, url)
    seeded = await seed(url, data)
    print(f"  projections seeded in {seeded:.1f}s", flush=True)
    suite = await ProcessSuite(workdir, ("identity", "flow")).start()
    try:
        token = await admin_token(suite)
        outcome = await ours(suite, token, data)
        memory = peak_memory_mib(suite.processes["flow"].pid)
    finally:
        await suite.stop()
    upload = outcome["upload"]
    missed = {row: code for row, code in data.bad.items()
              if code not in outcome["found"].get(row, set())}
    print(f"  ours: {outcome['seconds']:.1f}s (store {outcome['store_s']:.1f}s, validate "
          f"{outcome['validate_s']:.1f}s, report {outcome['report_s']:.1f}s), "
          f"status {flow_pb2.UploadStatus.Name(upload.status)}, {upload.failed_rows} failed "
          f"rows, {len(missed)} labelled bad rows missed, peak {memory:.0f} MiB", flush=True)
    limit = await asyncio.to_thread(limit_baseline, workdir, data)
    naive = await naive_baseline(url, data)
    print(f"  limit (polars read + join): {limit:.2f}s; naive (extrapolated): {naive:.0f}s",
          flush=True)
    ours_rate = rows / outcome["seconds"]
    return Result(
        name=NAME,
        params={"rows": rows, "shipments": data.shipment_lines, "bad_rows": len(data.bad),
                "serial_share": 0.2},
        value=round(ours_rate, 1), unit="rows/s",
        baseline="polars_join", baseline_value=round(rows / limit, 1), baseline_unit="rows/s",
        ratio=round(outcome["seconds"] / limit, 2),
        ratio_meaning="our_time / limit_time (polars read+join): lower is better; target ≤ 3",
        extra={"naive_rows_per_s": round(rows / naive, 1),
               "naive_ratio": round(naive / outcome["seconds"], 1),
               "naive_ratio_meaning": "naive_time / our_time: higher is better; target ≥ 50",
               "seconds": round(outcome["seconds"], 2),
               "store_seconds": round(outcome["store_s"], 2),
               "validate_seconds": round(outcome["validate_s"], 2),
               "report_seconds": round(outcome["report_s"], 2),
               "report_bytes": outcome["report_bytes"],
               "peak_rss_mib": round(memory, 1),
               "status": flow_pb2.UploadStatus.Name(upload.status),
               "failed_rows": upload.failed_rows, "labelled_bad_rows": len(data.bad),
               "labelled_bad_rows_missed": len(missed),
               "missed_examples": dict(list(missed.items())[:5])})

"""events.latency: from an order's submission to its commission accrual committed in the
incentive service, on the path commission really takes: commission is booked only for an
approved order (never on submission), so the dealer's credit limit is set high enough
that order approves each order at once (SubmitOrder commits the order with its
OrderSubmitted and OrderApproved fully_approved events), and incentive books it under a
commission rule whose base is approved orders. Measured from SubmitOrder answered to the
accrual's own AccrualRecorded event received (so our figure includes one more relay hop
than needed), under an open-loop load. Baseline: a raw nats-py publish→receive on the
same server. The extra figures split the path into its two hops (order's relay; incentive's
consumer, booking and relay) and give each process's SQL statements and CPU per order."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import nats
from qudao.common.v1 import money_pb2
from qudao.incentive.v1 import events_pb2 as incentive_events  # noqa: F401 - registers type
from qudao.incentive.v1 import incentive_pb2, incentive_pb2_grpc
from qudao.order.v1 import order_pb2, order_pb2_grpc

from shared.bus.envelope import decode_envelope
from shared.events.incentive import ACCRUAL_RECORDED
from shared.events.order import ORDER_APPROVED
from tests.bench.common import ProcessSuite, Result, latency_summary, seed_dealer_with_catalog

NAME = "events.latency"


async def open_loop(rate_per_second: float, count: int, send) -> None:
    """Start one send every 1/rate seconds, whatever the previous ones are doing."""
    interval = 1.0 / rate_per_second
    start = time.perf_counter()
    tasks = []
    for index in range(count):
        delay = start + index * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(index)))
    await asyncio.gather(*tasks)


async def commission_on_approved_orders(suite: ProcessSuite, seed: dict) -> None:
    """An approved-orders commission rule, and a credit limit that approves every order
    of the run at once."""
    admin = (("authorization", f"Bearer {seed['admin_token']}"),)
    async with grpc.aio.insecure_channel(suite.addr("incentive")) as channel:
        await incentive_pb2_grpc.IncentiveServiceStub(channel).UpsertCommissionRule(
            incentive_pb2.UpsertCommissionRuleRequest(rule=incentive_pb2.CommissionRule(
                name="订单佣金", base=incentive_pb2.COMMISSION_BASE_APPROVED_ORDERS,
                base_rate_bps=200, valid_from="2000-01-01")), metadata=admin)
    async with grpc.aio.insecure_channel(suite.addr("order")) as channel:
        await order_pb2_grpc.OrderServiceStub(channel).SetCreditLimit(
            order_pb2.SetCreditLimitRequest(
                dealer_id=seed["dealer_id"], reason="bench",
                credit_limit=money_pb2.Money(amount_minor=10**13, currency="CNY")),
            metadata=admin)


async def statements_sent(suite: ProcessSuite, service: str) -> float:
    """The service process's SQL statements so far (its qudao_db_statements_total)."""
    async with httpx.AsyncClient() as client:
        page = (await client.get(f"http://127.0.0.1:{suite.metrics_ports[service]}/metrics")).text
    return next(float(line.split()[-1]) for line in page.splitlines()
                if line.startswith("qudao_db_statements_total "))


def cpu_seconds(suite: ProcessSuite, service: str) -> float:
    """User + system CPU the service's process used so far (Linux /proc)."""
    fields = Path(f"/proc/{suite.processes[service].pid}/stat").read_text().rpartition(")")[2]
    utime, stime = fields.split()[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


async def usage(suite: ProcessSuite) -> dict[str, tuple[float, float]]:
    """Per process: (SQL statements sent, CPU seconds used) so far."""
    return {s: (await statements_sent(suite, s), cpu_seconds(suite, s))
            for s in ("order", "incentive")}


@dataclass
class Measured:
    """Per order (the warm-up left out), in ms: submission answered → accrual event
    received, and its two hops: → OrderApproved on the stream (order's relay), →
    AccrualRecorded on the stream (incentive's consumer, booking and relay). And what
    each process spent per order over the run, relays and health checks included:
    SQL statements and CPU milliseconds (which a loaded machine inflates less than it
    does latency)."""

    total: list[float]
    order_hop: list[float]
    incentive_hop: list[float]
    per_order: dict[str, dict[str, float]]


async def measure_ours(suite: ProcessSuite, rate: float, count: int) -> Measured:
    seed = await seed_dealer_with_catalog(suite)
    await commission_on_approved_orders(suite, seed)
    submitted_at: dict[str, float] = {}
    relayed_at: dict[str, float] = {}
    accrued_at: dict[str, float] = {}
    all_accrued = asyncio.Event()
    warmed_up = asyncio.Event()

    async def on_approval(message):
        relayed_at[decode_envelope(message.subject, message.data).payload.order.id] = (
            time.perf_counter())

    async def on_accrual(message):
        received = time.perf_counter()
        event = decode_envelope(message.subject, message.data)
        accrued_at[event.payload.accrual.source_id] = received
        warmed_up.set()
        if len(accrued_at) >= count + 1:
            all_accrued.set()

    nc = await nats.connect(suite.nats.url)
    await nc.subscribe(ACCRUAL_RECORDED.subject, cb=on_accrual)
    await nc.subscribe(ORDER_APPROVED.subject, cb=on_approval)
    metadata = (("authorization", f"Bearer {seed['dealer_token']}"),)
    async with grpc.aio.insecure_channel(suite.addr("order")) as channel:
        stub = order_pb2_grpc.OrderServiceStub(channel)

        async def submit(index: int) -> None:
            code = seed["product_codes"][index % len(seed["product_codes"])]
            response = await stub.SubmitOrder(order_pb2.SubmitOrderRequest(
                lines=[order_pb2.OrderLineInput(product_code=code, quantity=1 + index % 5)]),
                metadata=metadata, timeout=30)
            submitted_at[response.order.id] = time.perf_counter()
            assert response.order.status == order_pb2.ORDER_STATUS_APPROVED, response.order

        await submit(0)  # warm up the path (connections, statements) before measuring
        await asyncio.wait_for(warmed_up.wait(), 30)
        before = await usage(suite)
        await open_loop(rate, count, lambda i: submit(i + 1))
        await asyncio.wait_for(all_accrued.wait(), 120)
        after = await usage(suite)
    await nc.close()
    measured = list(submitted_at.items())[1:]
    return Measured(
        [(accrued_at[order_id] - submitted) * 1000 for order_id, submitted in measured],
        [(relayed_at[order_id] - submitted) * 1000 for order_id, submitted in measured],
        [(accrued_at[order_id] - relayed_at[order_id]) * 1000 for order_id, _ in measured],
        {service: {"statements": round((after[service][0] - before[service][0]) / count, 1),
                   "cpu_ms": round((after[service][1] - before[service][1]) * 1000 / count, 2)}
         for service in after})


async def measure_baseline(suite: ProcessSuite, rate: float, count: int) -> list[float]:
    nc = await nats.connect(suite.nats.url)
    received: dict[int, float] = {}
    done = asyncio.Event()

    async def on_message(message):
        received[int(message.data)] = time.perf_counter()
        if len(received) >= count:
            done.set()

    await nc.subscribe("bench.echo", cb=on_message)
    sent: dict[int, float] = {}

    async def send(index: int) -> None:
        sent[index] = time.perf_counter()
        await nc.publish("bench.echo", str(index).encode())
        await nc.flush()

    await open_loop(rate, count, send)
    await asyncio.wait_for(done.wait(), 60)
    await nc.close()
    return [(received[i] - sent[i]) * 1000 for i in range(count)]


async def run(workdir: Path, quick: bool) -> Result:
    rate, count = (50.0, 200) if quick else (100.0, 6000)
    suite = await ProcessSuite(workdir, ("identity", "order", "incentive"),
                               metrics=("order", "incentive")).start()
    try:
        measured = await measure_ours(suite, rate, count)
        ours = latency_summary(measured.total)
        baseline = latency_summary(await measure_baseline(suite, rate, count))
    finally:
        await suite.stop()
    return Result(
        name=NAME,
        params={"orders": count, "rate_per_second": rate, "database": "sqlite",
                "processes": "nats, identity, order, incentive",
                "path": "SubmitOrder (approved at once within the credit limit: "
                        "OrderApproved fully_approved) → order outbox → JetStream → "
                        "incentive consumer → commission on approved orders → "
                        "AccrualRecorded received"},
        value=ours["p99_ms"], unit="ms",
        baseline="raw_nats_roundtrip", baseline_value=baseline["p99_ms"], baseline_unit="ms",
        ratio=round(ours["p99_ms"] / baseline["p99_ms"], 2),
        ratio_meaning="our p99 / raw NATS publish→receive p99: how many times longer the "
                      "order approved→outbox→JetStream→consumer→accrual path takes (lower is "
                      "better); target is our p99 under 200 ms",
        extra={**ours, "baseline": baseline,
               "order_relay_hop": latency_summary(measured.order_hop),
               "incentive_hop": latency_summary(measured.incentive_hop),
               "per_order": measured.per_order},
    )

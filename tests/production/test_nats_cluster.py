"""The bus on a real 3-node JetStream cluster (three nats-servers on loopback, as the
Kubernetes StatefulSet runs them), with the suite's services connected to all three:

- every stream is created with three replicas and keeps them when consumers restart
  (a consumer never creates or updates its producer's stream);
- one member is killed with SIGKILL — the leader of the order stream — while dealers
  submit orders: no acknowledged event is lost, none is stored or applied twice, and the
  suite recovers without a manual step, before and after the member comes back.

The soak variant (more orders, a kill of every member in turn) runs in ``make fault``."""

from __future__ import annotations

import asyncio
import contextlib
import time

import nats
import nats.errors
import nats.js.errors
import pytest
from sqlalchemy import text

from shared.bus.permissions import OPS
from suite.natsserver import NatsCluster, nats_passwords
from tests.harness import Suite, eventually
from tests.incentive.support import orders_accrue_at_once
from tests.world import build_world

STREAMS = ("QUDAO_IDENTITY", "QUDAO_REGISTRATION", "QUDAO_ORDER", "QUDAO_FLOW",
           "QUDAO_INCENTIVE", "QUDAO_DLQ")
SUBMITTED = "qudao.order.order.submitted"


async def start_cluster_suite(root) -> Suite:
    cluster = NatsCluster(root / "nats", users=nats_passwords(root / "keys"),
                          anonymous_user=OPS)
    return await Suite(root, nats=cluster,
                       options={"QUDAO_NATS_STREAM_REPLICAS": "3"}).start()


async def stream_info(js, stream: str, **filters):
    """The stream's info, asked again while the cluster elects a leader: a JetStream API
    request that lands mid-election goes unanswered (a 5 s timeout), as it would for any
    client; the suite's own relays and consumers retry the same way."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return await js.stream_info(stream, **filters)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError,
                nats.js.errors.ServiceUnavailableError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def stream_replicas(js) -> dict[str, int]:
    replicas = {}
    for stream in STREAMS:
        info = await stream_info(js, stream)
        replicas[stream] = info.config.num_replicas
        assert len(info.cluster.replicas or []) == info.config.num_replicas - 1
    return replicas


async def scalar(suite: Suite, service: str, sql: str) -> int:
    async with suite.hosts[service].wiring.db.read() as session:
        return (await session.execute(text(sql))).scalar_one()


class OrderStream:
    """Dealers submitting orders through the gateway, a few at a time."""

    def __init__(self, suite: Suite, world, concurrency: int = 4) -> None:
        self.suite = suite
        self.world = world
        self.concurrency = concurrency
        self.acknowledged: list[str] = []
        self.refused = 0

    async def submit(self, count: int) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for number in range(count):
            queue.put_nowait(number)

        async def worker(dealer) -> None:
            async with self.suite.client(dealer.token) as client:
                while not queue.empty():
                    queue.get_nowait()
                    response = await client.post("/api/v1/orders", json={
                        "lines": [{"product_code": "A-001", "quantity": 1}]})
                    if response.status_code == 201:
                        self.acknowledged.append(response.json()["id"])
                    else:
                        self.refused += 1

        await asyncio.gather(*(worker(self.world.dealers[i % len(self.world.dealers)])
                               for i in range(self.concurrency)))


async def assert_nothing_lost_or_doubled(suite: Suite, js, acknowledged: list[str],
                                         timeout: float = 60) -> dict[str, int]:
    """Every order the order service stored (every acknowledged one among them) is in
    the stream once and accrued once, once the relay and the consumer have caught up."""
    async def published() -> bool:
        return await scalar(suite, "order", "SELECT count(*) FROM outbox "
                                            "WHERE published_at IS NULL") == 0

    await eventually(published, timeout=timeout, interval=0.2)
    orders = await scalar(suite, "order", "SELECT count(*) FROM orders")
    stored = set()
    async with suite.hosts["order"].wiring.db.read() as session:
        stored = {row[0] for row in await session.execute(text("SELECT id FROM orders"))}
    assert set(acknowledged) <= stored, "an acknowledged order is missing"

    async def in_stream() -> int:
        info = await stream_info(js, "QUDAO_ORDER", subjects_filter=SUBMITTED)
        return (info.state.subjects or {}).get(SUBMITTED, 0)

    # Each order is approved at once (orders_accrue_at_once): one commission accrual.
    async def accrued() -> bool:
        return await scalar(suite, "incentive", "SELECT count(*) FROM accruals WHERE "
                                                "unit_type = 'order'") >= orders

    await eventually(accrued, timeout=timeout, interval=0.2)
    counts = {
        "orders": orders,
        "acknowledged": len(acknowledged),
        "in_stream": await in_stream(),
        "accruals": await scalar(suite, "incentive", "SELECT count(*) FROM accruals "
                                                     "WHERE unit_type = 'order'"),
        "distinct_accruals": await scalar(suite, "incentive",
                                          "SELECT count(DISTINCT unit_id) FROM accruals "
                                          "WHERE unit_type = 'order'"),
    }
    assert counts["in_stream"] == orders, f"lost or doubled in the stream: {counts}"
    assert counts["accruals"] == counts["distinct_accruals"] == orders, counts
    return counts


async def test_three_node_cluster_keeps_r3_and_loses_nothing_when_a_member_is_killed(
        tmp_path):
    suite = await start_cluster_suite(tmp_path)
    nc = await nats.connect(servers=suite.nats.url.split(","))
    try:
        js = nc.jetstream()
        assert await stream_replicas(js) == {stream: 3 for stream in STREAMS}

        # Consumers restart (incentive reads order's stream, registration identity's):
        # the producers' streams stay R3.
        for service in ("incentive", "registration", "flow"):
            await suite.stop_service(service)
            await suite.start_service(service)
        assert await stream_replicas(js) == {stream: 3 for stream in STREAMS}

        world = await build_world(suite, dealers=2)
        await orders_accrue_at_once(suite, world)
        orders = OrderStream(suite, world)
        await orders.submit(15)
        leader = (await stream_info(js, "QUDAO_ORDER")).cluster.leader
        killed = suite.nats.node(leader)
        during = asyncio.create_task(orders.submit(30))
        await eventually(lambda: len(orders.acknowledged) >= 20, timeout=30)
        killed.stop(kill=True)
        killed_at = time.monotonic()
        await during
        # Two of three members are a quorum: everything arrives without the third.
        counts = await assert_nothing_lost_or_doubled(suite, js, orders.acknowledged)
        recovered_in = time.monotonic() - killed_at
        assert counts["acknowledged"] >= 20

        # It comes back by itself (as its pod would) and catches up; more orders flow.
        await asyncio.to_thread(killed.start)
        await orders.submit(5)
        await assert_nothing_lost_or_doubled(suite, js, orders.acknowledged)

        async def all_current() -> bool:
            info = await stream_info(js, "QUDAO_ORDER")
            return info.config.num_replicas == 3 and all(
                replica.current for replica in info.cluster.replicas or []) and len(
                info.cluster.replicas or []) == 2

        await eventually(all_current, timeout=30, interval=0.2)
        assert await stream_replicas(js) == {stream: 3 for stream in STREAMS}
        print(f"\nnode {leader} killed: {counts['orders']} orders, "
              f"{counts['acknowledged']} acknowledged, {orders.refused} refused during the "
              f"failover, 0 lost, 0 doubled; consistent {recovered_in:.1f}s after the kill")
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
        await suite.stop()


@pytest.mark.fault
async def test_soak_every_member_killed_in_turn(tmp_path):
    """make fault: 300 orders while each member in turn is killed and restarted."""
    suite = await start_cluster_suite(tmp_path)
    nc = await nats.connect(servers=suite.nats.url.split(","))
    try:
        js = nc.jetstream()
        world = await build_world(suite, dealers=4)
        await orders_accrue_at_once(suite, world)
        orders = OrderStream(suite, world, concurrency=8)
        for node in suite.nats.nodes:
            during = asyncio.create_task(orders.submit(100))
            await eventually(lambda: orders.refused + len(orders.acknowledged) > 0,
                             timeout=30)
            node.stop(kill=True)
            await during
            await assert_nothing_lost_or_doubled(suite, js, orders.acknowledged, timeout=120)
            await asyncio.to_thread(node.start)
        assert await stream_replicas(js) == {stream: 3 for stream in STREAMS}
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
        await suite.stop()

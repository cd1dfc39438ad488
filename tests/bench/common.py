"""What every benchmark shares: the result record and its file, percentiles, and a suite
started as real processes (NATS, services, gateway) the way `qudao up` runs it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared.auth import generate_keypair
from suite.natsserver import NatsServer, free_port

RESULTS_PATH = Path("var/bench/results.json")
ADMIN_PASSWORD = "Bench-Admin-Passw0rd!"


@dataclass
class Result:
    name: str
    params: dict
    value: float
    unit: str
    baseline: str
    baseline_value: float
    baseline_unit: str
    ratio: float
    ratio_meaning: str
    extra: dict = field(default_factory=dict)


def percentile(samples: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


def latency_summary(samples_ms: list[float]) -> dict:
    return {"p50_ms": round(percentile(samples_ms, 0.50), 3),
            "p99_ms": round(percentile(samples_ms, 0.99), 3),
            "p999_ms": round(percentile(samples_ms, 0.999), 3),
            "samples": len(samples_ms)}


def git_commit() -> str:
    with contextlib.suppress(Exception):
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    return "unknown"


def write_results(results: list[Result], path: Path = RESULTS_PATH) -> dict:
    """Merge into the results file: the newest run wins per benchmark name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existing: dict[str, dict] = {}
    if path.exists():
        with contextlib.suppress(ValueError, KeyError):
            existing = {r["name"]: r for r in json.loads(path.read_text())["results"]}
    for result in results:
        existing[result.name] = asdict(result)
    document = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": git_commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": sorted(existing.values(), key=lambda r: r["name"]),
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return document


class ProcessSuite:
    """NATS and the named services (and optionally the gateway) as child processes on
    free ports, each service with its own SQLite file under ``root``."""

    def __init__(self, root: Path, services: tuple[str, ...], gateway: bool = False,
                 extra_env: dict[str, str] | None = None,
                 database_urls: dict[str, str] | None = None,
                 metrics: tuple[str, ...] = ()) -> None:
        self.root = root
        self.database_urls = database_urls or {}
        self.services = services
        self.with_gateway = gateway
        self.nats = NatsServer(root / "nats")
        self.ports = {s: free_port() for s in
                      ("identity", "registration", "order", "flow", "incentive")}
        self.gateway_port = free_port()
        # Services that serve their Prometheus metrics, on these ports.
        self.metrics_ports = {s: free_port() for s in metrics}
        self.extra_env = extra_env or {}
        self.processes: dict[str, subprocess.Popen] = {}

    def env(self) -> dict[str, str]:
        private_key, public_key = generate_keypair(self.root / "keys")
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUDAO_")}
        env.update({
            "QUDAO_NATS_URL": self.nats.url,
            "QUDAO_JWT_PUBLIC_KEY_FILE": str(public_key),
            "QUDAO_JWT_PRIVATE_KEY_FILE": str(private_key),
            "QUDAO_IDENTITY_ADDR": f"127.0.0.1:{self.ports['identity']}",
            "QUDAO_IDENTITY_OPTION_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "QUDAO_LOG_LEVEL": "WARNING",
            "QUDAO_GATEWAY_PORT": str(self.gateway_port),
        })
        for service, port in self.ports.items():
            upper = service.upper()
            env[f"QUDAO_{upper}_GRPC_PORT"] = str(port)
            env[f"QUDAO_GATEWAY_{upper}_ADDR"] = f"127.0.0.1:{port}"
            env[f"QUDAO_{upper}_DATABASE_URL"] = self.database_urls.get(
                service, f"sqlite+aiosqlite:///{self.root / service}.db")
        for service, port in self.metrics_ports.items():
            env[f"QUDAO_{service.upper()}_METRICS_PORT"] = str(port)
        env.update(self.extra_env)
        return env

    def addr(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    async def start(self) -> ProcessSuite:
        self.root.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.nats.start)
        env = self.env()
        names = list(self.services) + (["gateway"] if self.with_gateway else [])
        for name in names:
            module = "gateway" if name == "gateway" else f"services.{name}"
            log = (self.root / f"{name}.log").open("ab")
            self.processes[name] = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                [sys.executable, "-m", module], env=env, stdout=log, stderr=log,
                start_new_session=True)
            log.close()
        deadline = time.monotonic() + 90
        for service in self.services:
            while not await _serving(self.addr(service)):
                if time.monotonic() > deadline or self.processes[service].poll() is not None:
                    raise RuntimeError(f"{service} did not start; see {self.root / service}.log")
                await asyncio.sleep(0.2)
        if self.with_gateway:
            async with httpx.AsyncClient() as client:
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{self.base_url}/healthz")).status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise RuntimeError("gateway did not start")
                    await asyncio.sleep(0.2)
        return self

    async def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                await asyncio.to_thread(process.wait, 15)
            except subprocess.TimeoutExpired:
                process.kill()
        await asyncio.to_thread(self.nats.stop)


async def _serving(address: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=0.5)
        except grpc.aio.AioRpcError:
            return False
    return response.status == health_pb2.HealthCheckResponse.SERVING


async def seed_dealer_with_catalog(suite: ProcessSuite, products: int = 3) -> dict:
    """Over gRPC: a region, a dealer with a sales user, and a small catalog. Returns the
    dealer id, the dealer's and the admin's access tokens and the product codes."""
    from qudao.common.v1 import money_pb2
    from qudao.identity.v1 import identity_pb2, identity_pb2_grpc
    from qudao.order.v1 import order_pb2, order_pb2_grpc
    from stdnum import ean
    from stdnum.cn import uscc

    async with grpc.aio.insecure_channel(suite.addr("identity")) as channel:
        identity = identity_pb2_grpc.IdentityServiceStub(channel)
        admin = (await identity.Login(identity_pb2.LoginRequest(
            username="admin", password=ADMIN_PASSWORD))).access_token
        auth = (("authorization", f"Bearer {admin}"),)
        region = (await identity.CreateOrgUnit(identity_pb2.CreateOrgUnitRequest(
            kind=identity_pb2.ORG_UNIT_KIND_REGION, name="华东", region_code="east"),
            metadata=auth)).org_unit
        body = "91310000MA1B00001"
        dealer = (await identity.CreateOrgUnit(identity_pb2.CreateOrgUnitRequest(
            kind=identity_pb2.ORG_UNIT_KIND_DEALER, name="上海基准医疗器械有限公司",
            parent_id=region.id, credit_code=body + uscc.calc_check_digit(body),
            tier=identity_pb2.DEALER_TIER_ONE, division_codes=["310000"],
            product_lines=["A系列"]), metadata=auth)).org_unit
        await identity.CreateUser(identity_pb2.CreateUserRequest(
            username="bench.sales", password="Bench-Dealer-Passw0rd!",
            roles=[identity_pb2.ROLE_DEALER_SALES], org_unit_id=dealer.id), metadata=auth)
        dealer_token = (await identity.Login(identity_pb2.LoginRequest(
            username="bench.sales", password="Bench-Dealer-Passw0rd!"))).access_token
    codes = [f"B-{n:04d}" for n in range(1, products + 1)]
    async with grpc.aio.insecure_channel(suite.addr("order")) as channel:
        order = order_pb2_grpc.OrderServiceStub(channel)
        await order.UpsertProducts(order_pb2.UpsertProductsRequest(products=[
            order_pb2.Product(code=code, name=f"基准产品 {code}", gtin=(
                f"0690{n:09d}" + ean.calc_check_digit(f"0690{n:09d}")), product_line="A系列",
                unit="盒", list_price=money_pb2.Money(amount_minor=10_000, currency="CNY"))
            for n, code in enumerate(codes, start=1)]), metadata=auth)
    return {"dealer_id": dealer.id, "dealer_token": dealer_token, "admin_token": admin,
            "product_codes": codes}

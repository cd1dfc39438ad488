"""Hosting one service process: the grpc.aio server with standard health checking,
reflection and interceptors, the background workers (outbox relay, consumers), a
Prometheus endpoint, and a graceful stop (NOT_SERVING, finish in-flight calls, drain
NATS, close the database)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from nats.aio.client import Client as NatsClient
from prometheus_client import start_http_server
from qudao.common.v1 import progress_pb2, progress_pb2_grpc
from sqlalchemy import Table

from shared.auth import TokenVerifier
from shared.bus.connection import established
from shared.db import Database
from shared.idempotency import PRUNE_SECONDS, ClientRequests
from shared.interceptors import ContextInterceptor, Handlers
from shared.logging import get_logger
from shared.progress import ImportProgressServicer
from shared.settings import ServiceSettings
from shared.workers import every

log = get_logger(__name__)


@dataclass
class GrpcService:
    """A servicer and how to add it: ``add(servicer, server)`` and its full proto name."""

    add: Callable[[object, Handlers], None]
    servicer: object
    full_name: str


@dataclass
class Wiring:
    """Everything a service's bootstrap built, for the host to run."""

    db: Database
    nats: NatsClient
    services: list[GrpcService]
    workers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    public_methods: frozenset[str] = frozenset()
    is_revoked: Callable[[object], bool] | None = None
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # The service's ``client_requests`` table: calls with an Idempotency-Key answer once.
    client_requests: Table | None = None


IMPORT_PROGRESS = progress_pb2.DESCRIPTOR.services_by_name["ImportProgressService"].full_name
STOP_STEP_SECONDS = 5.0
# The health service name of the liveness probe: SERVING from start to stop, whatever the
# database or NATS do, so a dependency's outage never gets the pod restarted. The overall
# status ("") is the readiness probe's: SERVING only while both answer.
LIVENESS = "liveness"


class ServiceHost:
    def __init__(self, settings: ServiceSettings, wiring: Wiring) -> None:
        self.settings = settings
        self.wiring = wiring
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self.port: int = 0
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> int:
        verifier = TokenVerifier.from_file(self.settings.jwt_public_key_file)
        workers = list(self.wiring.workers)
        requests = None
        if self.wiring.client_requests is not None:
            requests = ClientRequests(self.wiring.db, self.wiring.client_requests)
            workers.append(every(PRUNE_SECONDS, requests.prune, "idempotency_keys_prune",
                                 first_wait=True))
        context = ContextInterceptor(
            self.settings.service,
            verifier,
            public_methods=self.wiring.public_methods,
            is_revoked=self.wiring.is_revoked,
            client_requests=requests,
        )
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
        )
        # Every handler is added through the interceptor, which wraps it once.
        handlers = context.registrar(server)
        names = [reflection.SERVICE_NAME, health.SERVICE_NAME, IMPORT_PROGRESS]
        # Every service answers how far its running file imports have come.
        progress_pb2_grpc.add_ImportProgressServiceServicer_to_server(
            ImportProgressServicer(), handlers)
        for grpc_service in self.wiring.services:
            grpc_service.add(grpc_service.servicer, handlers)
            names.append(grpc_service.full_name)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, handlers)
        # (enable_server_reflection would pick the thread-pool servicer: not given the
        # grpc.aio server itself.)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(names), handlers)
        address = f"{self.settings.grpc_host}:{self.settings.grpc_port}"
        self.port = server.add_insecure_port(address)
        if self.port == 0:
            raise RuntimeError(f"cannot listen on {address}")
        await self._set_serving(False)
        await self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        await server.start()
        self.server = server
        if self.settings.metrics_port:
            start_http_server(self.settings.metrics_port, addr=self.settings.grpc_host)
        for worker in workers:
            self._tasks.append(asyncio.create_task(
                self._supervise(worker), name=getattr(worker, "__qualname__", "worker")))
        # SERVING once the database answers and NATS is connected (and the stream
        # declared); without NATS the service answers all the same, NOT_SERVING until
        # the connection comes (_watch_dependencies).
        await self.wiring.db.ping()
        connected = await established(self.wiring.nats, timeout=5)
        if connected:
            await self.wiring.nats.flush(timeout=5)
        await self._set_serving(connected)
        self._tasks.append(asyncio.create_task(self._watch_dependencies(connected),
                                               name="watch_dependencies"))
        log.info("service_started", address=f"{self.settings.grpc_host}:{self.port}")
        return self.port

    async def _set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self.health.set("", status)
        for grpc_service in self.wiring.services:
            await self.health.set(grpc_service.full_name, status)

    async def _watch_dependencies(self, serving: bool, interval: float = 1.0) -> None:
        """NOT_SERVING while the database or NATS is unreachable, SERVING again after."""
        while True:
            await asyncio.sleep(interval)
            healthy = self.wiring.nats.is_connected
            if healthy:
                try:
                    await asyncio.wait_for(self.wiring.db.ping(), timeout=interval * 2)
                except Exception:
                    healthy = False
            if healthy != serving:
                serving = healthy
                log.warning("health_changed", serving=serving)
                await self._set_serving(serving)

    async def _supervise(self, worker: Callable[[], Awaitable[None]]) -> None:
        """Keep a background worker running; a crash is logged and the worker restarted."""
        while True:
            try:
                await worker()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker_crashed", worker=getattr(worker, "__qualname__", "?"))
                await asyncio.sleep(1)

    async def stop(self, grace: float = 5.0) -> None:
        await self._set_serving(False)
        await self.health.set(LIVENESS, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.server is not None:
            await self.server.stop(grace)
        for task in self._tasks:
            task.cancel()
        # Every step is bounded: a stuck worker or connection must not keep the process
        # (or Kubernetes' termination grace period) waiting forever.
        stuck = set(self._tasks)
        for _ in range(3):  # a library may swallow a cancel: ask again
            if not stuck:
                break
            _, stuck = await asyncio.wait(stuck, timeout=STOP_STEP_SECONDS / 3)
            for task in stuck:
                task.cancel()
        for task in stuck:
            log.error("worker_did_not_stop", worker=task.get_name())
        for callback in self.wiring.on_stop:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(callback(), STOP_STEP_SECONDS)
        try:
            await asyncio.wait_for(self.wiring.nats.drain(), STOP_STEP_SECONDS)
        except Exception:
            with contextlib.suppress(Exception):
                await self.wiring.nats.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.wiring.db.dispose(), STOP_STEP_SECONDS)
        log.info("service_stopped")


async def run_until_signalled(host: ServiceHost) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await host.start()
    await stop.wait()
    await host.stop()

"""Runs the suite inside the test's event loop: a real nats-server the test can stop and
restart, every service on its own gRPC port with its own database (SQLite files, or
fresh PostgreSQL databases), and the gateway on a real HTTP port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import uuid
from pathlib import Path

import httpx
import uvicorn

from gateway.app import create_app
from gateway.server import uvicorn_options
from shared.auth import generate_keypair
from shared.bus.permissions import OPS
from shared.db import migrate
from shared.host import ServiceHost
from shared.runner import start_service
from shared.settings import SERVICES, GatewaySettings
from suite.natsserver import NatsServer, free_port, nats_passwords, password_variables
from suite.services import bootstrap_of

ADMIN_PASSWORD = "Admin-Passw0rd!"
# The gateway is plain HTTP on loopback; one TLS context for every client spares
# loading the CA bundle again for each (40 ms apiece, hundreds of clients per run).
_TLS_CONTEXT = ssl.create_default_context()
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_reachable() -> bool:
    with contextlib.suppress(OSError):
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    return False


async def create_pg_databases(prefix: str, services) -> dict[str, str]:
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        urls = {}
        for service in services:
            name = f"{prefix}_{service}"
            await connection.execute(f'CREATE DATABASE "{name}"')
            urls[service] = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        return urls
    finally:
        await connection.close()


async def drop_pg_databases(prefix: str, services) -> None:
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        for service in services:
            await connection.execute(f'DROP DATABASE IF EXISTS "{prefix}_{service}" WITH (FORCE)')
    finally:
        await connection.close()


class GatewayAccess:
    """Calls to a running gateway at ``base_url`` (the tests' suite, or `qudao up`)."""

    base_url: str

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30,
                                 verify=_TLS_CONTEXT)

    async def login(self, username: str, password: str) -> str:
        async with self.client() as client:
            response = await client.post("/api/v1/auth/login",
                                         json={"username": username, "password": password})
            response.raise_for_status()
            return response.json()["access_token"]


async def subject_count(url: str, stream: str, subject: str, **credentials) -> int:
    """How many messages of ``subject`` the JetStream ``stream`` holds."""
    import nats

    nc = await nats.connect(url, **credentials)
    try:
        info = await nc.jetstream().stream_info(stream, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)
    finally:
        await nc.close()


class Suite(GatewayAccess):
    def __init__(self, root: Path, *, services=SERVICES, backend: str = "sqlite",
                 options: dict[str, str] | None = None, nats=None) -> None:
        self.root = root
        self.services = tuple(services)
        self.backend = backend
        self.options = options or {}
        # Every process connects as its own NATS user, with the permissions production
        # has (shared/bus/permissions.py): a service publishing outside them fails. The
        # tests' own connections (no credentials) act as the operators' user.
        self.nats_passwords = nats_passwords(root / "keys")
        self.nats = nats if nats is not None else NatsServer(
            root / "nats", users=self.nats_passwords, anonymous_user=OPS)
        self.private_key, self.public_key = generate_keypair(root / "keys")
        self.hosts: dict[str, ServiceHost] = {}
        self.ports = {service: free_port() for service in SERVICES}
        self.gateway_port = free_port()
        self.database_urls: dict[str, str] = {}
        self._pg_prefix = f"qudao_t_{uuid.uuid4().hex[:10]}"
        self._gateway: uvicorn.Server | None = None
        self._gateway_task: asyncio.Task | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def env(self) -> dict[str, str]:
        env = {
            "QUDAO_NATS_URL": self.nats.url,
            "QUDAO_JWT_PUBLIC_KEY_FILE": str(self.public_key),
            "QUDAO_JWT_PRIVATE_KEY_FILE": str(self.private_key),
            "QUDAO_IDENTITY_ADDR": f"127.0.0.1:{self.ports['identity']}",
            "QUDAO_IDENTITY_OPTION_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "QUDAO_LOG_LEVEL": "WARNING",
            # Cheap password hashing: the tests log in hundreds of times; the hash is
            # still argon2id, only its cost is lowered.
            "QUDAO_IDENTITY_OPTION_ARGON2_TIME_COST": "1",
            "QUDAO_IDENTITY_OPTION_ARGON2_MEMORY_KIB": "8192",
            "QUDAO_IDENTITY_OPTION_ARGON2_PARALLELISM": "1",
        }
        for service in SERVICES:
            upper = service.upper()
            env[f"QUDAO_{upper}_GRPC_PORT"] = str(self.ports[service])
            env[f"QUDAO_GATEWAY_{upper}_ADDR"] = f"127.0.0.1:{self.ports[service]}"
            if service in self.database_urls:
                env[f"QUDAO_{upper}_DATABASE_URL"] = self.database_urls[service]
        env["QUDAO_GATEWAY_PORT"] = str(self.gateway_port)
        env.update(password_variables(self.nats_passwords))
        env.update(self.options)
        return env

    async def start(self) -> Suite:
        try:
            await asyncio.to_thread(self.nats.start)
            if self.backend == "postgres":
                self.database_urls = await create_pg_databases(self._pg_prefix, self.services)
            else:
                self.database_urls = {
                    s: f"sqlite+aiosqlite:///{self.root / (s + '.db')}" for s in self.services}
            for service in self.services:
                await self.start_service(service)
            await self.start_gateway()
        except BaseException:
            # A suite that fails to start must not leave its NATS server and services
            # running behind the failed test.
            with contextlib.suppress(Exception):
                await self.stop()
            raise
        return self

    async def start_service(self, service: str) -> ServiceHost:
        bootstrap = bootstrap_of(service)
        settings = bootstrap.Settings.from_env(self.env())
        await asyncio.to_thread(migrate, bootstrap.MIGRATIONS, settings.database_url)
        host = await start_service(settings, bootstrap.build)
        self.hosts[service] = host
        return host

    async def stop_service(self, service: str) -> None:
        host = self.hosts.pop(service, None)
        if host is not None:
            await host.stop(grace=1)

    async def start_gateway(self, env: dict[str, str] | None = None) -> None:
        """Start the gateway (with ``env`` over the suite's environment) and wait until it
        is ready (/readyz/local: its revocation list has caught up), as Kubernetes does
        before sending it traffic."""
        settings = GatewaySettings.from_env({**self.env(), **(env or {})})
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.gateway_port,
                                log_level="warning", access_log=False, lifespan="on",
                                **uvicorn_options())
        self._gateway = uvicorn.Server(config)
        self._gateway_task = asyncio.create_task(self._gateway.serve())
        deadline = asyncio.get_running_loop().time() + 20
        while not self._gateway.started:
            if asyncio.get_running_loop().time() > deadline or self._gateway_task.done():
                raise RuntimeError("gateway did not start")
            await asyncio.sleep(0.02)
        async with self.client() as client:
            while (await client.get("/readyz/local")).status_code != 200:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError("gateway did not become ready (/readyz/local)")
                await asyncio.sleep(0.02)

    @property
    def gateway_app(self):
        return self._gateway.config.app if self._gateway is not None else None

    async def stop_gateway(self) -> None:
        if self._gateway is not None:
            self._gateway.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._gateway_task, 10)
            self._gateway = None

    async def stop(self) -> None:
        await self.stop_gateway()
        for service in list(self.hosts):
            await self.stop_service(service)
        await asyncio.to_thread(self.nats.stop)
        if self.backend == "postgres":
            await drop_pg_databases(self._pg_prefix, self.services)


async def eventually(check, timeout: float = 10.0, interval: float = 0.05):
    """Poll ``check()`` (sync or async) until it returns a truthy value or time runs out."""
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value {last!r})")

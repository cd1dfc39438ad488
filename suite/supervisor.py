"""``qudao up``: a real nats-server with JetStream, the six services (each migrating its
own database at start) and the gateway, as child processes; waits until all are healthy,
restarts a child that dies, and stops everything cleanly on Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared.auth import generate_keypair
from shared.settings import (
    DEFAULT_GRPC_PORTS,
    DEFAULT_METRICS_PORTS,
    GATEWAY_METRICS_PORT,
    SERVICES,
    default_sqlite_url,
)
from suite.natsserver import NatsServer, nats_passwords, password_variables

STARTUP_TIMEOUT_SECONDS = 90


def suite_environment(var_dir: Path, nats_url: str, gateway_port: int) -> dict[str, str]:
    """The environment every child gets (less the other processes' NATS passwords, see
    ``Child``); variables already set win, so the same command runs against PostgreSQL
    when QUDAO_<SERVICE>_DATABASE_URL says so."""
    private_key, public_key = generate_keypair(var_dir / "keys")
    env = {
        "QUDAO_NATS_URL": nats_url,
        "QUDAO_JWT_PUBLIC_KEY_FILE": str(public_key),
        "QUDAO_JWT_PRIVATE_KEY_FILE": str(private_key),
        "QUDAO_GATEWAY_PORT": str(gateway_port),
        "QUDAO_IDENTITY_OPTION_BOOTSTRAP_ADMIN_PASSWORD": admin_password(var_dir),
    }
    for service in SERVICES:
        upper = service.upper()
        port = os.environ.get(f"QUDAO_{upper}_GRPC_PORT", str(DEFAULT_GRPC_PORTS[service]))
        env[f"QUDAO_{upper}_DATABASE_URL"] = default_sqlite_url(service, var_dir)
        env[f"QUDAO_{upper}_GRPC_PORT"] = port
        env[f"QUDAO_GATEWAY_{upper}_ADDR"] = f"127.0.0.1:{port}"
        env[f"QUDAO_{upper}_METRICS_PORT"] = str(DEFAULT_METRICS_PORTS[service])
    env["QUDAO_GATEWAY_METRICS_PORT"] = str(GATEWAY_METRICS_PORT)
    env["QUDAO_IDENTITY_ADDR"] = env["QUDAO_GATEWAY_IDENTITY_ADDR"]
    # Each process its own NATS user and password, as in a cluster (the operators' one,
    # for `qudao dlq`, is kept in var/keys/nats-passwords.json).
    env.update(password_variables(nats_passwords(var_dir / "keys")))
    env.update({key: value for key, value in os.environ.items() if key.startswith("QUDAO_")})
    return env


def admin_password(var_dir: Path) -> str:
    """The first HQ admin's password: from the environment, or made once and kept."""
    if given := os.environ.get("QUDAO_IDENTITY_OPTION_BOOTSTRAP_ADMIN_PASSWORD"):
        return given
    path = var_dir / "admin-password.txt"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text("Qd-" + secrets.token_urlsafe(12) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


class Child:
    def __init__(self, name: str, module: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.module = module
        own = f"QUDAO_{name.upper()}_NATS_PASSWORD"
        self.env = {key: value for key, value in env.items()
                    if key == own or not key.endswith("_NATS_PASSWORD")}
        self.log_path = log_dir / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.module, env=self.env, stdout=log, stderr=log,
                start_new_session=True,
            )

    async def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


class Supervisor:
    def __init__(self, var_dir: Path, nats_port: int = 4322, gateway_port: int = 8080) -> None:
        self.var_dir = var_dir
        self.nats = NatsServer(var_dir / "nats", port=nats_port,
                               users=nats_passwords(var_dir / "keys"))
        self.gateway_port = gateway_port
        self.children: list[Child] = []
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        log_dir = self.var_dir / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        print(f"starting nats-server (JetStream) on {self.nats.url}", flush=True)
        await asyncio.to_thread(self.nats.start)
        env = {**os.environ, **suite_environment(self.var_dir, self.nats.url, self.gateway_port)}
        self.children = [Child(s, f"services.{s}", env, log_dir) for s in SERVICES]
        self.children.append(Child("gateway", "gateway", env, log_dir))
        try:
            for child in self.children:
                await child.start()
            await self._wait_healthy()
            print(f"Qudao is up: gateway http://127.0.0.1:{self.gateway_port} "
                  f"(API docs /docs, readiness /readyz, logs {log_dir})", flush=True)
            print(f"HQ admin: username 'admin', password in {self.var_dir / 'admin-password.txt'}"
                  if not os.environ.get("QUDAO_IDENTITY_OPTION_BOOTSTRAP_ADMIN_PASSWORD")
                  else "HQ admin: username 'admin' with the configured password", flush=True)
            print("press Ctrl-C to stop", flush=True)
            await self._watch()
        finally:
            print("stopping...", flush=True)
            for child in reversed(self.children):
                await child.stop()
            await asyncio.to_thread(self.nats.stop)
            print("stopped", flush=True)

    async def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        pending = set(SERVICES)
        while pending and time.monotonic() < deadline and not self._stopping.is_set():
            for child in self.children:
                if child.process and child.process.returncode is not None:
                    raise SystemExit(f"{child.name} exited at start; see {child.log_path}")
            for service in list(pending):
                port = os.environ.get(f"QUDAO_{service.upper()}_GRPC_PORT",
                                      DEFAULT_GRPC_PORTS[service])
                if await _grpc_serving(f"127.0.0.1:{port}"):
                    pending.discard(service)
                    print(f"  {service}: SERVING", flush=True)
            await asyncio.sleep(0.3)
        if pending:
            raise SystemExit(f"not healthy in time: {', '.join(sorted(pending))} (see var/log)")
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(f"http://127.0.0.1:{self.gateway_port}/readyz")
                    if response.status_code == 200:
                        return
                await asyncio.sleep(0.3)
        raise SystemExit("the gateway did not become ready in time (see var/log/gateway.log)")

    async def _watch(self) -> None:
        while not self._stopping.is_set():
            for child in self.children:
                if child.process and child.process.returncode is not None:
                    child.restarts += 1
                    print(f"{child.name} exited ({child.process.returncode}); restarting "
                          f"(see {child.log_path})", flush=True)
                    await asyncio.sleep(min(2 ** child.restarts, 30))
                    await child.start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 1.0)


async def _grpc_serving(address: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=0.5)
        except grpc.aio.AioRpcError:
            return False
    return response.status == health_pb2.HealthCheckResponse.SERVING

"""``qudao up``: a real nats-server with JetStream, the six services (each migrating its
own database at start) and the gateway, as child processes; waits until all are healthy,
and stops everything cleanly on Ctrl-C or SIGTERM.

While it runs it keeps the suite up by itself:

- any child that dies (nats-server included) is started again, after 0.5 s, then with
  a delay doubling at each further death up to 30 s (a child that ran a minute counts as
  healthy again: its next death restarts it at once);
- children die with the supervisor, however it ends (kill -9 included): each asks the
  kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG), so no orphan keeps the
  ports;
- one suite per var directory: a second ``qudao up`` finds the first's lock (var/
  qudao.pid) or its ports taken, says so, and exits without starting anything."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path
from typing import IO

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
FIRST_RESTART_DELAY_SECONDS = 0.5
MAX_RESTART_DELAY_SECONDS = 30.0
STABLE_SECONDS = 60.0
WATCH_INTERVAL_SECONDS = 0.2
PR_SET_PDEATHSIG = 1


class AlreadyRunning(SystemExit):
    """Another suite holds this var directory or the ports (the message says which)."""


def die_with_parent():
    """A ``preexec_fn``: the child gets SIGTERM when the supervisor (the thread that
    forked it: the event loop's, which lives as long as the supervisor) dies."""
    parent = os.getpid()
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork

    def arrange() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the supervisor died before the request took
            os._exit(1)

    return arrange


class Backoff:
    """The delay before restarting a child that died after running ``ran_for`` s."""

    def __init__(self) -> None:
        self.deaths = 0

    def next_delay(self, ran_for: float) -> float:
        if ran_for >= STABLE_SECONDS:
            self.deaths = 0
        delay = min(FIRST_RESTART_DELAY_SECONDS * 2 ** self.deaths, MAX_RESTART_DELAY_SECONDS)
        self.deaths += 1
        return delay


def claim_var_dir(var_dir: Path) -> IO:
    """Lock ``var_dir/qudao.pid`` for this supervisor's life (the kernel drops the lock
    when the process ends, however it ends)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    handle = (var_dir / "qudao.pid").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise AlreadyRunning(f"Qudao is already running from {var_dir} (supervisor pid "
                             f"{holder}); stop it first (Ctrl-C, or kill {holder})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def refuse_taken_ports(ports: dict[str, int]) -> None:
    for name, port in ports.items():
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                raise AlreadyRunning(f"port {port} ({name}) is already in use: is another "
                                     "Qudao running? Not starting.")


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
        self.started_at = 0.0
        self.restart_at: float | None = None
        self.backoff = Backoff()

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.module, env=self.env, stdout=log, stderr=log,
                start_new_session=True, preexec_fn=die_with_parent(),
            )
        self.started_at = time.monotonic()
        self.restart_at = None

    def exit_code(self) -> int | None:
        return self.process.returncode if self.process is not None else None

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


class NatsChild:
    """The nats-server, watched and restarted like the other children (on the same port
    and store: its streams, and the events in them, survive)."""

    name = "nats"

    def __init__(self, server: NatsServer) -> None:
        self.server = server
        self.log_path = server.store_dir / "nats.log"
        self.restarts = 0
        self.started_at = 0.0
        self.restart_at: float | None = None
        self.backoff = Backoff()

    async def start(self) -> None:
        # Forked from the event loop's thread (see die_with_parent); waits until it
        # listens, a fraction of a second.
        self.server.start(preexec_fn=die_with_parent())
        self.started_at = time.monotonic()
        self.restart_at = None

    def exit_code(self) -> int | None:
        process = self.server.process
        return process.poll() if process is not None else None

    async def stop(self) -> None:
        await asyncio.to_thread(self.server.stop)


class Supervisor:
    def __init__(self, var_dir: Path, nats_port: int = 4322, gateway_port: int = 8080) -> None:
        self.var_dir = var_dir
        self.nats = NatsServer(var_dir / "nats", port=nats_port,
                               users=nats_passwords(var_dir / "keys"))
        self.gateway_port = gateway_port
        self.children: list[Child] = []
        self._stopping = asyncio.Event()

    def _ports(self) -> dict[str, int]:
        ports = {"gateway": self.gateway_port, "nats": self.nats.port}
        for service in SERVICES:
            ports[service] = int(os.environ.get(f"QUDAO_{service.upper()}_GRPC_PORT",
                                                DEFAULT_GRPC_PORTS[service]))
        return ports

    async def run(self) -> None:
        lock = claim_var_dir(self.var_dir)
        try:
            refuse_taken_ports(self._ports())
            await self._run()
        finally:
            lock.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        log_dir = self.var_dir / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        print(f"starting nats-server (JetStream) on {self.nats.url}", flush=True)
        nats = NatsChild(self.nats)
        await nats.start()
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
            await self._watch([nats, *self.children])
        finally:
            print("stopping...", flush=True)
            for child in reversed(self.children):
                await child.stop()
            await nats.stop()
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

    async def _watch(self, units: list) -> None:
        """Restart whatever died, each after its own backoff (one crash-looping child
        never delays another's restart)."""
        while not self._stopping.is_set():
            now = time.monotonic()
            for unit in units:
                code = unit.exit_code()
                if code is None:
                    continue
                if unit.restart_at is None:
                    delay = unit.backoff.next_delay(now - unit.started_at)
                    unit.restart_at = now + delay
                    print(f"{unit.name} exited ({code}); restarting in {delay:.1f}s "
                          f"(see {unit.log_path})", flush=True)
                elif now >= unit.restart_at:
                    unit.restarts += 1
                    try:
                        await unit.start()
                    except Exception as exc:  # it goes on dying: the next delay is longer
                        unit.restart_at = None
                        print(f"{unit.name} failed to restart: {exc}", flush=True)
                    else:
                        print(f"{unit.name} restarted (restart {unit.restarts})", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), WATCH_INTERVAL_SECONDS)


async def _grpc_serving(address: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=0.5)
        except grpc.aio.AioRpcError:
            return False
    return response.status == health_pb2.HealthCheckResponse.SERVING

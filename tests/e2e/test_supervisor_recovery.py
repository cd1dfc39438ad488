"""`qudao up` recovers by itself, with real processes: a stream of orders keeps going
while nats-server and each service in turn are killed with SIGKILL; every order the
dealer was told about exists once and its OrderSubmitted event is in the stream once.
Killing the supervisor leaves no orphan; a second `qudao up` says the suite runs.

The short versions run in `make test`; `make fault` runs the long ones (more orders,
every process killed)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shared.events.order import ORDER_SUBMITTED
from shared.settings import SERVICES
from suite.natsserver import free_port
from tests.harness import ADMIN_PASSWORD, GatewayAccess, eventually, subject_count
from tests.world import build_world

RECOVERY_SECONDS = 30  # restarted and serving again within this (a loaded machine)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def descendants(pid: int) -> dict[int, str]:
    """Processes below ``pid`` (children, and theirs): pid → command line."""
    children: dict[int, list[int]] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(
                b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, pending = {}, [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found[child] = commands.get(child, "")
            pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class RunningSuite(GatewayAccess):
    """`qudao up` as a process, with what tests/world.py needs (client, login)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.var_dir = root / "var"
        self.gateway_port, self.nats_port = free_port(), free_port()
        self.ports = {service: free_port() for service in SERVICES}
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUDAO_")}
        env.update({f"QUDAO_{s.upper()}_GRPC_PORT": str(p) for s, p in self.ports.items()})
        env.update({f"QUDAO_{s.upper()}_METRICS_PORT": str(free_port())
                    for s in [*SERVICES, "gateway"]})
        env.update({"QUDAO_IDENTITY_OPTION_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
                    "QUDAO_IDENTITY_OPTION_ARGON2_TIME_COST": "1",
                    "QUDAO_IDENTITY_OPTION_ARGON2_MEMORY_KIB": "8192",
                    "QUDAO_IDENTITY_OPTION_ARGON2_PARALLELISM": "1",
                    "QUDAO_LOG_LEVEL": "WARNING"})
        self.env = env
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []

    def command(self) -> list[str]:
        return [str(Path(sys.executable).parent / "qudao"), "up", "--var-dir",
                str(self.var_dir), "--port", str(self.gateway_port),
                "--nats-port", str(self.nats_port)]

    def start(self) -> None:
        self.process = subprocess.Popen(self.command(), env=self.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if line.startswith("press Ctrl-C"):
                break
        assert any("Qudao is up" in line for line in self.output), "".join(self.output)
        # Keep reading what the supervisor says (restarts), without blocking it.
        self._reader = asyncio.get_event_loop().run_in_executor(None, self._read_rest)

    def _read_rest(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        # Whatever is left (a failed test) must not outlive it.
        for pid in descendants(self.process.pid) if self.process else {}:
            os.kill(pid, signal.SIGKILL)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def pid_of(self, name: str) -> int:
        wanted = "nats-server" if name == "nats" else (
            "-m gateway" if name == "gateway" else f"-m services.{name}")
        [pid] = [pid for pid, command in descendants(self.process.pid).items()
                 if wanted in command and alive(pid)]
        return pid

    async def serving(self, name: str) -> bool:
        async with self.client() as client:
            try:
                ready = (await client.get("/readyz", timeout=2)).json()
            except (httpx.HTTPError, ValueError):
                return False
        if name in ("nats", "gateway"):
            return ready.get("status") == "ok"
        return ready.get("services", {}).get(name) == "SERVING"

    async def kill_and_time_recovery(self, name: str) -> float:
        """SIGKILL the process; seconds until a new one serves."""
        old = self.pid_of(name)
        os.kill(old, signal.SIGKILL)
        killed = time.monotonic()
        while time.monotonic() - killed < RECOVERY_SECONDS:
            await asyncio.sleep(0.1)
            try:
                new = self.pid_of(name)
            except ValueError:
                continue
            if new != old and await self.serving(name):
                return time.monotonic() - killed
        raise AssertionError(f"{name} not back within {RECOVERY_SECONDS}s:\n"
                             + "".join(self.output[-20:]))

    async def submitted_events(self) -> int:
        passwords = json.loads((self.var_dir / "keys" / "nats-passwords.json").read_text())
        return await subject_count(f"nats://127.0.0.1:{self.nats_port}", "QUDAO_ORDER",
                                   ORDER_SUBMITTED.subject, user="ops",
                                   password=passwords["ops"])


async def _at_least(count, wanted: int) -> bool:
    return await count >= wanted


class OrderStream:
    """A dealer submitting orders one after another, each retried (with its reference:
    idempotent) until the gateway confirms it."""

    def __init__(self, suite: RunningSuite, token: str) -> None:
        self.suite, self.token = suite, token
        self.confirmed: list[str] = []
        self.retries = 0
        self._stop = asyncio.Event()

    async def run(self, count: int) -> None:
        async with self.suite.client(self.token) as client:
            for number in range(count):
                reference = f"PO-FAULT-{number:05d}"
                while True:
                    try:
                        response = await client.post("/api/v1/orders", json={
                            "lines": [{"product_code": "A-001", "quantity": 1}],
                            "client_order_ref": reference}, timeout=10)
                        if response.status_code in (200, 201):
                            self.confirmed.append(response.json()["id"])
                            break
                        assert response.status_code >= 500 or response.status_code == 429, \
                            response.text
                    except httpx.HTTPError:
                        pass
                    self.retries += 1
                    await asyncio.sleep(0.2)
                await asyncio.sleep(0.02)

    async def stored(self) -> list[dict]:
        orders, token = [], ""
        async with self.suite.client(self.token) as client:
            while True:
                page = (await client.get("/api/v1/orders", params={
                    "page_size": 500, "page_token": token})).json()
                orders += page["orders"]
                token = page.get("page", {}).get("next_page_token", "")
                if not token:
                    return orders


async def run_fault_scenario(tmp_path: Path, victims: list[str], orders: int) -> dict:
    suite = RunningSuite(tmp_path)
    suite.start()
    recovery: dict[str, float] = {}
    try:
        world = await build_world(suite, dealers=1)
        stream = OrderStream(suite, world.dealers[0].token)
        submitting = asyncio.create_task(stream.run(orders))
        for victim in victims:
            await asyncio.sleep(0.5)
            recovery[victim] = await suite.kill_and_time_recovery(victim)
        await asyncio.wait_for(submitting, 300)
        stored = await stream.stored()
        # Every confirmed order exists once; none the dealer was not told about.
        assert sorted(o["id"] for o in stored) == sorted(set(stream.confirmed))
        assert len(stream.confirmed) == orders
        # Each order's event reached the stream once (the outbox held it through the
        # outage, the stream deduplicates a resend).
        await eventually(lambda: _at_least(suite.submitted_events(), orders), timeout=60,
                         interval=0.5)
        assert await suite.submitted_events() == orders
    finally:
        suite.stop()
    print(f"recovery seconds: {recovery}; retried requests: {stream.retries}")
    return recovery


async def test_nats_a_service_and_the_gateway_killed_during_orders_lose_nothing(tmp_path):
    recovery = await run_fault_scenario(tmp_path, ["nats", "order", "gateway"], orders=20)
    assert all(seconds < RECOVERY_SECONDS for seconds in recovery.values()), recovery


@pytest.mark.fault
async def test_every_process_killed_in_turn_during_orders(tmp_path):
    recovery = await run_fault_scenario(
        tmp_path, ["nats", *SERVICES, "gateway", "nats", "order"], orders=300)
    assert all(seconds < RECOVERY_SECONDS for seconds in recovery.values()), recovery


async def test_second_qudao_up_says_the_suite_runs_and_supervisor_death_leaves_no_orphan(
        tmp_path):
    suite = RunningSuite(tmp_path)
    suite.start()
    try:
        second = await asyncio.to_thread(subprocess.run, suite.command(), env=suite.env,
                                         capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "already running" in second.stderr, second.stderr + second.stdout
        assert await suite.serving("gateway")  # the first suite is untouched
        # Another var directory, the same ports: refused too, naming the port.
        elsewhere = [*suite.command()]
        elsewhere[elsewhere.index("--var-dir") + 1] = str(tmp_path / "other")
        third = await asyncio.to_thread(subprocess.run, elsewhere, env=suite.env,
                                        capture_output=True, text=True, timeout=60)
        assert third.returncode == 1 and "in use" in third.stderr, third.stderr

        children = descendants(suite.process.pid)
        assert len(children) >= len(SERVICES) + 2  # services, gateway, nats
        os.kill(suite.process.pid, signal.SIGKILL)
        started = time.monotonic()
        with contextlib.suppress(AssertionError):  # named below
            await eventually(lambda: not any(alive(pid) for pid in children), timeout=30,
                             interval=0.1)
        orphans = {pid: command for pid, command in children.items() if alive(pid)}
        assert not orphans, orphans
        print(f"children gone {time.monotonic() - started:.2f}s after the supervisor")
        ports = [suite.gateway_port, suite.nats_port, *suite.ports.values()]
        assert not any(port_open(port) for port in ports)
    finally:
        suite.stop()
    # The var directory is free again: the suite starts over and serves.
    again = RunningSuite(tmp_path)
    again.start()
    try:
        assert await again.serving("gateway")
    finally:
        again.stop()

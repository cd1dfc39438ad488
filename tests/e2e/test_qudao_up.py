"""`qudao up` as a user runs it: NATS, five services and the gateway as processes, all
healthy, usable, and stopped cleanly by Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nats
import pytest

from shared.settings import SERVICES
from suite.natsserver import free_port


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_qudao_up_serves_and_stops_cleanly(tmp_path: Path):
    gateway_port, nats_port = free_port(), free_port()
    ports = {service: free_port() for service in SERVICES}
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUDAO_")}
    env.update({f"QUDAO_{s.upper()}_GRPC_PORT": str(p) for s, p in ports.items()})
    metrics = {service: free_port() for service in [*SERVICES, "gateway"]}
    env.update({f"QUDAO_{s.upper()}_METRICS_PORT": str(p) for s, p in metrics.items()})
    qudao = Path(sys.executable).parent / "qudao"
    process = subprocess.Popen(
        [str(qudao), "up", "--var-dir", str(tmp_path / "var"), "--port", str(gateway_port),
         "--nats-port", str(nats_port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if line.startswith("press Ctrl-C"):
                break
        assert any("Qudao is up" in line for line in output), "".join(output)

        base = f"http://127.0.0.1:{gateway_port}"
        ready = httpx.get(f"{base}/readyz", timeout=5).json()
        assert ready["status"] == "ok"
        assert ready["services"] == {s: "SERVING" for s in SERVICES}
        assert ready["gateway"]["ready"] is True
        # The embedded NATS enforces the suite's users, as in a cluster.
        with pytest.raises(Exception, match=r"(?i)authorization"):
            asyncio.run(nats.connect(f"nats://127.0.0.1:{nats_port}", allow_reconnect=False,
                                     max_reconnect_attempts=0))
        password = (tmp_path / "var" / "admin-password.txt").read_text().strip()
        login = httpx.post(f"{base}/api/v1/auth/login",
                           json={"username": "admin", "password": password}, timeout=10)
        assert login.status_code == 200, login.text
        assert {f.name for f in (tmp_path / "var").glob("*.db")} == {f"{s}.db" for s in SERVICES}
        identity_metrics = httpx.get(f"http://127.0.0.1:{metrics['identity']}/metrics").text
        assert 'qudao_grpc_server_handling_seconds_count{code="OK",' \
               'method="/qudao.identity.v1.IdentityService/Login"} 1.0' in identity_metrics
        gateway_metrics = httpx.get(f"http://127.0.0.1:{metrics['gateway']}/metrics").text
        assert 'route="/api/v1/auth/login",status="200"' in gateway_metrics
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        output.append(rest)
    assert process.returncode == 0, "".join(output)
    assert "stopped" in "".join(output)
    assert not any(port_open(p) for p in [gateway_port, nats_port, *ports.values()])

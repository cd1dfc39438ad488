"""The bus enforces who publishes what: each service only its own events and dead
letters, so no pod can forge another service's event (a rebate credit is money)."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.js.errors import NoStreamResponseError

from shared.bus.connection import connect
from shared.bus.permissions import OPS, USERS, permissions_of, render_authorization
from shared.bus.streams import dead_letter_subject, ensure_streams
from suite.natsserver import NatsServer, nats_passwords


@pytest.fixture
async def bus(tmp_path):
    passwords = nats_passwords(tmp_path)
    server = NatsServer(tmp_path / "nats", users=passwords)
    await asyncio.to_thread(server.start)
    ops = await connect(server.url, "ops", user=OPS, password=passwords[OPS])
    await ensure_streams(ops.jetstream(), ["order", "incentive"], replicas=1)
    try:
        yield server, passwords, ops
    finally:
        await ops.close()
        await asyncio.to_thread(server.stop)


async def _as(server, passwords, user: str):
    return await connect(server.url, f"qudao-{user}", user=user, password=passwords[user])


async def test_a_service_cannot_publish_another_services_event(bus):
    server, passwords, ops = bus
    order = await _as(server, passwords, "order")
    try:
        js = order.jetstream(timeout=1)
        await js.publish("qudao.order.order.submitted", b"ok")
        with pytest.raises((NoStreamResponseError, nats.errors.TimeoutError)):
            await js.publish("qudao.incentive.rebate.credited", b"forged credit")
        await js.publish(dead_letter_subject("order-inventory"), b"its own dead letter")
        with pytest.raises((NoStreamResponseError, nats.errors.TimeoutError)):
            await js.publish(dead_letter_subject("incentive-commission"), b"not its own")
    finally:
        await order.close()
    stored = await ops.jetstream().stream_info("QUDAO_INCENTIVE")
    assert stored.state.messages == 0, "the forged event never reached incentive's stream"


async def test_a_service_cannot_change_another_services_stream(bus):
    server, passwords, _ops = bus
    order = await _as(server, passwords, "order")
    try:
        js = order.jetstream(timeout=1)
        await ensure_streams(js, ["order"], replicas=1)  # its own: allowed
        with pytest.raises(nats.errors.TimeoutError):
            await ensure_streams(js, ["incentive"], replicas=1)
        # Reading any stream is allowed: services consume each other's events.
        assert (await js.stream_info("QUDAO_INCENTIVE")).config.name == "QUDAO_INCENTIVE"
    finally:
        await order.close()


async def test_the_gateway_only_follows_identity(bus):
    server, passwords, ops = bus
    heard = []

    async def listen(message) -> None:
        heard.append(message.data)

    await ops.subscribe("qudao.identity.>", cb=listen)
    await ops.flush()
    gateway = await _as(server, passwords, "gateway")
    try:
        await gateway.publish("qudao.identity.user.deactivated", b"forged")
        await gateway.flush()  # the server has dropped it by the time of the PONG
        await ops.flush()
        assert heard == []
        with pytest.raises(nats.errors.TimeoutError):
            await gateway.jetstream(timeout=1).stream_info("QUDAO_ORDER")
    finally:
        await gateway.close()


async def test_wrong_password_is_refused(bus):
    server, _passwords, _ops = bus
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await nats.connect(server.url, user="order", password="guess",
                           allow_reconnect=False, max_reconnect_attempts=0)


def test_every_user_has_rules_and_the_config_renders_each():
    rendered = render_authorization({user: f"${user.upper()}_PASSWORD" for user in USERS})
    for user in USERS:
        assert f'user: "{user}"' in rendered
        assert f"${user.upper()}_PASSWORD" in rendered
    for service in ("identity", "registration", "order", "flow", "incentive"):
        publish = permissions_of(service).publish
        assert f"qudao.{service}.>" in publish
        assert not any(p == ">" or p == "qudao.>" for p in publish)
    assert permissions_of(OPS).publish == (">",)

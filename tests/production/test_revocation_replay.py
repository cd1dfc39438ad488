"""Security state survives a lost connection: what identity publishes while a process is
cut off from NATS is replayed from identity's stream when it reconnects."""

from __future__ import annotations

import asyncio
import time

import nats
from qudao.identity.v1 import events_pb2, identity_pb2

from shared.bus.connection import connect
from shared.bus.envelope import build_envelope
from shared.bus.streams import ensure_streams
from shared.context import Principal
from shared.events.identity import USER_DEACTIVATED
from shared.revocation import IdentityEvents, RevocationList
from suite.natsserver import NatsServer
from tests.harness import eventually
from tests.identity.helpers import Admin
from tests.production.proxy import CuttableProxy
from tests.world import STAFF_PASSWORD


def deactivated(user_id: str) -> bytes:
    payload = events_pb2.UserDeactivated(user=identity_pb2.User(id=user_id))
    return build_envelope("identity", payload, user_id).SerializeToString()


async def test_deactivation_published_during_a_cut_is_replayed_after_reconnect(tmp_path):
    server = NatsServer(tmp_path / "nats")
    await asyncio.to_thread(server.start)
    proxy = await CuttableProxy(server.port).start()
    identity = await nats.connect(server.url)
    follower_nc = await connect(proxy.url, "qudao-test-follower")
    revocations = RevocationList()
    scope_changes = []
    follower = IdentityEvents(follower_nc, revocations,
                              on_scope_change=[lambda: scope_changes.append(1)])
    try:
        js = identity.jetstream()
        await ensure_streams(js, ["identity"], replicas=1)
        await js.publish(USER_DEACTIVATED.subject, deactivated("before"))
        await follower.start()
        assert follower.caught_up.is_set()
        assert revocations.is_revoked(Principal(subject="user:before", user_id="before"))

        await proxy.cut()
        await eventually(lambda: not follower_nc.is_connected, timeout=5)
        # Identity deactivates a user while this process cannot hear it.
        await js.publish(USER_DEACTIVATED.subject, deactivated("leaver"))
        leaver = Principal(subject="user:leaver", user_id="leaver")
        assert not revocations.is_revoked(leaver)

        await proxy.restore()
        restored = time.monotonic()
        await eventually(lambda: revocations.is_revoked(leaver), timeout=10)
        assert time.monotonic() - restored < 5, "refused within seconds of the reconnect"
        assert follower.resumes >= 1
        assert len(scope_changes) == 2  # a deactivation changes scopes too
    finally:
        await follower.stop()
        await follower_nc.close()
        await identity.close()
        await proxy.stop()
        await asyncio.to_thread(server.stop)


async def test_gateway_cut_off_from_nats_refuses_a_deactivated_token_after_reconnect(suite):
    """The gateway's own revocation list, fed through a connection the test cuts while an
    HQ admin deactivates the user: after the reconnect the replay refuses the token at
    the gateway itself, within seconds."""
    proxy = await CuttableProxy(suite.nats.port).start()
    try:
        await suite.stop_gateway()
        await suite.start_gateway({"QUDAO_NATS_URL": proxy.url})
        app = suite.gateway_app
        async with suite.client() as anonymous:
            async def ready():
                return (await anonymous.get("/readyz/local")).status_code == 200
            await eventually(ready, timeout=10)

        admin = await Admin.login(suite)
        try:
            region = await admin.region("east", "华东")
            dealer = await admin.dealer(1, region["id"])
            await admin.user("leaving.sales", ["dealer_sales"], dealer["id"])
            token = await suite.login("leaving.sales", STAFF_PASSWORD)
            principal = app.state.verifier.verify(token)
            watcher = app.state.identity_events

            await proxy.cut()
            await eventually(lambda: not watcher.nc.is_connected, timeout=5)
            async with suite.client(admin.token) as hq:
                response = await hq.post(f"/api/v1/users/{principal.user_id}/deactivate",
                                         json={"reason": "left the company"})
                assert response.status_code == 200, response.text
            # Identity has published it; this gateway cannot hear it yet.
            assert not app.state.revocations.is_revoked(principal)

            await proxy.restore()
            reconnected = time.monotonic()
            await eventually(lambda: app.state.revocations.is_revoked(principal), timeout=10)
            assert time.monotonic() - reconnected < 5
            async with suite.client(token) as client:
                response = await client.get(f"/api/v1/org-units/{dealer['id']}")
            assert response.status_code == 401
            assert response.json()["reason"] == "TOKEN_REVOKED"
        finally:
            await admin.aclose()
    finally:
        await proxy.stop()

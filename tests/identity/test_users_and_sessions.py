"""Users, roles and sessions through the gateway: dealer admins manage their own staff,
ERP accounts are narrow, bad credentials and tokens are refused with a clear reason, and
a deactivated user's old token fails within a second in the gateway and in every
service."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from qudao.incentive.v1 import incentive_pb2, incentive_pb2_grpc
from qudao.order.v1 import order_pb2, order_pb2_grpc

from shared.auth import TokenIssuer
from shared.context import Principal
from tests.conftest import require_postgres
from tests.harness import Suite, eventually
from tests.identity.helpers import Admin, fields_of
from tests.world import STAFF_PASSWORD


async def test_bad_users_and_tokens_are_refused_with_the_reason(suite):
    """Through the gateway: a refused user names its field (nothing written), an expired
    or tampered token is 401 with its reason. (Who may create whom, password rules and
    lockout are tested on the use cases, tests/service/identity.)"""
    admin = await Admin.login(suite)
    try:
        region = await admin.region("east", "华东")
        dealer = await admin.dealer(1, region["id"])
        await admin.user("dealer1.sales", ["dealer_sales"], dealer["id"])
        users_before = (await admin.ok("GET", "/api/v1/users"))["page"]["total_size"]
        duplicate = await admin.http.post("/api/v1/users", json={
            "username": "Dealer1.Sales", "password": STAFF_PASSWORD,
            "roles": ["dealer_sales"], "org_unit_id": dealer["id"]})
        assert duplicate.status_code == 409 and fields_of(duplicate.json()) == ["username"]
        weak = await admin.http.post("/api/v1/users", json={
            "username": "weakling", "password": "password", "roles": ["dealer_sales"],
            "org_unit_id": dealer["id"]})
        assert weak.status_code == 400 and set(fields_of(weak.json())) == {"password"}
        assert (await admin.ok("GET", "/api/v1/users"))["page"]["total_size"] == users_before
        sales = await admin.ok("GET", "/api/v1/users", params={"role": "dealer_sales"})
        assert [u["username"] for u in sales["users"]] == ["dealer1.sales"]

        issuer = TokenIssuer(suite.private_key.read_bytes(), ttl_seconds=60)
        expired, _ = issuer.issue(Principal(subject="user:x", user_id="x"),
                                  now=time.time() - 3600)
        async with suite.client(expired) as client:
            response = await client.get("/api/v1/org-units")
            assert response.status_code == 401 and response.json()["reason"] == "TOKEN_EXPIRED"
            me = await client.get("/api/v1/auth/me")
            assert me.status_code == 401 and me.json()["reason"] == "TOKEN_EXPIRED"
        head, payload, signature = admin.token.split(".")
        flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
        for tampered in (f"{head}.{payload}.{flipped}", f"{head}.{payload[:-1]}x.{signature}"):
            async with suite.client(tampered) as client:
                response = await client.get("/api/v1/org-units")
            assert response.status_code == 401 and response.json()["reason"] == "TOKEN_INVALID"
        async with suite.client() as client:
            response = await client.post("/api/v1/auth/login", json={
                "username": "dealer1.sales", "password": "wrong-Passw0rd!"})
            assert response.status_code == 401 and response.json()["reason"] == \
                "BAD_CREDENTIALS"
    finally:
        await admin.aclose()


async def test_refresh_logout_and_password_change(suite):
    admin = await Admin.login(suite)
    try:
        hq = await admin.hq_id()
        await admin.user("fin.one", ["finance"], hq)
    finally:
        await admin.aclose()
    async with suite.client() as client:
        login = (await client.post("/api/v1/auth/login", json={
            "username": "fin.one", "password": STAFF_PASSWORD})).json()
        refreshed = await client.post("/api/v1/auth/refresh",
                                      json={"refresh_token": login["refresh_token"]})
        assert refreshed.status_code == 200
        token = refreshed.json()["refresh_token"]
        assert (await client.post("/api/v1/auth/logout", json={"refresh_token": token})
                ).status_code == 204
        assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
                ).status_code == 401
        # A used refresh token coming back (copied: by a thief, or the thief has used
        # it) ends every session of the user, access tokens included.
        login = (await client.post("/api/v1/auth/login", json={
            "username": "fin.one", "password": STAFF_PASSWORD})).json()
        other = (await client.post("/api/v1/auth/login", json={
            "username": "fin.one", "password": STAFF_PASSWORD})).json()
        assert (await client.post("/api/v1/auth/refresh", json={
            "refresh_token": login["refresh_token"]})).status_code == 200
        reused = await client.post("/api/v1/auth/refresh",
                                   json={"refresh_token": login["refresh_token"]})
        assert reused.status_code == 401 and reused.json()["reason"] == "REFRESH_INVALID"
        assert (await client.post("/api/v1/auth/refresh", json={
            "refresh_token": other["refresh_token"]})).status_code == 401
    async with suite.client(other["access_token"]) as client:
        assert (await client.get("/api/v1/auth/me")).status_code == 401
        await asyncio.sleep(1.01)  # access tokens carry whole seconds: the next is newer
        login = (await client.post("/api/v1/auth/login", json={
            "username": "fin.one", "password": STAFF_PASSWORD})).json()
    async with suite.client(login["access_token"]) as client:
        second = (await client.post("/api/v1/auth/login", json={
            "username": "fin.one", "password": STAFF_PASSWORD})).json()
        wrong = await client.post("/api/v1/auth/password", json={
            "current_password": "nope-Passw0rd!", "new_password": "New-Passw0rd!2"})
        assert wrong.status_code == 400 and fields_of(wrong.json()) == ["current_password"]
        changed = await client.post("/api/v1/auth/password", json={
            "current_password": STAFF_PASSWORD, "new_password": "New-Passw0rd!2"})
        assert changed.status_code == 204
        # Other sessions end: their refresh tokens no longer work.
        assert (await client.post("/api/v1/auth/refresh", json={
            "refresh_token": second["refresh_token"]})).status_code == 401
    assert await suite.login("fin.one", "New-Passw0rd!2")


async def test_deactivated_users_token_fails_within_a_second_everywhere(suite):
    await run_revocation(suite)


@pytest.mark.postgres
async def test_deactivated_users_token_fails_within_a_second_on_postgres(tmp_path):
    require_postgres()
    suite = await Suite(tmp_path, backend="postgres").start()
    try:
        await run_revocation(suite)
    finally:
        await suite.stop()


async def run_revocation(suite: Suite) -> None:
    admin = await Admin.login(suite)
    try:
        region = await admin.region("east", "华东")
        dealer = await admin.dealer(1, region["id"])
        user = await admin.user("leaving.sales", ["dealer_sales"], dealer["id"])
    finally:
        await admin.aclose()
    token = await suite.login("leaving.sales", STAFF_PASSWORD)
    metadata = (("authorization", f"Bearer {token}"),)
    order_channel = grpc.aio.insecure_channel(f"127.0.0.1:{suite.ports['order']}")
    incentive_channel = grpc.aio.insecure_channel(f"127.0.0.1:{suite.ports['incentive']}")
    orders = order_pb2_grpc.OrderServiceStub(order_channel)
    accruals = incentive_pb2_grpc.IncentiveServiceStub(incentive_channel)
    try:
        async with suite.client(token) as client:
            assert (await client.get(f"/api/v1/org-units/{dealer['id']}")).status_code == 200
            await orders.ListOrders(order_pb2.ListOrdersRequest(), metadata=metadata)
            await accruals.ListAccruals(incentive_pb2.ListAccrualsRequest(), metadata=metadata)

            async with suite.client(admin.token) as hq:
                response = await hq.post(f"/api/v1/users/{user['id']}/deactivate",
                                         json={"reason": "left the company"})
                assert response.status_code == 200, response.text
            deactivated_at = time.monotonic()

            async def gateway_refuses():
                response = await client.get(f"/api/v1/org-units/{dealer['id']}")
                return response.status_code == 401 and \
                    response.json()["reason"] == "TOKEN_REVOKED"

            async def refuses(call, request):
                try:
                    await call(request, metadata=metadata)
                except grpc.aio.AioRpcError as error:
                    return error.code() == grpc.StatusCode.UNAUTHENTICATED
                return False

            await eventually(gateway_refuses, timeout=1.0, interval=0.02)
            await eventually(lambda: refuses(orders.ListOrders, order_pb2.ListOrdersRequest()),
                             timeout=1.0, interval=0.02)
            await eventually(lambda: refuses(accruals.ListAccruals,
                                             incentive_pb2.ListAccrualsRequest()),
                             timeout=1.0, interval=0.02)
            assert time.monotonic() - deactivated_at < 1.5
            login = await client.post("/api/v1/auth/login", json={
                "username": "leaving.sales", "password": STAFF_PASSWORD})
            # Answered as any wrong password: account states are not told apart.
            assert login.status_code == 401 and login.json()["reason"] == "BAD_CREDENTIALS"
    finally:
        await order_channel.close()
        await incentive_channel.close()


async def test_a_restarted_service_still_refuses_a_deactivated_token(suite):
    """A service that starts after the deactivation replays it from identity's stream."""
    admin = await Admin.login(suite)
    try:
        region = await admin.region("east", "华东")
        dealer = await admin.dealer(1, region["id"])
        user = await admin.user("gone.sales", ["dealer_sales"], dealer["id"])
        token = await suite.login("gone.sales", STAFF_PASSWORD)
        await suite.stop_service("order")
        await admin.ok("POST", f"/api/v1/users/{user['id']}/deactivate", json={})
        await eventually(lambda: _published(suite), timeout=5)
        await suite.start_service("order")
    finally:
        await admin.aclose()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{suite.ports['order']}")
    try:
        stub = order_pb2_grpc.OrderServiceStub(channel)
        try:
            await stub.ListOrders(order_pb2.ListOrdersRequest(),
                                  metadata=(("authorization", f"Bearer {token}"),))
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        else:
            raise AssertionError("the restarted order service accepted a revoked token")
    finally:
        await channel.close()


async def _published(suite) -> bool:
    import nats

    nc = await nats.connect(suite.nats.url)
    try:
        info = await nc.jetstream().stream_info("QUDAO_IDENTITY")
        subjects = await nc.jetstream().stream_info("QUDAO_IDENTITY",
                                                    subjects_filter="qudao.identity.user.>")
        return bool(info.state.messages) and "qudao.identity.user.deactivated" in (
            subjects.state.subjects or {})
    finally:
        await nc.close()


async def test_logout_ends_the_access_token_everywhere(suite):
    admin = await Admin.login(suite)
    try:
        await admin.user("short.stay", ["finance"], await admin.hq_id())
    finally:
        await admin.aclose()
    async with suite.client() as anonymous:
        login = (await anonymous.post("/api/v1/auth/login", json={
            "username": "short.stay", "password": STAFF_PASSWORD})).json()
    token = login["access_token"]
    other = await suite.login("short.stay", STAFF_PASSWORD)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{suite.ports['order']}")
    orders = order_pb2_grpc.OrderServiceStub(channel)
    try:
        async with suite.client(token) as client:
            assert (await client.get("/api/v1/org-units")).status_code == 200
            response = await client.post("/api/v1/auth/logout",
                                         json={"refresh_token": login["refresh_token"]})
            assert response.status_code == 204

            async def refused():
                response = await client.get("/api/v1/org-units")
                return response.status_code == 401

            await eventually(refused, timeout=1.0, interval=0.02)

            async def order_refuses():
                try:
                    await orders.ListOrders(order_pb2.ListOrdersRequest(),
                                            metadata=(("authorization", f"Bearer {token}"),))
                except grpc.aio.AioRpcError as error:
                    return error.code() == grpc.StatusCode.UNAUTHENTICATED
                return False

            await eventually(order_refuses, timeout=1.0, interval=0.02)
        # The same user's other session is untouched.
        async with suite.client(other) as client:
            assert (await client.get("/api/v1/org-units")).status_code == 200
    finally:
        await channel.close()


async def test_role_and_password_changes_take_effect_at_once(suite):
    """A promoted user's old token is refused everywhere within a second; its refresh
    brings the new role. A password change ends every session of the user."""
    admin = await Admin.login(suite)
    try:
        region = await admin.region("east", "华东")
        dealer = await admin.dealer(1, region["id"])
        user = await admin.user("rising.sales", ["dealer_sales"], dealer["id"])
    finally:
        await admin.aclose()
    async with suite.client() as anonymous:
        login = (await anonymous.post("/api/v1/auth/login", json={
            "username": "rising.sales", "password": STAFF_PASSWORD})).json()
    metadata = (("authorization", f"Bearer {login['access_token']}"),)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{suite.ports['order']}")
    orders = order_pb2_grpc.OrderServiceStub(channel)
    new_staff = {"username": "junior.sales", "password": STAFF_PASSWORD,
                 "roles": ["dealer_sales"], "org_unit_id": dealer["id"]}
    try:
        async with suite.client(login["access_token"]) as old:
            assert (await old.post("/api/v1/users", json=new_staff)).status_code == 403
            async with suite.client(admin.token) as hq:
                response = await hq.put(f"/api/v1/users/{user['id']}/roles",
                                        json={"roles": ["dealer_admin"]})
                assert response.status_code == 200, response.text

            async def gateway_refuses():
                response = await old.get("/api/v1/auth/me")
                return response.status_code == 401 and \
                    response.json()["reason"] == "TOKEN_REVOKED"

            async def order_refuses():
                try:
                    await orders.ListOrders(order_pb2.ListOrdersRequest(), metadata=metadata)
                except grpc.aio.AioRpcError as error:
                    return error.code() == grpc.StatusCode.UNAUTHENTICATED
                return False

            await eventually(gateway_refuses, timeout=1.0, interval=0.02)
            await eventually(order_refuses, timeout=1.0, interval=0.02)
            refreshed = (await old.post("/api/v1/auth/refresh", json={
                "refresh_token": login["refresh_token"]}))
        assert refreshed.status_code == 200, refreshed.text
        async with suite.client(refreshed.json()["access_token"]) as promoted:
            me = (await promoted.get("/api/v1/auth/me")).json()
            assert me["user"]["roles"] == ["dealer_admin"]
            assert (await promoted.post("/api/v1/users", json=new_staff)).status_code == 201
            changed = await promoted.post("/api/v1/auth/password", json={
                "current_password": STAFF_PASSWORD, "new_password": "Promoted-Passw0rd!"})
            assert changed.status_code == 204
            gone = await promoted.get("/api/v1/auth/me")
            assert gone.status_code == 401 and gone.json()["reason"] == "TOKEN_REVOKED"
        assert await suite.login("rising.sales", "Promoted-Passw0rd!")
    finally:
        await channel.close()

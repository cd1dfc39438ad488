"""Channel-manager assignments per product line, hand-over to a successor, scope per
role, cached scopes in other services cleared by identity's events, and the audit trail
of it all, end to end on the real suite (the rules of each are tested on the use cases,
tests/service/identity)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import require_postgres
from tests.harness import Suite, eventually
from tests.identity.helpers import Admin, fields_of
from tests.world import STAFF_PASSWORD


async def run_assignments(suite: Suite) -> None:
    admin = await Admin.login(suite)
    try:
        east = await admin.region("east", "华东")
        south = await admin.region("south", "华南")
        d1 = await admin.dealer(1, east["id"], product_lines=["A系列", "B系列"])
        d2 = await admin.dealer(2, south["id"], division_codes=["440300"])
        platform = await admin.dealer(3, east["id"], tier="platform")
        shared = await admin.dealer(4, east["id"], tier="two", platform_dealer_id=platform["id"],
                                    shared_with_platform=True)
        private = await admin.dealer(5, east["id"], tier="two",
                                     platform_dealer_id=platform["id"])
        hq = await admin.hq_id()
        cm1 = await admin.user("cm.one", ["channel_manager"], hq)
        cm2 = await admin.user("cm.two", ["channel_manager"], hq)
        await admin.user("fin.user", ["finance"], hq)
        await admin.user("rm.east", ["region_manager"], east["id"])
        await admin.user("platform.sales", ["dealer_sales"], platform["id"])
        await admin.user("d1.sales", ["dealer_sales"], d1["id"])

        # Per product line; a line the dealer does not carry is refused by name.
        added = await admin.ok("POST", "/api/v1/assignments", json={
            "manager_user_id": cm1["id"], "dealer_ids": [d1["id"]], "product_lines": ["B系列"]})
        assert [(a["dealer_id"], a["product_line"]) for a in added["assignments"]] == [
            (d1["id"], "B系列")]
        response = await admin.http.post("/api/v1/assignments", json={
            "manager_user_id": cm1["id"], "dealer_ids": [d2["id"]],
            "product_lines": ["Z系列"]})
        assert response.status_code == 400 and fields_of(response.json()) == [
            "product_lines[0]"]
        await admin.ok("POST", "/api/v1/assignments", json={
            "manager_user_id": cm1["id"], "dealer_ids": [d1["id"], d2["id"]]})

        async def scope_of(username: str, **params) -> dict:
            async with suite.client(await suite.login(username, STAFF_PASSWORD)) as client:
                return (await client.get("/api/v1/scope", params=params)).json()

        assert set((await scope_of("cm.one"))["dealer_ids"]) == {d1["id"], d2["id"]}
        assert (await scope_of("cm.one", product_line="B系列"))["dealer_ids"] == [d1["id"]]
        assert set((await scope_of("rm.east"))["dealer_ids"]) == {
            d1["id"], platform["id"], shared["id"], private["id"]}
        assert set((await scope_of("platform.sales"))["dealer_ids"]) == {
            platform["id"], shared["id"]}
        assert (await scope_of("fin.user"))["all_dealers"] is True
        assert (await scope_of("cm.two"))["dealer_ids"] == []

        # A channel manager's accruals follow its assignments; the incentive service's
        # cached scope is cleared by identity's event, well before its 30 s TTL. (The
        # accrual: commission on d1's approved order.)
        await admin.ok("POST", "/api/v1/commission-rules", json={"rule": {
            "name": "订单佣金", "base": "approved_orders", "base_rate_bps": 200,
            "valid_from": "2000-01-01"}})
        async with suite.client(await suite.login("d1.sales", STAFF_PASSWORD)) as dealer:
            products = [{"code": "A-001", "name": "输液器", "spec": "", "gtin": "06901234567892",
                         "product_line": "A系列", "unit": "盒",
                         "list_price": {"amount_minor": 10_000, "currency": "CNY"}}]
            await admin.ok("PUT", "/api/v1/products", json={"products": products})
            order = await dealer.post("/api/v1/orders", json={
                "lines": [{"product_code": "A-001", "quantity": 2}]})
            assert order.status_code == 201, order.text
        for stage in ("channel_manager", "finance"):
            await admin.ok("POST", f"/api/v1/orders/{order.json()['id']}/approve",
                           json={"stage": stage})
        cm2_client = suite.client(await suite.login("cm.two", STAFF_PASSWORD))
        async with cm2_client:
            assert (await cm2_client.get("/api/v1/accruals")).json()["accruals"] == []

            # cm.one leaves: its dealers pass to cm.two (without a successor it could not
            # leave: tests/service/identity).
            response = await admin.http.post(f"/api/v1/users/{cm1['id']}/deactivate",
                                             json={})
            assert response.status_code == 400
            assert fields_of(response.json()) == ["successor_user_id"]
            gone = await admin.ok("POST", f"/api/v1/users/{cm1['id']}/deactivate", json={
                "successor_user_id": cm2["id"], "reason": "离职"})
            assert gone["active"] is False

            async def cm2_sees_accrual():
                body = (await cm2_client.get("/api/v1/accruals")).json()
                return body["accruals"]

            accruals = await eventually(cm2_sees_accrual, timeout=8)
            assert {a["dealer_id"] for a in accruals} == {d1["id"]}

        managers = await admin.ok("GET", "/api/v1/users", params={
            "role": "channel_manager", "include_inactive": "true"})
        assert {u["username"] for u in managers["users"]} == {"cm.one", "cm.two"}
        held = await admin.ok("GET", "/api/v1/assignments",
                              params={"manager_user_id": cm2["id"]})
        assert {(a["dealer_id"], a["product_line"]) for a in held["assignments"]} == {
            (d1["id"], "A系列"), (d1["id"], "B系列"), (d2["id"], "A系列")}
        assert (await admin.ok("GET", "/api/v1/assignments",
                               params={"manager_user_id": cm1["id"]}))["assignments"] == []

        # Explicit transfer of one dealer back to a new manager.
        cm3 = await admin.user("cm.three", ["channel_manager"], hq)
        moved = await admin.ok("POST", "/api/v1/assignments/transfer", json={
            "from_manager_user_id": cm2["id"], "to_manager_user_id": cm3["id"],
            "dealer_ids": [d2["id"]], "reason": "区域调整"})
        assert moved["transferred"] == 1
        assert moved["assignments"][0]["manager_user_id"] == cm3["id"]
        removed = await admin.ok("POST", "/api/v1/assignments/remove", json={
            "manager_user_id": cm3["id"], "dealer_ids": [d2["id"]]})
        assert len(removed["removed"]) == 1

        # A role change that would orphan dealers is refused.
        response = await admin.http.put(f"/api/v1/users/{cm2['id']}/roles",
                                        json={"roles": ["finance"]})
        assert response.status_code == 409

        # The audit trail: who, when, before and after.
        trail = await admin.ok("GET", "/api/v1/audit-events",
                               params={"action": "assignment.transfer"})
        actions = [(e["target_id"], e["reason"]) for e in trail["audit_events"]]
        assert (cm1["id"], "离职") in actions and (cm2["id"], "区域调整") in actions
        handover = next(e for e in trail["audit_events"] if e["target_id"] == cm1["id"])
        assert json.loads(handover["before_json"])["manager_user_id"] == cm1["id"]
        assert json.loads(handover["after_json"])["manager_user_id"] == cm2["id"]
        assert handover["occurred_at"] and handover["actor"].startswith("user:")
        deactivation = (await admin.ok("GET", "/api/v1/audit-events", params={
            "target_id": cm1["id"], "action": "user.deactivate"}))["audit_events"][0]
        assert json.loads(deactivation["before_json"])["active"] is True
        assert json.loads(deactivation["after_json"])["active"] is False
        everything = await admin.ok("GET", "/api/v1/audit-events", params={"page_size": 500})
        assert {"org_unit.create", "user.create", "assignment.assign", "assignment.unassign",
                "assignment.transfer", "user.deactivate"} <= {
            e["action"] for e in everything["audit_events"]}
        first = everything["audit_events"][-1]["occurred_at"]
        window = await admin.ok("GET", "/api/v1/audit-events", params={
            "occurred_after": first, "occurred_before": "2999-01-01T00:00:00Z",
            "page_size": 500})
        assert window["page"]["total_size"] == everything["page"]["total_size"]
        later = await admin.ok("GET", "/api/v1/audit-events", params={
            "occurred_after": handover["occurred_at"], "page_size": 500})
        assert 0 < later["page"]["total_size"] < everything["page"]["total_size"]
        naive = await admin.http.get("/api/v1/audit-events",
                                     params={"occurred_after": "2026-01-01T00:00:00"})
        assert naive.status_code == 400 and fields_of(naive.json()) == ["occurred_after"]
        async with suite.client(await suite.login("fin.user", STAFF_PASSWORD)) as fin:
            assert (await fin.get("/api/v1/audit-events")).status_code == 403
    finally:
        await admin.aclose()


async def test_assignments_hand_over_and_scope(suite):
    await run_assignments(suite)


@pytest.mark.postgres
async def test_assignments_hand_over_and_scope_on_postgres(tmp_path):
    require_postgres()
    suite = await Suite(tmp_path, backend="postgres").start()
    try:
        await run_assignments(suite)
    finally:
        await suite.stop()

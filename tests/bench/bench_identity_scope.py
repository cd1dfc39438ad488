"""identity.scope: ResolveScope for a region manager whose region holds 5,000 dealers
(imported in one CSV through ImportDealers), as another service sees it through
shared.scope.ScopeResolver:

* cold — nothing cached anywhere: before each call an audited change (a dealer renamed,
  not timed) clears identity's answer cache and the resolver's cache is cleared, so each
  call is a gRPC round trip plus identity's queries;
* identity-cached — the resolver's cache cleared, identity's still valid: a gRPC round
  trip carrying 5,000 ids;
* cached — answered from the resolver's own cache (what every request after the first
  pays until an identity event clears it).

Baseline for cold: the bare SQL query for the same dealer ids on identity's SQLite file."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import grpc
from google.protobuf import field_mask_pb2
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc

from shared.context import Principal, token_var
from shared.scope_client import ScopeResolver
from tests.bench.common import ADMIN_PASSWORD, ProcessSuite, Result, latency_summary
from tests.world import credit_code

NAME = "identity.scope"
PASSWORD = "Region-Passw0rd!"


async def seed(stub, dealers: int) -> tuple[str, str, str]:
    admin = (await stub.Login(identity_pb2.LoginRequest(
        username="admin", password=ADMIN_PASSWORD))).access_token
    metadata = (("authorization", f"Bearer {admin}"),)
    region = (await stub.CreateOrgUnit(identity_pb2.CreateOrgUnitRequest(
        kind=identity_pb2.ORG_UNIT_KIND_REGION, name="华东", region_code="east"),
        metadata=metadata)).org_unit
    await stub.CreateOrgUnit(identity_pb2.CreateOrgUnitRequest(
        kind=identity_pb2.ORG_UNIT_KIND_REGION, name="华南", region_code="south"),
        metadata=metadata)
    rows = ["name,credit_code,tier,region_code,division_codes,product_lines"]
    cities = ["310000", "320500", "330100", "340100", "370200"]
    for index in range(dealers):
        rows.append(f"经销商{index},{credit_code(10_000 + index)},{'one' if index % 2 else 'two'},"
                    f"east,{cities[index % len(cities)]},A系列")
    for index in range(dealers // 10):  # some dealers elsewhere, outside the scope
        rows.append(f"华南经销商{index},{credit_code(90_000 + index)},one,south,440300,A系列")
    started = time.perf_counter()
    response = await stub.ImportDealers(identity_pb2.ImportDealersRequest(
        content="\n".join(rows).encode(), filename="bench.csv"), metadata=metadata, timeout=600)
    import_seconds = time.perf_counter() - started
    assert response.accepted, response.errors[:3]
    await stub.CreateUser(identity_pb2.CreateUserRequest(
        username="rm.east", password=PASSWORD, roles=[identity_pb2.ROLE_REGION_MANAGER],
        org_unit_id=region.id), metadata=metadata)
    token = (await stub.Login(identity_pb2.LoginRequest(username="rm.east",
                                                        password=PASSWORD))).access_token
    return token, f"{import_seconds:.2f}", admin


async def run(workdir: Path, quick: bool) -> list[Result]:
    dealers = 500 if quick else 5_000
    calls = 50 if quick else 200
    suite = await ProcessSuite(workdir, services=("identity",)).start()
    try:
        async with grpc.aio.insecure_channel(suite.addr("identity")) as channel:
            stub = identity_pb2_grpc.IdentityServiceStub(channel)
            token, import_seconds, admin = await seed(stub, dealers)
            admin_metadata = (("authorization", f"Bearer {admin}"),)
            some_dealer = (await stub.ListOrgUnits(identity_pb2.ListOrgUnitsRequest(
                kind=identity_pb2.ORG_UNIT_KIND_DEALER), metadata=admin_metadata)).org_units[0]
            resolver = ScopeResolver(channel)
            principal = Principal(subject="user:rm.east")
            reset = token_var.set(token)
            try:
                scope = await resolver.resolve(principal, "order.read")
                assert len(scope.dealer_ids) == dealers, len(scope.dealer_ids)
                cold = []
                for index in range(calls):
                    await stub.UpdateOrgUnit(identity_pb2.UpdateOrgUnitRequest(
                        id=some_dealer.id, org_unit=identity_pb2.OrgUnit(
                            name=f"{some_dealer.name}-{index}"),
                        update_mask=field_mask_pb2.FieldMask(paths=["name"])),
                        metadata=admin_metadata)
                    resolver.invalidate()
                    started = time.perf_counter()
                    await resolver.resolve(principal, "order.read")
                    cold.append((time.perf_counter() - started) * 1000)
                warm = []
                for _ in range(calls):
                    resolver.invalidate()
                    started = time.perf_counter()
                    await resolver.resolve(principal, "order.read")
                    warm.append((time.perf_counter() - started) * 1000)
                cached = []
                for _ in range(calls * 10):
                    started = time.perf_counter()
                    await resolver.resolve(principal, "order.read")
                    cached.append((time.perf_counter() - started) * 1000)
            finally:
                token_var.reset(reset)
        database = suite.root / "identity.db"
        connection = sqlite3.connect(database)
        region_id = connection.execute(
            "SELECT id FROM org_units WHERE kind='region' AND region_code='east'").fetchone()[0]
        bare = []
        for _ in range(calls):
            started = time.perf_counter()
            connection.execute("SELECT id FROM org_units WHERE parent_id=? AND kind='dealer'",
                               (region_id,)).fetchall()
            bare.append((time.perf_counter() - started) * 1000)
        connection.close()
    finally:
        await suite.stop()
    cold_summary, warm_summary, cached_summary, bare_summary = (
        latency_summary(s) for s in (cold, warm, cached, bare))
    params = {"dealers_in_region": dealers, "calls": calls, "import_seconds": import_seconds}
    return [
        Result(f"{NAME}.cold", params, cold_summary["p99_ms"], "ms p99", "bare SQL query",
               bare_summary["p99_ms"], "ms p99",
               round(cold_summary["p99_ms"] / max(bare_summary["p99_ms"], 1e-6), 1),
               "times the bare query; lower is better",
               {"ours": cold_summary, "baseline": bare_summary}),
        Result(f"{NAME}.identity_cached", params, warm_summary["p99_ms"], "ms p99",
               "cold ResolveScope", cold_summary["p99_ms"], "ms p99",
               round(cold_summary["p99_ms"] / max(warm_summary["p99_ms"], 1e-6), 1),
               "times faster than cold; higher is better", {"ours": warm_summary}),
        Result(f"{NAME}.cached", params, cached_summary["p99_ms"], "ms p99",
               "cold ResolveScope", cold_summary["p99_ms"], "ms p99",
               round(cold_summary["p99_ms"] / max(cached_summary["p99_ms"], 1e-6), 1),
               "times faster than cold; higher is better", {"ours": cached_summary}),
    ]

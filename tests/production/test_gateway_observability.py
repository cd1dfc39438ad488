"""Every gateway response is counted and logged, the ones the middleware gives itself
(401 for a bad token, 413 for a body over the limit) included, by route template."""

from __future__ import annotations

from prometheus_client import REGISTRY

from gateway.app import MAX_BODY_BYTES


def counted(route: str, status: str, method: str = "GET") -> float:
    return REGISTRY.get_sample_value("qudao_gateway_request_seconds_count",
                                     {"method": method, "route": route, "status": status}) or 0


async def test_401_and_413_are_counted_by_route(suite):
    route = "/api/v1/orders/{order_id}"
    before_401 = counted(route, "401")
    before_413 = counted("/api/v1/orders", "413", "POST")
    async with suite.client("not-a-token") as client:
        assert (await client.get("/api/v1/orders/some-id")).status_code == 401
    async with suite.client() as client:
        response = await client.post("/api/v1/orders", content=b"x" * (MAX_BODY_BYTES + 1))
        assert response.status_code == 413
    assert counted(route, "401") == before_401 + 1
    assert counted("/api/v1/orders", "413", "POST") == before_413 + 1

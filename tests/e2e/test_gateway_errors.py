"""Bad input at the gateway always answers 4xx application/problem+json naming the field;
never a 500."""

from __future__ import annotations

import asyncio
import http.client
import json
import uuid

import pytest

PROBLEM = "application/problem+json"

# These tests leave nothing behind that another could see, so they share one suite.
pytestmark = pytest.mark.asyncio(loop_scope="module")


def assert_problem(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"].startswith("https://")
    assert body["request_id"] == response.headers["x-request-id"]
    if field is not None:
        fields = [error["field"] for error in body.get("errors", [])]
        assert field in fields, f"{field} not named in {fields}"
    return body


async def test_malformed_json_is_400_naming_the_body(shared_suite, shared_world):
    async with shared_suite.client(shared_world.dealers[0].token) as client:
        response = await client.post("/api/v1/orders", content=b'{"lines": [',
                                     headers={"content-type": "application/json"})
    body = assert_problem(response, 400, "body")
    assert body["reason"] == "MALFORMED_JSON"


@pytest.mark.parametrize(("payload", "field"), [
    ({}, "lines"),
    ({"lines": []}, "lines"),
    ({"lines": [{"quantity": 1}]}, "lines[0].product_code"),
    ({"lines": [{"product_code": "A-001"}]}, "lines[0].quantity"),
    ({"lines": [{"product_code": "A-001", "quantity": "5"}]}, "lines[0].quantity"),
    ({"lines": [{"product_code": "A-001", "quantity": 1.5}]}, "lines[0].quantity"),
    ({"lines": [{"product_code": 42, "quantity": 1}]}, "lines[0].product_code"),
    ({"lines": "A-001"}, "lines"),
    ({"lines": [{"product_code": "A-001", "quantity": 1}], "colour": "red"}, "colour"),
], ids=["empty", "no-lines", "no-product", "no-quantity", "quantity-string",
        "quantity-float", "product-number", "lines-string", "unknown-field"])
async def test_order_body_errors_name_the_field(shared_suite, shared_world, payload, field):
    async with shared_suite.client(shared_world.dealers[0].token) as client:
        response = await client.post("/api/v1/orders", json=payload)
    assert_problem(response, 422, field)


@pytest.mark.parametrize(("line", "field"), [
    ({"product_code": "NOPE-1", "quantity": 1}, "lines[0].product_code"),
    ({"product_code": "A-001", "quantity": 0}, "lines[0].quantity"),
    ({"product_code": "A-001", "quantity": -3}, "lines[0].quantity"),
])
async def test_domain_rule_errors_name_the_line(shared_suite, shared_world, line, field):
    async with shared_suite.client(shared_world.dealers[0].token) as client:
        response = await client.post("/api/v1/orders", json={"lines": [line]})
    assert_problem(response, 400, field)


async def test_every_bad_line_is_reported_at_once(shared_suite, shared_world):
    async with shared_suite.client(shared_world.dealers[0].token) as client:
        response = await client.post("/api/v1/orders", json={"lines": [
            {"product_code": "A-001", "quantity": 0},
            {"product_code": "NOPE", "quantity": 1},
            {"product_code": "A-001", "quantity": 2}]})
    body = assert_problem(response, 400)
    assert {e["field"] for e in body["errors"]} == {
        "lines[0].quantity", "lines[1].product_code", "lines[2].product_code"}


async def test_unknown_ids_are_404(shared_suite, shared_world):
    async with shared_suite.client(shared_world.dealers[0].token) as client:
        assert_problem(await client.get(f"/api/v1/orders/{uuid.uuid4()}"), 404)
        assert_problem(await client.get(f"/api/v1/accruals/{uuid.uuid4()}"), 404)
        assert_problem(await client.get("/api/v1/products/NO-SUCH-CODE"), 404)
        assert_problem(await client.get("/api/v1/no/such/route"), 404)
    async with shared_suite.client(shared_world.admin_token) as admin:
        assert_problem(await admin.get(f"/api/v1/org-units/{uuid.uuid4()}"), 404)
        response = await admin.post("/api/v1/users", json={
            "username": "ghost.user", "password": "Ghost-Passw0rd!", "roles": ["dealer_sales"],
            "org_unit_id": str(uuid.uuid4())})
        assert_problem(response, 404)


async def test_bad_query_parameters_name_the_parameter(shared_suite, shared_world):
    async with shared_suite.client(shared_world.dealers[0].token) as client:
        assert_problem(await client.get("/api/v1/orders", params={"page_size": "lots"}), 422,
                       "query.page_size")
        assert_problem(await client.get("/api/v1/orders", params={"page_size": 100000}), 422,
                       "query.page_size")
        assert_problem(await client.get("/api/v1/orders", params={"page_token": "%%%"}), 400,
                       "page.page_token")


async def test_authentication_errors_are_401(shared_suite, shared_world):
    async with shared_suite.client() as anonymous:
        response = await anonymous.post("/api/v1/orders", json={"lines": []})
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    token = shared_world.dealers[0].token
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    async with shared_suite.client(tampered) as client:
        assert_problem(await client.get("/api/v1/orders"), 401)
    async with shared_suite.client("not-a-jwt") as client:
        assert_problem(await client.get("/api/v1/orders"), 401)
    async with shared_suite.client() as anonymous:
        body = assert_problem(await anonymous.post("/api/v1/auth/login", json={
            "username": "admin", "password": "wrong password"}), 401)
        assert body["reason"] == "BAD_CREDENTIALS"


async def test_dealer_cannot_maintain_the_catalog(shared_suite, shared_world):
    async with shared_suite.client(shared_world.dealers[0].token) as client:
        response = await client.put("/api/v1/products",
                                    json={"products": [shared_world.products[0]]})
    assert_problem(response, 403)


async def test_invalid_gtin_names_the_product(shared_suite, shared_world):
    product = {**shared_world.products[0], "gtin": "06901234567890"}
    async with shared_suite.client(shared_world.admin_token) as admin:
        response = await admin.put("/api/v1/products", json={"products": [product]})
    assert_problem(response, 400, "products[0].gtin")


async def test_garbage_bodies_never_cause_a_500(shared_suite, shared_world):
    bodies = [b"", b"null", b"[]", b"42", b'"text"', b"{" * 1000, b'{"lines": null}',
              b'{"lines": [null]}', b'{"lines": [{"product_code": null, "quantity": null}]}',
              json.dumps({"lines": [{"product_code": "A-001", "quantity": 2**70}]}).encode(),
              "{\"lines\": [{\"product_code\": \"\u0000\", \"quantity\": 1}]}".encode(),
              b"\xff\xfe\x00"]
    async with shared_suite.client(shared_world.dealers[0].token) as client:
        for body in bodies:
            response = await client.post("/api/v1/orders", content=body,
                                         headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, (body[:40], response.text)
            assert response.headers["content-type"].startswith(PROBLEM)


async def test_request_id_is_echoed_and_generated(shared_suite, shared_world):
    async with shared_suite.client(shared_world.dealers[0].token) as client:
        response = await client.get("/api/v1/orders", headers={"x-request-id": "trace-123"})
        assert response.headers["x-request-id"] == "trace-123"
        generated = await client.get("/api/v1/orders")
        assert len(generated.headers["x-request-id"]) == 32


@pytest.mark.asyncio(loop_scope="function")
async def test_readyz_reports_every_service_and_degrades(suite):
    async with suite.client() as client:
        response = await client.get("/readyz")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert set(body["services"]) == {"identity", "registration", "order", "flow", "incentive",
                                         "engagement"}
        assert set(body["services"].values()) == {"SERVING"}
        await suite.stop_service("flow")
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "degraded"
        assert response.json()["services"]["flow"] != "SERVING"
        assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_openapi_document_lists_the_api(shared_suite):
    async with shared_suite.client() as client:
        document = (await client.get("/openapi.json")).json()
    assert {"/api/v1/orders", "/api/v1/auth/login", "/api/v1/accruals"} <= set(document["paths"])


LONG_ID_RESOURCES = ["orders", "registrations", "customers", "statements", "accruals", "users",
                     "org-units", "shipments", "returns", "products", "settlements"]


def _same_connection_answers(base_url: str, token: str, paths: list[str]) -> list[int]:
    """GET each path over one keep-alive connection (http.client never reconnects
    silently: a connection the server dropped fails the next request)."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    statuses = []
    try:
        for path in paths:
            connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            socket_before = connection.sock
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
            assert connection.sock is socket_before and not response.will_close, path[:80]
    finally:
        connection.close()
    return statuses


async def test_an_overlong_id_is_a_4xx_and_the_connection_stays_open(shared_suite,
                                                                      shared_world):
    """An id of 5,000 or 8,000 characters answers 414 problem+json on every resource
    (it used to be a 500 that dropped the connection); the same keep-alive connection
    serves the next request."""
    async with shared_suite.client(shared_world.admin_token) as client:
        for resource in LONG_ID_RESOURCES:
            for length in (5000, 8000):
                assert_problem(await client.get(f"/api/v1/{resource}/{'x' * length}"), 414)
            # Just under the limit the service answers, never a 5xx.
            response = await client.get(f"/api/v1/{resource}/{'x' * 2000}")
            assert 400 <= response.status_code < 500, (resource, response.status_code)
            assert_problem(response, response.status_code)
    paths = [p for r in LONG_ID_RESOURCES for p in (f"/api/v1/{r}/{'x' * 8000}",
                                                    "/api/v1/orders?page_size=1")]
    statuses = await asyncio.to_thread(_same_connection_answers, shared_suite.base_url,
                                       shared_world.admin_token, paths)
    assert statuses == [414, 200] * len(LONG_ID_RESOURCES)


async def test_an_overlong_query_is_a_4xx_and_the_connection_stays_open(shared_suite,
                                                                         shared_world):
    async with shared_suite.client(shared_world.admin_token) as client:
        assert_problem(await client.get("/api/v1/orders", params={"dealer_id": "d" * 9000}),
                       414)
    statuses = await asyncio.to_thread(
        _same_connection_answers, shared_suite.base_url, shared_world.admin_token,
        [f"/api/v1/orders?dealer_id={'d' * 9000}", "/api/v1/orders?page_size=1"])
    assert statuses == [414, 200]


async def test_an_idempotency_key_makes_a_retried_creation_return_the_first(shared_suite,
                                                                              shared_world):
    """A client that lost the answer retries with the same Idempotency-Key and gets the
    order (return, registration) the first request created, not a second one."""
    key = f"retry-{uuid.uuid4().hex[:12]}"
    body = {"lines": [{"product_code": "A-001", "quantity": 1}]}
    async with shared_suite.client(shared_world.dealers[0].token) as client:
        first = await client.post("/api/v1/orders", json=body,
                                  headers={"Idempotency-Key": key})
        again = await client.post("/api/v1/orders", json=body,
                                  headers={"Idempotency-Key": key})
        other = await client.post("/api/v1/orders", json=body,
                                  headers={"Idempotency-Key": key + "-2"})
        assert first.status_code == 201, first.text
        assert again.status_code in (200, 201), again.text
        assert again.json()["id"] == first.json()["id"] != other.json()["id"]
        assert first.json()["client_order_ref"] == key
        clash = await client.post("/api/v1/orders", json={**body, "client_order_ref": "x"},
                                  headers={"Idempotency-Key": key})
        assert_problem(clash, 400, "client_order_ref")

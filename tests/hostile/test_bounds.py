"""Bounds at the edge: what used to crash a service (500) or poison a dealer's later
orders is refused up front as problem+json naming the field."""

from __future__ import annotations

import base64

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")


def nested(depth: int) -> dict:
    expression: dict = {"term": {"tag": "华东"}}
    for _ in range(depth):
        expression = {"not": expression}
    return expression


def fields(response) -> set[str]:
    return {error["field"] for error in response.json().get("errors", [])}


async def test_an_audience_nested_150_deep_is_refused_naming_the_depth(shared_suite,
                                                                      shared_world):
    async with shared_suite.client(shared_world.admin_token) as admin:
        response = await admin.post("/api/v1/audiences/query",
                                    json={"expression": nested(150)})
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "nested deeper than 16" in response.json()["detail"]
        wide = {"any_of": [{"term": {"tag": f"t{n}"}} for n in range(300)]}
        response = await admin.post("/api/v1/audiences/query", json={"expression": wide})
        assert response.status_code == 400 and "more than 200 parts" in response.text
        long = {"term": {"tag": "x" * 201}}
        response = await admin.post("/api/v1/audiences/query", json={"expression": long})
        assert response.status_code == 400 and fields(response) == {"expression.term.tag"}
        # Within the bounds the expression is answered.
        response = await admin.post("/api/v1/audiences/query",
                                    json={"expression": nested(10)})
        assert response.status_code == 200, response.text


async def test_a_page_token_with_a_huge_offset_or_page_size_is_refused(shared_suite,
                                                                      shared_world):
    forged = base64.urlsafe_b64encode(b"o:" + b"9" * 30).decode().rstrip("=")
    async with shared_suite.client(shared_world.admin_token) as admin:
        response = await admin.get("/api/v1/org-units", params={"page_token": forged})
        assert response.status_code == 400, response.text
        assert fields(response) == {"page.page_token"}
        response = await admin.get("/api/v1/org-units", params={"page_size": 10**12})
        assert response.status_code == 422 and "page_size" in response.text


async def test_money_and_quantities_near_the_int64_limit_are_refused(shared_suite,
                                                                    shared_world):
    dealer = shared_world.dealers[0]
    product = dict(shared_world.products[0],
                   list_price={"amount_minor": 2**63 - 10, "currency": "CNY"})
    async with shared_suite.client(shared_world.admin_token) as admin:
        response = await admin.put("/api/v1/products", json={"products": [product]})
        assert response.status_code == 422, response.text
        assert "list_price" in response.text and "amount_minor" in response.text
    line = {"product_code": shared_world.products[0]["code"], "quantity": 2**62}
    async with shared_suite.client(dealer.token) as staff:
        response = await staff.post("/api/v1/orders", json={"lines": [line]})
        assert response.status_code == 422 and "quantity" in response.text
        priced = {"product_code": shared_world.products[0]["code"], "quantity": 1,
                  "expected_unit_price": {"amount_minor": 2**62, "currency": "CNY"}}
        response = await staff.post("/api/v1/orders", json={"lines": [priced]})
        assert response.status_code == 422 and "expected_unit_price" in response.text
        # The dealer's ordinary orders are unaffected.
        response = await staff.post("/api/v1/orders", json={"lines": [dict(line, quantity=2)]})
        assert response.status_code == 201, response.text


async def test_an_order_of_10000_lines_gets_its_own_error(shared_suite, shared_world):
    dealer = shared_world.dealers[0]
    lines = [{"product_code": shared_world.products[0]["code"], "quantity": 1}] * 10_000
    async with shared_suite.client(dealer.token) as staff:
        response = await staff.post("/api/v1/orders", json={"lines": lines})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["reason"] == "TOO_MANY_LINES" and fields(response) == {"lines"}
    assert "at most 500 lines" in body["detail"]


async def test_a_product_file_price_beyond_the_bound_is_a_row_error(shared_suite, shared_world):
    product = shared_world.products[0]
    content = ("code,name,gtin,product_line,list_price\n"
               f"{product['code']},{product['name']},{product['gtin']},A系列,"
               "92233720368547758.07\n").encode()
    async with shared_suite.client(shared_world.admin_token) as admin:
        response = await admin.post("/api/v1/products/import", content=content,
                                    params={"filename": "p.csv", "dry_run": "true"},
                                    headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    assert [(e["row_number"], e["code"]) for e in response.json()["errors"]] == [
        (2, "INVALID_PRICE")]

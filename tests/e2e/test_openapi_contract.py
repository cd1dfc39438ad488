"""The OpenAPI document is typed and true: every /api/v1 route documents its answer
(a schema generated from the protos, files as binary, problem+json for errors), and the
live answers of every list and of single resources, for HQ and for a dealer, validate
against it."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import jsonschema
import pytest

from gateway.app import create_app
from shared.settings import GatewaySettings
from tests.harness import generate_keypair
from tests.order.support import Erp, add_staff, shipment

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _document(tmp_path) -> dict:
    _, public_key = generate_keypair(tmp_path)
    return create_app(GatewaySettings.from_env(
        {"QUDAO_JWT_PUBLIC_KEY_FILE": str(public_key)})).openapi()


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")
def test_every_route_documents_its_answer_and_its_errors(tmp_path):
    document = _document(tmp_path)
    untyped = []
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            assert responses["4XX"]["content"]["application/problem+json"], (method, path)
            for status, answer in responses.items():
                if status.startswith("2") and status != "204":
                    for media_type, content in answer.get("content", {}).items():
                        if not content.get("schema"):
                            untyped.append(f"{method.upper()} {path} {status} {media_type}")
                    if not answer.get("content"):
                        untyped.append(f"{method.upper()} {path} {status}: no content")
    assert not untyped, "\n".join(untyped)
    order = document["components"]["schemas"]["qudao.order.v1.Order"]
    assert order["properties"]["status"]["enum"][:2] == ["unspecified", "submitted"]
    money = document["components"]["schemas"]["qudao.common.v1.Money"]
    assert money["properties"]["amount_minor"]["examples"] == [128050]
    # Versioned resources: the ETag answered, If-Match and Idempotency-Key accepted.
    customer = document["paths"]["/api/v1/customers/{customer_id}"]
    assert "ETag" in customer["get"]["responses"]["200"]["headers"]
    assert "ETag" in customer["patch"]["responses"]["200"]["headers"]
    assert "if-match" in {p["name"].lower() for p in customer["patch"]["parameters"]}
    assert "idempotency-key" in {p["name"].lower() for p in document["paths"][
        "/api/v1/customers"]["post"]["parameters"]}
    assert "version" in document["components"]["schemas"][
        "qudao.registration.v1.Customer"]["properties"]


class Contract:
    """Validates answers against the live document's schema for their route."""

    def __init__(self, document: dict) -> None:
        self.document = document

    def check(self, method: str, template: str, response) -> None:
        operation = self.document["paths"][template][method]
        status = str(response.status_code)
        answer = operation["responses"].get(status) or operation["responses"][
            f"{status[0]}XX"]
        media_type = response.headers["content-type"].split(";")[0]
        schema = answer["content"][media_type]["schema"]
        # The document's components beside the schema, so its "#/components/…" resolve.
        jsonschema.Draft202012Validator(
            {**schema, "components": self.document["components"]}).validate(response.json())


async def test_live_answers_validate_against_the_document(shared_suite, shared_world):
    suite, world = shared_suite, shared_world
    staff = await add_staff(suite, world, prefix="contract.")
    dealer = world.dealers[0]
    async with suite.client(dealer.token) as client:
        order = (await client.post("/api/v1/orders", json={
            "lines": [{"product_code": "A-001", "quantity": 2}]})).json()
    for token, stage in ((staff.manager_token, "channel_manager"),
                         (staff.finance_token, "finance")):
        async with suite.client(token) as client:
            await client.post(f"/api/v1/orders/{order['id']}/approve", json={"stage": stage})
    erp = Erp(suite, staff.erp_token)
    try:
        await erp.ship([shipment("S-CONTRACT", dealer.id, [{
            "order_id": order["id"], "order_line_no": 1, "product_code": "A-001",
            "quantity": 2}])])
    finally:
        await erp.close()

    async with suite.client() as anonymous:
        contract = Contract((await anonymous.get("/openapi.json")).json())
    lists = [path for path, operations in contract.document["paths"].items()
             if path.startswith("/api/v1/") and "{" not in path and "get" in operations
             and "application/json" in operations["get"]["responses"].get("200", {}).get(
                 "content", {})]
    required = {path for path in lists if any(
        parameter.get("required") for parameter in
        contract.document["paths"][path]["get"].get("parameters", []))}
    checked = 0
    for token in (world.admin_token, dealer.token):
        async with suite.client(token) as client:
            for path in lists:
                response = await client.get(path)
                assert response.status_code < 500, (path, response.text[:300])
                if path not in required:
                    assert response.status_code in (200, 403), (path, response.text[:300])
                contract.check("get", path, response)
                checked += 1
            for template, path in (
                    ("/api/v1/orders/{order_id}", f"/api/v1/orders/{order['id']}"),
                    ("/api/v1/shipments/{shipment_id}", "/api/v1/shipments/S-CONTRACT"),
                    ("/api/v1/org-units/{org_unit_id}", f"/api/v1/org-units/{dealer.id}"),
                    ("/api/v1/dealer-accounts/{dealer_id}",
                     f"/api/v1/dealer-accounts/{dealer.id}"),
                    ("/api/v1/orders/{order_id}", "/api/v1/orders/nope"),
                    ("/api/v1/products/{code}", "/api/v1/products/A-001")):
                response = await client.get(path)
                assert response.status_code in (200, 404), (path, response.text[:300])
                contract.check("get", template, response)
        async with suite.client(dealer.token) as client:
            response = await client.post("/api/v1/orders", json={
                "lines": [{"product_code": "A-002", "quantity": 1}]})
            assert response.status_code == 201, response.text
            contract.check("post", "/api/v1/orders", response)
            contract.check("post", "/api/v1/orders", await client.post(
                "/api/v1/orders", json={"lines": []}))
    assert checked > 60


async def test_a_client_generated_from_the_document_reads_the_answers(shared_suite,
                                                                       shared_world,
                                                                       tmp_path):
    """A mobile team's route: generate typed models from /openapi.json with a mainstream
    generator (datamodel-code-generator, pydantic v2) and read real answers with them."""
    async with shared_suite.client() as anonymous:
        (tmp_path / "openapi.json").write_bytes((await anonymous.get("/openapi.json")).content)
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("datamodel-codegen")),
        "--input", str(tmp_path / "openapi.json"), "--input-file-type", "openapi",
        "--openapi-scopes", "schemas", "--output-model-type", "pydantic_v2.BaseModel",
        "--use-title-as-name", "--output", str(tmp_path / "qudao_client.py"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-2000:]
    spec = importlib.util.spec_from_file_location("qudao_client", tmp_path / "qudao_client.py")
    client_models = importlib.util.module_from_spec(spec)
    # pydantic resolves the models' forward references through sys.modules.
    sys.modules[spec.name] = client_models
    try:
        spec.loader.exec_module(client_models)
    finally:
        del sys.modules[spec.name]

    dealer = shared_world.dealers[0]
    async with shared_suite.client(dealer.token) as client:
        created = await client.post("/api/v1/orders", json={
            "lines": [{"product_code": "A-003", "quantity": 3}]})
        order = client_models.Order.model_validate(created.json())
        assert order.lines[0].quantity_ordered == 3 and order.total.amount_minor > 0
        listed = client_models.ListOrdersResponse.model_validate(
            (await client.get("/api/v1/orders")).json())
        assert order.id in {o.id for o in listed.orders} and listed.page.total_size >= 1
        client_models.ListInvoicesResponse.model_validate(
            (await client.get("/api/v1/invoices")).json())
        problem = client_models.Problem.model_validate(
            (await client.get("/api/v1/orders/nope")).json())
        assert problem.status == 404 and problem.reason

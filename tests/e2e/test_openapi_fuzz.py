"""Property-based requests from the typed OpenAPI document (schemathesis): for several
roles, a few generated requests per operation never get a 5xx and every answer matches
the document (status, content type, schema)."""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.order.support import add_staff

pytestmark = pytest.mark.asyncio(loop_scope="module")

EXAMPLES = 2
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# Operations that would end the roles' own sessions or send file uploads (the import
# corpus covers those), left out of random generation.
SKIPPED = ("/api/v1/auth/", "/password", "/deactivate", "/import", "/flow/uploads")


def _run(operation, base_url: str, headers: dict[str, str]) -> None:
    # derandomize: make test sees the same requests each run (a fixed seed per operation).
    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case):
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        case.validate_response(response, checks=CHECKS)

    run()


def fuzz(document: dict, base_url: str, tokens: dict[str, str]) -> list[str]:
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/api/v1/") or any(
                part in operation.path for part in SKIPPED):
            continue
        for role, token in tokens.items():
            try:
                _run(operation, base_url, {"Authorization": f"Bearer {token}"})
            except Exception as exc:  # a failed check: name the operation and role
                failures.append(f"{operation.method.upper()} {operation.path} as {role}: "
                                f"{str(exc).strip()[:600]}")
    return failures


async def test_generated_requests_never_fail_the_server_or_the_document(shared_suite,
                                                                          shared_world):
    staff = await add_staff(shared_suite, shared_world, prefix="fuzz.")
    async with shared_suite.client() as anonymous:
        document = (await anonymous.get("/openapi.json")).json()
    tokens = {"hq_admin": shared_world.admin_token, "finance": staff.finance_token,
              "dealer_sales": shared_world.dealers[0].token}
    failures = await asyncio.to_thread(fuzz, document, shared_suite.base_url, tokens)
    assert not failures, "\n\n".join(failures)
